"""The phone side of SIP plug-and-play and check-sync, for tests and the phone simulator.

* :func:`pnp_discover` / :func:`pnp_exchange` multicast a vendor-faithful ``ua-profile``
  SUBSCRIBE (the wire formats captured in vendors.md §9), wait for the 200 and the NOTIFY,
  answer the NOTIFY with 200 and hand back the URL in its body.
* :class:`NotifyListener` is a phone's SIP port as far as resync is concerned: it answers NOTIFYs
  with 200 (optionally after a 401 Digest challenge, like a Cisco SPA with "Auth Resync-Reboot")
  and records the ``Event`` headers.

Like the rest of ``simulators``, nothing here imports from ``provisioning``: the simulator has its
own tiny SIP formatter/parser so it is an independent check of the server's bytes.

Safety: the sender sets ``IP_MULTICAST_IF`` to ``interface`` (default 127.0.0.1),
``IP_MULTICAST_LOOP=1`` and TTL 1, so a test multicast stays on loopback instead of leaving by the
default-route interface (libraries.md §4).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import secrets
import socket
from dataclasses import dataclass, field

__all__ = ["MAC_STYLES", "NotifyListener", "PnpExchange", "ReceivedNotify", "pnp_discover", "pnp_exchange",
           "build_subscribe"]

#: Request-URI/From spellings, after the captures in vendors.md §9.  "panasonic" (snom-like URI
#: plus the ``vender=`` misspelling) and "planet" (``MAC=`` also in the Request-URI) are inferred
#: from the From/Event fragments quoted there; "audiocodes" carries no MAC at all.
MAC_STYLES = ("snom", "grandstream", "yealink", "planet", "panasonic", "audiocodes", "bare")

_COMPACT = {"i": "call-id", "m": "contact", "l": "content-length", "c": "content-type",
            "f": "from", "t": "to", "v": "via", "o": "event", "k": "supported"}


# ----------------------------------------------------------------------------- tiny SIP codec


@dataclass
class _Msg:
    start: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def is_response(self) -> bool:
        return self.start.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        return int(self.start.split(" ", 2)[1]) if self.is_response else 0

    @property
    def method(self) -> str:
        return "" if self.is_response else self.start.split(" ", 1)[0]

    def get(self, name: str) -> str | None:
        values = self.get_all(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        key = _COMPACT.get(name.lower(), name.lower())
        return [v for n, v in self.headers if _COMPACT.get(n.lower(), n.lower()) == key]


def _parse(data: bytes) -> _Msg | None:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            return None
        headers.append((name.strip(), value.strip()))
    msg = _Msg(lines[0], headers, body)
    length = msg.get("Content-Length")
    if length is not None and length.isdigit():
        msg.body = body[: int(length)]
    try:
        if msg.is_response:
            msg.status  # noqa: B018 - raises on a broken status line
    except (IndexError, ValueError):
        return None
    return msg


def _format(start: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [start] + [f"{n}: {v}" for n, v in headers] + [f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _reply(request: _Msg, status: int, reason: str, extra: list[tuple[str, str]] = (),
           to_tag: str | None = None) -> bytes:
    to = request.get("To") or ""
    if to_tag and ";tag=" not in to:
        to += f";tag={to_tag}"
    headers = [("Via", v) for v in request.get_all("Via")]
    headers += [("From", request.get("From") or ""), ("To", to),
                ("Call-ID", request.get("Call-ID") or ""), ("CSeq", request.get("CSeq") or "")]
    return _format(f"SIP/2.0 {status} {reason}", headers + list(extra))


def _param(value: str | None, name: str) -> str | None:
    m = re.search(rf";\s*{re.escape(name)}=([^;\s]+)", value or "")
    return m.group(1) if m else None


def _mac12(mac: str) -> str:
    text = re.sub(r"[^0-9a-fA-F]", "", mac).lower()
    if len(text) != 12:
        raise ValueError(f"not a MAC: {mac!r}")
    return text


def _digits(n: int = 10) -> str:
    return str(random.randrange(10 ** (n - 1), 10**n))


# ----------------------------------------------------------------------------- PnP SUBSCRIBE


def build_subscribe(*, style: str, mac: str | None, vendor: str | None, model: str | None,
                    version: str | None, user_agent: str | None, ip: str, port: int,
                    group: str = "224.0.1.75", group_port: int = 5060, domain: str = "pnp.invalid",
                    quoted: bool = True) -> bytes:
    """A ``ua-profile`` SUBSCRIBE as the given vendor style sends it (vendors.md §9)."""
    if style not in MAC_STYLES:
        raise ValueError(f"unknown mac_style {style!r}; one of {MAC_STYLES}")
    m = _mac12(mac) if mac else "000000000000"
    q = (lambda v: f'"{v}"') if quoted else (lambda v: v)
    vendor_key = "vender" if style == "panasonic" else "vendor"
    profile_type = "application" if style == "audiocodes" else "device"
    event = f"ua-profile;profile-type={q(profile_type)}"
    if vendor is not None:
        event += f";{vendor_key}={q(vendor)}"
    if model is not None:
        event += f";model={q(model)}"
    if version is not None:
        event += f";version={q(version)}"
    tag, branch = _digits(), f"z9hG4bK{_digits()}"
    ua = [("User-Agent", user_agent)] if user_agent else []
    common_tail = [("Expires", "0"), ("Event", event), ("Accept", "application/url")]

    if style == "snom":  # official trace: no branch, rport, URI host = the phone's DNS domain
        aor = f"sip:MAC%3a{m.upper()}@{domain}"
        start = f"SUBSCRIBE {aor} SIP/2.0"
        headers = [("Via", f"SIP/2.0/UDP {ip}:{port};rport"), ("From", f"<{aor}>;tag={tag}"),
                   ("To", f"<{aor}>"), ("Call-ID", f"{_digits()}@{ip}"), ("CSeq", "1 SUBSCRIBE"),
                   ("Event", event), ("Expires", "0"), ("Accept", "application/url"),
                   ("Contact", f"<sip:{ip}:{port}>")] + ua
    elif style == "grandstream":  # GRP2612W capture (the real phone uses port 5080)
        aor = f"sip:MAC%3A{m.upper()}@{group}"
        start = f"SUBSCRIBE {aor} SIP/2.0"
        headers = [("Via", f"SIP/2.0/UDP {ip}:{port};branch={branch};rport"),
                   ("From", f"<{aor}>;tag={tag}"), ("To", f"<{aor}>"),
                   ("Call-ID", f"{_digits(9)}-{port}-1@BJC.BGI.IG.DA"), ("CSeq", "20000 SUBSCRIBE"),
                   ("Contact", f"<sip:{ip}:{port}>"), ("Max-Forwards", "70")] + ua + [
                   ("Expires", "0"), ("Supported", "replaces, path"), ("Event", event),
                   ("Accept", "application/url"),
                   ("Allow", "INVITE, ACK, OPTIONS, CANCEL, BYE, SUBSCRIBE, NOTIFY, INFO, REFER, UPDATE, MESSAGE")]
    elif style == "audiocodes":  # no MAC anywhere; Request-URI is the group itself
        start = f"SUBSCRIBE sip:{group}:{group_port} SIP/2.0"
        aor = f"sip:00000001@{ip}:{port}"
        headers = [("Via", f"SIP/2.0/UDP {ip}:{port};branch={branch};rport"),
                   ("From", f"<{aor}>;tag={tag}"), ("To", f"<sip:{group}:{group_port}>"),
                   ("Call-ID", f"{_digits()}@{ip}"), ("CSeq", "1 SUBSCRIBE"),
                   ("Contact", f"<{aor}>"), ("Max-Forwards", "70")] + ua + common_tail
    else:
        user = {"yealink": f"MAC{m}", "planet": f"MAC={m}", "panasonic": f"MAC%3a{m.upper()}",
                "bare": m}[style]
        aor = f"sip:{user}@{group}"
        start = f"SUBSCRIBE {aor} SIP/2.0"
        # Yealink's capture has no rport: the answer must go to the Via port.
        via = f"SIP/2.0/UDP {ip}:{port};branch={branch}" + ("" if style == "yealink" else ";rport")
        headers = [("Via", via), ("From", f"<{aor}>;tag={tag}"), ("To", f"<{aor}>"),
                   ("Call-ID", f"{tag}@{ip}"), ("CSeq", "1 SUBSCRIBE"),
                   ("Contact", f"<sip:{user}@{ip}:{port}>"), ("Max-Forwards", "70")] + ua + common_tail
    return _format(start, headers)


@dataclass
class PnpExchange:
    """What happened during one PnP attempt (for tests that look past the URL)."""

    url: str | None = None
    subscribe: bytes = b""
    subscribes_sent: int = 0
    ok: _Msg | None = None
    notifies: list[_Msg] = field(default_factory=list)
    notify_sources: list[tuple[str, int]] = field(default_factory=list)
    local: tuple[str, int] = ("", 0)


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[_Msg, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = _parse(data)
        if msg is not None:
            self.queue.put_nowait((msg, addr))


def _phone_socket(interface: str, local_port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.bind((interface, local_port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def pnp_exchange(*, vendor: str | None, model: str | None, version: str | None,
                       mac: str | None, mac_style: str, user_agent: str | None,
                       group: str = "224.0.1.75", port: int = 5060, interface: str = "127.0.0.1",
                       timeout: float = 5, local_port: int = 0, domain: str = "pnp.invalid",
                       quoted: bool = True, ignore_notifies: int = 0, t1: float = 0.5) -> PnpExchange:
    """Run one PnP attempt and return everything seen.  ``ignore_notifies`` NOTIFYs go unanswered.

    ``group`` may also be a unicast address (a SUBSCRIBE sent straight to the server's port).
    """
    loop = asyncio.get_running_loop()
    sock = _phone_socket(interface, local_port)
    transport, inbox = await loop.create_datagram_endpoint(_Inbox, sock=sock)
    try:
        ip, lport = sock.getsockname()[:2]
        result = PnpExchange(local=(ip, lport))
        result.subscribe = build_subscribe(
            style=mac_style, mac=mac, vendor=vendor, model=model, version=version,
            user_agent=user_agent, ip=ip, port=lport, group=group, group_port=port, domain=domain,
            quoted=quoted)
        sub = _parse(result.subscribe)
        assert sub is not None
        call_id = sub.get("Call-ID")
        deadline = loop.time() + timeout
        interval, next_send = t1, loop.time()
        while True:
            now = loop.time()
            if now >= deadline:
                return result
            if result.ok is None and not result.notifies and now >= next_send:
                transport.sendto(result.subscribe, (group, port))  # AudioCodes-like resend until answered
                result.subscribes_sent += 1
                next_send, interval = now + interval, min(interval * 2, 4.0)
            wake = deadline if (result.ok or result.notifies) else min(next_send, deadline)
            try:
                msg, addr = await asyncio.wait_for(inbox.queue.get(), max(0.0, wake - loop.time()))
            except asyncio.TimeoutError:
                continue
            if msg.get("Call-ID") != call_id:
                continue
            if msg.is_response and (msg.get("CSeq") or "").endswith("SUBSCRIBE"):
                if msg.status >= 200:
                    result.ok = msg
                    if msg.status >= 300:
                        return result
            elif msg.method == "NOTIFY":
                result.notifies.append(msg)
                result.notify_sources.append(addr)
                if ignore_notifies > 0:
                    ignore_notifies -= 1
                    continue
                transport.sendto(_reply(msg, 200, "OK", to_tag=_digits()), addr)
                result.url = msg.body.decode("utf-8", "replace").strip()
                return result
    finally:
        transport.close()


async def pnp_discover(*, vendor: str | None, model: str | None, version: str | None,
                       mac: str | None, mac_style: str, user_agent: str | None,
                       group: str = "224.0.1.75", port: int = 5060, interface: str = "127.0.0.1",
                       timeout: float = 5, **kwargs) -> str | None:
    """Ask the LAN (or ``group`` = a server address) for our provisioning URL, like a fresh phone."""
    result = await pnp_exchange(vendor=vendor, model=model, version=version, mac=mac,
                                mac_style=mac_style, user_agent=user_agent, group=group, port=port,
                                interface=interface, timeout=timeout, **kwargs)
    return result.url


# ----------------------------------------------------------------------------- NOTIFY listener


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _auth_params(value: str) -> dict[str, str]:
    pattern = r'([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))'
    return {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
            for m in re.finditer(pattern, value)}


@dataclass
class ReceivedNotify:
    event: str | None
    authorized: bool
    source: tuple[str, int]
    request_uri: str


class NotifyListener(asyncio.DatagramProtocol):
    """A phone's SIP port for check-sync tests: answers NOTIFY with 200, records the Events.

    ``challenge=True`` first answers 401 with a Digest (MD5, qop=auth) challenge and only accepts
    a NOTIFY whose Authorization matches ``username``/``password``.  ``silent=True`` never
    answers; ``ignore_first=n`` drops the first n datagrams (to exercise retransmission).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, challenge: bool = False,
                 username: str = "", password: str = "", realm: str = "sim-phone",
                 silent: bool = False, ignore_first: int = 0) -> None:
        self.host, self.port = host, port
        self.challenge, self.username, self.password, self.realm = challenge, username, password, realm
        self.silent, self.ignore_first = silent, ignore_first
        self.events: list[str | None] = []
        self.received: list[ReceivedNotify] = []
        self.datagrams = 0
        self.challenges_sent = 0
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._answers: dict[str, bytes] = {}
        self._nonces: set[str] = set()
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> "NotifyListener":
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=(self.host, self.port))
        self.port = self._transport.get_extra_info("sockname")[1]
        return self

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> "NotifyListener":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def next_event(self, timeout: float = 5.0) -> str | None:
        """The Event header of the next accepted NOTIFY."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.datagrams += 1
        if self.ignore_first > 0:
            self.ignore_first -= 1
            return
        msg = _parse(data)
        if msg is None or msg.is_response or self._transport is None:
            return
        parts = msg.start.split(" ")
        branch = _param(msg.get("Via"), "branch") or ""
        if branch in self._answers:  # retransmission: same answer, not recorded twice
            if not self.silent:
                self._transport.sendto(self._answers[branch], addr)
            return
        if msg.method != "NOTIFY":
            answer = _reply(msg, 405, "Method Not Allowed", [("Allow", "NOTIFY")])
        elif self.challenge and not self._authorized(msg, parts[1] if len(parts) > 1 else ""):
            nonce = secrets.token_hex(12)
            self._nonces.add(nonce)
            self.challenges_sent += 1
            self.received.append(ReceivedNotify(msg.get("Event"), False, addr, parts[1]))
            answer = _reply(msg, 401, "Unauthorized", [(
                "WWW-Authenticate",
                f'Digest realm="{self.realm}", nonce="{nonce}", qop="auth", algorithm=MD5')],
                to_tag=_digits())
        else:
            event = msg.get("Event")
            self.received.append(ReceivedNotify(event, True, addr, parts[1]))
            self.events.append(event)
            self._queue.put_nowait(event)
            answer = _reply(msg, 200, "OK", to_tag=_digits())
        self._answers[branch] = answer
        if not self.silent:
            self._transport.sendto(answer, addr)

    def _authorized(self, msg: _Msg, request_uri: str) -> bool:
        header = msg.get("Authorization")
        if not header or not header.lower().startswith("digest "):
            return False
        p = _auth_params(header[7:])
        if p.get("nonce") not in self._nonces or p.get("username") != self.username \
                or p.get("realm") != self.realm or p.get("uri") != request_uri:
            return False
        ha1 = _md5(f"{self.username}:{self.realm}:{self.password}")
        ha2 = _md5(f"NOTIFY:{request_uri}")
        if p.get("qop") == "auth":
            expected = _md5(f"{ha1}:{p['nonce']}:{p.get('nc', '')}:{p.get('cnonce', '')}:auth:{ha2}")
        else:
            expected = _md5(f"{ha1}:{p['nonce']}:{ha2}")
        return secrets.compare_digest(expected, p.get("response", ""))
