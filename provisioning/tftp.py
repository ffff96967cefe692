"""Read-only TFTP service for desk phones, built on tftpy 0.8.7 in a dedicated thread.

tftpy is a blocking, single-threaded ``select()`` loop.  It runs here in its own thread beside
the asyncio app.  Every file is served through tftpy's ``dyn_file_func``, which calls the
``resolve(name, client_ip)`` callable supplied by the app.  The tftpy root is an empty private
temp directory, so tftpy's own static serving, its path handling, its symlink following and its
uploads never apply.

tftpy 0.8.7 has several bugs where a single UDP packet kills ``listen()``.  See
``/work/shared/reference/libraries.md`` §1; the last three items were found while writing this
module.  :class:`GuardedContext` subclasses tftpy's server context and is installed into
tftpy's server module namespace, because ``listen()`` looks the context class up there.  The
shim:

* parses the initial request itself, so non-ASCII names or options, a missing NUL, an odd
  option list or ``blksize=abc`` get an ERROR packet instead of an exception out of ``listen()``;
* refuses WRQ (ERROR 2), applies the filename policy (ERROR 1), and caps sessions globally and
  per client IP (ERROR 0 "server busy"; tftpy cannot encode error code 0);
* turns off ``flock`` so ``dyn_file_func`` may return ``io.BytesIO`` (tftpy issue #155);
* clamps ``blksize`` to the RFC 2348 maximum of 65464.  tftpy allows 65536, and the resulting
  65540-byte datagram fails ``sendto`` with EMSGSIZE, which kills ``listen()``;
* puts only the options the client asked for in the OACK.  tftpy always adds ``blksize=512``,
  which breaks RFC 2347;
* checks the transfer ID of packets on a session socket (ERROR 5 to strangers, as RFC 1350
  asks) and ignores junk.  In tftpy a 3-byte "ACK" from *any* host kills ``listen()`` with
  ``struct.error``;
* retransmits once per ``timeout``.  tftpy never resets the timer after a resend, so a busy
  loop burns through a stalled session's retries in milliseconds;
* replaces the ``select`` module reference in tftpy's server module with a ``poll()``-based
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
from dataclasses import dataclass
from typing import Callable, NoReturn

import tftpy
from tftpy.TftpContexts import TftpContext, TftpContextServer
from tftpy.TftpPacketTypes import TftpPacketERR, TftpPacketOACK, TftpPacketRRQ
from tftpy.TftpShared import TftpException, TftpTimeout
from tftpy.TftpStates import TftpState, TftpStateServerRecvRRQ

__all__ = ["TftpService", "GuardedContext", "check_tftpy_compat", "install_tftpy_shim",
           "sanitize_filename", "RejectedName"]

log = logging.getLogger("deskprov.tftp")

#: The tftpy release this shim was written and tested against.
TFTPY_VERSION = "0.8.7"

# The *module* tftpy.TftpServer (the package attribute of the same name is the class).
_server_mod = importlib.import_module("tftpy.TftpServer")

Resolver = Callable[[str, str], "bytes | None"]

_RRQ, _WRQ, _DATA, _ACK, _ERROR, _OACK = 1, 2, 3, 4, 5, 6
_ERR_UNDEFINED, _ERR_NOT_FOUND, _ERR_ACCESS, _ERR_ILLEGAL, _ERR_TID, _ERR_OPTIONS = 0, 1, 2, 4, 5, 8

MAX_NAME_BYTES = 255
MIN_BLKSIZE = 8
MAX_BLKSIZE = 65464  # RFC 2348; the largest block whose DATA packet fits into one UDP datagram
_RECV_SIZE = 65536
_MODES = ("octet", "netascii")  # netascii is served as binary, like tftpy does


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


def _negotiate(options: dict[str, str]) -> dict[str, str]:
    """Keep only the options tftpy supports (blksize, tsize), with blksize validated and clamped."""
    accepted: dict[str, str] = {}
    if "blksize" in options:
        value = options["blksize"]
        if not (value.isascii() and value.isdigit()):
            raise _BadOption(f"invalid blksize {value[:20]!r}")
        # Any number of digits may arrive (int() refuses more than 4300): a value that long is
        # above the maximum anyway, and RFC 2348 lets the server answer with a smaller one.
        digits = value.lstrip("0")
        number = int(digits or "0") if len(digits) <= 6 else MAX_BLKSIZE
        if number < MIN_BLKSIZE:
            raise _BadOption(f"invalid blksize {value[:20]!r}")
        accepted["blksize"] = str(min(number, MAX_BLKSIZE))
    if "tsize" in options:
        accepted["tsize"] = "0"  # the server computes the real size
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

class _ServeRRQ(TftpStateServerRecvRRQ):
    """tftpy's RRQ state, except that the OACK carries only the options the client requested."""

    def sendOACK(self) -> None:
        ctx = self.context
        pkt = TftpPacketOACK()
        pkt.options = {k: v for k, v in ctx.options.items() if k in ctx._requested_options}
        ctx.sock.sendto(pkt.encode().buffer, (ctx.host, ctx.tidport))
        ctx.last_pkt = pkt


class GuardedContext(TftpContextServer):
    """tftpy's server context, hardened.

    Sessions of a :class:`TftpService` get the full treatment described in the module
    docstring.  Any other user of ``tftpy.TftpServer`` in the process gets tftpy's stock
    behaviour, except that unexpected exceptions become ``TftpException`` (ending only that
    session instead of ``listen()``) and ``flock`` is off.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.flock = False  # BytesIO has no fd/name; a read-only server needs no locks
        owner = getattr(self.dyn_file_func, "__self__", None)
        self._service: TftpService | None = owner if isinstance(owner, TftpService) else None
        self._requested_options: frozenset[str] = frozenset()
        self._name: str | bytes | None = None  # bytes: raw head of a malformed request
        self._outcome: str | None = None
        self._logged = False
        self._ended = False
        if self._service is not None:
            if self._service._bind_ip:  # reply from the address the phone talked to
                self.sock.bind((self._service._bind_ip, 0))
            self._service._session_opened(self.host)

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
        if raddress != self.address or rport != self.tidport:
            if not buffer.startswith(b"\0\5"):  # never answer an ERROR
                self._send_raw(_error_packet(_ERR_TID, "Unknown transfer ID"), (raddress, rport))
            return
        try:
            pkt = self.factory.parse(buffer)
        except Exception as exc:
            log.debug("ignoring malformed packet from %s:%s: %r", raddress, rport, exc)
            return
        self.last_update = time.time()
        try:
            self.state = self.state.handle(pkt, raddress, rport)
        except TftpTimeout:
            raise
        except TftpException as exc:
            if isinstance(pkt, TftpPacketERR):
                text = (pkt.errmsg or b"").decode("ascii", "replace")
                self._outcome = f"aborted by client (error {pkt.errorcode} {text!r})"
            else:
                self._outcome = f"failed: {exc}"
            raise
        except Exception as exc:  # e.g. OSError from sendto
            self._outcome = f"failed: {exc!r}"
            raise TftpException(self._outcome) from exc
        self.retry_count = 0

    def checkTimeout(self, now: float) -> None:
        if self._service is None:
            return super().checkTimeout(now)
        if not self.timeout_expectACK and now - self.last_update <= self.timeout:
            return
        self.timeout_expectACK = False
        if self.last_pkt is None or self.retry_count + 1 >= self.retries:
            self._outcome = self._outcome or "timed out"
            # listen() adds one and deletes the session once retry_count >= retries.
            self.retry_count = max(self.retry_count, self.retries - 1)
            raise TftpTimeout("Timeout waiting for traffic")  # listen() logs it; filtered
        self.retry_count += 1
        self.last_update = now
        self.metrics.resent_bytes += len(self.last_pkt.buffer)
        self._send_raw(self.last_pkt.buffer)

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        try:
            super().end()
        finally:
            if self._service is not None:
                self._service._session_closed(self.host)
                self._log_outcome()

    # -- helpers ------------------------------------------------------------------------------

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
            options = _negotiate(req.options)
        except _BadOption as exc:
            self._refuse(_ERR_OPTIONS, "Failed to negotiate options", str(exc))
        try:
            name = sanitize_filename(req.filename)
        except RejectedName as exc:
            self._refuse(_ERR_NOT_FOUND, "File not found", f"rejected name ({exc})")
        self._name = name
        self._requested_options = frozenset(options)

        pkt = TftpPacketRRQ()
        pkt.filename, pkt.mode, pkt.options = name, req.mode, options
        try:
            self.state = _ServeRRQ(self).handle(pkt, self.host, self.port)
        except _ResolveFailed:
            self._refuse(_ERR_UNDEFINED, "internal error", "resolve failed", logged=True)
        except TftpException:
            if self.fileobj is None:  # dyn_file_func returned None: tftpy sent ERROR 1
                self._outcome, self._logged = "not found", True  # _dyn_file logged it
            raise

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
            log.info("sent %r to %s:%s (%d bytes, blksize %d, %.2fs)", self._name, self.host,
                     self.port, m.bytes, self.getBlocksize(), m.end_time - m.start_time)
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

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR or not record.getMessage().startswith(self._PREFIXES)


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
    for attr in ("sock", "flock", "state", "factory", "metrics", "tidport", "last_update",
                 "last_pkt", "retry_count", "timeout_expectACK", "retries", "timeout"):
        if attr not in ctx_names:
            problems.append(f"TftpContext no longer sets {attr!r}")
    rrq_names = set(TftpStateServerRecvRRQ.handle.__code__.co_names)
    for name in ("serverInitial", "dyn_file_func", "sendOACK", "sendDAT", "fileobj"):
        if name not in rrq_names:
            problems.append(f"TftpStateServerRecvRRQ.handle() no longer uses {name!r}")
    need(TftpState, "sendOACK", "TftpState")
    need(TftpPacketRRQ(), "options", "TftpPacketRRQ")
    need(TftpPacketOACK(), "options", "TftpPacketOACK")
    need(TftpPacketERR(), "errmsg", "TftpPacketERR")
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

    ``resolve(name, client_ip)`` runs on the TFTP thread and must be fast: every transfer waits
    for it.  It gets the requested name with one leading ``/`` stripped, after hostile names
    (``..`` segments, backslashes, control characters, > 255 bytes) have been refused.  It
    returns the bytes to serve, or None for ERROR 1 "File not found".  If it raises, the client
    gets ERROR 0 "internal error" and the server keeps running.

    Only ``blksize`` (8..65464) and ``tsize`` are negotiated.  ``timeout`` is both the
    retransmit interval and tftpy's select timeout.  After ``retries`` timeouts a session is
    dropped.
    """

    def __init__(self, host: str, port: int, resolve: Resolver, *, max_sessions: int = 500,
                 max_sessions_per_client: int = 20, timeout: float = 0.5,
                 retries: int = 5) -> None:
        if max_sessions < 1 or max_sessions_per_client < 1:
            raise ValueError("session caps must be >= 1")
        if timeout <= 0 or retries < 1:
            raise ValueError("timeout must be > 0 and retries >= 1")
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
        try:
            data = self._resolve(filename, raddress)
        except Exception as exc:
            log.exception("resolve(%r, %r) raised", filename, raddress)
            raise _ResolveFailed(repr(exc)) from exc
        if data is None:
            log.info("not found: %r requested by %s", filename, raddress)
            return None
        if not isinstance(data, (bytes, bytearray, memoryview)):
            log.error("resolve(%r, %r) returned %s, not bytes", filename, raddress,
                      type(data).__name__)
            raise _ResolveFailed("resolve returned a non-bytes value")
        return io.BytesIO(bytes(data))

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
