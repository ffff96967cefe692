"""atheris harness: the TFTP request parser and option/name policy (provisioning/tftp.py).

One input is one datagram as it arrives on the TFTP port (or, after a 0xFF byte, a description
of one that ``structured`` builds, so that very long option values are reachable). The contract (see GuardedContext._start):
a 4+ byte datagram with opcode RRQ/WRQ is parsed by ``_parse_request`` into a request or
``_Malformed``; its options are negotiated by ``_negotiate`` into a valid subset or ``_BadOption``;
its name passes ``sanitize_filename`` or ``RejectedName``. Anything else escaping is a finding,
as is a negotiated blksize outside 8..65464 or a sanitised name that still traverses.

    python fuzz/fuzz_tftp_request.py -max_total_time=60 fuzz/corpus/tftp_request fuzz/seeds/tftp_request
"""

from __future__ import annotations

import struct
import sys

import _common  # noqa: F401  (sys.path)
import atheris

with atheris.instrument_imports(include=["provisioning"]):
    from provisioning import tftp


_OPTION_NAMES = [b"blksize", b"tsize", b"timeout", b"windowsize", b"BLKSIZE", b"TSize", b"", b"x"]
_MODES = [b"octet", b"netascii", b"OCTET", b"NetAscii", b"mail", b"", b"octet "]


def structured(data: bytes) -> bytes:
    """Build a request from a description: libFuzzer rarely grows a byte string by thousands of
    bytes, so values are a short unit repeated (a 5000-digit blksize is two bytes of input)."""
    fdp = atheris.FuzzedDataProvider(data)
    packet = struct.pack("!H", fdp.PickValueInList([1, 2]))
    packet += fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300)).replace(b"\0", b"") + b"\0"
    packet += fdp.PickValueInList(_MODES) + b"\0"
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        name = fdp.PickValueInList(_OPTION_NAMES)
        unit = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 4)).replace(b"\0", b"") or b"9"
        value = (unit * fdp.ConsumeIntInRange(0, 12_000))[:60_000]
        packet += name + b"\0" + value + b"\0"
    return packet[:65507]


def TestOneInput(data: bytes) -> None:
    if data[:1] == b"\xff":  # a description, not a datagram (a datagram never starts with 0xFF)
        data = structured(data[1:])
    if len(data) < 4 or struct.unpack_from("!H", data)[0] not in (1, 2):
        return
    try:
        request = tftp._parse_request(data)
    except tftp._Malformed:
        return
    if request.opcode not in (1, 2) or request.mode not in ("octet", "netascii"):
        raise _common.Finding(f"parsed a request with opcode {request.opcode} mode {request.mode!r}")
    try:
        options = tftp._negotiate(request.options)
    except tftp._BadOption:
        options = None
    if options is not None:
        if not set(options) <= {"blksize", "tsize"}:
            raise _common.Finding(f"negotiated unsupported options {options}")
        if "blksize" in options and not tftp.MIN_BLKSIZE <= int(options["blksize"]) <= tftp.MAX_BLKSIZE:
            raise _common.Finding(f"blksize out of range: {options}")
        if options.get("tsize", "0") != "0":
            raise _common.Finding(f"tsize must be recomputed by the server: {options}")
    try:
        name = tftp.sanitize_filename(request.filename)
    except tftp.RejectedName:
        return
    if ".." in name.split("/") or "\\" in name or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise _common.Finding(f"sanitised name still hostile: {name!r}")
    if len(name.encode("utf-8", "surrogatepass")) > tftp.MAX_NAME_BYTES:
        raise _common.Finding("sanitised name too long")


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
