"""Read-only TFTP service for desk phones, built on tftpy 0.8.7 in a dedicated thread.

tftpy is a blocking, single-threaded ``select()`` loop.  It runs here in its own thread beside
the asyncio app.  tftpy's ``listen()`` keeps what it is good at: the listening socket, one
socket per transfer (the transfer ID), the session table, the select loop and the timeout
sweep.  What happens inside a session is :class:`GuardedContext`'s, which subclasses tftpy's
server context and is installed into tftpy's server module namespace, because ``listen()``
looks the context class up there.  The tftpy root is an empty private temp directory, so
tftpy's own static serving, path handling, symlink following and uploads never apply.

Serving under load (issue 9):

* **No head-of-line blocking.**  ``resolve(name, client_ip)`` may answer at once (bytes or
  None) or hand back a ``concurrent.futures.Future`` (the server's renders run on the asyncio
  loop).  The session then just waits: ``listen()`` keeps serving every other transfer.  When
  the future is done, its callback sends one datagram from the service's *wake socket* to the
  session's own socket, so ``select()`` returns and ``cycle()`` continues the transfer at once.
  A resolve that takes longer than ``resolve_timeout`` gets ERROR 0 "service unavailable" and
  its future is cancelled; so does :class:`TftpUnavailable` (the database is down).
* **windowsize (RFC 7440)** next to blksize (RFC 2348) and tsize (RFC 2349): up to
  ``windowsize`` DATA blocks are sent before an ACK is awaited; an ACK inside the window starts
  the next window after it; a repeated ACK (the client saw a gap) resends the window once;
  block numbers roll over to 0 after 65535.
* **Retransmission with bounded exponential backoff**: the first retransmission after
  ``timeout``, then 2x, 4x ... up to 8x ``timeout``; the session is dropped after ``retries``
  timeouts.  Duplicate ACKs are never answered (Sorcerer's Apprentice).
* **Session caps** globally and per client IP (ERROR 0 "server busy"; tftpy cannot encode
  error code 0).
* tftpy's ``listen()`` formats its whole session table with ``%`` after every finished
  transfer and every session on every new request, even with logging off; the table and the
  contexts get constant-cost ``repr``/``str`` so that costs nothing under a boot storm.

The hardening against tftpy 0.8.7 bugs where a single UDP packet kills ``listen()`` (see
``/work/shared/reference/libraries.md`` §1) stays:

* the initial request is parsed here, so non-ASCII names or options, a missing NUL, an odd
  option list or ``blksize=abc`` get an ERROR packet instead of an exception out of ``listen()``;
* WRQ is refused (ERROR 2); the filename policy applies (ERROR 1);
* ``flock`` is off so tftpy's stock path may serve ``io.BytesIO`` (tftpy issue #155);
* ``blksize`` is clamped to the RFC 2348 maximum of 65464 (tftpy allows 65536, whose DATA
  packet fails ``sendto`` with EMSGSIZE and killed ``listen()``);
* the OACK carries only the options the client asked for (tftpy always adds ``blksize=512``,
  which breaks RFC 2347);
* packets on a session socket from anyone but the client's transfer ID get ERROR 5 (RFC 1350);
  junk from the client is ignored (in tftpy a 3-byte "ACK" from *any* host killed ``listen()``);
* the ``select`` module reference in tftpy's server module is replaced with a ``poll()``-based
  equivalent, so a file descriptor >= 1024 anywhere in the process no longer kills the server.

A restart loop remains as a safety net.  If ``listen()`` still raises, the exception is logged,
the sockets are closed and the service listens again on the same port.

These fixes reach into tftpy internals.  :func:`check_tftpy_compat` fails loudly if they
change, so ``tftpy`` stays pinned to 0.8.7.
"""

from __future__ import annotations

import asyncio
import importlib
import io
import logging
import select
import shutil
import socket
import struct
import tempfile
import threading
import time
import types
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable, NoReturn

import tftpy
from tftpy.TftpContexts import TftpContext, TftpContextServer
from tftpy.TftpShared import TftpException, TftpTimeout

__all__ = ["TftpService", "GuardedContext", "check_tftpy_compat", "install_tftpy_shim",
           "sanitize_filename", "RejectedName", "TftpUnavailable"]

log = logging.getLogger("deskprov.tftp")

#: The tftpy release this shim was written and tested against.
TFTPY_VERSION = "0.8.7"

# The *module* tftpy.TftpServer (the package attribute of the same name is the class).
_server_mod = importlib.import_module("tftpy.TftpServer")

#: ``resolve(name, client_ip)``: the bytes, None (not found), or a concurrent.futures.Future of
#: either, for answers that take a database round trip (see :class:`TftpService`).
Resolver = Callable[[str, str], "bytes | None | Future"]

_RRQ, _WRQ, _DATA, _ACK, _ERROR, _OACK = 1, 2, 3, 4, 5, 6
_ERR_UNDEFINED, _ERR_NOT_FOUND, _ERR_ACCESS, _ERR_ILLEGAL, _ERR_TID, _ERR_OPTIONS = 0, 1, 2, 4, 5, 8

MAX_NAME_BYTES = 255
MIN_BLKSIZE = 8
MAX_BLKSIZE = 65464  # RFC 2348; the largest block whose DATA packet fits into one UDP datagram
MAX_WINDOWSIZE = 64  # RFC 7440 allows 65535; more than this only floods the client's buffer
_MAX_BACKOFF = 8     # the retransmit interval doubles up to this many times the base timeout
_RECV_SIZE = 65536
_MODES = ("octet", "netascii")  # netascii is served as binary, like tftpy does
_RESOLVING, _OACK_SENT, _SENDING = "resolving", "oack sent", "sending"  # a session's phases


# --------------------------------------------------------------------------------------------
# Request parsing and policy: pure functions
# --------------------------------------------------------------------------------------------

class _Malformed(Exception):
    """The initial request cannot be parsed: answered with ERROR 4."""


class _BadOption(Exception):
    """An option value we cannot honour: answered with ERROR 8."""


class RejectedName(Exception):
    """A requested filename is hostile.  The client gets ERROR 1 and resolve() is not called."""


class _ResolveFailed(Exception):
    """resolve() raised or returned garbage: answered with ERROR 0 "internal error"."""


class TftpUnavailable(Exception):
    """Raised by resolve() (or its future) when the answer cannot be had right now (database
    down): the client gets ERROR 0 "service unavailable" and retries later, as phones do."""


@dataclass(frozen=True)
class _Request:
    opcode: int
    filename: str
    mode: str
    options: dict[str, str]


def _parse_request(buf: bytes) -> _Request:
    """Parse an RRQ/WRQ datagram.  Option names are lower-cased (RFC 2347: case-insensitive)."""
    opcode = struct.unpack_from("!H", buf)[0]
    if not buf.endswith(b"\0"):
        raise _Malformed("request is not NUL-terminated")
    fields = buf[2:-1].split(b"\0")
    if len(fields) < 2:
        raise _Malformed("request has no mode")
    raw_name, raw_mode, rest = fields[0], fields[1], fields[2:]
    while len(rest) % 2 and rest[-1] == b"":  # tolerate trailing NUL padding
        rest.pop()
    if len(rest) % 2:
        raise _Malformed("odd number of option fields")
    try:
        name = raw_name.decode("ascii")
        mode = raw_mode.decode("ascii").lower()
        options = {k.decode("ascii").lower(): v.decode("ascii")
                   for k, v in zip(rest[0::2], rest[1::2]) if k}
    except UnicodeDecodeError as exc:
        raise _Malformed(f"non-ASCII bytes in request: {exc.object[exc.start:exc.end]!r}") from None
    if mode not in _MODES:
        raise _Malformed(f"unsupported mode {mode!r}")
    return _Request(opcode, name, mode, options)


def _number_option(options: dict[str, str], name: str, lowest: int, highest: int) -> str:
    """The option's value clamped to ``highest``; ERROR 8 for anything but digits >= lowest."""
    value = options[name]
    if not (value.isascii() and value.isdigit()):
        raise _BadOption(f"invalid {name} {value[:20]!r}")
    # Any number of digits may arrive (int() refuses more than 4300): a value that long is
    # above the maximum anyway, and RFC 2348/7440 let the server answer with a smaller one.
    digits = value.lstrip("0")
    number = int(digits or "0") if len(digits) <= 6 else highest
    if number < lowest:
        raise _BadOption(f"invalid {name} {value[:20]!r}")
    return str(min(number, highest))


def _negotiate(options: dict[str, str]) -> dict[str, str]:
    """Keep the options we serve (blksize, tsize, windowsize), validated and clamped."""
    accepted: dict[str, str] = {}
    if "blksize" in options:
        accepted["blksize"] = _number_option(options, "blksize", MIN_BLKSIZE, MAX_BLKSIZE)
    if "tsize" in options:
        accepted["tsize"] = "0"  # replaced by the real size once the file is known
    if "windowsize" in options:
        accepted["windowsize"] = _number_option(options, "windowsize", 1, MAX_WINDOWSIZE)
    return accepted


def sanitize_filename(raw: str) -> str:
    """Apply the pre-resolve policy and return the name resolve() receives.

    Rejects (:class:`RejectedName`) names longer than 255 bytes, names with NUL, control
    characters or backslashes, names with a ``..`` path segment, and names with nothing but
    slashes and dots.  One leading ``/`` is stripped.  Everything else is passed through
    untouched: the real policy belongs to resolve().
    """
    if len(raw.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise RejectedName("name too long")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise RejectedName("control character in name")
    if "\\" in raw:
        raise RejectedName("backslash in name")
    name = raw[1:] if raw.startswith("/") else raw
    segments = name.split("/")
    if ".." in segments:
        raise RejectedName("'..' path segment")
    if all(seg in ("", ".") for seg in segments):
        raise RejectedName("empty name")
    return name


def _error_packet(code: int, message: str) -> bytes:
    return struct.pack("!HH", _ERROR, code) + message.encode("ascii", "replace") + b"\0"


# --------------------------------------------------------------------------------------------
# The shim
# --------------------------------------------------------------------------------------------

class GuardedContext(TftpContextServer):
    """tftpy's server context, hardened, with deskprov's own read-only transfer.

    Sessions of a :class:`TftpService` get the full treatment described in the module
    docstring: tftpy's ``listen()`` still owns the sockets, the session table and the timer
    sweep, but the RRQ, the (possibly deferred) resolve and the windowed sending are done here.
    Any other user of ``tftpy.TftpServer`` in the process gets tftpy's stock behaviour, except
    that unexpected exceptions become ``TftpException`` (ending only that session instead of
    ``listen()``) and ``flock`` is off.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.flock = False  # BytesIO has no fd/name; a read-only server needs no locks
        owner = getattr(self.dyn_file_func, "__self__", None)
        self._service: TftpService | None = owner if isinstance(owner, TftpService) else None
        self._name: str | bytes | None = None  # bytes: raw head of a malformed request
        self._outcome: str | None = None
        self._logged = False
        self._ended = False
        self._phase = _RESOLVING
        self._pending: Future | None = None
        self._data = b""
        self._blksize = 512
        self._window = 1
        self._blocks = 0      # DATA blocks in the file (the last one is short, maybe empty)
        self._acked = 0       # highest block the client has acknowledged (absolute, no rollover)
        self._sent = 0        # highest block sent so far in the current window
        self._oack = b""
        self._deadline = 0.0  # wall clock (as tftpy's listen() passes it) of the next timeout
        self._rto = self.timeout
        self._tries = 0
        self._nack_resent = False
        if self._service is not None:
            svc = self._service
            # Bound now, not at the first sendto: a session waiting for its resolve must already
            # have a port the wake-up datagram can reach.  Replies leave from the address the
            # phone talked to.
            self.sock.bind((svc._bind_ip or "", 0))
            svc._session_opened(self.host)

    def __str__(self) -> str:
        # listen() formats every session with "%" on every new request, even with INFO off:
        # keep it cheap (tftpy's own __str__ formats the state object too).
        return f"{self.host}:{self.port}"

    # -- tftpy entry points -------------------------------------------------------------------

    def start(self, buffer: bytes) -> None:
        self.metrics.start_time = self.last_update = time.time()
        if self._service is None:
            return _guarded(super().start, buffer)
        try:
            self._start(self._service, buffer)
        except TftpTimeout:
            raise
        except TftpException as exc:
            self._outcome = self._outcome or f"failed: {exc}"
            raise
        except Exception as exc:  # a bug here or in tftpy: end this session, not listen()
            log.warning("TFTP request from %s:%s failed unexpectedly", self.host, self.port,
                        exc_info=True)
            self._refuse(_ERR_UNDEFINED, "internal error", f"unexpected {exc!r}", logged=True)

    def cycle(self) -> None:
        if self._service is None:
            return _guarded(super().cycle)
        try:
            buffer, (raddress, rport) = self.sock.recvfrom(_RECV_SIZE)
        except OSError as exc:  # spurious wake-up or a queued ICMP error: nothing to do
            log.debug("recvfrom on session %s:%s: %r", self.host, self.port, exc)
            return
        if (raddress, rport) == self._service._waker_addr:
            if self._phase == _RESOLVING:  # the resolve finished on the event loop
                self._guard_step(self._resolved)
            return
        if raddress != self.address or rport != self.tidport:
            if not buffer.startswith(b"\0\5"):  # never answer an ERROR
                self._send_raw(_error_packet(_ERR_TID, "Unknown transfer ID"), (raddress, rport))
            return
        if len(buffer) < 4:
            log.debug("ignoring %d-byte packet from %s:%s", len(buffer), raddress, rport)
            return
        opcode, number = struct.unpack_from("!HH", buffer)
        if opcode == _ERROR:
            text = buffer[4:].split(b"\0", 1)[0].decode("ascii", "replace")
            self._outcome = f"aborted by client (error {number} {text!r})"
            raise TftpException(self._outcome)
        if opcode != _ACK:
            log.debug("ignoring opcode %d from %s:%s", opcode, raddress, rport)
            return
        self.last_update = time.time()
        self._guard_step(self._on_ack, number)

    def checkTimeout(self, now: float) -> None:
        if self._service is None:
            return super().checkTimeout(now)
        if now < self._deadline:
            return
        if self._phase == _RESOLVING:
            if self._deadline:
                self._expire("resolve timed out")
                self._send_raw(_error_packet(_ERR_UNDEFINED, "service unavailable"))
                log.warning("resolve(%r, %r) did not finish within %.1f s: ERROR 0 sent",
                            self._name, self.host, self._service.resolve_timeout)
                self._logged = True
                raise TftpTimeout("resolve timed out")
            return
        if self._tries + 1 >= self.retries:
            self._expire("timed out")
            raise TftpTimeout("Timeout waiting for traffic")  # listen() logs it; filtered
        self._tries += 1
        self._rto = min(self._rto * 2, self._service._max_rto)
        self._retransmit(now)

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()  # nobody waits for it any more
        try:
            super().end()
        finally:
            if self._service is not None:
                self._service._session_closed(self.host)
                self._log_outcome()

    # -- the request --------------------------------------------------------------------------

    def _start(self, svc: TftpService, buffer: bytes) -> None:
        self.tidport = self.port
        opcode = struct.unpack_from("!H", buffer)[0] if len(buffer) >= 4 else None
        if opcode not in (_RRQ, _WRQ):  # runt, garbage, or DATA/ACK/ERROR to the listening port
            self._outcome, self._logged = "junk ignored", True
            log.debug("ignoring %d-byte non-request from %s:%s", len(buffer), self.host, self.port)
            raise TftpException("not a request")  # no reply: don't amplify junk
        try:
            req = _parse_request(buffer)
        except _Malformed as exc:
            self._name = bytes(buffer[2:66])  # log what arrived
            self._refuse(_ERR_ILLEGAL, "Illegal TFTP operation", f"malformed request: {exc}")
        self._name = req.filename
        if req.opcode == _WRQ:
            self._refuse(_ERR_ACCESS, "Access violation", "upload refused (server is read-only)")
        if not svc._has_capacity(self.host):
            svc._note_busy(self.host, req.filename)
            self._refuse(_ERR_UNDEFINED, "server busy", "server busy", logged=True)
        try:
            self.options = _negotiate(req.options)
        except _BadOption as exc:
            self._refuse(_ERR_OPTIONS, "Failed to negotiate options", str(exc))
        try:
            name = sanitize_filename(req.filename)
        except RejectedName as exc:
            self._refuse(_ERR_NOT_FOUND, "File not found", f"rejected name ({exc})")
        self._name = name
        try:
            answer = svc._resolve_now(name, self.host)
        except _ResolveFailed as exc:
            self._refuse_resolve(exc)
        if isinstance(answer, Future):
            self._pending = answer
            self._deadline = self.last_update + svc.resolve_timeout
            if answer.done():
                return self._resolved()
            waker, target = svc._wake_session, self._wake_target()
            answer.add_done_callback(lambda _f: waker(target))
            return  # listen() serves the others; cycle() continues when the wake-up arrives
        self._begin(answer)

    def _wake_target(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return (host if host not in ("", "0.0.0.0") else "127.0.0.1", port)

    def _resolved(self) -> None:
        future, self._pending = self._pending, None
        try:
            answer = self._service._checked(future.result(), self._name, self.host)
        except TftpUnavailable as exc:
            self._refuse(_ERR_UNDEFINED, "service unavailable", f"unavailable ({exc})")
        except _ResolveFailed as exc:
            self._refuse_resolve(exc)
        except BaseException as exc:  # the resolve raised (CancelledError is a BaseException)
            log.error("resolve(%r, %r) raised", self._name, self.host, exc_info=exc)
            self._refuse_resolve(_ResolveFailed(repr(exc)))
        self._begin(answer)

    def _refuse_resolve(self, exc: BaseException) -> NoReturn:
        if isinstance(exc.__cause__, TftpUnavailable):
            self._refuse(_ERR_UNDEFINED, "service unavailable", f"unavailable ({exc.__cause__})")
        self._refuse(_ERR_UNDEFINED, "internal error", "resolve failed", logged=True)

    # -- sending ------------------------------------------------------------------------------

    def _begin(self, data: bytes | None) -> None:
        if data is None:
            self._outcome, self._logged = "not found", True  # _checked logged it
            self._send_raw(_error_packet(_ERR_NOT_FOUND, "File not found"))
            raise TftpException("File not found")
        self._data = data
        self._blksize = int(self.options.get("blksize", 512))
        self._window = int(self.options.get("windowsize", 1))
        self._blocks = len(data) // self._blksize + 1
        self.file_to_transfer = self._name
        if "tsize" in self.options:
            self.options["tsize"] = str(len(data))
        self.state = self._phase = _SENDING
        now = time.time()
        if self.options:  # only the options the client asked for (RFC 2347)
            self._oack = struct.pack("!H", _OACK) + b"".join(
                k.encode() + b"\0" + v.encode() + b"\0" for k, v in self.options.items())
            self._phase = _OACK_SENT
            self._send_raw(self._oack)
            self._arm(now)
        else:
            self._send_window(now)

    def _on_ack(self, number: int) -> None:
        now = time.time()
        if self._phase == _OACK_SENT:
            if number == 0:
                self._phase = _SENDING
                self._progress()
                self._send_window(now)
            return
        if self._phase != _SENDING:
            return
        # Which of the blocks in flight does it acknowledge?  16-bit numbers roll over to 0.
        delta = (number - self._acked) & 0xFFFF
        if 0 < delta <= self._sent - self._acked:
            self._acked += delta
            self._progress()
            if self._acked >= self._blocks:
                self.metrics.bytes = len(self._data)
                self.state = None  # done: listen() ends the session
                return
            if self._acked == self._sent or self._window > 1:
                # A whole window, or (RFC 7440) part of one: the next window starts after it.
                self._send_window(now)
        elif delta == 0 and self._window > 1 and not self._nack_resent:
            # The client saw a gap (RFC 7440): it repeats its last good ACK.  Resend once per
            # window so that a burst of such ACKs does not multiply the traffic.
            self._nack_resent = True
            self.metrics.resent_bytes += self._send_window(now)
        else:  # a duplicate or stale ACK: never answer it (Sorcerer's Apprentice)
            self.metrics.dupcount += 1

    def _progress(self) -> None:
        self._tries, self._rto, self._nack_resent = 0, self.timeout, False

    def _send_window(self, now: float) -> int:
        """Send blocks acked+1 .. acked+window; return the bytes sent."""
        first = self._acked + 1
        last = min(self._acked + self._window, self._blocks)
        size, data, sent = self._blksize, self._data, 0
        for block in range(first, last + 1):
            packet = struct.pack("!HH", _DATA, block & 0xFFFF) + data[(block - 1) * size:block * size]
            self._send_raw(packet)
            sent += len(packet)
        self._sent = last
        self._arm(now)
        return sent

    def _retransmit(self, now: float) -> None:
        if self._phase == _OACK_SENT:
            self.metrics.resent_bytes += len(self._oack)
            self._send_raw(self._oack)
            self._arm(now)
        else:
            self.metrics.resent_bytes += self._send_window(now)

    def _arm(self, now: float) -> None:
        self._deadline = now + self._rto

    def _expire(self, reason: str) -> None:
        self._outcome = self._outcome or reason
        # listen() adds one and deletes the session once retry_count >= retries (and would call
        # state.resendLast() otherwise, which our sessions do not have).
        self.retry_count = self.retries - 1

    # -- helpers ------------------------------------------------------------------------------

    def _guard_step(self, step, *args) -> None:
        try:
            step(*args)
        except (TftpException, TftpTimeout):
            raise
        except Exception as exc:  # e.g. OSError from sendto: end this session only
            self._outcome = f"failed: {exc!r}"
            raise TftpException(self._outcome) from exc

    def _refuse(self, code: int, message: str, reason: str, *, logged: bool = False) -> NoReturn:
        self._send_raw(_error_packet(code, message))
        self._outcome = reason
        if not logged:
            log.info("refused %r from %s:%s: %s", self._name, self.host, self.port, reason)
        self._logged = True
        raise TftpException(reason)

    def _send_raw(self, data: bytes, addr: tuple[str, int] | None = None) -> None:
        try:
            self.sock.sendto(data, addr or (self.host, self.tidport or self.port))
        except OSError as exc:
            log.debug("sendto %s failed: %r", addr or self.host, exc)

    def _log_outcome(self) -> None:
        if self.state is None and self._outcome is None:
            m = self.metrics
            log.info("sent %r to %s:%s (%d bytes, blksize %d, windowsize %d, %.2fs)", self._name,
                     self.host, self.port, m.bytes, self._blksize, self._window,
                     m.end_time - m.start_time)
        elif self._outcome is not None and not self._logged:
            log.info("transfer of %r to %s:%s %s", self._name, self.host, self.port,
                     self._outcome)
        else:
            log.debug("session %s:%s closed (%s)", self.host, self.port, self._outcome)


def _guarded(fn, *args):
    try:
        return fn(*args)
    except TftpException:
        raise
    except Exception as exc:
        raise TftpException(f"unexpected {exc!r}") from exc


def _poll_select(rlist, wlist, xlist, timeout=None):
    """``select.select`` for read lists, built on ``poll()``, so it works for fds >= FD_SETSIZE."""
    if wlist or xlist:
        return select.select(rlist, wlist, xlist, timeout)
    poller = select.poll()
    by_fd = {}
    for obj in rlist:
        fd = obj.fileno()
        if fd >= 0:
            by_fd[fd] = obj
            poller.register(fd, select.POLLIN)
    events = poller.poll(None if timeout is None else max(0, int(timeout * 1000)))
    readable = select.POLLIN | select.POLLERR | select.POLLHUP
    return [by_fd[fd] for fd, ev in events if ev & readable and fd in by_fd], [], []


class _TftpyNoise(logging.Filter):
    """Drop tftpy's ERROR records for routine events; GuardedContext logs those at INFO."""

    _PREFIXES = ("Fatal exception thrown from session", "Timeout waiting for traffic",
                 "ERR packet - errorcode", "Received ERR packet from peer")
    #: A phone repeating its RRQ while the first one is still being resolved: routine.
    _ANY_LEVEL = ("received traffic on main socket for existing session",)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith(self._ANY_LEVEL):
            return False
        return record.levelno < logging.ERROR or not message.startswith(self._PREFIXES)


class _SessionTable(dict):
    """tftpy's session dict with a constant-cost repr: ``listen()`` formats the whole table with
    "%" after every finished session, even with DEBUG off (quadratic under a boot storm)."""

    def __repr__(self) -> str:
        return f"<{len(self)} TFTP sessions>"

    __str__ = __repr__


_NOISY_LOGGERS = ("tftpy.TftpServer", "tftpy.TftpStates", "tftpy.TftpPacketTypes",
                  "tftpy.TftpContext")
_shim_lock = threading.Lock()


def check_tftpy_compat() -> None:
    """Raise RuntimeError if tftpy no longer has the internals the shim relies on."""
    problems = []

    def need(owner, attr: str, where: str) -> None:
        if not hasattr(owner, attr):
            problems.append(f"{where} has no {attr!r}")

    need(_server_mod, "TftpContextServer", "module tftpy.TftpServer")
    need(_server_mod, "select", "module tftpy.TftpServer")
    listen = getattr(getattr(_server_mod, "TftpServer", None), "listen", None)
    names = set(getattr(getattr(listen, "__code__", None), "co_names", ()))
    for name in ("TftpContextServer", "select", "sessions", "start", "cycle", "checkTimeout",
                 "end", "is_running", "listenport", "shutdown_immediately"):
        if name not in names:
            problems.append(f"TftpServer.listen() no longer uses {name!r}")
    base = getattr(_server_mod, "TftpContextServer", None)
    if base is not None and not (isinstance(base, type) and issubclass(base, TftpContextServer)):
        problems.append("tftpy.TftpServer.TftpContextServer is not a TftpContextServer")
    ctx_names = set(TftpContext.__init__.__code__.co_names)
    for attr in ("sock", "flock", "state", "metrics", "tidport", "last_update", "options",
                 "retry_count", "retries", "timeout", "fileobj"):
        if attr not in ctx_names:
            problems.append(f"TftpContext no longer sets {attr!r}")
    server_init = set(getattr(getattr(_server_mod.TftpServer, "__init__", None), "__code__",
                              types.SimpleNamespace(co_names=())).co_names)
    if "sessions" not in server_init:
        problems.append("TftpServer.__init__() no longer sets 'sessions'")
    if problems:
        raise RuntimeError(
            f"tftpy {getattr(tftpy, '__version__', '?')} is incompatible with deskprov's TFTP "
            f"hardening shim (written for {TFTPY_VERSION}): " + "; ".join(problems))


def install_tftpy_shim() -> None:
    """Check tftpy, then install GuardedContext, the poll()-based select, and the log filters."""
    with _shim_lock:
        if _server_mod.TftpContextServer is GuardedContext:
            return
        check_tftpy_compat()
        if getattr(tftpy, "__version__", None) != TFTPY_VERSION:
            log.warning("tftpy %s is not the tested %s; TFTP hardening may be incomplete",
                        getattr(tftpy, "__version__", "?"), TFTPY_VERSION)
        if hasattr(select, "poll"):
            _server_mod.select = types.SimpleNamespace(select=_poll_select, deskprov_poll=True)
        noise = _TftpyNoise()
        for name in _NOISY_LOGGERS:
            logging.getLogger(name).addFilter(noise)
        tftpy_log = logging.getLogger("tftpy")
        if tftpy_log.level == logging.NOTSET:  # respect an explicit operator setting
            tftpy_log.setLevel(logging.WARNING)
        _server_mod.TftpContextServer = GuardedContext


def _refuse_upload(path, context):  # tftpy upload_open: None => ERROR 2 Access violation
    return None


# --------------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------------

class TftpService:
    """Read-only TFTP server (tftpy 0.8.7, hardened) on its own thread beside asyncio.

    ``resolve(name, client_ip)`` runs on the TFTP thread.  It gets the requested name with one
    leading ``/`` stripped, after hostile names (``..`` segments, backslashes, control
    characters, > 255 bytes) have been refused.  It returns the bytes to serve, None for
    ERROR 1 "File not found", or a ``concurrent.futures.Future`` of either when the answer
    needs work elsewhere (a render on the event loop): that session then waits, without
    holding up any other, until the future is done (a datagram from the service's wake socket
    tells ``listen()``), or ``resolve_timeout`` passes.  If resolve (or the future) raises
    :class:`TftpUnavailable` the client gets ERROR 0 "service unavailable"; anything else
    raised gives ERROR 0 "internal error", and the server keeps running.

    ``blksize`` (8..65464), ``tsize`` and ``windowsize`` (1..64, RFC 7440) are negotiated.
    ``timeout`` is tftpy's select timeout and the first retransmit interval, which doubles
    with every retransmission (up to 8x); after ``retries`` timeouts a session is dropped.
    """

    def __init__(self, host: str, port: int, resolve: Resolver, *, max_sessions: int = 500,
                 max_sessions_per_client: int = 20, timeout: float = 0.5,
                 retries: int = 5, resolve_timeout: float = 10.0) -> None:
        if max_sessions < 1 or max_sessions_per_client < 1:
            raise ValueError("session caps must be >= 1")
        if timeout <= 0 or retries < 1 or resolve_timeout <= 0:
            raise ValueError("timeouts must be > 0 and retries >= 1")
        self.resolve_timeout = resolve_timeout
        self._max_rto = timeout * _MAX_BACKOFF
        self._waker: socket.socket | None = None
        self._waker_addr: tuple[str, int] | None = None
        self.host = host
        self.port = port
        self.restarts = 0
        self.max_sessions = max_sessions
        self.max_sessions_per_client = max_sessions_per_client
        self._resolve = resolve
        self._timeout = timeout
        self._retries = retries
        self._bind_ip = host if host not in ("", "0.0.0.0") else None
        self._root: str | None = None
        self._thread: threading.Thread | None = None
        self._server: tftpy.TftpServer | None = None
        self._start_error: BaseException | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._live = 0
        self._live_by_ip: Counter[str] = Counter()
        self._busy_logged_at = 0.0
        self._busy_suppressed = 0

    @property
    def session_lifetime(self) -> float:
        """Seconds a session whose client went silent is kept: ``retries`` timeouts, backing off."""
        return sum(min(self._timeout * 2 ** k, self._max_rto) for k in range(self._retries))

    @property
    def active_sessions(self) -> int:
        """Number of open TFTP sessions (including ones being refused right now)."""
        return self._live

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start serving; returns once the socket is bound (self.port is then real)."""
        if self._thread is not None:
            raise RuntimeError("TftpService already started")
        install_tftpy_shim()
        self._root = tempfile.mkdtemp(prefix="deskprov-tftp-")
        self._waker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._waker.bind((self._bind_ip or "127.0.0.1", 0))
        self._waker.setblocking(False)
        self._waker_addr = self._waker.getsockname()[:2]
        self._stopping.clear()
        self._start_error = None
        self._server = None
        self._thread = threading.Thread(target=self._run, name="deskprov-tftp", daemon=True)
        self._thread.start()
        try:
            await asyncio.to_thread(self._wait_bound, 5.0)
        except BaseException:
            await self.stop()
            raise
        log.info("TFTP serving on %s:%d", self.host or "0.0.0.0", self.port)

    async def stop(self) -> None:
        """Stop serving, drop open sessions, join the thread (<= 2 s) and remove the root."""
        thread = self._thread
        if thread is None:
            return
        with self._lock:
            self._stopping.set()
            server = self._server
        if server is not None:
            server.stop(now=True)
            self._wake(server)
        await asyncio.to_thread(thread.join, 2.0)
        if thread.is_alive():
            log.warning("TFTP thread did not stop within 2 s (blocked in resolve?)")
        self._thread = self._server = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
        if self._waker is not None:
            self._waker.close()
            self._waker = self._waker_addr = None

    def _wait_bound(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            server = self._server
            if server is not None and server.is_running.wait(0.02):
                self.port = server.listenport
                return
            if self._start_error is not None:
                raise self._start_error
            if not self._thread.is_alive():
                raise RuntimeError("TFTP thread exited during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError("TFTP server did not bind within %.1f s" % timeout)
            if server is None:
                time.sleep(0.01)

    def _run(self) -> None:
        port, ever_bound, quick_crashes = self.port, False, 0
        while True:
            server = tftpy.TftpServer(self._root, dyn_file_func=self._dyn_file,
                                      upload_open=_refuse_upload)
            server.sessions = _SessionTable()
            with self._lock:
                if self._stopping.is_set():
                    return
                self._server = server
            began = time.monotonic()
            try:
                server.listen(self.host, port, timeout=self._timeout, retries=self._retries)
                return  # stop() was called
            except Exception as exc:
                bound = server.is_running.is_set()
                port = server.listenport or port
                if not ever_bound and not bound:
                    self._start_error = exc  # start() re-raises it (e.g. port in use)
                    return
                if self._stopping.is_set():
                    return
                if bound:
                    self.restarts += 1
                    log.exception("TFTP listen loop crashed; restarting on port %d (restart #%d)",
                                  port, self.restarts)
                else:
                    log.error("cannot re-bind TFTP port %d: %r; retrying", port, exc)
            finally:
                ever_bound = ever_bound or server.is_running.is_set()
                self._abandon(server)
            quick_crashes = quick_crashes + 1 if time.monotonic() - began < 30 else 1
            if self._stopping.wait(min(0.05 * 2 ** (quick_crashes - 1), 5.0)):
                return

    @staticmethod
    def _abandon(server: tftpy.TftpServer) -> None:
        """Close whatever a (crashed or stopped) tftpy server still holds."""
        for ctx in list(server.sessions.values()):
            try:
                ctx.end()
            except Exception:
                log.debug("error ending session %s", ctx, exc_info=True)
        server.sessions.clear()
        if server.sock is not None:
            server.sock.close()
        server.is_running.clear()

    def _wake(self, server: tftpy.TftpServer) -> None:
        """Send one runt datagram so listen() leaves select() now, not after `timeout`."""
        if not server.listenport:
            return
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"\0", (self._bind_ip or "127.0.0.1", server.listenport))
        except OSError:
            pass

    # -- called on the TFTP thread ------------------------------------------------------------

    def _dyn_file(self, filename: str, raddress: str | None = None, rport: int | None = None):
        """tftpy's dyn_file_func.  Our sessions never call it (they resolve themselves); it
        marks tftpy contexts as this service's (GuardedContext looks at its ``__self__``)."""
        data = self._checked(self._resolve_now(filename, raddress), filename, raddress)
        return None if data is None else io.BytesIO(data)

    def _resolve_now(self, name: str, ip: str | None) -> bytes | None | Future:
        """Call resolve; a Future is returned as it is, anything else is checked."""
        try:
            data = self._resolve(name, ip)
        except TftpUnavailable as exc:
            log.info("cannot serve %r to %s now: %s", name, ip, exc)
            raise _ResolveFailed(repr(exc)) from exc
        except Exception as exc:
            log.exception("resolve(%r, %r) raised", name, ip)
            raise _ResolveFailed(repr(exc)) from exc
        return data if isinstance(data, Future) else self._checked(data, name, ip)

    @staticmethod
    def _checked(data, name, ip) -> bytes | None:
        if data is None:
            log.info("not found: %r requested by %s", name, ip)
            return None
        if not isinstance(data, (bytes, bytearray, memoryview)):
            log.error("resolve(%r, %r) returned %s, not bytes", name, ip, type(data).__name__)
            raise _ResolveFailed("resolve returned a non-bytes value")
        return bytes(data)

    def _wake_session(self, target: tuple[str, int]) -> None:
        """Called where a resolve future completes (the event loop): nudge listen()'s select so
        the waiting session continues now rather than after its timeout."""
        waker = self._waker
        if waker is None:
            return
        try:
            waker.sendto(b"\0", target)
        except OSError as exc:  # the session is gone, or the buffer is full: its timer remains
            log.debug("wake-up to %s failed: %r", target, exc)

    def _session_opened(self, ip: str) -> None:
        self._live += 1
        self._live_by_ip[ip] += 1

    def _session_closed(self, ip: str) -> None:
        self._live -= 1
        self._live_by_ip[ip] -= 1
        if self._live_by_ip[ip] <= 0:
            del self._live_by_ip[ip]

    def _has_capacity(self, ip: str) -> bool:
        # The session asking is already counted.
        return (self._live <= self.max_sessions
                and self._live_by_ip[ip] <= self.max_sessions_per_client)

    def _note_busy(self, ip: str, name: str) -> None:
        now = time.monotonic()
        if now - self._busy_logged_at < 1.0:
            self._busy_suppressed += 1
            return
        log.warning("server busy: refused %r from %s (%d sessions, %d from this client; "
                    "%d more refusals not logged)", name, ip, self._live, self._live_by_ip[ip],
                    self._busy_suppressed)
        self._busy_logged_at, self._busy_suppressed = now, 0
