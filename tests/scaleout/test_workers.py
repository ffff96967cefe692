"""`deskprov serve --workers 2` as a real process on PostgreSQL: both workers serve the phone
port (SO_REUSEPORT), a change made through the admin API reaches both workers' caches within a
second, a worker that dies is restarted, and SIGTERM stops everything cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tests" / "data" / "exempel.yaml"
UA = {"User-Agent": "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01"}
STAFF_PASSWORD = "Korrekt-Häst-Batteri-42"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> set[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    pids = {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    out = set()
    for child in pids:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            out.add(child)
    return out


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.fixture
def cluster(tmp_path, postgres_url):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DESKPROV_")},
           "DESKPROV_DB": postgres_url, "DESKPROV_DATA_DIR": str(tmp_path / "var"), "DESKPROV_PNP_PORT": "0",
           "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "provisioning.cli"]
    subprocess.run([*cli, "import", str(EXAMPLE)], env=env, cwd=ROOT, check=True, capture_output=True)
    subprocess.run([*cli, "superadmin", "create", "--username", "drift", "--password-stdin"], env=env, cwd=ROOT,
                   check=True, capture_output=True, input=(STAFF_PASSWORD + "\n").encode())
    ports = {"http": free_port(), "api": free_port(), "tftp": free_port(socket.SOCK_DGRAM)}
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([*cli, "serve", "--workers", "2", "--http-port", str(ports["http"]),
                             "--api-port", str(ports["api"]), "--tftp-port", str(ports["tftp"])],
                            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc, ports, tmp_path / "serve.log", env
    finally:
        if proc.poll() is None:
            # SIGKILL of the supervisor alone would leave its workers running (orphans serving
            # and using CPU for the rest of the run): stop it with SIGTERM, then kill what remains
            workers = children(proc.pid)
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for pid in workers:
                try:
                    if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        os.kill(pid, signal.SIGKILL)
                except (OSError, ProcessLookupError):
                    pass
        log.close()


async def wait_ready(proc, ports, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            assert proc.poll() is None, "deskprov serve exited"
            assert time.monotonic() < deadline, "not ready in time"
            try:
                async with http.get(f"http://127.0.0.1:{ports['api']}/api/v1/health") as resp:
                    if resp.status == 200 and len(children(proc.pid)) == 2:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # the second worker binds its socket just after the first


async def device_credentials(env: dict[str, str], mac: str) -> tuple[str, str]:
    """The phone's own digest credentials (what its config told it), read from the database."""
    from sqlalchemy import select

    from provisioning.db import engine_for
    from provisioning.model import Device
    from provisioning.settings import load_settings

    engine = engine_for(load_settings(environ=env))
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(select(Device.http_username, Device.http_password)
                                      .where(Device.mac == mac))).one()
    finally:
        await engine.dispose()
    return row.http_username, row.http_password


async def fetch_many(port: int, credentials: tuple[str, str], count: int = 40) -> list[str]:
    """``count`` GETs, each on a new connection (a new source port: the kernel spreads them),
    answering the server's digest challenge as the phone does."""
    out = []
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector,
                                     middlewares=(aiohttp.DigestAuthMiddleware(*credentials),)) as http:
        for _ in range(count):
            async with http.get(f"http://127.0.0.1:{port}/805ec0aabb01.cfg", headers=UA) as resp:
                assert resp.status == 200
                out.append(await resp.text())
    return out


async def test_a_change_through_the_api_reaches_both_workers_within_a_second(cluster):
    proc, ports, log, env = cluster
    await wait_ready(proc, ports)
    phone = await device_credentials(env, "805ec0aabb01")
    workers = children(proc.pid)
    before = {pid: cpu_ticks(pid) for pid in workers}
    old = await fetch_many(ports["http"], phone, 200)
    assert all("Anna Andersson" in text for text in old)
    assert all(cpu_ticks(pid) > before[pid] for pid in workers), "one worker served nothing"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # 127.0.0.1 cookies
        api = f"http://127.0.0.1:{ports['api']}/api/v1"
        async with http.post(f"{api}/auth/login", json={"login": "drift", "password": STAFF_PASSWORD,
                                                          "realm": "staff"}) as resp:
            assert resp.status == 200, await resp.text()
        async with http.get(f"{api}/users", params={"number": "+46854689901"}) as resp:
            anna = (await resp.json())["items"][0]
        async with http.patch(f"{api}/users/{anna['id']}", json={"name": "Anna Ek"}) as resp:
            assert resp.status == 200, await resp.text()
    changed = time.monotonic()
    while True:
        texts = await fetch_many(ports["http"], phone, 20)
        if all("Anna Ek" in t for t in texts):
            break
        assert time.monotonic() - changed < 1.0, "a worker still served the old name after 1 s"
    print(f"both workers served the change {1000 * (time.monotonic() - changed):.0f} ms after the commit")
    assert all("Anna Ek" in t for t in await fetch_many(ports["http"], phone, 40))


async def test_a_dead_worker_is_restarted_and_sigterm_stops_all(cluster):
    proc, ports, log, env = cluster
    await wait_ready(proc, ports)
    phone = await device_credentials(env, "805ec0aabb01")
    first = children(proc.pid)
    victim = max(first)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while not (len(children(proc.pid)) == 2 and victim not in children(proc.pid)):
        assert time.monotonic() < deadline, "the dead worker was not replaced"
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # the new worker binds its port
    texts = await fetch_many(ports["http"], phone, 40)
    assert all("Anna Andersson" in t for t in texts)
    workers = children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    text = log.read_text()
    assert "exited with -9" in text and "restarting" in text
    assert "Traceback" not in text, text[-3000:]


def test_the_workers_and_cache_settings_are_checked():
    from provisioning.settings import SettingsError, load_settings

    assert load_settings(environ={"DESKPROV_WORKERS": "3"}).workers == 3
    assert load_settings(environ={}).cache_max_bytes == 128 * 1024 * 1024
    for bad in ("0", "65", "two"):
        with pytest.raises(SettingsError, match="workers"):
            load_settings(environ={"DESKPROV_WORKERS": bad})
    with pytest.raises(SettingsError, match="cache_max_bytes"):
        load_settings(environ={"DESKPROV_CACHE_MAX_BYTES": "-1"})


def test_a_reserved_port_is_shared_by_reuseport_listeners_only():
    from provisioning.workers import reserve_port

    reserved = reserve_port("127.0.0.1")
    port = reserved.getsockname()[1]
    try:
        plain = socket.socket()
        with pytest.raises(OSError):  # nobody else gets it
            plain.bind(("127.0.0.1", port))
        plain.close()
        worker = socket.socket()
        worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        worker.bind(("127.0.0.1", port))
        worker.listen()
        worker.close()
    finally:
        reserved.close()
