"""An attacker against the running server's phone-facing HTTP listener.

Requests are written as raw bytes on sockets (a client library would normalise the very things
under test: ``..``, percent-escapes, header folding). The attacker talks from 127.0.0.2; the
legitimate phone boots from 127.0.0.1 and must keep working. Every response the attacker gets is
searched for every SIP password and device admin password in the database.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import time
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from provisioning import http as phone_http
from provisioning import server as server_module
from provisioning.model import Device, Line
from simulators.phone import Phone
from simulators.yealink import YealinkProfile
from conftest import import_org  # tests/ is on sys.path (rootdir conftest)

ATTACKER = "127.0.0.2"
PHONE_IP = "127.0.0.1"

ANNA_MAC, BERTIL_MAC, CECILIA_MAC, OTHER_MAC = "805ec0aabb01", "805ec0aabb02", "0004f2aabb03", "805ec0ccdd01"
ANNA_UA = "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01"
BERTIL_UA = "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:02"

#: Every secret the server holds. Nothing the attacker receives may contain any of them.
SECRETS = {
    "anna": "Anna-Secret-01-qwXz", "bertil": "Bertil-Secret-02-pLmK", "cecilia": "Cecilia-Secret-03-rTyU",
    "other-tenant": "Other-Tenant-Secret-04-vBnM", "admin-a": "OrgA-Admin-Pw-77", "admin-b": "OrgB-Admin-Pw-88",
}

ORG_A = f"""
organization: {{name: Angrepp AB, sip_domain: a.sip.example.net, device_admin_password: "{SECRETS['admin-a']}"}}
users:
  - {{name: Anna Andersson, number: "+46854689901", extension: "201"}}
  - {{name: Bertil Berg, number: "+46854689902", extension: "202"}}
  - {{name: Cecilia Carlsson, number: "+46854689903", extension: "203"}}
phones:
  - mac: "80:5E:C0:AA:BB:01"
    model: Yealink T46S
    user: "+46854689901"
    sip: {{username: anna01, password: "{SECRETS['anna']}"}}
    keys: [{{slot: 1, type: line}}, {{slot: 2, type: blf, target: "202", label: Bertil}}]
  - mac: "80:5E:C0:AA:BB:02"
    model: Yealink T46S
    user: "+46854689902"
    sip: {{username: bertil02, password: "{SECRETS['bertil']}"}}
  - mac: "00:04:F2:AA:BB:03"
    model: Poly VVX 450
    user: "+46854689903"
    sip: {{username: cecilia03, password: "{SECRETS['cecilia']}"}}
"""
ORG_B = f"""
organization: {{name: Annan Kund AB, sip_domain: b.sip.example.net, device_admin_password: "{SECRETS['admin-b']}"}}
users:
  - {{name: Olle Other, number: "+46854689950", extension: "250"}}
phones:
  - mac: "80:5E:C0:CC:DD:01"
    model: Yealink T46S
    user: "+46854689950"
    sip: {{username: olle50, password: "{SECRETS['other-tenant']}"}}
"""
CANARY = b"CANARY-outside-the-root-3f9a1c"


# --------------------------------------------------------------------------------------------
# Raw HTTP
# --------------------------------------------------------------------------------------------

@dataclass
class Reply:
    status: int          # 0: the server closed without answering
    head: bytes
    body: bytes
    elapsed: float
    request: bytes = b""
    reset: bool = False  # the connection was reset (the server hung up on a request still arriving)

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                return value.strip().decode("latin-1")
        return None


async def _read_response(reader: asyncio.StreamReader, head_request: bool) -> tuple[bytes, bool]:
    """One response: the head, then Content-Length bytes of body (or up to EOF without one)."""
    raw = b""
    try:
        while b"\r\n\r\n" not in raw:
            chunk = await reader.read(65536)
            if not chunk:
                return raw, False
            raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        length = None
        for line in head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == b"content-length":
                length = int(value.strip())
        status = head.split(b" ", 2)[1] if b" " in head else b""
        if head_request or status in (b"204", b"304"):
            length = 0
        while length is None or len(body) < length:
            chunk = await reader.read(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body, False
    except ConnectionError:
        return raw, True


async def send(port: int, data: bytes | list[bytes], *, source: str = ATTACKER, timeout: float = 5.0,
               pause: float = 0.0) -> Reply:
    """Write ``data`` (chunks ``pause`` seconds apart) while reading the response."""
    chunks = [data] if isinstance(data, bytes) else data
    request = b"".join(chunks)
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))

    async def write() -> None:
        try:
            for chunk in chunks:
                writer.write(chunk)
                await writer.drain()
                if pause:
                    await asyncio.sleep(pause)
        except ConnectionError:
            pass

    writing = asyncio.create_task(write())
    try:
        raw, reset = await asyncio.wait_for(_read_response(reader, request.startswith(b"HEAD ")), timeout)
    except TimeoutError:
        raise AssertionError(f"no answer within {timeout} s to {request[:120]!r}") from None
    finally:
        writing.cancel()
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1]) if head else 0
    except (IndexError, ValueError):
        status = -1
    return Reply(status, head, body, time.monotonic() - started, request, reset)


def get(target: bytes | str, ua: str | None = ANNA_UA, *, method: bytes = b"GET", extra: bytes = b"",
        version: bytes = b"HTTP/1.1") -> bytes:
    target = target.encode("latin-1") if isinstance(target, str) else target
    head = method + b" " + target + b" " + version + b"\r\nHost: prov.example.net\r\n"
    if ua is not None:
        head += b"User-Agent: " + ua.encode("latin-1") + b"\r\n"
    return head + extra + b"Connection: close\r\n\r\n"


async def all_secrets(server) -> dict[str, str]:
    """The fixed secrets above plus every SIP password the database holds."""
    async with server.sessions() as session:
        stored = (await session.execute(select(Line.password))).scalars().all()
    return {**SECRETS, **{f"line-{i}": p for i, p in enumerate(stored) if p}}


def leaks(reply: Reply, secrets: dict[str, str], allowed: tuple[str, ...] = ()) -> list[str]:
    raw = reply.head + b"\r\n\r\n" + reply.body
    return [name for name, secret in secrets.items()
            if name not in allowed and secret.encode() in raw]


def assert_no_leak(replies: list[Reply], secrets: dict[str, str]) -> None:
    leaked = [(r.request[:100], leaks(r, secrets)) for r in replies if leaks(r, secrets)]
    assert not leaked, f"secrets in attacker responses: {leaked}"


def yealink(mac: str = ANNA_MAC) -> Phone:
    colon = ":".join(mac[i:i + 2] for i in range(0, 12, 2)).upper()
    return Phone(YealinkProfile(model="T46S", mac=colon, firmware="66.86.0.15"))


async def set_first_contact(server, macs: tuple[str, ...], until: datetime | None) -> None:
    """Open (``until``) or close (None) the first-contact window of these devices."""
    async with server.sessions() as session:
        for device in (await session.execute(select(Device).where(Device.mac.in_(macs)))).scalars():
            device.first_contact_until = until
        await session.commit()


async def boot_anna(server) -> None:
    state = await yealink().boot_http(f"http://127.0.0.1:{server.http_port}/")
    assert state.accounts[1].registered and state.accounts[1].password == SECRETS["anna"], state.errors


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------

@pytest.fixture
async def target(make_server, tmp_path):
    """Two tenants, a static root with a firmware file, a sub-folder and a symlink out of the root,
    and a canary file beside the root that must never be served."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "fw.rom").write_bytes(b"FIRMWARE")
    (root / "sub" / "ring.wav").write_bytes(b"RIFF")
    (tmp_path / "canary.txt").write_bytes(CANARY)
    (root / "escape.cfg").symlink_to(tmp_path / "canary.txt")
    (root / "sub" / "up").symlink_to(tmp_path)
    server = await make_server(tftp_root=str(root), guard_refusal_burst=100_000, max_upload_bytes=4096)
    await import_org(server, ORG_A)
    await import_org(server, ORG_B)
    # Bertil's, Cecilia's and the other tenant's phones were bound (and booted) long ago: without
    # their credentials nobody gets their files. Anna's phone is new: its first boots need none.
    await set_first_contact(server, (BERTIL_MAC, CECILIA_MAC, OTHER_MAC), None)
    return server


def _check_root_serves(reply: Reply) -> None:
    assert reply.status == 200 and reply.body == b"FIRMWARE", reply


# --------------------------------------------------------------------------------------------
# Path traversal, in every encoding
# --------------------------------------------------------------------------------------------

TRAVERSALS = [
    "/../canary.txt", "/../../../../../../etc/passwd", "/sub/../../canary.txt", "/sub/up/canary.txt",
    "/escape.cfg",                                                     # symlink out of the root
    # percent
    "/%2e%2e/canary.txt", "/%2E%2E/canary.txt", "/.%2e/canary.txt", "/%2e./canary.txt", "/..%2fcanary.txt",
    "/..%2Fcanary.txt", "/%2e%2e%2fcanary.txt", "/sub/..%2f..%2fcanary.txt", "/%2fetc%2fpasswd",
    # double (and triple) percent
    "/%252e%252e/canary.txt", "/%252e%252e%252fcanary.txt", "/..%252fcanary.txt", "/%25252e%25252e/canary.txt",
    # overlong and look-alike UTF-8
    "/%c0%ae%c0%ae/canary.txt", "/%c0%ae%c0%ae%c0%afcanary.txt", "/%e0%80%ae%e0%80%ae/canary.txt",
    "/%f0%80%80%ae%f0%80%80%ae/canary.txt", "/%c0%2e%c0%2e/canary.txt", "/..%c0%afcanary.txt",
    "/..%c1%9ccanary.txt", "/%ef%bc%8e%ef%bc%8e/canary.txt", "/%uff0e%uff0e/canary.txt", "/%u002e%u002e/canary.txt",
    # backslashes
    "/..\\canary.txt", "/..%5ccanary.txt", "/..%5Ccanary.txt", "/sub\\..\\..\\canary.txt", "/%5c..%5c..%5ccanary.txt",
    # NUL and other control bytes, escaped
    "/fw.rom%00../../canary.txt", "/..%00/canary.txt", "/%00/../canary.txt", "/fw.rom%00", "/..%0a/canary.txt",
    "/..%0d%0a/canary.txt", "/..%09/canary.txt", "/%20../canary.txt", "/..%20/canary.txt",
    # ;params (Tomcat-style path parameters)
    "/..;/canary.txt", "/sub;/../../canary.txt", "/fw.rom;/../../canary.txt", "/.;/../canary.txt",
    "/sub;x=1/ring.wav;/../../../canary.txt",
    # absolute-form request targets
    "http://x/../canary.txt", "http://x/../../etc/passwd", "http://x/%2e%2e/canary.txt",
    "http://127.0.0.1/sub/../../canary.txt", "https://x/../canary.txt", "file:///etc/passwd",
    # dot games and slashes
    "//../canary.txt", "///..//..//canary.txt", "/./../canary.txt", "/sub/./../../canary.txt", "/....//canary.txt",
    "/..../canary.txt", "/.../canary.txt", "//etc/passwd", "/etc/passwd", "/proc/self/environ",
    "/../var/deskprov0.sqlite3", "/%2e%2e/var/deskprov0.sqlite3", "/../canary.txt?x=/fw.rom", "/../canary.txt#fw.rom",
    # another device's file through traversal, with Anna's own valid User-Agent
    f"/sub/../{BERTIL_MAC}.cfg", f"/%2e%2e/{BERTIL_MAC}.cfg", f"/fw.rom/../{BERTIL_MAC}.cfg",
    f"http://x/{BERTIL_MAC}.cfg", f"/%38%30%35ec0aabb02.cfg", f"/{BERTIL_MAC}%2ecfg", f"//{BERTIL_MAC}.cfg",
    f"/{BERTIL_MAC}.cfg;{ANNA_MAC}.cfg", f"/{ANNA_MAC}.cfg/../{BERTIL_MAC}.cfg", f"/{BERTIL_MAC}.cfg%00{ANNA_MAC}.cfg",
]


@pytest.mark.parametrize("ua", [ANNA_UA, None], ids=["own-ua", "no-ua"])
async def test_traversal_in_every_encoding(target, ua):
    port = target.http_port
    _check_root_serves(await send(port, get("/fw.rom", ua)))  # the root itself is served: the 404s mean something
    secrets = await all_secrets(target)
    replies = []
    for path in TRAVERSALS:
        if ua is None and BERTIL_MAC[4:] in path:
            continue  # anonymous requests for a known MAC: see test_anonymous_request_for_a_known_mac
        reply = await send(port, get(path, ua))
        replies.append(reply)
        assert reply.status in (400, 404), (path, reply.status, reply.body[:200])
        assert CANARY not in reply.body and b"root:" not in reply.body and b"SQLite format" not in reply.body, path
    assert_no_leak(replies, secrets)
    _check_root_serves(await send(port, get("/fw.rom", ua)))


async def test_traversal_refusals_are_logged_and_count_towards_a_ban(make_server, tmp_path, caplog):
    caplog.set_level(logging.INFO, "deskprov.serve")
    server = await make_server(guard_refusal_burst=10)
    statuses = [(await send(server.http_port, get(p))).status for p in TRAVERSALS[:20]]
    assert statuses[:9].count(404) + statuses[:9].count(400) == 9
    assert 429 in statuses, statuses  # hostile paths are suspicious refusals: the source is banned
    assert any("illegal path" in r.getMessage() and ATTACKER in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------------------------
# Oversize and malformed request heads: 400/413/414/431, never 500, never a hang
# --------------------------------------------------------------------------------------------

HEAD = b"GET /" + ANNA_MAC.encode() + b".cfg HTTP/1.1\r\nHost: x\r\n"
OVERSIZE = {
    "request-line-5k": b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "request-line-1M": b"GET /" + b"a" * 1_000_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "query-100k": b"GET /fw.rom?" + b"a=b&" * 25_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "header-value-5k": HEAD + b"X-A: " + b"a" * 5000 + b"\r\n\r\n",
    "user-agent-64k": HEAD + b"User-Agent: Yealink " + b"a" * 65536 + b"\r\n\r\n",
    "header-name-5k": HEAD + b"X" * 5000 + b": a\r\n\r\n",
    "200-headers": HEAD + b"".join(b"X-%d: a\r\n" % i for i in range(200)) + b"\r\n",
    "20000-headers": HEAD + b"".join(b"X-%d: a\r\n" % i for i in range(20_000)) + b"\r\n",
    "4MB-of-headers": HEAD + (b"X-A: " + b"a" * 4000 + b"\r\n") * 1000 + b"\r\n",
    "obs-fold": HEAD + b"X-A: a\r\n folded\r\n\r\n",
    "no-colon": HEAD + b"this is not a header\r\n\r\n",
    "space-before-colon": HEAD + b"User-Agent : x\r\n\r\n",
    "bare-lf": b"GET /fw.rom HTTP/1.1\nHost: x\n\n",
    "nul-in-target": b"GET /fw.rom\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    "space-in-target": b"GET /fw rom HTTP/1.1\r\nHost: x\r\n\r\n",
    "lowercase-method": b"get /fw.rom HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad-version": b"GET /fw.rom HTTP/9.9\r\nHost: x\r\n\r\n",
    "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64) + b"\r\n\r\n",  # a TLS hello
    "two-content-lengths": b"PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "cl-and-te": b"PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "negative-cl": b"PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "huge-cl-number": b"PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
    "bad-chunk": b"PUT /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
    "te-gzip-only": b"PUT /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    "two-user-agents": HEAD + b"User-Agent: " + ANNA_UA.encode() + b"\r\nUser-Agent: " + BERTIL_UA.encode() + b"\r\n\r\n",
    "two-hosts": b"GET /fw.rom HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
}


@pytest.mark.parametrize("name", list(OVERSIZE))
async def test_oversize_and_malformed_heads(target, name):
    reply = await send(target.http_port, OVERSIZE[name], timeout=5)
    # A request of megabytes may be cut off by a reset after the 400 was sent: refused all the same.
    assert reply.status in (400, 413, 414, 431) or (reply.status == 0 and reply.reset and len(reply.request) > 10**6), \
        (name, reply.status, reply.head[:200])
    assert reply.elapsed < 3, reply.elapsed
    assert_no_leak([reply], await all_secrets(target))
    _check_root_serves(await send(target.http_port, get("/fw.rom"), source=PHONE_IP))


# --------------------------------------------------------------------------------------------
# Slowloris: partial requests are timed out; everyone else is served meanwhile
# --------------------------------------------------------------------------------------------

async def _hold(port: int, mode: str, closed: dict, started: float) -> None:
    """One slow connection; records when the server closed it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(ATTACKER, 0))
    try:
        if mode == "head":
            writer.write(b"GET /" + BERTIL_MAC.encode() + b".cfg HTTP/1.1\r\nHost: x\r\n")
        elif mode == "byte":
            writer.write(b"G")
        while True:  # trickle a header line every 0.3 s until the server hangs up
            try:
                data = await asyncio.wait_for(reader.read(1024), 0.3)
            except TimeoutError:
                if mode != "silent":
                    writer.write(b"X-Slow: 1\r\n")
                    try:
                        await writer.drain()
                    except ConnectionError:
                        break
                continue
            if not data:
                break
    except ConnectionError:
        pass
    finally:
        closed[(mode, id(writer))] = time.monotonic() - started
        writer.close()


async def test_slowloris_is_cut_off_and_phones_are_served(make_server, monkeypatch):
    monkeypatch.setattr(phone_http, "REQUEST_TIMEOUT", 1.5)
    server = await make_server(guard_refusal_burst=100_000)
    await import_org(server, ORG_A)
    port, closed, started = server.http_port, {}, time.monotonic()
    holders = [asyncio.create_task(_hold(port, mode, closed, started))
               for mode in ("head", "byte", "silent") for _ in range(100)]
    await asyncio.sleep(0.5)
    for _ in range(3):  # the phone boots, again and again, while 300 connections dangle
        await boot_anna(server)
    await asyncio.wait_for(asyncio.gather(*holders), 10)
    assert len(closed) == 300
    # each was cut within the request timeout (+ the keep-alive timer's granularity and load)
    assert max(closed.values()) < 1.5 + 3.0, sorted(closed.values())[-5:]
    await boot_anna(server)


async def test_malformed_requests_are_logged_as_one_info_line_not_an_error(target, caplog):
    """Garbage from the internet is routine: no ERROR with a traceback for each malformed request
    (a handler's own failure would still be one)."""
    caplog.set_level(logging.INFO, "aiohttp.server")
    for garbage in (b"GET /x.cfg HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
                    b"GET /x.cfg HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 9000 + b"\r\n\r\n"):
        for port in (target.http_port, target.api_port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(garbage)
            assert (await asyncio.wait_for(reader.read(), 5)).split(b"\r\n")[0].endswith((b" 400 Bad Request",
                                                                                    b" 431 Request Header Fields Too Large"))
            writer.close()
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(records) == 4 and all(r.levelname == "INFO" and not r.exc_info for r in records), records
    assert all("Error handling request" in r.getMessage() and ": 4" in r.getMessage() and "\n" not in r.getMessage()
               for r in records)


async def test_admin_listener_cuts_off_a_request_head_that_never_ends(make_server, monkeypatch):
    """The admin listener (and with it the users' self-service pages) is not held open either."""
    monkeypatch.setattr(server_module, "ADMIN_IDLE_TIMEOUT", 1.0)
    server = await make_server()
    closed, started = {}, time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(_hold(server.api_port, mode, closed, started)
                                            for mode in ("head", "silent"))), 10)
    assert len(closed) == 2 and max(closed.values()) < 1.0 + 3.0, closed
    reader, writer = await asyncio.open_connection("127.0.0.1", server.api_port)  # others are still served
    writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_slow_upload_body_times_out_and_stores_nothing(target, monkeypatch):
    monkeypatch.setattr(phone_http, "BODY_TIMEOUT", 1.0)
    await boot_anna(target)  # uploads are accepted from the address the phone provisions from
    head = (f"PUT /{ANNA_MAC}-local.cfg HTTP/1.1\r\nHost: x\r\nUser-Agent: {ANNA_UA}\r\n"
            f"Content-Length: 1000\r\n\r\n").encode()
    reply = await send(target.http_port, [head, b"account.1.sip_server.1.address = evil\n"] + [b"#" * 10] * 30,
                       source=PHONE_IP, pause=0.2, timeout=15)
    assert reply.status == 408, reply
    assert uploads_of(target, ANNA_MAC) == {}


# --------------------------------------------------------------------------------------------
# Uploads (PUT): size limits, encodings, nothing partial on disk
# --------------------------------------------------------------------------------------------

def uploads_of(server, mac: str) -> dict[str, bytes]:
    """Every file under the device's upload folder, temporary ones included."""
    folder = server.settings.data_dir / "uploads" / mac
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.is_dir() else {}


def put(path: str, body_head: bytes, body: bytes = b"", ua: str | None = ANNA_UA) -> bytes:
    head = f"PUT {path} HTTP/1.1\r\nHost: x\r\n".encode()
    if ua:
        head += f"User-Agent: {ua}\r\n".encode()
    return head + body_head + b"Connection: close\r\n\r\n" + body


async def test_upload_limits_store_nothing_partial(target):
    port, path = target.http_port, f"/{ANNA_MAC}-local.cfg"
    await boot_anna(target)
    good = b"# local settings\nlang.gui = Svenska\n"
    reply = await send(port, put(path, b"Content-Length: %d\r\n" % len(good), good), source=PHONE_IP)
    assert reply.status == 204, reply
    assert uploads_of(target, ANNA_MAC) == {f"{ANNA_MAC}-local.cfg": good}

    chunk = b"1000\r\n" + b"y" * 4096 + b"\r\n"
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024))
    hostile = {
        "content-length-over": (b"Content-Length: 5000\r\n", b"x" * 5000, {413}),
        "content-length-declared-only": (b"Content-Length: 1000000000000\r\n", b"", {413}),
        "chunked-over": (b"Transfer-Encoding: chunked\r\n", chunk * 3 + b"0\r\n\r\n", {413}),
        "chunked-forever": (b"Transfer-Encoding: chunked\r\n", chunk * 400, {413}),
        "gzip-bomb": (b"Content-Encoding: gzip\r\nContent-Length: %d\r\n" % len(bomb), bomb, {413}),
        "gzip-garbage": (b"Content-Encoding: gzip\r\nContent-Length: 10\r\n", b"0123456789", {400}),
        "deflate-garbage": (b"Content-Encoding: deflate\r\nContent-Length: 10\r\n", b"0123456789", {400}),
        "unknown-encoding": (b"Content-Encoding: zstd-bogus\r\nContent-Length: 4\r\n", b"abcd", {204, 400, 415}),
    }
    for name, (headers, body, expected) in hostile.items():
        reply = await send(port, put(path, headers, body), source=PHONE_IP, timeout=10)
        assert reply.status in expected, (name, reply.status, reply.body[:200])
        files = uploads_of(target, ANNA_MAC)
        assert set(files) == {f"{ANNA_MAC}-local.cfg"}, (name, files)   # no temporary file left behind
        if reply.status != 204:
            assert files[f"{ANNA_MAC}-local.cfg"] == good, name         # the previous version is intact
    # the server still serves, uploads included
    reply = await send(port, get(path), source=PHONE_IP)
    assert reply.status == 200


async def test_uploads_only_from_the_phone_and_never_for_another_device(target):
    port = target.http_port
    await boot_anna(target)
    evil = b"account.1.sip_server.1.address = sip.evil.example\n"
    attempts = [
        # another address claiming to be Anna's phone, even through X-Forwarded-For (no trusted proxy)
        (ATTACKER, f"/{ANNA_MAC}-local.cfg", ANNA_UA, b""),
        (ATTACKER, f"/{ANNA_MAC}-local.cfg", None, b"X-Forwarded-For: 127.0.0.1\r\n"),
        (ATTACKER, f"/{ANNA_MAC}-local.cfg", ANNA_UA, b"Forwarded: for=127.0.0.1\r\n"),
        # Anna's own phone writing Bertil's files
        (PHONE_IP, f"/{BERTIL_MAC}-local.cfg", ANNA_UA, b""),
        (PHONE_IP, f"/{BERTIL_MAC}-local.cfg", None, b""),
        (PHONE_IP, f"/{CECILIA_MAC}-phone.cfg", ANNA_UA, b""),
        (PHONE_IP, f"/{CECILIA_MAC}-phone.cfg", "FileTransport PolycomVVX-VVX_450-UA/6.4.0.1234", b""),
        # files no device uploads, and traversal
        (PHONE_IP, f"/{ANNA_MAC}.cfg", ANNA_UA, b""),
        (PHONE_IP, "/fw.rom", ANNA_UA, b""),
        (PHONE_IP, f"/../{ANNA_MAC}-local.cfg", ANNA_UA, b""),
        (PHONE_IP, f"/%2e%2e/uploads/{ANNA_MAC}/{ANNA_MAC}-local.cfg", ANNA_UA, b""),
    ]
    for source, path, ua, extra in attempts:
        reply = await send(port, put(path, extra + b"Content-Length: %d\r\n" % len(evil), evil, ua), source=source)
        assert reply.status in (400, 404), (source, path, reply.status)
    uploads = target.settings.data_dir / "uploads"
    assert not uploads.exists() or not any(p.is_file() for p in uploads.rglob("*"))
    assert (await send(port, get("/fw.rom"), source=PHONE_IP)).body == b"FIRMWARE"


async def test_put_enumeration_is_banned(make_server):
    """Refused PUTs count like refused GETs: PUT is no way around the MAC-guessing ban."""
    server = await make_server(guard_refusal_burst=20)
    await import_org(server, ORG_A)
    statuses = []
    for i in range(60):
        mac = f"805ec0{i:06x}"
        ua = f"Yealink SIP-T46S 66.86.0.15 {':'.join(mac[j:j + 2] for j in range(0, 12, 2))}"
        statuses.append((await send(server.http_port, put(f"/{mac}-local.cfg", b"Content-Length: 2\r\n", b"x\n",
                                                           ua))).status)
    assert statuses.count(429) >= 35, statuses
    assert server.provisioner.guard.counters["bans"] == 1
    await boot_anna(server)  # another address is not affected


# --------------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["POST", "DELETE", "PATCH", "TRACE", "OPTIONS", "PROPFIND", "PROPPATCH", "MKCOL",
                                    "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "PURGE", "LINK", "REPORT"])
async def test_methods_other_than_get_head_put_are_refused(target, method):
    for path in (f"/{ANNA_MAC}.cfg", "/fw.rom", f"/{ANNA_MAC}-local.cfg"):
        reply = await send(target.http_port, get(path, method=method.encode(),
                                                 extra=b"Content-Length: 4\r\n" if method != "TRACE" else b"")
                           + (b"abcd" if method != "TRACE" else b""))
        assert reply.status == 405, (method, path, reply.status)
        assert set(map(str.strip, (reply.header("Allow") or "").split(","))) == {"GET", "HEAD", "PUT"}
        assert not leaks(reply, await all_secrets(target))
    assert uploads_of(target, ANNA_MAC) == {}


@pytest.mark.parametrize("request_bytes", [
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"CONNECT prov.example.net:443 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"BREW /pot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /fw.rom HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
], ids=["options-star", "connect-ssh", "connect-443", "unknown-method", "websocket", "h2-preface"])
async def test_odd_request_forms_never_succeed(target, request_bytes):
    reply = await send(target.http_port, request_bytes)
    assert reply.status in (400, 404, 405) or (reply.status == 200 and reply.body == b"FIRMWARE"), reply
    assert not leaks(reply, await all_secrets(target))


async def test_head_carries_no_body(target):
    await boot_anna(target)
    reply = await send(target.http_port, get(f"/{ANNA_MAC}.cfg", method=b"HEAD"), source=PHONE_IP)
    assert reply.status == 200 and reply.body == b""


# --------------------------------------------------------------------------------------------
# Header injection through the User-Agent
# --------------------------------------------------------------------------------------------

INJECTED_UAS = [
    ANNA_UA.encode() + b"\r\nX-Injected: 1",
    ANNA_UA.encode() + b"\rX-Injected: 1",
    ANNA_UA.encode() + b"\nX-Injected: 1",
    ANNA_UA.encode() + b"\x00X-Injected: 1",
    b"Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:02\r\n\r\nGET /" + ANNA_MAC.encode() + b".cfg HTTP/1.1",
]


@pytest.mark.parametrize("ua", INJECTED_UAS, ids=["crlf", "cr", "lf", "nul", "request-smuggling"])
async def test_raw_control_characters_in_user_agent_are_refused(target, ua):
    request = b"GET /" + BERTIL_MAC.encode() + b".cfg HTTP/1.1\r\nHost: x\r\nUser-Agent: " + ua + \
        b"\r\nConnection: close\r\n\r\n"
    reply = await send(target.http_port, request)
    # CRLF simply ends the header (what follows is another header, or a second request): Anna's UA
    # then asks for Bertil's file and is refused; a bare CR, LF or NUL makes the head malformed.
    assert reply.status in ((400, 404) if b"\r\n" in ua else (400,)), reply
    assert b"X-Injected" not in reply.head
    assert not leaks(reply, await all_secrets(target))


@pytest.mark.parametrize("ua", [
    ANNA_UA + " %0d%0aX-Injected: 1",                      # escaped CRLF is only text
    "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01 80:5e:c0:aa:bb:02",
    "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01\tX-Injected: 1",
    "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01 " + "é" * 10,
    "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01 ${jndi:ldap://x/a}",
    "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01 {{7*7}} <script>",
    "yealink SIP-T46S 66.86.0.15 80:5E:C0:AA:BB:01",
])
async def test_user_agent_tricks_get_no_other_devices_file(target, ua, caplog):
    caplog.set_level(logging.INFO)
    secrets = await all_secrets(target)
    for path in (f"/{BERTIL_MAC}.cfg", f"/{BERTIL_MAC}.boot", f"/{OTHER_MAC}.cfg", f"/{CECILIA_MAC}.cfg"):
        reply = await send(target.http_port, get(path, ua))
        # 404: the UA names Anna; 401: the UA names no device and the file's device wants its credentials
        assert reply.status in (401, 404), (ua, path, reply.status)
        assert b"X-Injected" not in reply.head
        assert not leaks(reply, secrets), (ua, path)
    # the log shows what arrived escaped: no forged log lines
    assert not any("\nX-Injected" in r.getMessage() or "\rX-Injected" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------------------------
# Another device's files, asked for with a valid User-Agent of one's own
# --------------------------------------------------------------------------------------------

OTHER_FILES = [f"/{BERTIL_MAC}.cfg", f"/{BERTIL_MAC}.boot", f"/{BERTIL_MAC}-local.cfg", f"/{BERTIL_MAC}-contact.xml",
               f"/{BERTIL_MAC}-phonebook.xml", f"/{BERTIL_MAC.upper()}.cfg", f"/{OTHER_MAC}.cfg", f"/{OTHER_MAC}.boot",
               f"/{CECILIA_MAC}.cfg", f"/{CECILIA_MAC}-deskprov.cfg", f"/{CECILIA_MAC}-directory.xml",
               f"/{CECILIA_MAC}-phone.cfg", f"/sub/{BERTIL_MAC}.cfg", f"/{BERTIL_MAC}.cfg?mac={ANNA_MAC}",
               f"/{BERTIL_MAC}.cfg/", f"/{ANNA_MAC}.cfg/../{BERTIL_MAC}.cfg"]


@pytest.mark.parametrize("ua", [ANNA_UA, "Yealink SIP-T46S 66.86.0.15 805ec0aabb01", "Fanvil X4 2.4.5 805ec0aabb01",
                                "FileTransport PolycomVVX-VVX_450-UA/6.4.0.1234 Type/Application"],
                         ids=["yealink", "yealink-bare-mac", "fanvil", "poly-no-mac"])
async def test_another_devices_file_with_a_valid_user_agent_of_ones_own(target, ua):
    await boot_anna(target)  # Anna's files are cached: they must still go only to Anna
    secrets = await all_secrets(target)
    replies = []
    for path in OTHER_FILES:
        if ua.startswith("FileTransport") and CECILIA_MAC in path:
            continue  # a Poly UA names no MAC: that is the anonymous case (xfail test below)
        reply = await send(target.http_port, get(path, ua))
        replies.append(reply)
        assert reply.status in (400, 404), (path, reply.status)
    assert_no_leak(replies, secrets)


async def test_cross_tenant_device_files_never_carry_the_other_tenants_secrets(target):
    """Each tenant's phone gets its own secrets only (no key target, phonebook or admin password of
    the other tenant ends up in its files)."""
    secrets = await all_secrets(target)
    await boot_anna(target)
    anna = await send(target.http_port, get(f"/{ANNA_MAC}.cfg"), source=PHONE_IP)
    assert anna.status == 200
    assert set(leaks(anna, secrets)) <= {"anna", "admin-a"} | {k for k, v in secrets.items() if v == SECRETS["anna"]}
    other_ua = "Yealink SIP-T46S 66.86.0.15 80:5e:c0:cc:dd:01"
    await set_first_contact(target, (OTHER_MAC,), datetime.now(timezone.utc) + timedelta(minutes=5))  # rebound
    other = await send(target.http_port, get(f"/{OTHER_MAC}.cfg", other_ua), source="127.0.0.3")
    assert other.status == 200
    assert set(leaks(other, secrets)) <= {"other-tenant", "admin-b"} | \
        {k for k, v in secrets.items() if v == SECRETS["other-tenant"]}


@pytest.mark.parametrize("request_bytes", [
    get(f"/{BERTIL_MAC}.cfg", None),
    get(f"/{BERTIL_MAC}.cfg", None, version=b"HTTP/1.0"),
    get(f"/{BERTIL_MAC}.cfg", "Yealink SIP-T46S 66.86.0.15"),
    get(f"/{CECILIA_MAC}-deskprov.cfg", "FileTransport PolycomVVX-VVX_450-UA/6.4.0.1234 Type/Application"),
    get(f"/{OTHER_MAC}.cfg", "curl/8.0"),
    # Anna's real UA with junk glued to its MAC: the MAC no longer parses, the UA counts as MAC-less
    get(f"/{BERTIL_MAC}.cfg", ANNA_UA + "%0d%0aX-Injected: 1"),
    get(f"/{BERTIL_MAC}.cfg", ANNA_UA + "é"),
], ids=["no-ua", "http-1.0", "yealink-without-mac", "poly-ua", "curl", "ua-mac-with-junk", "ua-mac-with-e-acute"])
async def test_anonymous_request_for_a_known_mac_gets_no_secret(target, request_bytes):
    """Outside its first-contact window a device's file needs the device's credentials: a
    request without them is challenged (401) and gets nothing."""
    reply = await send(target.http_port, request_bytes)
    assert reply.status == 401 and (reply.header("WWW-Authenticate") or "").startswith("Digest "), reply.head
    assert not leaks(reply, await all_secrets(target)), reply.body[:300]


# --------------------------------------------------------------------------------------------
# All of it at once, while the legitimate phone boots
# --------------------------------------------------------------------------------------------

async def test_attack_campaign_while_a_phone_boots(make_server, monkeypatch, tmp_path):
    """Default enumeration defence: the attacker is banned early, nothing leaks, nothing is a 500,
    and Anna's phone boots again and again on another address meanwhile."""
    monkeypatch.setattr(phone_http, "REQUEST_TIMEOUT", 2.0)
    server = await make_server(max_upload_bytes=4096)
    await import_org(server, ORG_A)
    await import_org(server, ORG_B)
    secrets = await all_secrets(server)
    port = server.http_port
    requests = [get(p, ua) for p in TRAVERSALS for ua in (ANNA_UA, BERTIL_UA)] \
        + [get(p, ANNA_UA) for p in OTHER_FILES] + list(OVERSIZE.values()) \
        + [get(f"/{ANNA_MAC}.cfg", method=m.encode()) for m in ("POST", "DELETE", "TRACE", "PROPFIND")] \
        + [put(f"/{ANNA_MAC}-local.cfg", b"Content-Length: 5000\r\n", b"x" * 5000),
           put(f"/{ANNA_MAC}-local.cfg", b"Content-Length: 4\r\n", b"evil")] \
        + [get(f"/805ec0{i:06x}.cfg", f"Yealink SIP-T46S 66.86.0.15 80:5e:c0:{i >> 16:02x}:{i >> 8 & 255:02x}:"
               f"{i & 255:02x}") for i in range(16, 600)]
    replies: list[Reply] = []
    slow_closed: dict = {}
    semaphore = asyncio.Semaphore(40)

    async def one(data: bytes) -> None:
        async with semaphore:
            replies.append(await send(port, data, timeout=10))

    started = time.monotonic()
    attack = asyncio.gather(*(one(r) for r in requests),
                            *(_hold(port, "head", slow_closed, started) for _ in range(50)))
    boots = []
    for _ in range(5):
        state = await yealink().boot_http(f"http://127.0.0.1:{port}/")
        boots.append(state)
        await asyncio.sleep(0.1)
    await asyncio.wait_for(attack, 60)
    for state in boots:
        assert state.accounts[1].registered and state.accounts[1].password == SECRETS["anna"], state.errors
    assert len(replies) == len(requests)
    assert not [r for r in replies if r.status >= 500 and r.status != 503], \
        [(r.request[:80], r.status) for r in replies if r.status >= 500]
    assert_no_leak(replies, secrets)
    assert sum(r.status == 429 for r in replies) > len(requests) // 2  # banned early
    assert not [r for r in replies if r.status == 200 and r.request.startswith(b"GET /805ec0")
                and b"80:5e:c0:aa:bb:01" not in r.request]
    assert len(slow_closed) == 50
    assert uploads_of(server, ANNA_MAC) == {}
    await boot_anna(server)
