"""Out-of-dialog SIP ``NOTIFY`` (``Event: check-sync`` & co.) that makes a phone re-fetch its config.

This is the primitive under the resync scheduler: one call, one phone, one result.  Which event
string a vendor wants (``check-sync;reboot=false``, ``resync``, ...) is the caller's business
(vendors.md §8); this module only gets the request there and reports what came back.

UDP is lossy, so the request is retransmitted on the RFC 3261 timer-E schedule (T1, 2·T1, ...
capped at T2 = 4 s) until a final response or the overall ``timeout``.  Cisco SPA/Linksys (and
others with "authenticate resync") challenge the NOTIFY with a 401/407 Digest; with credentials
we answer once with an RFC 2617 MD5 ``qop=auth`` Authorization, as a phone would expect.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass

from provisioning.sip import (
    Headers, SipParseError, SipRequest, SipResponse, build_digest_authorization, new_branch,
    new_call_id, new_tag, parse_message,
)

__all__ = ["NotifyResult", "send_check_sync"]

log = logging.getLogger("deskprov.sync_notify")

_T2 = 4.0


@dataclass(frozen=True)
class NotifyResult:
    """``status`` is the final SIP status, or None when nothing final came back before ``timeout``."""

    status: int | None
    reason: str
    timed_out: bool
    transmissions: int
    challenged: bool
    elapsed: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiters: dict[str, asyncio.Queue[SipResponse]] = {}

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        try:
            msg = parse_message(data)
            if not isinstance(msg, SipResponse) or msg.cseq[1] != "NOTIFY":
                return
            queue = self.waiters.get(msg.top_via.branch or "")
        except SipParseError:
            return
        if queue is not None:
            queue.put_nowait(msg)

    def error_received(self, exc: Exception) -> None:
        log.debug("check-sync socket error: %s", exc)


def _hostport(host: str, port: int | None = None) -> str:
    text = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return text if port is None else f"{text}:{port}"


async def send_check_sync(host: str, port: int = 5060, *, event: str = "check-sync",
                          user: str | None = None, domain: str | None = None,
                          local_host: str = "127.0.0.1", local_port: int = 0,
                          timeout: float = 8.0, retries: int = 6, t1: float = 0.5,
                          auth_username: str | None = None, auth_password: str | None = None,
                          from_user: str = "deskprov", user_agent: str = "deskprov") -> NotifyResult:
    """Send ``NOTIFY sip:user@host:port`` with ``Event: event`` and wait for the final answer.

    ``timeout`` bounds the whole call (challenge round included); ``retries`` is the number of
    retransmissions per request.  ``auth_username`` defaults to ``user``; without
    ``auth_password`` a 401/407 is simply returned.
    """
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    deadline = started + timeout
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    remote = infos[0][4]
    transport, proto = await loop.create_datagram_endpoint(
        _Client, local_addr=(local_host, local_port), family=infos[0][0])
    try:
        bound_host, bound_port = transport.get_extra_info("sockname")[:2]
        ruri = f"sip:{user + '@' if user else ''}{_hostport(host, port)}"
        to_uri = f"sip:{user + '@' if user else ''}{_hostport(domain or host)}"
        call_id, from_tag = new_call_id(_hostport(bound_host)), new_tag()
        transmissions, challenged, cseq = 0, False, 1
        auth_header: tuple[str, str] | None = None
        while True:
            branch = new_branch()
            headers = Headers([
                ("Via", f"SIP/2.0/UDP {_hostport(bound_host, bound_port)};branch={branch};rport"),
                ("Max-Forwards", "70"),
                ("From", f"<sip:{from_user}@{_hostport(domain or bound_host)}>;tag={from_tag}"),
                ("To", f"<{to_uri}>"),
                ("Call-ID", call_id),
                ("CSeq", f"{cseq} NOTIFY"),
                ("Contact", f"<sip:{from_user}@{_hostport(bound_host, bound_port)}>"),
                ("Event", event),
                ("Subscription-State", "terminated"),
                ("User-Agent", user_agent),
            ])
            if auth_header:
                headers.add(*auth_header)
            data = SipRequest("NOTIFY", ruri, headers).to_bytes()
            queue: asyncio.Queue[SipResponse] = asyncio.Queue()
            proto.waiters[branch] = queue
            try:
                response, sent = await _transaction(transport, data, remote, queue, deadline,
                                                    t1, retries)
            finally:
                proto.waiters.pop(branch, None)
            transmissions += sent
            elapsed = time.monotonic() - started
            if response is None:
                return NotifyResult(None, "timeout", True, transmissions, challenged, elapsed)
            if response.status in (401, 407) and not challenged and auth_password is not None:
                challenge_name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
                challenge = response.headers.get(challenge_name)
                if challenge:
                    try:
                        value = build_digest_authorization(
                            challenge, username=auth_username or user or "", password=auth_password,
                            method="NOTIFY", uri=ruri)
                    except SipParseError as exc:
                        log.info("check-sync to %s: can't answer challenge: %s", host, exc)
                    else:
                        challenged, cseq = True, cseq + 1
                        auth_header = ("Authorization" if response.status == 401
                                       else "Proxy-Authorization", value)
                        continue
            return NotifyResult(response.status, response.reason, False, transmissions, challenged,
                                elapsed)
    finally:
        transport.close()


async def _transaction(transport: asyncio.DatagramTransport, data: bytes, remote: tuple,
                       queue: asyncio.Queue[SipResponse], deadline: float, t1: float,
                       retries: int) -> tuple[SipResponse | None, int]:
    """Send and retransmit until a final response (returned) or the deadline (None)."""
    interval, sent = t1, 0
    next_send = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= deadline:
            return None, sent
        if now >= next_send and sent <= retries:
            try:
                transport.sendto(data, remote)
            except OSError as exc:
                log.debug("check-sync send failed: %s", exc)
            sent += 1
            next_send = now + interval
            interval = min(interval * 2, _T2)
        wake = deadline if sent > retries else min(next_send, deadline)
        try:
            response = await asyncio.wait_for(queue.get(), max(0.0, wake - time.monotonic()))
        except asyncio.TimeoutError:
            continue
        if response.status >= 200:
            return response, sent
