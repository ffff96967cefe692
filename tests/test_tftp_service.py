"""Tests for provisioning.tftp.TftpService: real UDP on loopback, raw TFTP client below."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
import struct
import sys
import threading
import time
import types
from concurrent.futures import Future
from dataclasses import dataclass

import pytest
import tftpy

from provisioning import tftp as tftp_mod
from provisioning.tftp import TftpService, sanitize_filename, RejectedName

SMALL = os.urandom(5_000)
BIG = os.urandom(70_000)
FILES = {"small.cfg": SMALL, "big.bin": BIG, "exact.bin": b"e" * 1024, "empty.txt": b""}

# --------------------------------------------------------------------------------------------
# A tiny raw TFTP client
# --------------------------------------------------------------------------------------------


@dataclass
class Reply:
    data: bytes | None = None
    oack: dict[str, str] | None = None
    error: tuple[int, bytes] | None = None
    packets: int = 0


def _enc(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("ascii")


def request(opcode: int, name: str | bytes, options: dict | None = None, mode=b"octet") -> bytes:
    pkt = struct.pack("!H", opcode) + _enc(name) + b"\0" + _enc(mode) + b"\0"
    for k, v in (options or {}).items():
        pkt += _enc(k) + b"\0" + _enc(v) + b"\0"
    return pkt


def ack(block: int) -> bytes:
    return struct.pack("!HH", 4, block & 0xFFFF)


def parse_options(raw: bytes) -> dict[str, str]:
    parts = raw.split(b"\0")[:-1]
    return {parts[i].decode(): parts[i + 1].decode() for i in range(0, len(parts), 2)}


def parse_error(pkt: bytes) -> tuple[int, bytes]:
    assert pkt[:2] == b"\0\5", pkt
    return struct.unpack("!H", pkt[2:4])[0], pkt[4:].rstrip(b"\0")


def udp(src: str = "127.0.0.1", timeout: float = 2.0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    s.settimeout(timeout)
    return s


def tftp_get(port: int, name: str | bytes, options: dict | None = None, *,
             src: str = "127.0.0.1", timeout: float = 2.0) -> Reply:
    """RRQ, ACK every DATA (and the OACK), return the file, the OACK options or the ERROR."""
    with udp(src, timeout) as s:
        s.sendto(request(1, name, options), ("127.0.0.1", port))
        reply, chunks, blksize, expected, peer = Reply(), [], 512, 1, None
        while True:
            pkt, addr = s.recvfrom(70_000)
            peer = peer or addr
            if addr != peer:
                continue
            reply.packets += 1
            opcode = struct.unpack("!H", pkt[:2])[0]
            if opcode == 5:
                reply.error = parse_error(pkt)
                return reply
            if opcode == 6:
                reply.oack = parse_options(pkt[2:])
                blksize = int(reply.oack.get("blksize", 512))
                s.sendto(ack(0), peer)
                continue
            assert opcode == 3, pkt[:4]
            block = struct.unpack("!H", pkt[2:4])[0]
            s.sendto(ack(block), peer)
            if block == expected & 0xFFFF:
                chunks.append(pkt[4:])
                expected += 1
                if len(pkt) - 4 < blksize:
                    reply.data = b"".join(chunks)
                    return reply


def send_raw(port: int, payload: bytes, *, src: str = "127.0.0.1",
             timeout: float = 0.5) -> tuple[bytes, tuple[str, int]] | None:
    """Send one arbitrary datagram to the server; return the first reply, or None on timeout."""
    with udp(src, timeout) as s:
        s.sendto(payload, ("127.0.0.1", port))
        try:
            return s.recvfrom(70_000)
        except TimeoutError:
            return None


def assert_healthy(svc: TftpService) -> None:
    assert tftp_get(svc.port, "small.cfg").data == SMALL
    assert svc.restarts == 0
    assert svc._thread is not None and svc._thread.is_alive()


def wait_for(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


class Resolver:
    def __init__(self, files: dict[str, bytes]):
        self.files, self.calls = files, []

    def __call__(self, name: str, ip: str) -> bytes | None:
        self.calls.append((name, ip))
        if name == "boom":
            raise RuntimeError("resolver bug")
        if name == "not-bytes":
            return "a str"  # type: ignore[return-value]
        return self.files.get(name)


@pytest.fixture
def resolver():
    return Resolver(FILES)


@pytest.fixture
async def svc(resolver):
    service = TftpService("127.0.0.1", 0, resolver, timeout=0.3, retries=3)
    await service.start()
    yield service
    await service.stop()


def _socket_fds() -> set[str]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                out.add(fd)
        except OSError:
            pass
    return out


# --------------------------------------------------------------------------------------------
# Shim / compatibility
# --------------------------------------------------------------------------------------------


def test_tftpy_pin_and_internals():
    assert tftpy.__version__ == tftp_mod.TFTPY_VERSION, (
        "tftpy changed: re-validate provisioning/tftp.py's shim against the new release")
    tftp_mod.check_tftpy_compat()  # raises RuntimeError if the internals moved


async def test_shim_is_installed(svc):
    server_mod = sys.modules["tftpy.TftpServer"]
    assert server_mod.TftpContextServer is tftp_mod.GuardedContext
    assert getattr(server_mod.select, "deskprov_poll", False)
    assert logging.getLogger("tftpy").getEffectiveLevel() >= logging.WARNING


def test_compat_check_fails_loudly(monkeypatch):
    server_mod = sys.modules["tftpy.TftpServer"]
    monkeypatch.delattr(server_mod, "TftpContextServer")
    with pytest.raises(RuntimeError, match="incompatible"):
        tftp_mod.check_tftpy_compat()


@pytest.mark.parametrize("raw, expected", [
    ("SEP001122334455.cnf.xml", "SEP001122334455.cnf.xml"),
    ("/SEP001122334455.cnf.xml", "SEP001122334455.cnf.xml"),
    ("//x", "/x"),
    ("fw/sip.ld", "fw/sip.ld"),
    ("a" * 255, "a" * 255),
])
def test_sanitize_accepts(raw, expected):
    assert sanitize_filename(raw) == expected


@pytest.mark.parametrize("raw", ["../../etc/passwd", "a/../b", "/..", "..\\x", "a\\b", "x\x01y",
                                 "x\x7f", "x\0y", "a" * 256, "", "/", ".", "./"])
def test_sanitize_rejects(raw):
    with pytest.raises(RejectedName):
        sanitize_filename(raw)


# --------------------------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["small.cfg", "big.bin"])
@pytest.mark.parametrize("options, expect_oack", [
    (None, None),
    ({"blksize": "1428", "tsize": "0"}, {"blksize": "1428", "tsize": "SIZE"}),
    ({"tsize": "0"}, {"tsize": "SIZE"}),          # tftpy alone would add blksize=512
    ({"blksize": "1024"}, {"blksize": "1024"}),
    ({"BLKSIZE": "1468"}, {"blksize": "1468"}),   # option names are case-insensitive
    ({"timeout": "5", "rollover": "0"}, None),     # unsupported only -> no OACK at all
    ({"windowsize": "4", "timeout": "5"}, {"windowsize": "4"}),  # RFC 7440 (ACK-every-block client)
])
async def test_download(svc, resolver, name, options, expect_oack):
    reply = tftp_get(svc.port, name, options)
    assert reply.error is None
    assert reply.data == FILES[name]
    if expect_oack is None:
        assert reply.oack is None
    else:
        size = str(len(FILES[name]))
        assert reply.oack == {k: (size if v == "SIZE" else v) for k, v in expect_oack.items()}
    assert resolver.calls == [(name, "127.0.0.1")]


async def test_download_edge_sizes(svc):
    assert tftp_get(svc.port, "exact.bin").data == FILES["exact.bin"]  # ends with an empty DATA
    assert tftp_get(svc.port, "empty.txt", {"tsize": "0"}).data == b""
    with udp() as s:  # netascii is accepted and served as binary
        s.sendto(request(1, "small.cfg", mode=b"netascii"), ("127.0.0.1", svc.port))
        pkt, tid = s.recvfrom(600)
        assert pkt == b"\0\3\0\1" + SMALL[:512]
        s.sendto(struct.pack("!HH", 5, 0) + b"bye\0", tid)  # client abort
    wait_for(lambda: svc.active_sessions == 0)


async def test_blksize_above_udp_limit_is_clamped(svc):
    # tftpy accepts 65536; the 65540-byte DATA packet fails sendto and kills listen().
    reply = tftp_get(svc.port, "big.bin", {"blksize": "65536"})
    assert reply.oack == {"blksize": "65464"}
    assert reply.data == BIG
    assert_healthy(svc)


async def test_dyn_file_bytesio_served_repeatedly(svc):
    # tftpy issue #155: a BytesIO from dyn_file_func killed listen() at the end of the transfer.
    for _ in range(3):
        assert tftp_get(svc.port, "small.cfg", {"blksize": "1428"}).data == SMALL
    assert_healthy(svc)


# --------------------------------------------------------------------------------------------
# Not found, filename policy, uploads
# --------------------------------------------------------------------------------------------


async def test_file_not_found_logged_at_info(svc, resolver, caplog):
    caplog.set_level(logging.INFO, logger="deskprov.tftp")
    reply = tftp_get(svc.port, "SEPdeadbeef0000.cnf.xml")
    assert reply.error == (1, b"File not found")
    assert resolver.calls == [("SEPdeadbeef0000.cnf.xml", "127.0.0.1")]
    wait_for(lambda: svc.active_sessions == 0)
    ours = [r for r in caplog.records if r.name == "deskprov.tftp"
            and "SEPdeadbeef0000" in r.getMessage()]
    assert ours and all(r.levelno == logging.INFO for r in ours)
    assert "127.0.0.1" in ours[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("name", ["../../etc/passwd", "..\\x", "sub/../../x", "a\x01b", "x" * 256,
                                  "/", "."])
async def test_hostile_names_never_reach_resolve(svc, resolver, caplog, name):
    caplog.set_level(logging.INFO, logger="deskprov.tftp")
    assert tftp_get(svc.port, name).error == (1, b"File not found")
    assert resolver.calls == []
    wait_for(lambda: svc.active_sessions == 0)
    assert any(r.levelno == logging.INFO and "127.0.0.1" in r.getMessage()
               and "rejected" in r.getMessage() for r in caplog.records)


async def test_absolute_names_go_to_resolve_without_one_slash(svc, resolver):
    assert tftp_get(svc.port, "/etc/passwd").error == (1, b"File not found")
    assert tftp_get(svc.port, "//etc/passwd").error == (1, b"File not found")
    assert tftp_get(svc.port, "/small.cfg").data == SMALL
    assert resolver.calls == [("etc/passwd", "127.0.0.1"), ("/etc/passwd", "127.0.0.1"),
                              ("small.cfg", "127.0.0.1")]


@pytest.mark.parametrize("name", ["upload.txt", "../escape.txt", "/tmp/deskprov-wrq.txt"])
async def test_wrq_refused_nothing_written(svc, resolver, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    root = svc._root
    for options in (None, {"blksize": "1428", "tsize": "5"}):
        got = send_raw(svc.port, request(2, name, options))
        assert got is not None and parse_error(got[0]) == (2, b"Access violation")
        # push a DATA block at the TID anyway
        with udp() as s:
            s.sendto(b"\0\3\0\1hello", got[1])
    assert os.listdir(root) == []
    assert os.listdir(tmp_path) == []
    assert not os.path.exists(os.path.join(os.path.dirname(root), "escape.txt"))
    assert not os.path.exists("/tmp/deskprov-wrq.txt")
    assert resolver.calls == []
    assert_healthy(svc)


# --------------------------------------------------------------------------------------------
# Poison packets: each one used to kill tftpy's listen()
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("payload, expected", [
    (b"\0\1sm\xe9all.bin\0octet\0", (4, b"Illegal TFTP operation")),              # non-ASCII name
    (b"\0\1small.cfg\0octet\0bl\xefksize\0512\0", (4, b"Illegal TFTP operation")),  # non-ASCII opt
    (request(1, "small.cfg", {"blksize": "abc"}), (8, b"Failed to negotiate options")),
    (request(1, "small.cfg", {"blksize": "4"}), (8, b"Failed to negotiate options")),
    (b"\0\1small.cfg\0oct", (4, b"Illegal TFTP operation")),                      # no NUL
    (b"\0\1small.cfg\0octet\0blksize\0", (4, b"Illegal TFTP operation")),         # odd options
    (request(1, "small.cfg", mode=b"mail"), (4, b"Illegal TFTP operation")),
    (b"\x01", None),                                                             # 1-byte packet
    (b"\0\1\0", None),                                                           # 3-byte RRQ
    (b"\0\x63garbage\0", None),                                                  # bad opcode
    (b"\0\4\0\1", None),                                                         # stray ACK
    (b"\0\5\0\0oops\0", None),                                                   # stray ERROR
])
async def test_poison_packet_then_normal_download(svc, resolver, payload, expected):
    got = send_raw(svc.port, payload, timeout=0.4 if expected is None else 2.0)
    if expected is None:
        assert got is None
    else:
        assert got is not None and parse_error(got[0]) == expected
    assert resolver.calls == []
    assert_healthy(svc)


async def test_junk_and_strangers_on_session_port(svc):
    """Junk from the peer is ignored; other sources get ERROR 5; the transfer completes."""
    with udp() as client, udp() as stranger:
        client.sendto(request(1, "small.cfg"), ("127.0.0.1", svc.port))
        pkt, tid = client.recvfrom(600)
        assert pkt[:4] == b"\0\3\0\1"
        client.sendto(b"\0\4\0", tid)   # 3-byte "ACK": struct.error in stock tftpy
        client.sendto(b"\x07", tid)
        stranger.sendto(ack(1), tid)
        assert parse_error(stranger.recvfrom(100)[0]) == (5, b"Unknown transfer ID")
        data, block = [pkt[4:]], 1
        while len(pkt) - 4 == 512:
            client.sendto(ack(block), tid)
            pkt, _ = client.recvfrom(600)
            block = struct.unpack("!H", pkt[2:4])[0]
            if block == len(data) + 1:
                data.append(pkt[4:])
        client.sendto(ack(block), tid)
        assert b"".join(data) == SMALL
    assert_healthy(svc)


# --------------------------------------------------------------------------------------------
# Session caps, timeouts, resolve errors
# --------------------------------------------------------------------------------------------


async def test_session_caps(resolver):
    service = TftpService("127.0.0.1", 0, resolver, max_sessions=6, max_sessions_per_client=4,
                          timeout=0.3, retries=3)
    await service.start()
    opened: list[tuple[socket.socket, tuple[str, int]]] = []
    try:
        def half_open(src: str) -> bytes:
            s = udp(src)
            s.sendto(request(1, "small.cfg"), ("127.0.0.1", service.port))
            pkt, tid = s.recvfrom(600)
            opened.append((s, tid))
            return pkt

        first = [half_open("127.0.0.1") for _ in range(6)]
        assert [p[:4] for p in first[:4]] == [b"\0\3\0\1"] * 4
        assert [parse_error(p) for p in first[4:]] == [(0, b"server busy")] * 2
        # another client is still served, up to the global cap
        other = [half_open("127.0.0.3") for _ in range(2)]
        assert [p[:4] for p in other] == [b"\0\3\0\1"] * 2
        wait_for(lambda: service.active_sessions == 6)
        assert tftp_get(service.port, "small.cfg", src="127.0.0.2").error == (0, b"server busy")

        # the first client aborts its transfers: capacity comes back
        for s, tid in opened[:4]:
            s.sendto(struct.pack("!HH", 5, 0) + b"cancel\0", tid)
        wait_for(lambda: service.active_sessions == 2)
        assert tftp_get(service.port, "small.cfg", src="127.0.0.2").data == SMALL

        # the 127.0.0.3 sessions are never ACKed: DATA 1 is retransmitted, then they expire
        s3, tid3 = opened[6]
        assert s3.recvfrom(600)[0][:4] == b"\0\3\0\1"
        wait_for(lambda: service.active_sessions == 0, timeout=3.0)
        assert tftp_get(service.port, "small.cfg").data == SMALL
        assert service.restarts == 0
    finally:
        for s, _ in opened:
            s.close()
        await service.stop()


async def test_resolve_raising_gives_error_0(svc, caplog):
    caplog.set_level(logging.INFO, logger="deskprov.tftp")
    assert tftp_get(svc.port, "boom").error == (0, b"internal error")
    assert tftp_get(svc.port, "not-bytes").error == (0, b"internal error")
    assert any(r.exc_info and "resolver bug" in str(r.exc_info[1]) for r in caplog.records)
    assert_healthy(svc)


async def test_high_file_descriptors(svc):
    """select() dies on fd >= 1024; the shim's poll() must not."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        if hard != resource.RLIM_INFINITY and hard < 1200:
            pytest.skip("RLIMIT_NOFILE too low to open fds >= 1024")
        resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
    fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(1030)]
    try:
        assert max(fds) >= 1024
        assert tftp_get(svc.port, "big.bin", {"blksize": "1428"}).data == BIG
    finally:
        for fd in fds:
            os.close(fd)
    assert_healthy(svc)


async def test_restart_loop_is_a_safety_net(svc, monkeypatch, caplog):
    server_mod = sys.modules["tftpy.TftpServer"]
    real = server_mod.select
    armed = threading.Event()

    def explode(*args):
        if armed.is_set():
            armed.clear()
            raise RuntimeError("injected crash")
        return real.select(*args)

    monkeypatch.setattr(server_mod, "select", types.SimpleNamespace(select=explode))
    port, crashed = svc.port, svc._server
    armed.set()
    wait_for(lambda: svc.restarts == 1)
    assert any("crashed" in r.getMessage() for r in caplog.records)
    wait_for(lambda: svc._server is not crashed and svc._server.is_running.is_set())
    assert svc.port == port
    assert tftp_get(port, "small.cfg").data == SMALL


# --------------------------------------------------------------------------------------------
# Lifecycle
# --------------------------------------------------------------------------------------------


async def test_clean_stop_leaves_nothing_behind(resolver):
    before = _socket_fds()
    service = TftpService("127.0.0.1", 0, resolver)  # default timeout 0.5 s
    await service.start()
    root, thread, port = service._root, service._thread, service.port
    assert port != 0 and os.path.isdir(root)
    assert tftp_get(port, "big.bin").data == BIG
    with udp() as s:  # leave one half-open session behind
        s.sendto(request(1, "big.bin"), ("127.0.0.1", port))
        s.recvfrom(600)
        t0 = time.monotonic()
        await service.stop()
        assert time.monotonic() - t0 < 1.0
    assert not thread.is_alive()
    assert "deskprov-tftp" not in {t.name for t in threading.enumerate()}
    assert not os.path.exists(root)
    assert service.active_sessions == 0
    assert _socket_fds() <= before
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))  # the port is free again
    await service.stop()  # idempotent


async def test_start_fails_when_port_in_use(resolver):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        service = TftpService("127.0.0.1", blocker.getsockname()[1], resolver)
        with pytest.raises(OSError):
            await service.start()
    assert service._thread is None and service._root is None
    assert "deskprov-tftp" not in {t.name for t in threading.enumerate()}


# --------------------------------------------------------------------------------------------
# Under load: windowsize (RFC 7440), backoff, deferred resolves
# --------------------------------------------------------------------------------------------

WINDOWED = os.urandom(64 * 1024)


def windowed_get(port: int, name: str, window: int, blksize: int = 512, *, lose_ack_of: int = -1,
                 drop_block: int = -1, timeout: float = 3.0) -> tuple[bytes, list[int]]:
    """An RFC 7440 client: ACKs only the last block of each window (or, after a gap, the last
    block received in order).  ``lose_ack_of``: that ACK is never sent, once.  ``drop_block``:
    that block is treated as lost, once.  Returns (file, every DATA block number received)."""
    with udp(timeout=timeout) as s:
        s.sendto(request(1, name, {"blksize": str(blksize), "windowsize": str(window)}),
                 ("127.0.0.1", port))
        pkt, tid = s.recvfrom(70_000)
        assert parse_options(pkt[2:]) == {"blksize": str(blksize), "windowsize": str(window)}
        s.sendto(ack(0), tid)
        data, seen, got, in_window = bytearray(), [], 0, 0  # got: last block in order (absolute)
        gap_acked = None
        while True:
            pkt, addr = s.recvfrom(70_000)
            assert addr == tid and pkt[:2] == b"\0\3", pkt[:4]
            block = struct.unpack("!H", pkt[2:4])[0]
            seen.append(block)
            if block == drop_block:
                drop_block = -1
                continue
            if block != (got + 1) & 0xFFFF:  # out of order (a gap, a repeat): ACK what we have, once
                if gap_acked != got:
                    s.sendto(ack(got), tid)
                    gap_acked, in_window = got, 0
                continue
            got += 1
            in_window += 1
            data += pkt[4:]
            last = len(pkt) - 4 < blksize
            if in_window == window or last:
                in_window = 0
                if got == lose_ack_of:
                    lose_ack_of = -1
                else:
                    s.sendto(ack(got), tid)
            if last:
                return bytes(data), seen


@pytest.fixture
def windowed_svc_files(resolver):
    resolver.files = {**FILES, "windowed.bin": WINDOWED, "rollover.bin": os.urandom(8 * 66_000)}
    return resolver


async def test_windowsize_transfer_sends_each_block_once(windowed_svc_files, svc):
    data, seen = await asyncio.to_thread(windowed_get, svc.port, "windowed.bin", 8)
    assert data == WINDOWED
    blocks = len(WINDOWED) // 512 + 1  # 128 full blocks and an empty last one
    assert seen == list(range(1, blocks + 1))


async def test_windowsize_lost_ack_resends_the_window(windowed_svc_files, svc):
    # The ACK of block 16 (end of the second window) is lost: the server times out and resends
    # blocks 9..16, which the client has already; their ACK then moves the transfer on.
    data, seen = await asyncio.to_thread(windowed_get, svc.port, "windowed.bin", 8, lose_ack_of=16)
    assert data == WINDOWED
    assert seen[:24] == list(range(1, 17)) + list(range(9, 17))
    assert seen[24:] == list(range(17, len(WINDOWED) // 512 + 2))


async def test_windowsize_gap_resends_from_the_missing_block(windowed_svc_files, svc):
    # Block 11 is lost: the client ACKs 10 when 12 arrives; the server starts the next window at
    # 11 at once (no timeout), and the blocks the client ignored after the gap come again.
    t0 = time.monotonic()
    data, seen = await asyncio.to_thread(windowed_get, svc.port, "windowed.bin", 8, drop_block=11)
    assert data == WINDOWED
    assert seen[:16] == list(range(1, 17))
    assert seen[16:24] == list(range(11, 19))
    assert time.monotonic() - t0 < 2.0


async def test_windowsize_block_numbers_roll_over(windowed_svc_files, svc):
    data, seen = await asyncio.to_thread(windowed_get, svc.port, "rollover.bin", 64, 8)
    assert data == windowed_svc_files.files["rollover.bin"]
    # block numbers wrap 65535 -> 0; on a loaded machine the server may time out and resend a
    # window (the client then sees blocks again), so the wrap is looked for, not counted to
    wrap = seen.index(65_535)
    assert len(seen) >= 66_001 and seen[wrap:wrap + 4] == [65_535, 0, 1, 2]


@pytest.mark.parametrize("value, expected", [
    ("0", (8, b"Failed to negotiate options")),
    ("abc", (8, b"Failed to negotiate options")),
    ("-1", (8, b"Failed to negotiate options")),
    ("", (8, b"Failed to negotiate options")),
    ("8 ", (8, b"Failed to negotiate options")),
])
async def test_malformed_windowsize_refused(svc, resolver, value, expected):
    got = send_raw(svc.port, request(1, "small.cfg", {"windowsize": value}), timeout=2.0)
    assert got is not None and parse_error(got[0]) == expected
    assert resolver.calls == []
    assert_healthy(svc)


async def test_huge_windowsize_is_clamped(svc):
    reply = tftp_get(svc.port, "small.cfg", {"windowsize": "65535"})
    assert reply.oack == {"windowsize": str(tftp_mod.MAX_WINDOWSIZE)} and reply.data == SMALL


async def test_retransmission_backs_off_then_drops(resolver):
    service = TftpService("127.0.0.1", 0, resolver, timeout=0.1, retries=4)
    await service.start()
    try:
        with udp(timeout=3.0) as s:
            s.sendto(request(1, "small.cfg"), ("127.0.0.1", service.port))
            arrivals = []
            try:
                while True:  # never ACK: DATA 1 comes again, ever later
                    pkt, _ = s.recvfrom(600)
                    assert pkt[:4] == b"\0\3\0\1"
                    arrivals.append(time.monotonic())
            except TimeoutError:
                pass
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
        assert len(arrivals) == 4, gaps  # the first send and 3 retransmissions, then dropped
        assert gaps[0] >= 0.09 and gaps[1] >= 0.18 and gaps[2] >= 0.36, gaps  # 0.1, 0.2, 0.4
        assert service.active_sessions == 0
    finally:
        await service.stop()


async def test_backoff_is_bounded(resolver):
    service = TftpService("127.0.0.1", 0, resolver, timeout=0.05, retries=7)
    await service.start()
    try:
        with udp(timeout=3.0) as s:
            s.sendto(request(1, "small.cfg"), ("127.0.0.1", service.port))
            arrivals = []
            with pytest.raises(TimeoutError):
                while True:
                    s.recvfrom(600)
                    arrivals.append(time.monotonic())
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
        assert len(arrivals) == 7, gaps
        # 0.05, 0.1, 0.2, 0.4, then capped at 8 x 0.05 = 0.4: never 0.8 or 1.6
        assert max(gaps) < 0.4 + 0.25, gaps
    finally:
        await service.stop()


class SlowResolver(Resolver):
    """Names starting with "slow" are answered by a future that a test completes later."""

    def __init__(self, files):
        super().__init__(files)
        self.futures: dict[str, Future] = {}

    def __call__(self, name, ip):
        if name.startswith("slow"):
            self.calls.append((name, ip))
            self.futures[name] = future = Future()
            return future
        return super().__call__(name, ip)


@pytest.fixture
async def slow_svc():
    resolver = SlowResolver(FILES)
    service = TftpService("127.0.0.1", 0, resolver, timeout=0.2, retries=3, resolve_timeout=1.5)
    await service.start()
    yield service, resolver
    await service.stop()


def render_later(resolver: SlowResolver, name: str, event: threading.Event, result) -> threading.Thread:
    """Complete the future of ``name`` once ``event`` is set (as the event loop would)."""
    def run():
        wait_for(lambda: name in resolver.futures)
        event.wait(5)
        if isinstance(result, BaseException):
            resolver.futures[name].set_exception(result)
        else:
            resolver.futures[name].set_result(result)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


async def test_slow_miss_does_not_delay_a_concurrent_hit(slow_svc):
    service, resolver = slow_svc
    rendered = threading.Event()
    render_later(resolver, "slow.cfg", rendered, BIG)
    slow = asyncio.create_task(asyncio.to_thread(tftp_get, service.port, "slow.cfg", {"blksize": "1428"},
                                                 timeout=3.0))
    await asyncio.to_thread(wait_for, lambda: "slow.cfg" in resolver.futures)
    # While the render waits, other phones are served: the hit finishes with the render pending.
    for src in ("127.0.0.2", "127.0.0.3"):
        t0 = time.monotonic()
        assert (await asyncio.to_thread(tftp_get, service.port, "small.cfg", src=src)).data == SMALL
        assert time.monotonic() - t0 < 0.5
    assert not slow.done()
    wait_for(lambda: service.active_sessions == 1)  # the hits' sessions end on their last ACK
    rendered.set()
    t0 = time.monotonic()
    reply = await slow
    assert reply.data == BIG and reply.oack == {"blksize": "1428"}
    assert time.monotonic() - t0 < 0.5  # woken at once, not at the next select timeout
    assert resolver.calls.count(("slow.cfg", "127.0.0.1")) == 1


async def test_repeated_rrq_while_resolving_is_one_session(slow_svc):
    service, resolver = slow_svc
    rendered = threading.Event()
    render_later(resolver, "slow.cfg", rendered, SMALL)
    with udp(timeout=2.0) as s:
        for _ in range(3):  # the phone's own retransmissions of the RRQ
            s.sendto(request(1, "slow.cfg"), ("127.0.0.1", service.port))
            time.sleep(0.05)
        assert len(resolver.calls) == 1 and service.active_sessions == 1
        rendered.set()
        pkt, tid = s.recvfrom(600)
        assert pkt == b"\0\3\0\1" + SMALL[:512]
        s.sendto(struct.pack("!HH", 5, 0) + b"enough\0", tid)
    wait_for(lambda: service.active_sessions == 0)


@pytest.mark.parametrize("outcome, expected", [
    (None, (1, b"File not found")),
    (tftp_mod.TftpUnavailable("database unavailable"), (0, b"service unavailable")),
    (RuntimeError("render bug"), (0, b"internal error")),
    ("not bytes", (0, b"internal error")),
])
async def test_deferred_resolve_outcomes(slow_svc, outcome, expected):
    service, resolver = slow_svc
    done = threading.Event()
    done.set()
    render_later(resolver, "slow.cfg", done, outcome)
    t0 = time.monotonic()
    reply = await asyncio.to_thread(tftp_get, service.port, "slow.cfg")
    assert reply.error == expected
    assert time.monotonic() - t0 < 1.0
    wait_for(lambda: service.active_sessions == 0)
    assert_healthy(service)


async def test_resolve_that_never_finishes_gets_an_error_not_a_hang(slow_svc):
    service, resolver = slow_svc
    t0 = time.monotonic()
    reply = await asyncio.to_thread(tftp_get, service.port, "slow-forever.cfg", timeout=4.0)
    assert reply.error == (0, b"service unavailable")
    assert 1.4 <= time.monotonic() - t0 < 3.0  # resolve_timeout=1.5
    wait_for(resolver.futures["slow-forever.cfg"].cancelled)  # nobody renders for a dead session
    wait_for(lambda: service.active_sessions == 0)
    assert_healthy(service)


async def test_resolver_raising_unavailable_synchronously():
    def resolve(name, ip):
        raise tftp_mod.TftpUnavailable("database unavailable")

    service = TftpService("127.0.0.1", 0, resolve, timeout=0.3)
    await service.start()
    try:
        assert tftp_get(service.port, "x.cfg").error == (0, b"service unavailable")
    finally:
        await service.stop()


async def test_session_caps_come_from_settings(make_server):
    server = await make_server(tftp_max_sessions=3, tftp_max_sessions_per_client=2)
    assert (server.tftp.max_sessions, server.tftp.max_sessions_per_client) == (3, 2)
    sockets = [udp(timeout=5.0) for _ in range(3)]
    try:
        # Three unanswered requests from one address: each one waits on its own render or its
        # own DATA 1; the third is over the per-client cap.
        for s in sockets:
            s.sendto(request(1, "y000000000000.cfg"), ("127.0.0.1", server.tftp_port))
        replies = [(await asyncio.to_thread(s.recvfrom, 600))[0] for s in sockets]  # the loop renders
        busy = [r for r in replies if r[:2] == b"\0\5" and parse_error(r) == (0, b"server busy")]
        assert len(busy) == 1, replies
    finally:
        for s in sockets:
            s.close()


def test_session_cap_settings_validated():
    from provisioning.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="tftp_max_sessions_per_client"):
        Settings().replace(tftp_max_sessions_per_client="0")
    assert Settings().replace(tftp_max_sessions="50").tftp_max_sessions == 50
