"""Device authentication: per-device HTTP digest credentials and the first-contact window.

A device's files carry its SIP secrets, so the server must know the requester *is* the device.
Each bound device gets its own HTTP digest credentials, written into its own config in the
vendor's field for the provisioning server's username/password; its later fetches answer the
server's challenge with them (RFC 7616, MD5 and ``qop=auth``, what desk phones implement).

A freshly bound device has no credentials yet: for a window after binding (the organisation's
``first_contact_minutes``, default 60, 0 disables) it may fetch its files without them, and the
config it gets carries its credentials. The window closes at its end or at the device's first
authenticated request, whichever comes first.

Nonces are stateless (time + random + HMAC under a key every worker and node derives from the
shared secret key), so any worker can check a nonce another issued; replay protection (each
nonce count is accepted once, and no older than NC_WINDOW below the highest seen: a client
using one nonce over several connections may have its requests overtake each other, as
RFC 7616 allows) is kept per process. A captured header replayed to another worker
process could be accepted there once; over HTTPS nothing can be captured in the first place.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import string
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Callable

REALM = "deskprov"
#: How long a nonce is good for; a phone with an older one is re-challenged with ``stale=true``.
NONCE_SECONDS = 300
#: The most nonces whose counts are remembered (a flood of challenges cannot grow memory).
MAX_TRACKED_NONCES = 100_000
#: Nonce counts accepted out of order: up to this far below the highest one seen (a bitmap of
#: which were used, as in IPsec's anti-replay window).
NC_WINDOW = 64
#: First-contact window when the organisation sets none.
DEFAULT_FIRST_CONTACT_MINUTES = 60
#: After a credential rotation the device still holds its old password: it may fetch its new
#: config without valid credentials for this long.
ROTATION_WINDOW_MINUTES = 60
#: Letters and digits only: every vendor's config format and a URL carry them unescaped.
_ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 24


# ---------------------------------------------------------------------------------------------
# Credentials


def new_credentials(mac: str) -> tuple[str, str]:
    """A device's username (its MAC plus random, so it names the device yet cannot be guessed
    from the MAC alone) and a random password."""
    return f"dp{mac}{secrets.token_hex(3)}", "".join(secrets.choice(_ALPHABET) for _ in range(PASSWORD_LENGTH))


def open_first_contact(device, organization_minutes: int | None, now: datetime) -> None:
    """Called wherever a device is bound to a user: it gets credentials (if it has none) and a
    first-contact window of the organisation's ``first_contact_minutes`` (None: the default,
    0: no window)."""
    if not device.http_username or not device.http_password:
        device.http_username, device.http_password = new_credentials(device.mac)
        device.credentials_issued_at = now
    minutes = DEFAULT_FIRST_CONTACT_MINUTES if organization_minutes is None else organization_minutes
    device.first_contact_until = now + timedelta(minutes=minutes) if minutes > 0 else None


def rotate_credentials(device, now: datetime) -> None:
    """New password (the username stays: it names the device). The device still knows only its
    old one, so it may fetch its new config once without valid credentials for a while."""
    username, password = new_credentials(device.mac)
    device.http_username = device.http_username or username
    device.http_password = password
    device.credentials_issued_at = now
    device.first_contact_until = now + timedelta(minutes=ROTATION_WINDOW_MINUTES)


# ---------------------------------------------------------------------------------------------
# Networks


def parse_network_list(text: str | None) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``"10.0.0.0/8, 192.168.1.0/24"`` -> networks; ValueError names a bad entry."""
    networks = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not a network (use CIDR notation like 192.168.1.0/24)") from None
    return tuple(networks)


def normalize_network_list(text: str | None) -> str:
    """The canonical stored spelling (comma separated CIDRs), or ValueError."""
    return ",".join(str(n) for n in parse_network_list(text))


def in_networks(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == n.version and ip in n for n in networks)


@dataclass(frozen=True)
class DeviceAccess:
    """What deciding a request for one bound device's files needs (cached per MAC)."""

    mac: str
    device_id: int
    vendor: str | None
    username: str | None
    password: str | None
    first_contact_until: datetime | None
    allowed_networks: tuple = ()
    tftp_secret_networks: tuple = ()

    def source_allowed(self, address: str) -> bool:
        return not self.allowed_networks or in_networks(address, self.allowed_networks)

    def tftp_secrets_allowed(self, address: str) -> bool:
        return in_networks(address, self.tftp_secret_networks)

    def first_contact_open(self, now: datetime) -> bool:
        return self.first_contact_until is not None and now < self.first_contact_until


# ---------------------------------------------------------------------------------------------
# HTTP digest


class Check(Enum):
    ok = "ok"
    stale = "stale"            # a nonce of ours that has expired: answer it with stale=true
    bad = "bad"                # wrong response, forged nonce, wrong URI, not digest at all
    replay = "replay"          # a nonce count used before (or too far below the highest seen)


_UNESCAPE = re.compile(r"\\(.)")
_NONCE_COUNT = re.compile(r"[0-9a-fA-F]{8}")
#: key=value or key="quoted value" and its comma (the quoted string "unrolled": three times
#: faster than an alternation per character)
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:(")([^"\\]*(?:\\.[^"\\]*)*)"|([^\s,]*))\s*(?:,|$)')


def parse_authorization(header: str | None) -> dict[str, str] | None:
    """The parameters of a ``Digest`` Authorization header, or None (absent, other scheme, junk)."""
    if not header or len(header) > 2048:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if match is None or match.end() == pos:
            return None
        key, quote, quoted, token = match.groups()
        # a quoted value loses its escapes (only when it has a backslash: rare)
        params[key.lower()] = (_UNESCAPE.sub(r"\1", quoted) if "\\" in quoted else quoted) if quote else token
        pos = match.end()
    return params


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def digest_response(username: str, password: str, method: str, uri: str, nonce: str, nc: str, cnonce: str,
                    qop: str = "auth", realm: str = REALM) -> str:
    """RFC 7616 ``response`` for MD5 with ``qop=auth`` (also what a client computes)."""
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


_WINDOW_MASK = (1 << NC_WINDOW) - 1


class DigestAuthority:
    """Issues nonces, checks Authorization headers, remembers each nonce's last count."""

    def __init__(self, key: bytes | None = None, *, clock: Callable[[], float] = time.time,
                 nonce_seconds: float = NONCE_SECONDS) -> None:
        self._key = key or os.urandom(32)
        self._clock = clock
        self.nonce_seconds = nonce_seconds
        #: nonce -> (highest nonce count accepted so far, bitmap of those accepted in the window
        #: below it: bit n is count highest - n)
        self._counts: dict[str, tuple[int, int]] = {}

    def _sign(self, stamp: str, salt: str) -> str:
        return hmac.digest(self._key, f"{stamp}.{salt}".encode(), "sha256").hex()[:32]

    def nonce(self) -> str:
        stamp, salt = f"{int(self._clock()):x}", secrets.token_hex(8)
        return f"{stamp}.{salt}.{self._sign(stamp, salt)}"

    def challenge(self, *, stale: bool = False) -> str:
        """A ``WWW-Authenticate`` header value."""
        value = f'Digest realm="{REALM}", qop="auth", algorithm=MD5, nonce="{self.nonce()}"'
        return value + ", stale=true" if stale else value

    def _nonce_age(self, nonce: str) -> float | None:
        """Seconds since we issued ``nonce``; None if we did not issue it."""
        parts = nonce.split(".")
        if len(parts) != 3:
            return None
        # A nonce with a count has been verified before (a phone reuses one for its whole boot)
        if nonce not in self._counts and not hmac.compare_digest(parts[2], self._sign(parts[0], parts[1])):
            return None
        try:
            return self._clock() - int(parts[0], 16)
        except ValueError:
            return None

    def check(self, params: dict[str, str], *, method: str, path: str, username: str, password: str) -> Check:
        """Whether ``params`` (a parsed Authorization header) proves knowledge of ``password``
        for a request of ``path``; the caller has matched the username to the device."""
        nonce, nc_text = params.get("nonce", ""), params.get("nc", "")
        if params.get("username") != username or params.get("realm") != REALM:
            return Check.bad
        if params.get("qop") != "auth" or params.get("algorithm", "MD5").upper() != "MD5":
            return Check.bad
        if not _NONCE_COUNT.fullmatch(nc_text) or not params.get("cnonce"):
            return Check.bad
        uri = params.get("uri", "")
        uri_path = uri.split("?", 1)[0]
        if "://" in uri_path:  # absolute form
            uri_path = "/" + uri_path.split("://", 1)[1].partition("/")[2]
        if uri_path != path:
            return Check.bad  # the proof must be for this very file, not another one
        age = self._nonce_age(nonce)
        if age is None or age < -5:
            return Check.bad
        expected = digest_response(username, password, method, uri, nonce, nc_text, params["cnonce"])
        if not hmac.compare_digest(expected, params.get("response", "").lower()):
            return Check.bad
        if age > self.nonce_seconds:
            return Check.stale
        count = int(nc_text, 16)
        highest, used = self._counts.get(nonce, (0, 1))  # count 0 is never valid: "used"
        if count > highest:
            used = ((used << (count - highest)) | 1) & _WINDOW_MASK
            highest = count
        else:
            bit = 1 << (highest - count)
            if highest - count >= NC_WINDOW or used & bit:
                return Check.replay
            used |= bit
        self._remember(nonce, highest, used)
        return Check.ok

    def _remember(self, nonce: str, highest: int, used: int) -> None:
        if nonce not in self._counts and len(self._counts) >= MAX_TRACKED_NONCES:
            self.sweep()
            if len(self._counts) >= MAX_TRACKED_NONCES:  # all still fresh: the oldest goes
                self._counts.pop(next(iter(self._counts)))
        self._counts[nonce] = (highest, used)

    def sweep(self) -> None:
        """Forget counts of expired nonces (they are refused as stale anyway)."""
        for nonce in list(self._counts):
            age = self._nonce_age(nonce)
            if age is None or age > self.nonce_seconds:
                del self._counts[nonce]

    def __len__(self) -> int:
        return len(self._counts)
