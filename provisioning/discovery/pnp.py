"""SIP multicast plug-and-play responder (``ua-profile`` SUBSCRIBE on 224.0.1.75:5060).

A factory-fresh Snom/Yealink/Grandstream/Fanvil/Gigaset/Panasonic/AudioCodes/PLANET phone
multicasts ``SUBSCRIBE ... Event: ua-profile;vendor=..;model=..;version=..`` and waits a few
seconds (Panasonic: 5 s) for someone to tell it where its configuration lives.  We answer
``200 OK`` unicast, then send a ``NOTIFY`` whose ``application/url`` body is the provisioning URL
(vendors.md §9).  Every SUBSCRIBE is also reported through ``on_sighting`` so the phone shows up in
the device inbox even when ``url_for`` declines to answer it.

Why it is built like this:

* Two sockets: one bound to *group:port* and joined on the configured interface address only
  (never "all interfaces": a multi-homed host must not answer another LAN), and one bound to
  *interface:port* that receives unicast SUBSCRIBEs and the phones' answers to our NOTIFYs and
  sends everything we send.  With ``interface="0.0.0.0"`` a single wildcard socket does both.
* The defaults keep tests and mistakes on loopback (``interface="127.0.0.1"``); the operator sets
  the LAN interface address.
* The port is unauthenticated and on the LAN, so every datagram is parsed by the strict
  :mod:`provisioning.sip` parser; anything unusable is counted, logged through a rate limiter
  (logger ``deskprov.pnp``) and dropped.  Nothing a datagram contains can stop the responder.
* Replies only ever go to the datagram's source IP: the 200 to the source port (RFC 3581
  ``rport``) or the Via port, the NOTIFY to the Contact port when the Contact names the same IP.
  A forged Contact therefore can't aim the responder (and the URL, which may carry a token) at a
  third host.
* Retransmitted SUBSCRIBEs (same Call-ID/From-tag/CSeq/branch) get the same 200 again and no
  second NOTIFY or sighting.  The NOTIFY is retransmitted on a timer-E schedule (0.5, 1, 2 s;
  4 sends) until the phone answers it.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import ipaddress
import logging
import re
import socket
import struct
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from provisioning.mac import MacError, normalize_mac
from provisioning.sip import (
    MAX_DATAGRAM, Headers, SipParseError, SipRequest, SipResponse, make_response, new_branch,
    new_tag, parse_message, parse_name_addr, parse_uri,
)

__all__ = ["PnpResponder", "PnpSighting", "mac_from_sip_user", "PNP_GROUP", "PNP_PORT"]

log = logging.getLogger("deskprov.pnp")

PNP_GROUP = "224.0.1.75"
PNP_PORT = 5060
#: ``profile-type`` values we answer with a device URL (AudioCodes sends "application";
#: a missing parameter is treated as "device").  "user"/"local-network" profiles are not ours.
ANSWERED_PROFILE_TYPES = frozenset({"device", "application"})
_IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)  # Linux value; absent from older Pythons
_MAX_URL = 2048
_T2 = 4.0


@dataclass(frozen=True)
class PnpSighting:
    """One phone seen asking for its profile.  ``mac`` is canonical (12 lowercase hex) or None."""

    mac: str | None
    ip: str
    port: int
    vendor: str | None
    model: str | None
    firmware: str | None
    user_agent: str | None


UrlFor = Callable[[str | None, str | None, str | None], "str | None | Awaitable[str | None]"]
OnSighting = Callable[[PnpSighting], "Any | Awaitable[Any]"]

_MAC_PREFIX = re.compile(r"(?i)^mac\s*[:=]?\s*")


def mac_from_sip_user(user: str | None) -> str | None:
    """The MAC in a PnP user part, in every spelling seen on the wire, else None.

    ``MAC%3a00135E874B49`` (Snom), ``MAC%3AC074AD112233`` (Grandstream), ``MAC001565f4f9e1``
    (Yealink), ``MAC=00304fa99948`` (PLANET), a bare ``00135e874b49``, or separated octets.
    """
    if not user:
        return None
    text = urllib.parse.unquote(user.split(";", 1)[0], errors="replace").strip()
    text = _MAC_PREFIX.sub("", text, count=1)
    try:
        return normalize_mac(text)
    except MacError:
        return None


class _LogLimiter:
    """At most ``burst`` messages per ``window`` seconds, then one "N suppressed" line."""

    def __init__(self, logger: logging.Logger, burst: int = 20, window: float = 60.0) -> None:
        self._log, self._burst, self._window = logger, burst, window
        self._start, self._count, self._suppressed = time.monotonic(), 0, 0

    def log(self, level: int, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._start >= self._window:
            self.flush()
            self._start, self._count = now, 0
        if self._count < self._burst:
            self._count += 1
            self._log.log(level, msg, *args)
        else:
            self._suppressed += 1

    def flush(self) -> None:
        if self._suppressed:
            self._log.warning("pnp: %d similar log messages suppressed (rate limit)", self._suppressed)
            self._suppressed = 0


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: "PnpResponder", multicast: bool) -> None:
        self.owner, self.multicast = owner, multicast

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.owner._datagram(data, addr)
        except Exception:  # pragma: no cover - last line of defence: keep serving
            self.owner._count("internal_error")
            log.exception("pnp: unexpected error handling a datagram from %s", addr[0])

    def error_received(self, exc: Exception) -> None:
        self.owner._limiter.log(logging.INFO, "pnp: socket error ignored: %s", exc)


@dataclass
class _Subscription:
    """Dedupe entry for a SUBSCRIBE transaction; ``response`` is resent on retransmissions."""

    created: float
    response: bytes | None = None
    target: tuple[str, int] | None = None


class PnpResponder:
    """Answer ``ua-profile`` SUBSCRIBEs with 200 OK + a NOTIFY carrying the provisioning URL.

    ``url_for(vendor, model, mac)`` returns the URL or None (don't answer); ``on_sighting(info)``
    is told about every phone.  Both may be plain functions or coroutines; if they raise, the
    error is logged and the responder keeps going.
    """

    def __init__(self, *, url_for: UrlFor, on_sighting: OnSighting | None = None,
                 group: str = PNP_GROUP, port: int = PNP_PORT, interface: str = "127.0.0.1",
                 multicast: bool = True, notify_t1: float = 0.5, notify_tries: int = 4,
                 max_pending: int = 256, user_agent: str = "deskprov") -> None:
        if not ipaddress.ip_address(group).is_multicast or ipaddress.ip_address(group).version != 4:
            raise ValueError(f"{group} is not an IPv4 multicast group")
        if ipaddress.ip_address(interface).version != 4:
            raise ValueError("PnP is IPv4 only: give an IPv4 interface address")
        self.url_for, self.on_sighting = url_for, on_sighting
        self.group, self.port, self.interface = group, int(port), interface
        self.multicast = multicast
        self.notify_t1, self.notify_tries = notify_t1, max(1, notify_tries)
        self.max_pending, self.user_agent = max_pending, user_agent
        self._counts: collections.Counter[str] = collections.Counter()
        self._dropped: collections.Counter[str] = collections.Counter()
        self._limiter = _LogLimiter(log)
        self._sighting_log = _LogLimiter(log, burst=60)
        self._transports: list[asyncio.DatagramTransport] = []
        self._sender: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task] = set()
        self._subs: collections.OrderedDict[tuple, _Subscription] = collections.OrderedDict()
        self._notifies: dict[str, tuple[str, asyncio.Future[int]]] = {}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind and join.  ``port=0`` picks an ephemeral port (tests); ``self.port`` is the real one."""
        loop = asyncio.get_running_loop()
        socks = self._open_sockets()
        try:
            for sock, is_mc in socks:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda is_mc=is_mc: _Protocol(self, is_mc), sock=sock)
                self._transports.append(transport)
        except BaseException:
            for sock, _ in socks:
                sock.close()
            raise
        self._sender = self._transports[0]
        log.info("pnp: listening on %s:%d (group %s%s)", self.interface, self.port, self.group,
                 "" if self.multicast else ", multicast off")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for _, fut in self._notifies.values():
            fut.cancel()
        self._notifies.clear()
        for transport in self._transports:
            transport.close()
        self._transports.clear()
        self._sender = None
        self._limiter.flush()
        self._sighting_log.flush()

    async def __aenter__(self) -> "PnpResponder":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _open_sockets(self) -> list[tuple[socket.socket, bool]]:
        wildcard = self.interface == "0.0.0.0"
        attempts = 5 if self.port == 0 else 1
        for attempt in range(attempts):
            socks: list[tuple[socket.socket, bool]] = []
            try:
                uni = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
                socks.append((uni, False))
                if wildcard:
                    uni.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                uni.bind((self.interface, self.port))
                port = uni.getsockname()[1]
                if self.multicast:
                    if wildcard:
                        self._join(uni)
                    else:
                        mc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
                        socks.append((mc, True))
                        mc.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                        mc.bind((self.group, port))  # only this group's datagrams
                        self._join(mc)
                for sock, _ in socks:
                    try:  # room for a boot storm of SUBSCRIBEs (the kernel may cap it lower)
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                    except OSError:  # pragma: no cover
                        pass
                    # We never send multicast, but if anything ever did, keep it on our interface.
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(
                        self.interface))
                    sock.setblocking(False)
                self.port = port
                return socks
            except OSError:
                for sock, _ in socks:
                    sock.close()
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _join(self, sock: socket.socket) -> None:
        mreq = struct.pack("4s4s", socket.inet_aton(self.group), socket.inet_aton(self.interface))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        try:  # Linux: deliver only groups *this* socket joined
            sock.setsockopt(socket.IPPROTO_IP, _IP_MULTICAST_ALL, 0)
        except OSError:  # pragma: no cover - not Linux
            pass

    # ------------------------------------------------------------------ counters

    @property
    def counters(self) -> dict[str, Any]:
        """Snapshot: received, answered, declined, sightings, notify_* and ``dropped`` by reason."""
        out: dict[str, Any] = {k: 0 for k in (
            "received", "answered", "declined", "sightings", "subscribe_retransmits",
            "notify_sent", "notify_retransmits", "notify_ok", "notify_rejected", "notify_timeout")}
        out.update(self._counts)
        out["dropped"] = dict(self._dropped)
        out["dropped_total"] = sum(self._dropped.values())
        return out

    def _count(self, name: str, n: int = 1) -> None:
        self._counts[name] += n

    def _drop(self, reason: str, addr: tuple[str, int], detail: str = "") -> None:
        self._dropped[reason] += 1
        self._limiter.log(logging.INFO, "pnp: dropped datagram from %s:%d (%s%s)", addr[0], addr[1],
                          reason, f": {detail}" if detail else "")

    # ------------------------------------------------------------------ receive path

    def _datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        self._count("received")
        if len(data) > MAX_DATAGRAM:
            self._drop("oversize", addr, f"{len(data)} bytes")
            return
        try:
            msg = parse_message(data)
        except SipParseError as exc:
            self._drop("malformed", addr, str(exc))
            return
        if isinstance(msg, SipResponse):
            self._response(msg, addr)
            return
        if msg.method != "SUBSCRIBE":
            self._drop("not_subscribe", addr, msg.method[:20])
            return
        try:
            kind, params = msg.event
            call_id, (cseq, cseq_method) = msg.call_id, msg.cseq
            via, from_addr = msg.top_via, msg.from_addr
            msg.to_addr  # noqa: B018 - validated now so the 200 can't fail later
        except SipParseError as exc:
            self._drop("bad_request", addr, str(exc))
            return
        if kind != "ua-profile":
            self._drop("wrong_event", addr, kind[:40])
            return
        if cseq_method != "SUBSCRIBE":
            self._drop("bad_request", addr, "CSeq method mismatch")
            return
        profile_type = (params.get("profile-type") or "device").lower()
        if profile_type not in ANSWERED_PROFILE_TYPES:
            self._drop("profile_type", addr, profile_type[:40])
            return
        if not _is_unicast_source(addr[0]):
            self._drop("bad_source", addr)
            return

        key = (call_id, from_addr.tag, cseq, via.branch)
        now = time.monotonic()
        self._expire_subs(now)
        sub = self._subs.get(key)
        if sub is not None:
            self._count("subscribe_retransmits")
            if sub.response is not None and sub.target is not None:
                self._send(sub.response, sub.target)
            return
        if len(self._tasks) >= self.max_pending:
            self._drop("busy", addr, f"{len(self._tasks)} SUBSCRIBEs in progress")
            return
        sub = _Subscription(created=now)
        self._subs[key] = sub
        while len(self._subs) > 4096:
            self._subs.popitem(last=False)
        task = asyncio.get_running_loop().create_task(self._serve_safe(msg, params, addr, sub))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _expire_subs(self, now: float) -> None:
        # 32 s = 64*T1, RFC 3261 timer J: how long a server remembers a non-INVITE transaction.
        while self._subs:
            key, sub = next(iter(self._subs.items()))
            if now - sub.created < 32.0:
                break
            del self._subs[key]

    def _response(self, msg: SipResponse, addr: tuple[str, int]) -> None:
        try:
            branch = msg.top_via.branch
            method = msg.cseq[1]
        except SipParseError as exc:
            self._drop("malformed", addr, f"response: {exc}")
            return
        entry = self._notifies.get(branch or "")
        if method != "NOTIFY" or entry is None or entry[0] != addr[0]:
            self._drop("stray_response", addr, f"{msg.status} {method[:20]}")
            return
        if msg.status >= 200 and not entry[1].done():
            entry[1].set_result(msg.status)

    # ------------------------------------------------------------------ serving one phone

    async def _serve_safe(self, *args: Any) -> None:
        try:
            await self._serve(*args)
        except asyncio.CancelledError:
            raise
        except Exception:  # pragma: no cover - a bug here must cost one phone, not the responder
            self._count("internal_error")
            log.exception("pnp: unexpected error answering %s", args[2][0])

    async def _serve(self, req: SipRequest, params: dict[str, str | None], addr: tuple[str, int],
                     sub: _Subscription) -> None:
        ip, src_port = addr
        uri_user = _uri_user(req.uri)
        from_user = _uri_user(req.from_addr.uri)
        mac = mac_from_sip_user(uri_user) or mac_from_sip_user(from_user) \
            or mac_from_sip_user(_uri_user(req.to_addr.uri))
        vendor = params.get("vendor") or params.get("vender") or None
        info = PnpSighting(mac=mac, ip=ip, port=src_port, vendor=vendor,
                           model=params.get("model") or None, firmware=params.get("version") or None,
                           user_agent=req.headers.get("User-Agent"))
        self._count("sightings")
        self._sighting_log.log(logging.INFO, "pnp: %s at %s:%d vendor=%s model=%s firmware=%s",
                               mac or "unknown MAC", ip, src_port, info.vendor, info.model,
                               info.firmware)
        if self.on_sighting is not None:
            try:
                await _call(self.on_sighting, info)
            except Exception:
                self._dropped["callback_error"] += 1
                log.exception("pnp: on_sighting failed for %s", mac or ip)
        try:
            url = await _call(self.url_for, info.vendor, info.model, mac)
        except Exception:
            self._dropped["callback_error"] += 1
            log.exception("pnp: url_for failed for %s", mac or ip)
            return
        if url is None:
            self._count("declined")
            return
        if not isinstance(url, str) or not url or len(url) > _MAX_URL or any(c in url for c in "\r\n\0"):
            self._dropped["bad_url"] += 1
            log.error("pnp: url_for returned an unusable URL for %s: %r", mac or ip, url)
            return

        # 200 OK, echoing Via with received/rport (RFC 3581) and sent where RFC 3261 §18.2.2 says.
        via = req.top_via
        if "rport" in via.params:
            via.params["rport"] = str(src_port)
            via.params["received"] = ip
            reply_port = src_port
        else:
            if via.host != ip:
                via.params["received"] = ip
            reply_port = via.port or 5060
        all_vias = [str(via)] + [str(v) for v in req.vias[1:]]
        to_tag = new_tag()
        local = self._local_host(ip)
        ok = make_response(req, 200, "OK", to_tag=to_tag, vias=all_vias, extra=[
            ("Contact", f"<sip:{local}:{self.port}>"), ("Expires", "0"),
            ("User-Agent", self.user_agent)])
        sub.response, sub.target = ok.to_bytes(), (ip, reply_port)
        self._send(sub.response, sub.target)
        self._count("answered")

        # NOTIFY to the Contact (same IP only) or back to where the 200 went.
        target_port, ruri = reply_port, f"sip:{ip}:{reply_port}"
        contact = req.headers.get("Contact")
        if contact:
            try:
                c_uri = parse_uri(parse_name_addr(contact).uri)
                if c_uri.host == ip:
                    target_port = c_uri.port or 5060
                    ruri = str(c_uri)
            except SipParseError:
                pass
        await self._notify(req, ok, url, local, (ip, target_port), ruri)

    async def _notify(self, req: SipRequest, ok: SipResponse, url: str, local: str,
                      target: tuple[str, int], ruri: str) -> None:
        branch = new_branch()
        body = url.encode("utf-8")
        headers = Headers([
            ("Via", f"SIP/2.0/UDP {local}:{self.port};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", ok.headers.get("To") or ""),
            ("To", req.headers.get("From") or ""),
            ("Call-ID", req.call_id),
            ("CSeq", "1 NOTIFY"),
            ("Contact", f"<sip:{local}:{self.port}>"),
            ("Event", req.headers.get("Event") or "ua-profile"),
            ("Subscription-State", "terminated;reason=timeout"),
            ("Content-Type", "application/url"),
            ("User-Agent", self.user_agent),
        ])
        data = SipRequest("NOTIFY", ruri, headers, body).to_bytes()
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._notifies[branch] = (target[0], fut)
        self._count("notify_sent")
        try:
            interval = self.notify_t1
            for attempt in range(self.notify_tries):
                if attempt:
                    self._count("notify_retransmits")
                self._send(data, target)
                try:
                    status = await asyncio.wait_for(asyncio.shield(fut), interval)
                except asyncio.TimeoutError:
                    interval = min(interval * 2, _T2)
                    continue
                if 200 <= status < 300:
                    self._count("notify_ok")
                else:
                    self._count("notify_rejected")
                    self._limiter.log(logging.INFO, "pnp: %s answered NOTIFY with %d", target[0], status)
                return
            # Sends at 0, T1, 3·T1, 7·T1; given up at 15·T1 (7.5 s with T1 = 0.5 s).
            self._count("notify_timeout")
            self._limiter.log(logging.INFO, "pnp: %s:%d never answered the NOTIFY", *target)
        finally:
            self._notifies.pop(branch, None)

    # ------------------------------------------------------------------ sending helpers

    def _local_host(self, peer_ip: str) -> str:
        if self.interface != "0.0.0.0":
            return self.interface
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:  # connect() on UDP sends nothing; it only asks the routing table for our address
            probe.connect((peer_ip, 9))
            return probe.getsockname()[0]
        except OSError:
            return "0.0.0.0"
        finally:
            probe.close()

    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._sender is None or self._sender.is_closing():
            return
        try:
            self._sender.sendto(data, addr)
        except OSError as exc:
            self._limiter.log(logging.INFO, "pnp: send to %s:%d failed: %s", addr[0], addr[1], exc)


def _uri_user(uri: str) -> str | None:
    try:
        return parse_uri(uri).user
    except SipParseError:
        return None


def _is_unicast_source(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not (addr.is_multicast or addr.is_unspecified or str(addr) == "255.255.255.255")
