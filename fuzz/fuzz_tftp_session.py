"""atheris harness: a whole TFTP session in the hardened tftpy context (provisioning/tftp.py).

Each input is a list of datagrams (see ``frames``): the first is the request that opens a session
on the listening port, the rest arrive on the session's port from the client's transfer ID or,
when the frame says so, from a stranger, optionally with the retransmit timer firing after. The sockets are fakes, so nothing touches the network.
tftpy's ``listen()`` survives only ``TftpException``/``TftpTimeout`` out of ``start()``/``cycle()``/
``checkTimeout()``: anything else would kill the TFTP server and is a finding. So is any packet
the server sends that is larger than a UDP datagram can be.

    python fuzz/fuzz_tftp_session.py -max_total_time=60 fuzz/corpus/tftp_session fuzz/seeds/tftp_session
"""

from __future__ import annotations

import logging
import sys
import time

import _common  # noqa: F401  (sys.path)
import atheris

with atheris.instrument_imports(include=["provisioning", "tftpy"]):
    import tftpy  # noqa: F401
    from tftpy.TftpShared import TftpException, TftpTimeout

    from provisioning import tftp

logging.disable(logging.CRITICAL)
tftp.install_tftpy_shim()

CLIENT = ("127.0.0.1", 40000)
STRANGER = ("127.0.0.9", 40001)
FILES = {"small.cfg": b"x" * 700, "empty.txt": b"", "exact.bin": b"e" * 1024, "big.bin": bytes(range(256)) * 300}


def resolve(name: str, ip: str) -> bytes | None:
    if name == "boom":
        raise RuntimeError("resolver failure")
    return FILES.get(name)


SERVICE = tftp.TftpService("", 0, resolve, max_sessions=4, max_sessions_per_client=2, timeout=0.5, retries=3)


class FakeSocket:
    def __init__(self) -> None:
        self.inbox: list[tuple[bytes, tuple[str, int]]] = []
        self.sent: list[bytes] = []

    def sendto(self, data, addr) -> int:
        if len(data) > 65507:
            raise _common.Finding(f"server sent a {len(data)}-byte datagram")
        self.sent.append(bytes(data))
        return len(data)

    def recvfrom(self, size: int):
        if not self.inbox:
            raise BlockingIOError
        data, addr = self.inbox.pop(0)
        return data[:size], addr

    def bind(self, addr) -> None:
        pass

    def close(self) -> None:
        pass

    def fileno(self) -> int:
        return -1


def frames(data: bytes):
    """The input as datagrams: each is a 2-byte big-endian header, then its payload. Header bits:
    0x8000 from a stranger's address, 0x4000 let the retransmit timer fire after it, 0x0FFF length."""
    at = 0
    while at + 2 <= len(data):
        header = int.from_bytes(data[at:at + 2], "big")
        at += 2
        length = header & 0x0FFF
        yield data[at:at + length], bool(header & 0x8000), bool(header & 0x4000)
        at += length


def TestOneInput(data: bytes) -> None:
    packets = list(frames(data))[:10]
    if not packets:
        return
    context = tftp.GuardedContext(CLIENT[0], CLIENT[1], 0.5, "/nonexistent", SERVICE._dyn_file, tftp._refuse_upload,
                                  retries=3)
    context.sock.close()
    context.sock = FakeSocket()
    try:
        try:
            context.start(packets[0][0])
        except (TftpException, TftpTimeout):
            return
        for packet, stranger, expire in packets[1:]:
            context.sock.inbox.append((packet, STRANGER if stranger else (CLIENT[0], context.tidport)))
            try:
                context.cycle()
                if expire:
                    context.checkTimeout(time.time() + 1.0)
            except (TftpException, TftpTimeout):
                return
            if context.state is None:
                return
    finally:
        context.end()
        if SERVICE.active_sessions != 0:
            raise _common.Finding(f"session bookkeeping leaked: {SERVICE.active_sessions} live")


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
