"""Write the seed inputs under fuzz/seeds/ (fuzz/run.sh runs it when they are missing; generated, not committed)."""

from __future__ import annotations

import struct
from pathlib import Path

SEEDS = Path(__file__).resolve().parent / "seeds"


def rrq(name: bytes, mode: bytes = b"octet", *options: bytes, opcode: int = 1) -> bytes:
    return struct.pack("!H", opcode) + name + b"\0" + mode + b"\0" + b"".join(o + b"\0" for o in options)


def write(kind: str, items: dict[str, bytes]) -> None:
    folder = SEEDS / kind
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in items.items():
        (folder / name).write_bytes(data)


TFTP = {
    "plain": rrq(b"805ec0aabb01.cfg"),
    "options": rrq(b"y000000000066.cfg", b"octet", b"blksize", b"1428", b"tsize", b"0"),
    "all-options": rrq(b"small.cfg", b"netascii", b"blksize", b"65464", b"tsize", b"0", b"timeout", b"5",
                       b"windowsize", b"8"),
    "wrq": rrq(b"upload.txt", b"octet", b"tsize", b"5", opcode=2),
    "absolute": rrq(b"/SEP001122334455.cnf.xml"),
    "traversal": rrq(b"../../etc/passwd"),
    "padding": rrq(b"big.bin", b"OCTET", b"blksize", b"512") + b"\0\0",
    # near int()'s 4300-digit limit: a 5000-digit blksize once made _negotiate raise ValueError
    "long-blksize": rrq(b"small.cfg", b"octet", b"blksize", b"1" * 4290),
    "long-name": rrq(b"a/" * 130),
    "structured": b"\xff" + bytes(range(64)),
}
def frames(*packets: bytes | tuple[bytes, int]) -> bytes:
    """fuzz_tftp_session's framing: 2-byte header (flags | length), then the datagram."""
    out = b""
    for packet in packets:
        data, flags = packet if isinstance(packet, tuple) else (packet, 0)
        out += (flags | len(data)).to_bytes(2, "big") + data
    return out


def ack(block: int) -> bytes:
    return struct.pack("!HH", 4, block)


SESSION = {
    "big-lockstep": frames(rrq(b"big.bin"), *(ack(i) for i in range(1, 12))),
    "oack-then-acks": frames(rrq(b"big.bin", b"octet", b"blksize", b"1428", b"tsize", b"0"), ack(0), ack(1),
                             ack(2), ack(1), ack(3)),
    "small-dup-acks": frames(rrq(b"small.cfg"), ack(1), ack(1), ack(2)),
    "exact-with-timeouts": frames(rrq(b"exact.bin"), (ack(1), 0x4000), ack(2), ack(3)),
    "stranger": frames(rrq(b"small.cfg"), (ack(1), 0x8000), ack(1), ack(2)),
    "client-error": frames(rrq(b"big.bin"), struct.pack("!HH", 5, 0) + b"bye\0"),
    "junk-on-session": frames(rrq(b"small.cfg"), b"\0\4\0", b"\x07", b"\0\3\0\1data", ack(1), ack(2)),
    "not-found": frames(rrq(b"missing.cfg")),
    "resolver-raises": frames(rrq(b"boom")),
    "wrq": frames(rrq(b"x.cfg", opcode=2), b"\0\3\0\1hello"),
}
SIP = {
    "snom-subscribe": (b"SUBSCRIBE sip:MAC%3a00135E874B49@intern.snom.de SIP/2.0\r\n"
                       b"Via: SIP/2.0/UDP 192.168.10.67:5060;branch=z9hG4bK1;rport\r\n"
                       b"From: <sip:MAC%3a00135E874B49@intern.snom.de>;tag=658512961\r\n"
                       b"To: <sip:MAC%3a00135E874B49@intern.snom.de>\r\n"
                       b"Call-ID: 1930770594@192.168.10.67\r\nCSeq: 1 SUBSCRIBE\r\n"
                       b'Event: ua-profile;profile-type="device";vendor="OEM";model="OEM";version="7.1.19"\r\n'
                       b"Expires: 0\r\nAccept: application/url\r\nContact: <sip:192.168.10.67:5060>\r\n"
                       b"Content-Length: 0\r\n\r\n"),
    "yealink-subscribe-compact": (b"SUBSCRIBE sip:MAC001565f4f9e1@224.0.1.75 SIP/2.0\r\n"
                                  b"v: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKabc\r\n"
                                  b"f: <sip:MAC001565f4f9e1@224.0.1.75>;tag=1\r\nt: <sip:MAC001565f4f9e1@224.0.1.75>\r\n"
                                  b"i: 77@10.0.0.5\r\nCSeq: 2 SUBSCRIBE\r\no: ua-profile;profile-type=device\r\n"
                                  b"l: 0\r\n\r\n"),
    "notify-response": (b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx\r\n"
                        b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 NOTIFY\r\n"
                        b'WWW-Authenticate: Digest realm="r", nonce="n", qop="auth"\r\nContent-Length: 3\r\n\r\nabc'),
}
VENDOR = {
    # User-Agent NUL path
    "yealink": b"Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01\0805ec0aabb01.cfg",
    "poly": b"FileTransport PolycomVVX-VVX_450-UA/6.4.0.1234 Type/Application\00004f2aabb01-deskprov.cfg",
    "cisco": b"Cisco/SPA504G-7.6.2 (001122334455)\0spa001122334455.xml",
    "grandstream": b"Grandstream Model HW GXP2170 SW 1.0.11.3 DevId 000b82aabb01\0cfg000b82aabb01.xml",
    "fanvil": b"Fanvil X4 2.4.5 0c383e112233\0000c383e112233.cfg",
    "snom": b"Mozilla/4.0 (compatible; snom D785 10.1.73.16)\0000413aabb01.xml",
    "gigaset": b"Gigaset N670 IP PRO/2.52.0 7C2F80AABB01\07C2F80AABB01.xml",
}

if __name__ == "__main__":
    write("tftp_request", TFTP)
    write("tftp_session", SESSION)
    write("sip", SIP)
    write("vendor_matchers", VENDOR)
