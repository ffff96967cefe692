"""An attacker against the running server's TFTP port (beyond tests/test_tftp_service.py, which
covers the service alone: poison packets, WRQ, session caps, strangers on a session port).

Here the whole server answers: option abuse per RFC 2347 (options), 2348 (blksize), 2349
(timeout, tsize) and 7440 (windowsize), mode variations, traversal into the real static root,
and a flood of half-open RRQs from 127.0.0.2 while a phone boots over TFTP from 127.0.0.1.
The server negotiates only blksize and tsize; everything else must be ignored, never crash it.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from dataclasses import dataclass

import pytest

from conftest import import_org  # tests/ is on sys.path (rootdir conftest)
from simulators.phone import Phone
from simulators.yealink import YealinkProfile

ATTACKER = "127.0.0.2"
ANNA_MAC, BERTIL_MAC = "805ec0aabb01", "805ec0aabb02"
SECRETS = {"anna": "Anna-Tftp-Secret-01", "bertil": "Bertil-Tftp-Secret-02", "admin": "Tftp-Admin-Pw-03"}
ORG = f"""
organization: {{name: Tftp AB, sip_domain: t.sip.example.net, device_admin_password: "{SECRETS['admin']}",
                tftp_secret_networks: [127.0.0.1/32]}}
users:
  - {{name: Anna Andersson, number: "+46854689901", extension: "201"}}
  - {{name: Bertil Berg, number: "+46854689902", extension: "202"}}
phones:
  - {{mac: "80:5E:C0:AA:BB:01", model: Yealink T46S, user: "+46854689901",
      sip: {{username: anna01, password: "{SECRETS['anna']}"}}}}
  - {{mac: "80:5E:C0:AA:BB:02", model: Yealink T46S, user: "+46854689902",
      sip: {{username: bertil02, password: "{SECRETS['bertil']}"}}}}
"""
COMMON = "y000000000066.cfg"   # the T46S common file: shared, no secrets
CANARY = b"TFTP-CANARY-outside-the-root"
FIRMWARE = bytes(range(256)) * 40 + b"end"   # 10243 bytes: several blocks at any blksize


# --------------------------------------------------------------------------------------------
# A raw TFTP client (synchronous: run it with asyncio.to_thread, the server resolves on the loop)
# --------------------------------------------------------------------------------------------

@dataclass
class Result:
    data: bytes | None = None
    oack: dict[str, str] | None = None
    error: tuple[int, bytes] | None = None
    timed_out: bool = False


def rrq(name: bytes | str, mode: bytes = b"octet", options: list[tuple[bytes, bytes]] | bytes = ()) -> bytes:
    name = name.encode() if isinstance(name, str) else name
    packet = b"\0\1" + name + b"\0" + mode + b"\0"
    if isinstance(options, bytes):
        return packet + options
    return packet + b"".join(k + b"\0" + v + b"\0" for k, v in options)


def transfer(port: int, packet: bytes, *, src: str = "127.0.0.1", timeout: float = 2.0) -> Result:
    """Send one request, ACK the OACK and every DATA block, return what came back."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((src, 0))
        s.settimeout(timeout)
        s.sendto(packet, ("127.0.0.1", port))
        result, chunks, blksize, expected, peer = Result(), [], 512, 1, None
        while True:
            try:
                pkt, addr = s.recvfrom(70_000)
            except TimeoutError:
                result.timed_out = True
                return result
            peer = peer or addr
            if addr != peer:
                continue
            opcode = struct.unpack("!H", pkt[:2])[0]
            if opcode == 5:
                result.error = (struct.unpack("!H", pkt[2:4])[0], pkt[4:].rstrip(b"\0"))
                return result
            if opcode == 6:
                fields = pkt[2:].split(b"\0")[:-1]
                result.oack = {fields[i].decode(): fields[i + 1].decode() for i in range(0, len(fields), 2)}
                blksize = int(result.oack.get("blksize", 512))
                s.sendto(b"\0\4\0\0", peer)
                continue
            assert opcode == 3, pkt[:4]
            block = struct.unpack("!H", pkt[2:4])[0]
            s.sendto(b"\0\4" + pkt[2:4], peer)
            if block == expected & 0xFFFF:
                chunks.append(pkt[4:])
                expected += 1
                assert len(pkt) - 4 <= blksize, (len(pkt), blksize)
                if len(pkt) - 4 < blksize:
                    result.data = b"".join(chunks)
                    return result


async def tftp(port: int, packet: bytes, **kw) -> Result:
    return await asyncio.to_thread(transfer, port, packet, **kw)


def leaked(result: Result) -> list[str]:
    return [name for name, secret in SECRETS.items() if result.data and secret.encode() in result.data]


def yealink(mac: str = "80:5E:C0:AA:BB:01") -> Phone:
    return Phone(YealinkProfile(model="T46S", mac=mac, firmware="66.86.0.15"))


async def boot_over_tftp(server) -> None:
    state = await yealink().boot_tftp("127.0.0.1", server.tftp_port)
    assert state.accounts[1].registered and state.accounts[1].password == SECRETS["anna"], state.errors


@pytest.fixture
async def target(make_server, tmp_path):
    root = tmp_path / "root"
    (root / "fw").mkdir(parents=True)
    (root / "fw" / "sip.rom").write_bytes(FIRMWARE)
    (tmp_path / "canary.txt").write_bytes(CANARY)
    (root / "escape.cfg").symlink_to(tmp_path / "canary.txt")
    server = await make_server(tftp_root=str(root), guard_refusal_burst=100_000)
    await import_org(server, ORG)
    return server


# --------------------------------------------------------------------------------------------
# Option abuse
# --------------------------------------------------------------------------------------------

def opts(*pairs: str) -> list[tuple[bytes, bytes]]:
    return [(pairs[i].encode(), pairs[i + 1].encode()) for i in range(0, len(pairs), 2)]


OK, ERR_OPTION, ERR_ILLEGAL = "ok", 8, 4
OPTION_ABUSE = {
    # RFC 2349 timeout (not negotiated: ignored, lock-step at the server's own timer)
    "timeout-0": (opts("timeout", "0"), OK), "timeout-1": (opts("timeout", "1"), OK),
    "timeout-255": (opts("timeout", "255"), OK), "timeout-256": (opts("timeout", "256"), OK),
    "timeout-huge": (opts("timeout", "9" * 400), OK), "timeout-negative": (opts("timeout", "-1"), OK),
    "timeout-text": (opts("timeout", "soon"), OK), "timeout-empty": (opts("timeout", ""), OK),
    # RFC 7440 windowsize (negotiated, clamped to the server's maximum; malformed values refused)
    "windowsize-0": (opts("windowsize", "0"), ERR_OPTION), "windowsize-65535": (opts("windowsize", "65535"), OK),
    "windowsize-65536": (opts("windowsize", "65536"), OK), "windowsize-huge": (opts("windowsize", "9" * 5000), OK),
    "windowsize-text": (opts("windowsize", "many"), ERR_OPTION),
    # RFC 2349 tsize: a client must send 0 in an RRQ; any other value is ignored, the real size is sent
    "tsize-huge": (opts("tsize", "9" * 300), OK), "tsize-negative": (opts("tsize", "-5"), OK),
    "tsize-text": (opts("tsize", "abc"), OK), "tsize-empty": (opts("tsize", ""), OK),
    # RFC 2348 blksize
    "blksize-min": (opts("blksize", "8"), OK), "blksize-max": (opts("blksize", "65464"), OK),
    "blksize-over-max": (opts("blksize", "65465"), OK), "blksize-65536": (opts("blksize", "65536"), OK),
    "blksize-4300-digits": (opts("blksize", "9" * 4300), OK), "blksize-5000-digits": (opts("blksize", "9" * 5000), OK),
    "blksize-leading-zeros": (opts("blksize", "0" * 5000 + "1024"), OK),
    "blksize-zero": (opts("blksize", "0"), ERR_OPTION), "blksize-7": (opts("blksize", "7"), ERR_OPTION),
    "blksize-zeros": (opts("blksize", "0" * 5000), ERR_OPTION), "blksize-negative": (opts("blksize", "-512"), ERR_OPTION),
    "blksize-plus": (opts("blksize", "+512"), ERR_OPTION), "blksize-space": (opts("blksize", " 512"), ERR_OPTION),
    "blksize-hex": (opts("blksize", "0x200"), ERR_OPTION), "blksize-float": (opts("blksize", "512.0"), ERR_OPTION),
    "blksize-arabic-digits": ([(b"blksize", "٥١٢".encode())], ERR_ILLEGAL),  # non-ASCII: malformed
    "blksize-empty": (opts("blksize", ""), ERR_OPTION),
    # duplicates and case
    "duplicate-blksize": (opts("blksize", "1024", "blksize", "2048"), OK),
    "duplicate-bad-then-good": (opts("blksize", "abc", "BLKSIZE", "1024"), OK),
    "duplicate-good-then-bad": (opts("blksize", "1024", "BlkSize", "abc"), ERR_OPTION),
    "duplicate-tsize": (opts("tsize", "0", "tsize", "0"), OK),
    "mixed-case-everything": (opts("BlKsIzE", "1428", "TSIZE", "0", "TimeOut", "3", "WINDOWSIZE", "4"), OK),
    # structure
    "option-without-value": (b"blksize\0", ERR_ILLEGAL),
    "option-without-value-middle": (b"tsize\0\0blksize\0", ERR_ILLEGAL),
    "empty-option-name": (b"\0" + b"512\0", OK),  # an option with no name is ignored
    "nul-padding": (b"blksize\0" + b"1024\0" + b"\0" * 9, OK),
    "3000-unknown-options": (b"".join(b"x%d\0y\0" % i for i in range(3000)), OK),
    "long-option-name": (opts("a" * 30_000, "1"), OK),
    "option-value-60k": ([(b"blksize", b"1" + b"0" * 60_000)], OK),
}


@pytest.mark.parametrize("name", list(OPTION_ABUSE))
async def test_option_abuse(target, name):
    options, expected = OPTION_ABUSE[name]
    result = await tftp(target.tftp_port, rrq("fw/sip.rom", options=options))
    if expected == OK:
        assert result.error is None and not result.timed_out, (name, result)
        assert result.data == FIRMWARE, name
        if result.oack is not None:
            assert set(result.oack) <= {"blksize", "tsize", "windowsize"}, result.oack   # only what we negotiate
            if "blksize" in result.oack:
                assert 8 <= int(result.oack["blksize"]) <= 65464, result.oack
            if "windowsize" in result.oack:
                assert 1 <= int(result.oack["windowsize"]) <= 64, result.oack
            if "tsize" in result.oack:
                assert result.oack["tsize"] == str(len(FIRMWARE))
    else:
        assert result.error is not None and result.error[0] == expected, (name, result)
    assert target.tftp.restarts == 0
    assert (await tftp(target.tftp_port, rrq(COMMON))).data  # still serving


@pytest.mark.parametrize("mode, served", [
    (b"octet", True), (b"OCTET", True), (b"Octet", True), (b"netascii", True), (b"NETASCII", True),
    (b"mail", False), (b"binary", False), (b"", False), (b"octet ", False), (b" octet", False),
    (b"octe", False), (b"octet\xff", False), (b"\xc3\xa9", False), (b"o" * 60_000, False),
])
async def test_mode_variations(target, mode, served):
    result = await tftp(target.tftp_port, rrq("fw/sip.rom", mode=mode))
    if served:
        assert result.data == FIRMWARE, result   # netascii is served as binary, like tftpy does
    else:
        assert result.error is not None and result.error[0] == 4, result
    assert target.tftp.restarts == 0


# --------------------------------------------------------------------------------------------
# Traversal into the real static root (names are taken literally: no percent-decoding in TFTP)
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [
    b"../canary.txt", b"fw/../../canary.txt", b"/../canary.txt", b"escape.cfg", b"fw/./../../canary.txt",
    b"%2e%2e/canary.txt", b"..%2fcanary.txt", b"..\\canary.txt", b"fw\\..\\..\\canary.txt", b"....//canary.txt",
    b"\xc0\xae\xc0\xae/canary.txt", b"..;/canary.txt", b"fw/sip.rom/../../../canary.txt", b"/etc/passwd",
    b"//etc/passwd", b"~/canary.txt", b"fw//..//..//canary.txt", b"fw/sip.rom\x01/../../canary.txt",
    b"../var/deskprov0.sqlite3", b"http://x/../canary.txt", b"tftp://127.0.0.1/../canary.txt",
])
async def test_traversal_over_tftp(target, name):
    result = await tftp(target.tftp_port, rrq(name))
    assert result.error is not None and result.error[0] in (1, 4), (name, result)
    assert target.tftp.restarts == 0
    assert (await tftp(target.tftp_port, rrq("fw/sip.rom"))).data == FIRMWARE


async def test_write_requests_to_the_server_are_refused(target, tmp_path):
    for name in (b"fw/sip.rom", b"../canary.txt", b"805ec0aabb01-local.cfg", b"new.cfg"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((ATTACKER, 0))
            s.settimeout(2)
            s.sendto(b"\0\2" + name + b"\0octet\0tsize\0" + b"5\0", ("127.0.0.1", target.tftp_port))
            pkt, tid = await asyncio.to_thread(s.recvfrom, 1000)
            assert pkt[:4] == b"\0\5\0\2", pkt
            s.sendto(b"\0\3\0\1evil!", tid)
    assert (tmp_path / "root" / "fw" / "sip.rom").read_bytes() == FIRMWARE
    assert (tmp_path / "canary.txt").read_bytes() == CANARY
    assert sorted(p.name for p in (tmp_path / "root").rglob("*")) == ["escape.cfg", "fw", "sip.rom"]


# --------------------------------------------------------------------------------------------
# A flood of half-open RRQs from one source while a phone boots from another
# --------------------------------------------------------------------------------------------

def _half_open_flood(port: int, names: list[bytes], src: str, pace: float = 0.002) -> dict[str, int]:
    """One RRQ per name, each from its own socket (a new transfer ID), never ACKed; counts the
    first answer to each. Paced a little: a burst of hundreds of datagrams at once overflows the
    kernel's receive buffer, which drops them before the server sees them (UDP, not a bug)."""
    counts: dict[str, int] = {}
    sockets = []
    try:
        for name in names:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((src, 0))
            sockets.append(s)
            s.sendto(rrq(name, options=opts("blksize", "65464", "tsize", "0")), ("127.0.0.1", port))
            time.sleep(pace)
        time.sleep(1.0)
        for s in sockets:
            s.setblocking(False)
            try:
                pkt, _ = s.recvfrom(70_000)
            except BlockingIOError:
                kind = "silence"
            else:
                opcode = struct.unpack("!H", pkt[:2])[0]
                kind = {3: "data", 6: "oack"}.get(opcode) or \
                    f"error {struct.unpack('!H', pkt[2:4])[0]} {pkt[4:].rstrip(bytes(1)).decode(errors='replace')}"
                if any(secret.encode() in pkt for secret in SECRETS.values()):
                    kind = "LEAK"
            counts[kind] = counts.get(kind, 0) + 1
    finally:
        for s in sockets:
            s.close()
    return counts


async def test_half_open_flood_from_one_source_while_a_phone_boots(make_server):
    server = await make_server()  # default session caps (500 in all, 20 per client) and guard
    await import_org(server, ORG)
    port, tftp_service = server.tftp_port, server.tftp
    guesses = [f"805ec0{i:06x}.cfg".encode() for i in range(0x10, 0x10 + 300)]

    def attack() -> tuple[dict[str, int], dict[str, int]]:
        # first half-open transfers of a file that exists, then (once those expired) MAC guesses
        held = _half_open_flood(port, [COMMON.encode()] * 200, ATTACKER)
        expired = time.monotonic() + tftp_service.session_lifetime + 5  # retransmits back off
        while tftp_service._live_by_ip.get(ATTACKER, 0) and time.monotonic() < expired:
            time.sleep(0.1)
        return held, _half_open_flood(port, guesses, ATTACKER)

    flood = asyncio.create_task(asyncio.to_thread(attack))
    peak, boots = 0, []
    while not flood.done():
        peak = max(peak, tftp_service._live_by_ip.get(ATTACKER, 0))
        boots.append(await yealink().boot_tftp("127.0.0.1", port))
        await asyncio.sleep(0.05)
    held, guessed = await flood
    assert len(boots) >= 5
    for state in boots:
        assert state.accounts[1].registered and state.accounts[1].password == SECRETS["anna"], state.errors
    assert "LEAK" not in held and "LEAK" not in guessed
    cap = tftp_service.max_sessions_per_client
    assert held.get("oack", 0) + held.get("data", 0) <= cap + 1, held
    assert held.get("error 0 server busy", 0) >= 200 - cap - 1 - 5, held   # the attacker's share is capped
    # guesses, then the ban: the same answer. Lookups run concurrently (not one at a time on the TFTP
    # thread), so beyond the per-client cap a guess is "server busy", which tells nothing either.
    assert guessed.get("error 1 File not found", 0) + guessed.get("error 0 server busy", 0) >= 295, guessed
    assert peak <= cap + 1, peak
    assert server.provisioner.guard.counters["bans"] == 1
    # never ACKed, the attacker's sessions expire (retries timeouts, backing off) and nothing stays behind
    deadline = time.monotonic() + tftp_service.session_lifetime + 5
    while tftp_service.active_sessions and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert tftp_service.active_sessions == 0
    assert tftp_service.restarts == 0
    await boot_over_tftp(server)


async def test_rrq_flood_does_not_starve_the_phone_of_its_device_file(make_server):
    """Repeated completed transfers (not half-open) from the attacker: the phone still boots and the
    attacker, asking for unknown MACs, is banned."""
    server = await make_server(guard_refusal_burst=30)
    await import_org(server, ORG)
    port = server.tftp_port

    def hammer() -> list[Result]:
        return [transfer(port, rrq(f"805ec0{i:06x}.boot"), src=ATTACKER, timeout=1.0) for i in range(0x20, 0x20 + 120)]

    attack = asyncio.create_task(asyncio.to_thread(hammer))
    await asyncio.sleep(0.05)
    await boot_over_tftp(server)
    results = await attack
    assert all(r.error == (1, b"File not found") for r in results), [r for r in results if r.error != (1, b"File not found")][:3]
    assert not any(leaked(r) for r in results)
    assert server.provisioner.guard.counters["bans"] == 1
    await boot_over_tftp(server)


async def test_tftp_serves_no_secret_to_an_unknown_source(target):
    """The organisation names the phones' network (127.0.0.1/32) for TFTP secrets: from anywhere
    else a device's file over TFTP is the secret-free bootstrap variant."""
    result = await tftp(target.tftp_port, rrq(f"{BERTIL_MAC}.cfg"), src=ATTACKER)
    assert result.data is None or not leaked(result), leaked(result)
    assert result.data is not None and b"account.1.enable = 0" in result.data  # the bootstrap file
    phone = await tftp(target.tftp_port, rrq(f"{BERTIL_MAC}.cfg"), src="127.0.0.1")
    assert phone.data is not None and SECRETS["bertil"].encode() in phone.data
