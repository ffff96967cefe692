"""Faults: the database goes away or hangs, an import is killed with SIGKILL, the disk fills up.

* Database gone (PostgreSQL: connections terminated and refused with ``ALLOW_CONNECTIONS false``)
  and database hung (a lock held on the device table): phones keep getting their cached configs;
  a cache miss gives a quick ``503 Retry-After``, never a 500 or a hang; service recovers by itself.
* ``kill -9`` of ``deskprov import`` at a random moment after it started writing leaves the
  database exactly as the last commit left it; the same import then completes.
* An upload onto a full file system (a 64 KiB tmpfs mounted over the upload folder, or, where
  mounting is not permitted, ENOSPC injected into the write) gives 507 with a clear reason, leaves
  no partial or temporary file, keeps the previous version, and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from conftest import EXAMPLE, PG_ADMIN_DSN, import_org  # tests/ is on sys.path (rootdir conftest)
from provisioning import serving
from provisioning import uploads as uploads_module
from simulators.phone import Phone
from simulators.yealink import YealinkProfile

ANNA_MAC, BERTIL_MAC = "805ec0aabb01", "805ec0aabb02"
ANNA_UA = "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01"
BERTIL_UA = "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:02"
WITH_BERTIL = EXAMPLE.read_text() + '  - {mac: "80:5E:C0:AA:BB:02", model: Yealink T46S, user: "+46854689902"}\n'


def yealink(mac: str = "80:5E:C0:AA:BB:01") -> Phone:
    return Phone(YealinkProfile(model="T46S", mac=mac, firmware="66.86.0.15"))


async def http_get(port: int, path: str, ua: str | None, *, timeout: float = 15.0,
                   extra: str = "") -> tuple[int, dict[str, str], bytes, float]:
    """A plain GET; returns (status, headers, body, seconds)."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write((f"GET {path} HTTP/1.1\r\nHost: x\r\n" + (f"User-Agent: {ua}\r\n" if ua else "") + extra
                  + "Connection: close\r\n\r\n").encode())
    try:
        raw = await asyncio.wait_for(reader.read(), timeout)
    except TimeoutError:
        raise AssertionError(f"GET {path}: no answer within {timeout} s") from None
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body, time.monotonic() - started


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def admin(statement: str, *args) -> str:
    connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        return await connection.execute(statement, *args)
    finally:
        await connection.close()


async def take_database_away(name: str) -> None:
    """What a database restart, failover or network cut looks like to the server: every
    connection it holds dies and new ones are refused."""
    await admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    await admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 "
                "AND pid <> pg_backend_pid()", name)


async def bring_database_back(name: str) -> None:
    await admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


# --------------------------------------------------------------------------------------------
# The database goes away / hangs
# --------------------------------------------------------------------------------------------

async def test_database_gone_cached_configs_keep_flowing_and_misses_get_503(postgres_url, make_server, caplog):
    server = await make_server(db=postgres_url)
    await import_org(server, WITH_BERTIL)
    port, name = server.http_port, postgres_url.rsplit("/", 1)[1]
    warm = await yealink().boot_http(f"http://127.0.0.1:{port}/")   # Anna's files are now cached
    assert warm.accounts[1].registered
    _, headers, anna_cfg, _ = await http_get(port, f"/{ANNA_MAC}.cfg", ANNA_UA)

    await take_database_away(name)
    try:
        # the phone whose files are cached boots, over HTTP and over TFTP, and revalidates its ETag
        for _ in range(3):
            state = await yealink().boot_http(f"http://127.0.0.1:{port}/")
            assert state.accounts[1].registered and not state.errors, state.errors
        state = await yealink().boot_tftp("127.0.0.1", server.tftp_port)
        assert state.accounts[1].registered, state.errors
        status, _, body, _ = await http_get(port, f"/{ANNA_MAC}.cfg", ANNA_UA)
        assert (status, body) == (200, anna_cfg)
        status, _, _, _ = await http_get(port, f"/{ANNA_MAC}.cfg", ANNA_UA, extra=f"If-None-Match: {headers['etag']}\r\n")
        assert status == 304

        # a cache miss (Bertil's phone never fetched; an unknown MAC) is a clean, quick 503
        for path, ua in ((f"/{BERTIL_MAC}.cfg", BERTIL_UA), (f"/{BERTIL_MAC}.boot", BERTIL_UA),
                         ("/805ec0aabb77.cfg", "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:77")):
            status, headers_503, body, elapsed = await http_get(port, path, ua)
            assert status == 503, (path, status, body)
            assert int(headers_503["retry-after"]) > 0 and elapsed < serving.DATABASE_TIMEOUT + 1
            assert b"password" not in body
        # over TFTP the miss is refused at once, and the TFTP thread is not stuck
        t0 = time.monotonic()
        state = await yealink(mac="80:5E:C0:AA:BB:02").boot_tftp("127.0.0.1", server.tftp_port)
        assert not state.accounts.get(1) or not state.accounts[1].registered
        assert time.monotonic() - t0 < 10 and server.tftp.restarts == 0
        # "database unavailable" is not an enumeration signal: the source is not banned for it
        assert server.provisioner.guard.counters["bans"] == 0
        assert any("database unavailable" in r.getMessage() for r in caplog.records)
        assert not [r for r in caplog.records if r.name == "aiohttp.server" and r.levelname == "ERROR"]
    finally:
        await bring_database_back(name)

    # back: the miss is served, nothing stale was cached while the database was away
    deadline = time.monotonic() + 10
    while (status := (await http_get(port, f"/{BERTIL_MAC}.cfg", BERTIL_UA))[0]) != 200:
        assert status == 503 and time.monotonic() < deadline, status
        await asyncio.sleep(0.2)
    state = await yealink(mac="80:5E:C0:AA:BB:02").boot_http(f"http://127.0.0.1:{port}/")
    assert state.accounts[1].registered
    # and changes reach the cache again (the change feed survived the outage)
    await import_org(server, WITH_BERTIL.replace("Anna Andersson", "Anna Andersson-Berg"))
    _, _, body, _ = await http_get(port, f"/{ANNA_MAC}.cfg", ANNA_UA)
    assert b"Anna Andersson-Berg" in body


async def test_database_hung_gives_503_within_the_timeout(postgres_url, make_server, monkeypatch):
    """A database that accepts connections but never answers (here: a lock the device table waits
    on) must not hold phones forever; cached files keep flowing."""
    monkeypatch.setattr(serving, "DATABASE_TIMEOUT", 1.0)
    server = await make_server(db=postgres_url)
    await import_org(server, WITH_BERTIL)
    port = server.http_port
    assert (await yealink().boot_http(f"http://127.0.0.1:{port}/")).accounts[1].registered

    blocker = await asyncpg.connect(asyncpg_dsn(postgres_url), timeout=5)
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE device IN ACCESS EXCLUSIVE MODE")
        misses = await asyncio.gather(*(http_get(port, f"/{BERTIL_MAC}.cfg", BERTIL_UA) for _ in range(5)))
        for status, headers, _, elapsed in misses:
            assert status == 503 and headers["retry-after"] and elapsed < 3, (status, elapsed)
        state = await yealink().boot_http(f"http://127.0.0.1:{port}/")   # cached: unaffected
        assert state.accounts[1].registered and not state.errors
        await transaction.rollback()
    finally:
        await blocker.close()
    status, _, body, _ = await http_get(port, f"/{BERTIL_MAC}.cfg", BERTIL_UA)
    assert status == 200 and b"account.1.password" in body, (status, body)


# --------------------------------------------------------------------------------------------
# kill -9 in the middle of `deskprov import`
# --------------------------------------------------------------------------------------------

def org_file(users: int, *, renamed: int = 0) -> str:
    """One organisation with ``users`` users, each with a phone; the first ``renamed`` renamed."""
    lines = ["organization: {name: Stor AB, sip_domain: stor.sip.example.net}", "users:"]
    for i in range(users):
        name = f"User {i}" + (" (v2)" if i < renamed else "")
        lines.append(f'  - {{name: "{name}", number: "+4685{5_000_000 + i:07d}", extension: "{10_000 + i}"}}')
    lines.append("phones:")
    for i in range(users):
        lines.append(f'  - {{mac: "80:5E:C0:{i >> 16 & 255:02X}:{i >> 8 & 255:02X}:{i & 255:02X}", '
                     f'model: Yealink T46S, user: "+4685{5_000_000 + i:07d}"}}')
    return "\n".join(lines) + "\n"


def deskprov(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provisioning.cli", *args], env=env, capture_output=True,
                          timeout=180)


def sqlite_write_locked(path: Path) -> bool:
    """Whether another connection holds SQLite's write lock (an open write transaction)."""
    connection = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc) or "busy" in str(exc)
    finally:
        connection.close()


async def pg_write_started(name: str) -> bool:
    """Whether a session on the database has a transaction that has written (it has an xid)."""
    connection = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        return bool(await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_xid IS NOT NULL", name))
    finally:
        await connection.close()


async def test_kill_9_mid_import_loses_nothing_and_leaves_no_half_import(db_url, tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DESKPROV_")},
           "DESKPROV_DATA_DIR": str(tmp_path / "var"), "DESKPROV_DB": db_url, "PYTHONUNBUFFERED": "1"}
    baseline, big = tmp_path / "v1.yaml", tmp_path / "v2.yaml"
    baseline.write_text(org_file(20))
    big.write_text(org_file(1000, renamed=20))  # seconds of writing, even on a fast machine
    for path in (EXAMPLE, baseline):
        assert deskprov("import", str(path), env=env).returncode == 0
    before = deskprov("export", "--secrets", env=env)
    assert before.returncode == 0 and b"User 19" in before.stdout and b"(v2)" not in before.stdout

    seed = int.from_bytes(os.urandom(4), "big")
    delay = random.Random(seed).uniform(0.05, 0.5)
    proc = subprocess.Popen([sys.executable, "-m", "provisioning.cli", "import", str(big)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            if db_url.startswith("sqlite"):
                writing = sqlite_write_locked(Path(db_url.split(":///", 1)[1]))
            else:
                writing = await pg_write_started(db_url.rsplit("/", 1)[1])
            if writing:
                break
            assert proc.poll() is None, f"import ended before it was seen writing: {proc.communicate()}"
            assert time.monotonic() < deadline, "import never started writing"
            await asyncio.sleep(0.02)
        await asyncio.sleep(delay)
        assert proc.poll() is None, f"import finished within {delay:.2f} s of writing (seed {seed}): make it bigger"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    after = deskprov("export", "--secrets", env=env)
    assert after.returncode == 0, after.stderr.decode()[-2000:]
    assert after.stdout == before.stdout, f"killed {delay:.2f} s after it started writing (seed {seed})"
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.split(":///", 1)[1]) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    rerun = deskprov("import", str(big), env=env)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    assert b"created 980 users" in rerun.stdout, rerun.stdout
    final = deskprov("export", "--secrets", env=env).stdout
    assert b"User 0 (v2)" in final and b"User 999" in final and b"Anna Andersson" in final


# --------------------------------------------------------------------------------------------
# Disk full while storing an upload
# --------------------------------------------------------------------------------------------

@pytest.fixture(params=["tmpfs", "injected"])
def full_disk(request, tmp_path, monkeypatch):
    """The upload folder on a 64 KiB tmpfs (really running out of space), or, where mounting is not
    permitted, ENOSPC injected into the upload's write. Returns the mode."""
    uploads = tmp_path / "var" / "uploads"
    uploads.mkdir(parents=True)
    if request.param == "tmpfs":
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(uploads)],
                                 capture_output=True)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}); the injected case covers it")
        request.addfinalizer(lambda: subprocess.run(["umount", "-l", str(uploads)], capture_output=True))
    else:
        real_write = uploads_module.os.fdopen

        class FullFile:
            def __init__(self, fh):
                self._fh = fh

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self._fh.close()

            def write(self, data):
                if len(data) > 16 * 1024:   # small files fit, big ones hit a full disk half-way
                    self._fh.write(data[: len(data) // 2])
                    self._fh.flush()
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return self._fh.write(data)

            def __getattr__(self, name):
                return getattr(self._fh, name)

        class OsWithFullDisk:  # the uploads module's view of `os` only; the rest of the process is untouched
            def fdopen(self, fd, mode):
                return FullFile(real_write(fd, mode))

            def __getattr__(self, name):
                return getattr(os, name)

        monkeypatch.setattr(uploads_module, "os", OsWithFullDisk())
    return request.param


async def test_upload_on_a_full_disk_gives_a_clear_error_and_no_partial_file(full_disk, make_server, tmp_path):
    server = await make_server(max_upload_bytes=512 * 1024)
    await import_org(server, EXAMPLE.read_text())
    port = server.http_port
    assert (await yealink().boot_http(f"http://127.0.0.1:{port}/")).accounts[1].registered
    folder = tmp_path / "var" / "uploads" / ANNA_MAC
    path = f"/{ANNA_MAC}-local.cfg"

    async def put(body: bytes) -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"PUT {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: {ANNA_UA}\r\nContent-Length: {len(body)}\r\n"
                     f"Connection: close\r\n\r\n".encode() + body)
        raw = await asyncio.wait_for(reader.read(), 15)
        writer.close()
        head, _, rest = raw.partition(b"\r\n\r\n")
        return int(head.split()[1]), rest

    if full_disk == "tmpfs":
        # completely full before the device's first upload: its folder cannot even be created
        filler = tmp_path / "var" / "uploads" / "filler"
        with open(filler, "wb", buffering=0) as fh:
            for chunk in (4096, 1):
                try:
                    while True:
                        fh.write(b"\0" * chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
        status, body = await put(b"# first upload\n")
        assert status == 507 and b"disk full" in body, (status, body)
        assert not folder.exists() or not any(folder.iterdir())
        filler.unlink()

    small = b"# local settings v1\n" + b"lang.gui = Svenska\n" * 50
    assert (await put(small))[0] == 204
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {f"{ANNA_MAC}-local.cfg": small}

    status, body = await put(b"# local settings v2\n" + os.urandom(200 * 1024))
    assert status == 507, (status, body)
    assert b"disk full" in body
    # nothing partial: no temporary file, the previous version untouched
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {f"{ANNA_MAC}-local.cfg": small}

    # the server keeps serving: the phone boots and reads its upload back
    assert (await yealink().boot_http(f"http://127.0.0.1:{port}/")).accounts[1].registered
    status, _, body, _ = await http_get(port, path, ANNA_UA)
    assert (status, body) == (200, small)
    # and once the upload fits, it is stored
    fits = b"# local settings v3\n" + b"x" * 8000
    assert (await put(fits))[0] == 204
    assert (folder / f"{ANNA_MAC}-local.cfg").read_bytes() == fits
