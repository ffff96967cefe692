"""The `deskprov` command as an operator uses it: real processes, real ports, real files."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

EXAMPLE = Path(__file__).parent / "data" / "exempel.yaml"
UA = {"User-Agent": "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01"}


def deskprov(*args: str, env: dict, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "provisioning.cli", *args], env=env, input=input,
                            capture_output=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"deskprov {' '.join(args)} failed: {result.stderr.decode()}")
    return result


@pytest.fixture
def env(tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DESKPROV_")}
    return {**clean, "DESKPROV_DATA_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"}


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_import_export_round_trip(env, tmp_path):
    first = deskprov("import", str(EXAMPLE), env=env)
    assert "created 2 users, 3 numbers, 1 phones, 3 keys" in first.stdout.decode()
    again = deskprov("import", str(EXAMPLE), env=env)
    assert "created nothing; updated nothing; deleted nothing" in again.stdout.decode()
    exported = deskprov("export", "--organization", "Exempel AB", env=env).stdout.decode()
    assert "Anna Andersson" in exported and "password" not in exported
    dump = tmp_path / "dump.yaml"
    dump.write_text(exported)
    assert "created nothing" in deskprov("import", str(dump), env=env).stdout.decode()
    assert (tmp_path / "var" / "deskprov.sqlite3").exists()


def test_import_from_stdin_and_db_flag(env, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'other.sqlite3'}"
    out = deskprov("import", "-", "--db", url, env=env, input=EXAMPLE.read_bytes()).stdout.decode()
    assert "created 2 users" in out
    assert (tmp_path / "other.sqlite3").exists() and not (tmp_path / "var" / "deskprov.sqlite3").exists()
    current = deskprov("db", "current", "--db", url, env=env).stdout.decode()
    assert re.search(r"revision (\w+) \(newest \1\)", current), current


def test_malformed_import_names_the_line_and_changes_nothing(env, tmp_path):
    deskprov("import", str(EXAMPLE), env=env)
    before = deskprov("export", "--secrets", env=env).stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("label: Bertil", "label: Bertil B").replace(
        '"80:5E:C0:AA:BB:01"', '"80:5E:C0:AA:BB:0G"'))
    result = deskprov("import", str(bad), env=env, check=False)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert f"{bad}:16: phones.0.mac: not a MAC address" in err and "nothing was changed" in err
    assert deskprov("export", "--secrets", env=env).stdout == before


def test_missing_file_and_bad_setting(env):
    result = deskprov("import", "/nonexistent.yaml", env=env, check=False)
    assert result.returncode == 2 and "cannot read" in result.stderr.decode()
    result = deskprov("db", "current", env={**env, "DESKPROV_HTTP_PORT": "eighty"}, check=False)
    assert result.returncode == 2 and "http_port must be a int" in result.stderr.decode()


async def _wait_ready(proc: subprocess.Popen, lines: list[str], count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while sum("listening on" in line for line in lines) < count:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("server did not start:\n" + "".join(lines))
        line = await asyncio.to_thread(proc.stderr.readline)
        lines.append(line)


async def test_serve_uses_env_settings_serves_and_stops_on_sigterm(env, tmp_path):
    """`deskprov serve` as `make run` starts it: one log line per listener, clean SIGTERM stop,
    and an import made by another process while it runs reaches its cache."""
    deskprov("import", str(EXAMPLE), env=env)
    http_port, api_port, tftp_port = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    env = {**env, "DESKPROV_HTTP_PORT": str(http_port), "DESKPROV_API_PORT": str(api_port),
           "DESKPROV_PNP_PORT": str(free_port(socket.SOCK_DGRAM))}
    proc = subprocess.Popen([sys.executable, "-m", "provisioning.cli", "serve", "--tftp-port", str(tftp_port)],
                            env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        await _wait_ready(proc, lines, 3)
        log = "".join(lines)
        assert f"phone HTTP listening on http://127.0.0.1:{http_port}/" in log
        assert f"admin API listening on http://127.0.0.1:{api_port}/" in log
        assert f"phone TFTP listening on 127.0.0.1:{tftp_port}" in log
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{http_port}/805ec0aabb01.cfg", headers=UA) as resp:
                assert resp.status == 200
                assert "linekey.2.label = Bertil" in await resp.text()
            async with http.get(f"http://127.0.0.1:{api_port}/api/v1/health") as resp:
                assert (await resp.json())["database"] == "ok"
            changed = tmp_path / "changed.yaml"
            changed.write_text(EXAMPLE.read_text().replace("label: Bertil", "label: Bertil Berg"))
            await asyncio.to_thread(deskprov, "import", str(changed), env=env)
            deadline = time.monotonic() + 5
            while True:
                async with http.get(f"http://127.0.0.1:{http_port}/805ec0aabb01.cfg", headers=UA) as resp:
                    if "linekey.2.label = Bertil Berg" in await resp.text():
                        break
                assert time.monotonic() < deadline, "the server never saw the other process's import"
                await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 15) == 0
        rest = await asyncio.to_thread(proc.stderr.read)
        assert "stopping" in rest and "Traceback" not in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_help_lists_the_commands(env):
    out = deskprov("--help", env=env).stdout.decode()
    for command in ("serve", "import", "export", "db"):
        assert re.search(rf"\b{command}\b", out)
