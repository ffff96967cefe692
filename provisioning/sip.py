"""Minimal SIP message model: just what deskprov needs for PnP (SUBSCRIBE/NOTIFY) and check-sync.

Why our own and not a full stack: every byte parsed here comes from an unauthenticated UDP
socket on the phone LAN, so the parser is small, strict and bounded (``MAX_DATAGRAM``,
``MAX_HEADERS``, ``MAX_LINE``), and its contract is simple enough to property-test: for *any*
input bytes :func:`parse_message` either returns a :class:`SipRequest` / :class:`SipResponse`
or raises :class:`SipParseError`, nothing else.  The same holds for the header-value helpers
(:func:`parse_name_addr`, :func:`parse_uri`, :func:`parse_via`, :func:`parse_cseq`,
:func:`parse_event`, :func:`parse_params`, :func:`parse_auth_params`).

Header names keep the spelling they arrived with (so ``f:`` round-trips as ``f:``); lookups are
case-insensitive and understand the compact forms (``v``, ``f``, ``t``, ``i``, ``m``, ``l``,
``c``, ``o`` = Event, ...), so ``msg.headers.get("From")`` finds an ``f:`` header.

Building is the reverse: :meth:`SipMessage.to_bytes` always writes a correct ``Content-Length``
and refuses CR, LF or NUL inside header names/values, so echoed values can't inject headers.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Iterable, Iterator

__all__ = [
    "MAX_DATAGRAM", "MAX_HEADERS", "MAX_LINE",
    "SipParseError", "Headers", "SipMessage", "SipRequest", "SipResponse",
    "NameAddr", "SipUri", "Via",
    "parse_message", "parse_name_addr", "parse_uri", "parse_via", "parse_cseq", "parse_event",
    "parse_params", "format_params", "split_header_values", "parse_auth_params",
    "make_response", "new_branch", "new_tag", "new_call_id", "reason_phrase",
    "digest_response", "build_digest_authorization", "canonical_header",
]

#: Largest datagram we look at.  Real PnP SUBSCRIBEs are ~600 bytes; 8 KiB leaves room for big
#: NOTIFY responses while keeping a flood cheap.
MAX_DATAGRAM = 8192
MAX_HEADERS = 64
#: Longest header line (physical, and logical after unfolding), in bytes / characters.
MAX_LINE = 2048
_MAX_URI = 1024

SIP_VERSION = "SIP/2.0"
BRANCH_MAGIC = "z9hG4bK"


class SipParseError(ValueError):
    """The bytes (or a header value) are not a SIP message deskprov is willing to read."""


# RFC 3261 §7.3.3 plus the compact forms registered later (RFC 3265 o/u, RFC 3515 r, ...).
_COMPACT = {
    "i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
    "c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to", "v": "via",
    "o": "event", "u": "allow-events", "r": "refer-to", "b": "referred-by",
    "x": "session-expires", "a": "accept-contact", "j": "reject-contact",
    "d": "request-disposition", "y": "identity", "n": "identity-info",
}

_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+")
_DIGITS = re.compile(r"[0-9]{1,10}")
_HOST = re.compile(r"[A-Za-z0-9_\-.]+|\[[0-9A-Fa-f:.]+\]")
# C0 controls other than HT/LF/CR, and DEL, never belong in a SIP head.
_BAD_HEAD_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BAD_VALUE_CHARS = re.compile(r"[\x00\r\n]")

_REASONS = {
    100: "Trying", 180: "Ringing", 200: "OK", 202: "Accepted", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    407: "Proxy Authentication Required", 408: "Request Timeout", 481: "Call/Transaction Does Not Exist",
    489: "Bad Event", 500: "Server Internal Error", 503: "Service Unavailable",
}


def reason_phrase(status: int) -> str:
    return _REASONS.get(status, "Unknown")


def canonical_header(name: str) -> str:
    """Lookup key for a header name: lowercase, compact form expanded (``f`` -> ``from``)."""
    low = name.strip(" \t").lower()
    return _COMPACT.get(low, low)


def _is_token(text: str) -> bool:
    return bool(_TOKEN.fullmatch(text))


class Headers:
    """Ordered multi-map of SIP headers with case-insensitive, compact-form-aware lookup."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(str(n), str(v)) for n, v in items]

    def get(self, name: str, default: str | None = None) -> str | None:
        key = canonical_header(name)
        for n, v in self._items:
            if canonical_header(n) == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        key = canonical_header(name)
        return [v for n, v in self._items if canonical_header(n) == key]

    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))

    def set(self, name: str, value: str) -> None:
        """Replace every header of this name by one, at the position of the first."""
        key = canonical_header(name)
        out, done = [], False
        for n, v in self._items:
            if canonical_header(n) == key:
                if not done:
                    out.append((name, value))
                    done = True
            else:
                out.append((n, v))
        if not done:
            out.append((name, value))
        self._items = out

    def remove(self, name: str) -> None:
        key = canonical_header(name)
        self._items = [(n, v) for n, v in self._items if canonical_header(n) != key]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def copy(self) -> "Headers":
        return Headers(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclass
class SipMessage:
    """Shared part of requests and responses: headers, body and typed accessors.

    The accessors parse on demand and raise :class:`SipParseError` when the header is missing
    or malformed, so callers handle one exception type for "this message is unusable".
    """

    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def start_line(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        lines = [self.start_line()]
        for name, value in self.headers:
            if canonical_header(name) == "content-length":
                continue
            if not _is_token(name):
                raise ValueError(f"invalid SIP header name {name!r}")
            if _BAD_VALUE_CHARS.search(value):
                raise ValueError(f"CR, LF or NUL in SIP header {name}")
            lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + bytes(self.body)

    __bytes__ = to_bytes

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"missing {name} header")
        return value

    @property
    def call_id(self) -> str:
        value = self._required("Call-ID")
        if not value or any(c.isspace() for c in value):
            raise SipParseError("malformed Call-ID")
        return value

    @property
    def cseq(self) -> tuple[int, str]:
        return parse_cseq(self._required("CSeq"))

    @property
    def from_addr(self) -> "NameAddr":
        return parse_name_addr(self._required("From"))

    @property
    def to_addr(self) -> "NameAddr":
        return parse_name_addr(self._required("To"))

    @property
    def vias(self) -> list["Via"]:
        out = []
        for value in self.headers.get_all("Via"):
            out.extend(parse_via(part) for part in split_header_values(value))
        if not out:
            raise SipParseError("missing Via header")
        return out

    @property
    def top_via(self) -> "Via":
        return self.vias[0]

    @property
    def event(self) -> tuple[str, dict[str, str | None]]:
        return parse_event(self._required("Event"))


@dataclass
class SipRequest(SipMessage):
    method: str = "OPTIONS"
    uri: str = "sip:invalid"

    def __init__(self, method: str, uri: str, headers: Headers | Iterable[tuple[str, str]] = (),
                 body: bytes = b"") -> None:
        self.method = method
        self.uri = uri
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = bytes(body)

    def start_line(self) -> str:
        if not _is_token(self.method) or not _URI.fullmatch(self.uri):
            raise ValueError(f"invalid request line {self.method!r} {self.uri!r}")
        return f"{self.method} {self.uri} {SIP_VERSION}"


@dataclass
class SipResponse(SipMessage):
    status: int = 200
    reason: str = "OK"

    def __init__(self, status: int, reason: str | None = None,
                 headers: Headers | Iterable[tuple[str, str]] = (), body: bytes = b"") -> None:
        self.status = int(status)
        self.reason = reason_phrase(self.status) if reason is None else reason
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = bytes(body)

    def start_line(self) -> str:
        if not 100 <= self.status <= 699 or _BAD_VALUE_CHARS.search(self.reason):
            raise ValueError(f"invalid status line {self.status} {self.reason!r}")
        return f"{SIP_VERSION} {self.status} {self.reason}".rstrip(" \t")


# --------------------------------------------------------------------------- message parsing


def parse_message(data: bytes | bytearray | memoryview) -> SipRequest | SipResponse:
    """Parse one datagram.  Returns a request/response or raises :class:`SipParseError` only."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("parse_message() takes bytes")
    try:
        return _parse_message(bytes(data))
    except SipParseError:
        raise
    except Exception as exc:  # pragma: no cover - a parser bug must never escape as a crash
        raise SipParseError(f"internal parser error: {type(exc).__name__}") from exc


def _parse_message(data: bytes) -> SipRequest | SipResponse:
    if len(data) > MAX_DATAGRAM:
        raise SipParseError(f"datagram of {len(data)} bytes exceeds {MAX_DATAGRAM}")
    data = data.lstrip(b"\r\n")  # RFC 3261 §7.5: ignore CRLFs before the start line (keep-alives)
    if not data:
        raise SipParseError("empty datagram")
    ends = [(i, n) for i, n in ((data.find(b"\r\n\r\n"), 4), (data.find(b"\n\n"), 2)) if i >= 0]
    if not ends:
        raise SipParseError("no blank line after the headers (truncated?)")
    head_end, sep_len = min(ends)
    raw_head, rest = data[:head_end], data[head_end + sep_len:]
    if _BAD_HEAD_BYTES.search(raw_head):
        raise SipParseError("control character in message head")
    raw_lines = raw_head.split(b"\n")
    if len(raw_lines) > MAX_HEADERS * 4 + 1:
        raise SipParseError("too many header lines")
    lines = []
    for raw in raw_lines:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if len(raw) > MAX_LINE:
            raise SipParseError(f"header line longer than {MAX_LINE} bytes")
        if b"\r" in raw:
            raise SipParseError("bare CR in message head")
        lines.append(raw.decode("utf-8", errors="replace"))

    start = lines[0]
    headers = _parse_header_lines(lines[1:])
    body = _take_body(headers, rest)

    if start.upper().startswith(SIP_VERSION + " "):
        parts = start.split(" ", 2)
        if len(parts) < 2 or not re.fullmatch(r"[1-6][0-9][0-9]", parts[1]):
            raise SipParseError("malformed status line")
        reason = parts[2].strip(" \t") if len(parts) == 3 else ""
        return SipResponse(int(parts[1]), reason, headers, body)
    parts = start.split(" ")
    if len(parts) != 3:
        raise SipParseError("malformed request line")
    method, uri, version = parts
    if version.upper() != SIP_VERSION:
        raise SipParseError("not SIP/2.0")
    if not _is_token(method):
        raise SipParseError("malformed method")
    if len(uri) > _MAX_URI or not _URI.fullmatch(uri):
        raise SipParseError("malformed Request-URI")
    return SipRequest(method, uri, headers, body)


def _parse_header_lines(lines: list[str]) -> Headers:
    items: list[list[str]] = []
    for line in lines:
        if line[:1] in (" ", "\t"):  # RFC 3261 §7.3.1 line folding
            if not items:
                raise SipParseError("continuation line before the first header")
            items[-1][1] = (items[-1][1] + " " + line.strip(" \t")).strip(" \t")
            if len(items[-1][0]) + len(items[-1][1]) > MAX_LINE:
                raise SipParseError("folded header too long")
            continue
        name, sep, value = line.partition(":")
        name = name.rstrip(" \t")
        if not sep or not _is_token(name):
            raise SipParseError("malformed header line")
        items.append([name, value.strip(" \t")])
        if len(items) > MAX_HEADERS:
            raise SipParseError(f"more than {MAX_HEADERS} headers")
    return Headers((n, v) for n, v in items)


def _take_body(headers: Headers, rest: bytes) -> bytes:
    lengths = {v.strip(" \t") for v in headers.get_all("Content-Length")}
    if not lengths:
        return rest  # UDP: the body is the rest of the datagram (RFC 3261 §18.3)
    if len(lengths) > 1:
        raise SipParseError("conflicting Content-Length headers")
    text = lengths.pop()
    if not _DIGITS.fullmatch(text):
        raise SipParseError("malformed Content-Length")
    length = int(text)
    if length > len(rest):
        raise SipParseError("body shorter than Content-Length (truncated datagram)")
    return rest[:length]


# --------------------------------------------------------------------------- header values


def _scan_quoted(text: str, i: int) -> int:
    """Index just past the closing quote of the quoted string starting at ``text[i] == '"'``."""
    i += 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        i += 1
    raise SipParseError("unterminated quoted string")


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def split_header_values(value: str, sep: str = ",") -> list[str]:
    """Split a header value on ``sep`` outside quotes and ``<...>`` (``Via: a, b`` -> two Vias)."""
    parts, buf, i, angle = [], [], 0, False
    while i < len(value):
        ch = value[i]
        if ch == '"':
            j = _scan_quoted(value, i)
            buf.append(value[i:j])
            i = j
            continue
        if ch == "<":
            angle = True
        elif ch == ">":
            angle = False
        if ch == sep and not angle:
            parts.append("".join(buf).strip(" \t"))
            buf = []
        else:
            buf.append(ch)
        i += 1
    parts.append("".join(buf).strip(" \t"))
    return [p for p in parts if p]


def parse_params(text: str) -> dict[str, str | None]:
    """``;a=b;c="x;y";d`` -> ``{"a": "b", "c": "x;y", "d": None}``; names lowercased, first wins."""
    out: dict[str, str | None] = {}
    for part in split_header_values(text, ";"):
        name, sep, value = part.partition("=")
        name = name.strip(" \t").lower()
        if not name or not _is_token(name):
            raise SipParseError(f"malformed parameter {part[:40]!r}")
        if sep:
            value = value.strip(" \t")
            if value.startswith('"'):
                if _scan_quoted(value, 0) != len(value):
                    raise SipParseError("junk after quoted parameter value")
                value = _unquote(value)
            elif any(c.isspace() for c in value) or '"' in value:
                raise SipParseError("malformed parameter value")
            out.setdefault(name, value)
        else:
            out.setdefault(name, None)
    return out


def format_params(params: dict[str, str | None]) -> str:
    """Inverse of :func:`parse_params` (quotes values that are not tokens)."""
    out = []
    for name, value in params.items():
        if value is None:
            out.append(f";{name}")
        elif _TOKEN.fullmatch(value) or _HOST.fullmatch(value):
            out.append(f";{name}={value}")
        else:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f';{name}="{escaped}"')
    return "".join(out)


@dataclass(frozen=True)
class SipUri:
    scheme: str
    user: str | None
    host: str
    port: int | None
    params: dict[str, str | None] = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user is not None else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}:{user}{self.host}{port}{format_params(self.params)}"


def _parse_hostport(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError("malformed IPv6 host")
        host, rest = text[: end + 1], text[end + 1:]
    else:
        host, colon, port_text = text.partition(":")
        rest = colon + port_text
    if not host or not _HOST.fullmatch(host):
        raise SipParseError("malformed host")
    port = None
    if rest:
        if not rest.startswith(":") or not re.fullmatch(r"[0-9]{1,5}", rest[1:]) or int(rest[1:]) > 65535:
            raise SipParseError("malformed port")
        port = int(rest[1:])
    return host, port


def parse_uri(text: str) -> SipUri:
    """``sip:user@host:port;params?headers`` (sip/sips only).  The user part stays %-escaped."""
    text = text.strip(" \t")
    if len(text) > _MAX_URI:
        raise SipParseError("URI too long")
    scheme, sep, rest = text.partition(":")
    if not sep or scheme.lower() not in ("sip", "sips"):
        raise SipParseError("not a sip: URI")
    rest = rest.split("?", 1)[0]
    user = None
    if "@" in rest:
        user, rest = rest.rsplit("@", 1)
        if not user or any(c.isspace() or c in '<>"' for c in user):
            raise SipParseError("malformed user part")
    hostport, _, params = rest.partition(";")
    host, port = _parse_hostport(hostport)
    return SipUri(scheme.lower(), user, host, port, parse_params(params) if params else {})


@dataclass(frozen=True)
class NameAddr:
    display: str | None
    uri: str
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> "NameAddr":
        params = dict(self.params)
        params.setdefault("tag", tag)
        return NameAddr(self.display, self.uri, params)

    def __str__(self) -> str:
        display = ""
        if self.display:
            escaped = self.display.replace("\\", "\\\\").replace('"', '\\"')
            display = f'"{escaped}" '
        return f"{display}<{self.uri}>{format_params(self.params)}"


def parse_name_addr(value: str) -> NameAddr:
    """From/To/Contact value: ``"Name" <uri>;tag=x``, ``Name <uri>`` or a bare ``uri;tag=x``."""
    value = value.strip(" \t")
    if not value:
        raise SipParseError("empty address")
    i, lt = 0, -1
    while i < len(value):  # find '<' outside a quoted display name
        if value[i] == '"':
            i = _scan_quoted(value, i)
            continue
        if value[i] == "<":
            lt = i
            break
        i += 1
    if lt >= 0:
        gt = value.find(">", lt)
        if gt < 0:
            raise SipParseError("unterminated <uri>")
        display = _unquote(value[:lt].strip(" \t")) or None
        uri, params = value[lt + 1: gt].strip(" \t"), value[gt + 1:].strip(" \t")
        if params and not params.startswith(";"):
            raise SipParseError("junk after <uri>")
    else:
        display = None
        uri, _, params = value.partition(";")
        uri = uri.strip(" \t")
    if not _URI.fullmatch(uri) or len(uri) > _MAX_URI:
        raise SipParseError("malformed address URI")
    return NameAddr(display, uri, parse_params(params) if params else {})


@dataclass
class Via:
    transport: str
    host: str
    port: int | None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"


def parse_via(value: str) -> Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...;rport``."""
    value = value.strip(" \t")
    proto, _, rest = value.partition(" ")
    parts = [p.strip(" \t") for p in proto.split("/")]
    if len(parts) != 3 or parts[0].upper() != "SIP" or parts[1] != "2.0" or not _is_token(parts[2]):
        raise SipParseError("malformed Via protocol")
    sent_by, _, params = rest.strip(" \t").partition(";")
    host, port = _parse_hostport(sent_by.strip(" \t"))
    return Via(parts[2].upper(), host, port, parse_params(params) if params else {})


def parse_cseq(value: str) -> tuple[int, str]:
    parts = value.split()
    if len(parts) != 2 or not _DIGITS.fullmatch(parts[0]) or not _is_token(parts[1]):
        raise SipParseError("malformed CSeq")
    number = int(parts[0])
    if number >= 2**31:
        raise SipParseError("CSeq number out of range")
    return number, parts[1]


def parse_event(value: str) -> tuple[str, dict[str, str | None]]:
    """``ua-profile;profile-type="device";vendor=x`` -> ``("ua-profile", {...})``; type lowercased."""
    kind, _, params = value.partition(";")
    kind = kind.strip(" \t").lower()
    if not _is_token(kind):
        raise SipParseError("malformed Event type")
    return kind, parse_params(params) if params else {}


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """``Digest realm="x", nonce="y", qop="auth"`` -> ``("digest", {"realm": "x", ...})``."""
    scheme, _, rest = value.strip(" \t").partition(" ")
    if not _is_token(scheme):
        raise SipParseError("malformed auth scheme")
    out: dict[str, str] = {}
    for part in split_header_values(rest):
        name, sep, val = part.partition("=")
        name = name.strip(" \t").lower()
        if not sep or not _is_token(name):
            raise SipParseError("malformed auth parameter")
        val = val.strip(" \t")
        if val.startswith('"'):
            if _scan_quoted(val, 0) != len(val):
                raise SipParseError("junk after quoted auth value")
            val = _unquote(val)
        out.setdefault(name, val)
    return scheme.lower(), out


# --------------------------------------------------------------------------- building


def new_branch() -> str:
    """RFC 3261 branch: the magic cookie plus 64 random bits."""
    return BRANCH_MAGIC + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(10)}@{host}"


def make_response(request: SipRequest, status: int, reason: str | None = None, *,
                  to_tag: str | None = None, vias: list[str] | None = None,
                  extra: Iterable[tuple[str, str]] = ()) -> SipResponse:
    """A response that echoes Via (or ``vias``), From, To (+ ``to_tag`` if it has none), Call-ID, CSeq."""
    headers = Headers()
    for value in (vias if vias is not None else request.headers.get_all("Via")):
        headers.add("Via", value)
    headers.add("From", request._required("From"))
    to = request._required("To")
    if to_tag is not None:
        addr = parse_name_addr(to)
        if addr.tag is None:
            to = str(addr.with_tag(to_tag))
    headers.add("To", to)
    headers.add("Call-ID", request._required("Call-ID"))
    headers.add("CSeq", request._required("CSeq"))
    for name, value in extra:
        headers.add(name, value)
    return SipResponse(status, reason, headers)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def digest_response(*, username: str, password: str, realm: str, method: str, uri: str,
                    nonce: str, qop: str | None = None, nc: str = "00000001", cnonce: str = "") -> str:
    """RFC 2617 MD5 ``response`` value (``qop=auth`` or the RFC 2069 form without qop)."""
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    if qop:
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _md5(f"{ha1}:{nonce}:{ha2}")


def build_digest_authorization(challenge: str, *, username: str, password: str, method: str,
                               uri: str, nc: int = 1) -> str:
    """Answer a ``WWW-Authenticate``/``Proxy-Authenticate`` Digest challenge (MD5, qop=auth)."""
    scheme, params = parse_auth_params(challenge)
    if scheme != "digest":
        raise SipParseError(f"unsupported auth scheme {scheme!r}")
    algorithm = params.get("algorithm", "MD5")
    if algorithm.upper() != "MD5":
        raise SipParseError(f"unsupported digest algorithm {algorithm!r}")
    realm, nonce = params.get("realm"), params.get("nonce")
    if realm is None or nonce is None:
        raise SipParseError("digest challenge without realm or nonce")
    offered = [q.strip(" \t").lower() for q in params.get("qop", "").split(",") if q.strip(" \t")]
    if offered and "auth" not in offered:
        raise SipParseError("digest challenge offers no qop=auth")
    qop = "auth" if offered else None
    nc_text, cnonce = f"{nc:08x}", secrets.token_hex(8)

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    parts = [f"username={q(username)}", f"realm={q(realm)}", f"nonce={q(nonce)}", f"uri={q(uri)}",
             f"response={q(digest_response(username=username, password=password, realm=realm, method=method, uri=uri, nonce=nonce, qop=qop, nc=nc_text, cnonce=cnonce))}",
             "algorithm=MD5"]
    if qop:
        parts += [f"qop={qop}", f"nc={nc_text}", f"cnonce={q(cnonce)}"]
    if "opaque" in params:
        parts.append(f"opaque={q(params['opaque'])}")
    return "Digest " + ", ".join(parts)
