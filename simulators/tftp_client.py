"""A small TFTP read client (RFC 1350, options per RFC 2347/2348/2349).

Written here instead of using tftpy because the simulator must be an
independent check on the server (which uses tftpy) and because tftpy's client
mishandles in-memory targets.  Only what a booting phone needs is implemented:
RRQ in octet mode, optional ``blksize``/``tsize`` options, OACK handling,
lock-step ACKs, transfer-ID (port) checks and retransmission on timeout.

The transfer is synchronous socket code; :func:`tftp_get_async` and
:meth:`TftpClient.get_async` run it in a worker thread for asyncio callers.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from dataclasses import dataclass, field

__all__ = [
    "TftpClient",
    "TftpError",
    "TftpProtocolError",
    "TftpResult",
    "TftpTimeout",
    "tftp_get",
    "tftp_get_async",
]

OP_RRQ = 1
OP_WRQ = 2
OP_DATA = 3
OP_ACK = 4
OP_ERROR = 5
OP_OACK = 6

#: RFC 1350 error codes, plus 8 from RFC 2347.
ERROR_MESSAGES = {
    0: "Not defined",
    1: "File not found",
    2: "Access violation",
    3: "Disk full or allocation exceeded",
    4: "Illegal TFTP operation",
    5: "Unknown transfer ID",
    6: "File already exists",
    7: "No such user",
    8: "Option negotiation failed",
}

ERR_NOT_FOUND = 1
ERR_ILLEGAL_OP = 4
ERR_UNKNOWN_TID = 5
ERR_OPTION = 8

MIN_BLKSIZE = 8  # RFC 2348
MAX_BLKSIZE = 65464  # RFC 2348
DEFAULT_BLKSIZE = 512  # RFC 1350


class TftpError(Exception):
    """A failed transfer.

    ``code`` is the TFTP error code (from the server's ERROR packet when
    ``remote`` is true, otherwise the code we sent or would have sent) and
    ``message`` its text.  ``code`` is ``None`` for timeouts.
    """

    def __init__(self, code: int | None, message: str, *, remote: bool = False):
        self.code = code
        self.message = message
        self.remote = remote
        who = "server" if remote else "client"
        super().__init__(f"TFTP error {code} ({who}): {message}")

    @property
    def not_found(self) -> bool:
        """True for "file not found", which is routine on a phone's boot path."""
        return self.remote and self.code == ERR_NOT_FOUND


class TftpTimeout(TftpError):
    """The server stopped answering after all retransmissions."""

    def __init__(self, message: str):
        super().__init__(None, message)
        self.args = (f"TFTP timeout: {message}",)


class TftpProtocolError(TftpError):
    """The server broke the protocol (bad OACK, oversize block, wrong tsize...)."""


@dataclass
class TftpResult:
    """The file plus what was negotiated, so tests can check the server's side."""

    data: bytes
    blksize: int
    tsize: int | None = None
    options: dict[str, str] = field(default_factory=dict)
    blocks: int = 0
    retransmits: int = 0


def _pack_rrq(filename: str, mode: str, options: dict[str, str]) -> bytes:
    parts = [struct.pack("!H", OP_RRQ), filename.encode("utf-8"), b"\0", mode.encode("ascii"), b"\0"]
    for name, value in options.items():
        parts += [name.encode("ascii"), b"\0", value.encode("ascii"), b"\0"]
    return b"".join(parts)


def _pack_ack(block: int) -> bytes:
    return struct.pack("!HH", OP_ACK, block & 0xFFFF)


def _pack_error(code: int, message: str) -> bytes:
    return struct.pack("!HH", OP_ERROR, code) + message.encode("utf-8", "replace") + b"\0"


def _parse_error(pkt: bytes) -> tuple[int, str]:
    if len(pkt) < 4:
        return 0, "truncated ERROR packet"
    code = struct.unpack("!H", pkt[2:4])[0]
    msg = pkt[4:].split(b"\0", 1)[0].decode("utf-8", "replace")
    return code, msg or ERROR_MESSAGES.get(code, "")


def _parse_oack(pkt: bytes) -> dict[str, str]:
    fields = pkt[2:].split(b"\0")
    if fields and fields[-1] == b"":
        fields.pop()
    if len(fields) % 2:
        raise ValueError("OACK has an option without a value")
    out: dict[str, str] = {}
    for i in range(0, len(fields), 2):
        out[fields[i].decode("ascii").lower()] = fields[i + 1].decode("ascii")
    return out


class TftpClient:
    """Reads files from one TFTP server.

    ``timeout`` is the wait per packet before retransmitting the last packet we
    sent; after ``retries`` retransmissions without progress the transfer fails
    with :class:`TftpTimeout`.
    """

    def __init__(
        self,
        host: str,
        port: int = 69,
        *,
        timeout: float = 1.0,
        retries: int = 5,
        max_size: int = 16 * 1024 * 1024,
    ):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.max_size = max_size

    async def get_async(self, filename: str, **kwargs) -> TftpResult:
        """:meth:`get` in a worker thread, for asyncio code."""
        return await asyncio.to_thread(self.get, filename, **kwargs)

    def get(
        self,
        filename: str,
        *,
        blksize: int | None = None,
        tsize: bool = False,
        retry_without_options: bool = True,
    ) -> TftpResult:
        """Download ``filename`` in octet mode.

        If the server refuses the options with error 8 the request is repeated
        once without them, as RFC 2347 allows clients to do.
        """
        if blksize is not None and not MIN_BLKSIZE <= blksize <= MAX_BLKSIZE:
            raise ValueError(f"blksize must be within {MIN_BLKSIZE}..{MAX_BLKSIZE}")
        options: dict[str, str] = {}
        if blksize is not None:
            options["blksize"] = str(blksize)
        if tsize:
            options["tsize"] = "0"
        try:
            return self._transfer(filename, options)
        except TftpError as exc:
            if options and retry_without_options and exc.remote and exc.code == ERR_OPTION:
                return self._transfer(filename, {})
            raise

    def _transfer(self, filename: str, options: dict[str, str]) -> TftpResult:
        family, _, _, _, server_addr = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            return self._run(sock, server_addr, filename, options)
        finally:
            sock.close()

    def _run(self, sock: socket.socket, server_addr, filename: str, options: dict[str, str]) -> TftpResult:
        requested_blksize = int(options.get("blksize", DEFAULT_BLKSIZE))
        bufsize = max(requested_blksize, DEFAULT_BLKSIZE) + 4
        blksize = DEFAULT_BLKSIZE
        tsize: int | None = None
        accepted: dict[str, str] = {}
        oack_seen = False

        data = bytearray()
        expected = 1  # next DATA block number we want (unwrapped)
        blocks = 0
        retransmits = 0
        tid = None  # (ip, port) of the server's transfer socket, learnt from its first reply
        dest = server_addr
        last_packet = _pack_rrq(filename, "octet", options)
        sock.sendto(last_packet, dest)
        tries = 0
        deadline = time.monotonic() + self.timeout

        def fail(code: int, message: str):
            # Tell the server why we give up, so it does not keep retransmitting.
            if tid is not None:
                try:
                    sock.sendto(_pack_error(code, message), tid)
                except OSError:
                    pass
            raise TftpProtocolError(code, message)

        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                tries += 1
                if tries > self.retries:
                    raise TftpTimeout(
                        f"no answer for {filename!r} after {self.retries} retransmissions (block {expected})"
                    )
                sock.sendto(last_packet, dest)
                retransmits += 1
                deadline = time.monotonic() + self.timeout
                continue
            sock.settimeout(remaining)
            try:
                pkt, src = sock.recvfrom(bufsize + 1)
            except (socket.timeout, BlockingIOError):
                continue
            if len(pkt) < 2:
                continue
            opcode = struct.unpack("!H", pkt[:2])[0]

            if tid is None:
                # The first reply picks the server's TID; it must come from the host we asked.
                if src[0] != server_addr[0]:
                    continue
                if opcode == OP_ERROR:
                    code, msg = _parse_error(pkt)
                    raise TftpError(code, msg, remote=True)
                if opcode == OP_OACK or (opcode == OP_DATA and len(pkt) >= 4 and struct.unpack("!H", pkt[2:4])[0] == 1):
                    tid = src
                    dest = src
                else:
                    continue
            elif src[:2] != tid[:2]:
                # RFC 1350: a packet from a foreign TID is answered with error 5 and
                # otherwise ignored; the transfer in progress is not disturbed.
                try:
                    sock.sendto(_pack_error(ERR_UNKNOWN_TID, "Unknown transfer ID"), src)
                except OSError:
                    pass
                continue

            if opcode == OP_ERROR:
                code, msg = _parse_error(pkt)
                raise TftpError(code, msg, remote=True)

            if opcode == OP_OACK:
                if not options:
                    fail(ERR_OPTION, "OACK without requested options")
                if expected != 1:
                    continue  # stale duplicate after the transfer started
                if oack_seen:
                    # Duplicate OACK: our ACK 0 was lost; send it again.
                    sock.sendto(last_packet, dest)
                    continue
                try:
                    offered = _parse_oack(pkt)
                except (ValueError, UnicodeDecodeError):
                    fail(ERR_OPTION, "malformed OACK")
                for name, value in offered.items():
                    if name not in options:
                        fail(ERR_OPTION, f"option {name!r} was not requested")
                    if name == "blksize":
                        if not value.isdigit() or not MIN_BLKSIZE <= int(value) <= requested_blksize:
                            fail(ERR_OPTION, f"bad blksize {value!r}")
                        blksize = int(value)
                    elif name == "tsize":
                        if not value.isdigit():
                            fail(ERR_OPTION, f"bad tsize {value!r}")
                        tsize = int(value)
                        if tsize > self.max_size:
                            fail(ERR_OPTION, f"file too large ({tsize} bytes)")
                accepted = offered
                oack_seen = True
                last_packet = _pack_ack(0)
                sock.sendto(last_packet, dest)
                tries = 0
                deadline = time.monotonic() + self.timeout
                continue

            if opcode == OP_DATA:
                if len(pkt) < 4:
                    continue
                block = struct.unpack("!H", pkt[2:4])[0]
                if block == expected & 0xFFFF:
                    payload = pkt[4:]
                    if len(payload) > blksize:
                        fail(ERR_ILLEGAL_OP, f"block {block} has {len(payload)} bytes, blksize is {blksize}")
                    data += payload
                    if len(data) > self.max_size:
                        fail(ERR_ILLEGAL_OP, "file too large")
                    blocks += 1
                    last_packet = _pack_ack(expected)
                    sock.sendto(last_packet, dest)
                    expected += 1
                    tries = 0
                    deadline = time.monotonic() + self.timeout
                    if len(payload) < blksize:
                        break
                elif blocks and block == (expected - 1) & 0xFFFF:
                    # Our ACK was lost and the server resent the block: ACK again.
                    sock.sendto(last_packet, dest)
                continue

            fail(ERR_ILLEGAL_OP, f"unexpected opcode {opcode}")

        if tsize is not None and tsize != len(data):
            raise TftpProtocolError(ERR_ILLEGAL_OP, f"tsize announced {tsize} bytes, received {len(data)}")
        return TftpResult(
            data=bytes(data), blksize=blksize, tsize=tsize, options=accepted, blocks=blocks, retransmits=retransmits
        )


def tftp_get(
    host: str,
    port: int,
    filename: str,
    *,
    blksize: int | None = None,
    tsize: bool = False,
    timeout: float = 1.0,
    retries: int = 5,
) -> bytes:
    """Download one file and return its bytes; raises :class:`TftpError`."""
    client = TftpClient(host, port, timeout=timeout, retries=retries)
    return client.get(filename, blksize=blksize, tsize=tsize).data


async def tftp_get_async(host: str, port: int, filename: str, **kwargs) -> bytes:
    """:func:`tftp_get` in a worker thread, for asyncio code."""
    return await asyncio.to_thread(tftp_get, host, port, filename, **kwargs)
