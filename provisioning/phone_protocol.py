"""The phone listeners' fast lane: answers from memory without aiohttp, hands the rest to aiohttp.

Why: a phone's usual request (its config file, cached, with a digest answer) is decided in
memory in tens of microseconds, while aiohttp's request and response objects cost several
times that; measured with wrk in bench/bootstorm.py's cached phase (the README has the figures).

How: every connection starts here. llhttp (through httptools, the parser uvicorn uses) reads the
request head. A plain GET or HEAD of a config file (no body, no query, no percent-escapes,
HTTP/1.x, each header we read at most once, a head within aiohttp's own size limits) is
answered here, with the same bytes the aiohttp handler would send (``provisioning.http.answer``):
at once by ``Provisioner.answer_now`` when memory alone can answer it, else by awaiting
``Provisioner.fetch`` (reading from the connection paused meanwhile). Anything else (an upload,
a static file, a pipelined or malformed request, an oversize head) hands the connection, with
every byte received since the last answer, to aiohttp's own protocol for good; it then sees
the request as if it had come straight to it. So the fast lane only ever answers a strict
subset of what aiohttp accepts, and aiohttp keeps its say over everything unusual.
"""

from __future__ import annotations

import asyncio
import logging
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Callable

import httptools

from provisioning import http as phone_http
from provisioning.http import MAX_FIELD, MAX_LINE, Answer, answer, certificate_mac
from provisioning.serving import Deferred, Outcome, Provisioner

log = logging.getLogger("deskprov.http")

#: The request head the fast lane reads at most: aiohttp's limits for the request line and one
#: header, plus room for the usual handful of others; a bigger head goes to aiohttp to judge.
MAX_HEAD = MAX_LINE + MAX_FIELD
#: How often, at most, a listener looks for connections whose request head is overdue (so a
#: head may take up to this much longer than REQUEST_TIMEOUT before its connection is closed).
SWEEP_SECONDS = 1.0
#: Headers in one plain request at most (phones send a handful).
MAX_HEADERS = 64
#: Headers the answer depends on (each must come at most once, in ASCII).
_WANTED = {b"user-agent": "user_agent", b"authorization": "authorization", b"if-none-match": "if_none_match",
           b"x-forwarded-for": "forwarded_for"}
#: Headers that mean a request is not a plain fetch (a body, an upgrade, an expectation).
_NOT_PLAIN = frozenset((b"transfer-encoding", b"expect", b"upgrade", b"content-encoding"))
_METHODS = {b"GET": "GET", b"HEAD": "HEAD"}
_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}


class _Date:
    """The Date header, formatted once a second."""

    second = -1
    text = b""

    @classmethod
    def now(cls) -> bytes:
        second = int(time.time())
        if second != cls.second:
            cls.second, cls.text = second, formatdate(second, usegmt=True).encode()
        return cls.text


class FastLane:
    """The fast lane of one listener: its open connections, and how to make its protocols."""

    def __init__(self, provisioner: Provisioner, *, secure: bool) -> None:
        self.provisioner = provisioner
        self.secure = secure
        self.connections: set[PhoneProtocol] = set()
        #: answers being fetched (misses): cancelled when the server stops
        self.pending: set[asyncio.Task] = set()
        #: requests answered here, and connections handed to aiohttp (for the stats and tests)
        self.answered = 0
        self.handed_over = 0
        self._sweep: asyncio.TimerHandle | None = None

    def watch(self, connection: "PhoneProtocol") -> None:
        self.connections.add(connection)
        if self._sweep is None:
            self._schedule_sweep()

    def _schedule_sweep(self) -> None:
        interval = min(SWEEP_SECONDS, phone_http.REQUEST_TIMEOUT / 4)
        self._sweep = asyncio.get_running_loop().call_later(interval, self._close_timed_out)

    def _close_timed_out(self) -> None:
        """Close the connections whose request head is overdue (one timer for the listener: a
        timer armed and cancelled per request was a tenth of a cached hit's cost)."""
        now = asyncio.get_running_loop().time()
        for connection in [c for c in self.connections if c.deadline is not None and c.deadline <= now]:
            connection.close()
        self._sweep = None
        if self.connections:
            self._schedule_sweep()

    def factory(self, aiohttp_server: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        return lambda: PhoneProtocol(self, aiohttp_server)

    def close(self) -> None:
        """Stopping: close the connections still in the lane (aiohttp closes its own)."""
        for connection in list(self.connections):
            connection.close()
        for task in list(self.pending):
            task.cancel()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None


class PhoneProtocol(asyncio.Protocol):
    def __init__(self, lane: FastLane, aiohttp_server: Callable[[], asyncio.Protocol]) -> None:
        self._lane = lane
        self._aiohttp_server = aiohttp_server
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._buffer = bytearray()
        self._loop = asyncio.get_running_loop()
        #: when the next request head is overdue (loop time); None while an answer is being fetched
        self.deadline: float | None = None
        self._writing_paused = False
        #: an answer is being fetched: what arrives meanwhile waits in the buffer, unread
        self._busy = False
        self._peer = ""
        self._certificate: str | None = None
        self._reset()

    def _reset(self) -> None:
        self._url = bytearray()
        self._headers: dict[str, str] = {}
        self._plain = True
        self._method: str | None = None
        self._version = ""
        self._keep_alive = False
        self._header_count = 0
        self._begun = 0
        self._complete = 0

    # -- connection ----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._peer = peer[0] if peer else ""
        if self._lane.secure:
            self._certificate = certificate_mac(transport)  # verified once per connection
        self._lane.watch(self)
        self._set_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lane.connections.discard(self)

    def pause_writing(self) -> None:  # a client that does not read its answers: stop reading it
        self._writing_paused = True
        self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if not self._busy:
            self._transport.resume_reading()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _set_deadline(self) -> None:
        """The next request head must arrive within REQUEST_TIMEOUT (as in aiohttp's handler);
        the lane's sweep closes the connection if it does not."""
        self.deadline = self._loop.time() + phone_http.REQUEST_TIMEOUT

    def _clear_deadline(self) -> None:
        self.deadline = None

    # -- parser callbacks (httptools) ----------------------------------------------------------
    def on_message_begin(self) -> None:
        self._begun += 1

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if len(value) > MAX_FIELD or len(name) > MAX_FIELD or self._header_count > MAX_HEADERS:
            self._plain = False  # aiohttp refuses it (its limits): let it say so
            return
        name = name.lower()
        wanted = _WANTED.get(name)
        if wanted is not None:
            if wanted in self._headers or not value.isascii():
                self._plain = False
            else:
                self._headers[wanted] = value.decode("ascii")
        elif name in _NOT_PLAIN or (name == b"content-length" and value.strip() != b"0"):
            self._plain = False

    def on_headers_complete(self) -> None:
        # read here: once the message is complete the parser already speaks of the next one
        parser = self._parser
        self._method = _METHODS.get(parser.get_method())
        self._version = parser.get_http_version()
        self._keep_alive = parser.should_keep_alive()
        if self._method is None or self._version not in ("1.1", "1.0") or parser.should_upgrade():
            self._plain = False

    def on_body(self, body: bytes) -> None:
        self._plain = False

    def on_message_complete(self) -> None:
        self._complete += 1

    # -- requests ------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._busy:  # the next request waits for the answer to the last one
            self._transport.pause_reading()
            return
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):  # malformed, or an upgrade
            return self._hand_over()
        if not self._plain:  # not ours, known before its body (if any) arrives: aiohttp's from here
            return self._hand_over()
        if self._complete == 0:
            if len(self._buffer) > MAX_HEAD:
                self._hand_over()
            return
        if self._complete > 1 or self._begun > self._complete:  # pipelined: aiohttp keeps the order
            return self._hand_over()
        self._take()

    def _take(self) -> None:
        """One whole plain request is in the buffer (and nothing after it): answer it."""
        url, method = bytes(self._url), self._method  # on_headers_complete let only GET and HEAD through
        if not url.startswith(b"/") or len(url) > MAX_LINE or not url.isascii() or any(c in url for c in b"%?#"):
            return self._hand_over()
        headers = self._headers
        provisioner = self._lane.provisioner
        request = dict(user_agent=headers.get("user_agent"),
                       client_ip=provisioner.guard.client_address(self._peer, headers.get("forwarded_for")),
                       transport="https" if self._lane.secure else "http", certificate_mac=self._certificate,
                       authorization=headers.get("authorization"), method=method)
        path = url.decode("ascii")
        try:
            outcome = provisioner.answer_now(path, **request)
        except Exception:  # a bug: log it, and let the regular path answer
            log.exception("fast lane could not answer %r; handing the request to aiohttp", url[:200])
            return self._hand_over()
        if outcome is Deferred.static:  # files from disk: aiohttp's file sender (ranges, sendfile)
            return self._hand_over()
        self._buffer.clear()  # taken: from here on the buffer holds what comes after it
        self._clear_deadline()
        if outcome is Deferred.fetch:  # the database: answered when it has been read
            self._busy = True
            self._transport.pause_reading()
            task = asyncio.get_running_loop().create_task(self._fetch(path, request))
            self._lane.pending.add(task)
            task.add_done_callback(self._lane.pending.discard)
            return
        self._send(outcome)

    async def _fetch(self, path: str, request: dict) -> None:
        try:
            outcome = await self._lane.provisioner.fetch(path, **request)
        except Exception:
            log.exception("fetching %r failed", path[:200])
            outcome = None
        if self._transport.is_closing():
            return
        self._busy = False
        self._send(outcome)
        if self._transport.is_closing():
            return
        if not self._writing_paused:
            self._transport.resume_reading()
        if self._buffer:  # arrived while the answer was being fetched
            waiting = bytes(self._buffer)
            self._buffer.clear()
            self.data_received(waiting)

    def _send(self, outcome: Outcome | None) -> None:
        method = self._method
        reply = answer(outcome, self._headers.get("if_none_match")) if outcome is not None else None
        if reply is None:  # a bug (an exception, or a static file decided late): as aiohttp would
            reply = Answer(500, {"Content-Type": "text/plain; charset=utf-8"}, b"Internal Server Error\n")
        keep_alive = self._keep_alive and reply.status != 500
        head = [b"HTTP/1.1 %d %s" % (reply.status, _REASONS.get(reply.status, b""))]
        head += [f"{name}: {value}".encode("latin-1") for name, value in reply.headers.items()]
        if reply.status != 304:
            head.append(b"Content-Length: %d" % len(reply.body))
        head.append(b"Date: " + _Date.now())
        if not keep_alive:
            head.append(b"Connection: close")
        elif self._version == "1.0":
            head.append(b"Connection: keep-alive")
        body = reply.body if method == "GET" and reply.status != 304 else b""
        self._transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self._lane.answered += 1
        self._reset()
        if keep_alive:
            self._set_deadline()
        else:
            self._transport.close()

    def _hand_over(self) -> None:
        """aiohttp's protocol takes the connection from here, starting with the unanswered bytes."""
        self._clear_deadline()
        self._lane.connections.discard(self)
        self._lane.handed_over += 1
        transport, data = self._transport, bytes(self._buffer)
        self._buffer.clear()
        if self._writing_paused:  # it never saw our pause: it must not inherit it
            transport.resume_reading()
        handler = self._aiohttp_server()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if data:
            handler.data_received(data)

    def eof_received(self) -> bool:
        return False  # the client is done sending: close (an unfinished request has no answer)
