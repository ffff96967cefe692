"""Vendor-independent core of the phone simulator.

A :class:`Phone` boots against a provisioning server over HTTP or TFTP the way
a real phone does: a :class:`PhoneProfile` (one subclass per vendor) drives the
boot sequence, asking for one file at a time and deciding what to fetch next
from what it got, and parses every file with its own parser.  The result is a
:class:`PhoneState`, a vendor-neutral picture of what the phone would end up
with (accounts, keys, raw settings) plus a log of every fetch.

Nothing here may import from the ``provisioning`` package: the simulator is an
independent reader of the server's output, which is what makes it a test.

Every boot keeps its state in a fresh :class:`PhoneState` and
:class:`BootContext`, so one process can boot thousands of phones concurrently
(share one ``aiohttp.ClientSession`` between them via ``Phone(..., session=)``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib
import json
import re
import secrets
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import aiohttp
from yarl import URL

from simulators.sip_phone import MAC_STYLES, NotifyListener, PnpExchange, pnp_exchange
from simulators.tftp_client import TftpClient, TftpError

__all__ = [
    "Account",
    "BootContext",
    "Fetch",
    "Key",
    "Phone",
    "PhoneProfile",
    "PhoneState",
    "get_profile_class",
    "register_profile",
    "main",
]

#: Neutral key types every profile maps its vendor codes onto; anything else is
#: reported as ``other:<vendor code>`` so no information is lost.
KEY_TYPES = ("line", "blf", "speed_dial", "park", "dtmf", "voicemail", "group_toggle", "none")


@dataclass
class Account:
    """One SIP account (line) as the phone would configure it."""

    index: int
    enabled: bool = False
    label: str = ""
    display_name: str = ""
    user_name: str = ""
    auth_name: str = ""
    password: str = ""
    server: str = ""
    port: int | None = None
    transport: str = "udp"

    @property
    def registered(self) -> bool:
        """Whether the phone would try to register: enabled, with server, user and password.

        Derived rather than stored so it can never disagree with the fields.
        """
        return bool(self.enabled and self.server and self.user_name and self.password)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "registered": self.registered}


@dataclass
class Key:
    """One programmable key.  ``module`` 0 is the phone itself, >0 an expansion module."""

    module: int
    slot: int
    type: str = "none"
    value: str = ""
    label: str = ""
    line: int | None = None
    extension: str = ""  # BLF pickup code / extension
    raw_type: str | None = None  # the vendor's own code, for debugging mappings
    source: str = ""  # the vendor's parameter prefix, e.g. "linekey.3"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Fetch:
    """One file request on the boot path.  404 / "not found" is normal there."""

    transport: str  # "http" | "tftp"
    name: str  # as the profile asked for it (file name or absolute URL)
    url: str  # what was actually requested
    result: str  # "ok" | "not_found" | "error"
    status: int | None = None  # HTTP status, or TFTP error code
    bytes: int = 0
    error: str | None = None
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PhoneState:
    """What the phone ended up with after booting."""

    vendor: str
    model: str
    mac: str  # 12 lowercase hex digits, no separators
    firmware: str
    user_agent: str = ""
    accounts: dict[int, Account] = field(default_factory=dict)
    keys: dict[tuple[int, int], Key] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)  # every raw parameter, final value
    boot_settings: dict[str, str] = field(default_factory=dict)  # directives found in boot/index files
    timezone: str | None = None
    timezone_name: str | None = None
    language: str | None = None  # phone GUI language
    web_language: str | None = None  # web UI language
    #: directory entries the phone loaded (remote/central phonebooks): {"name", "numbers", "book"}
    contacts: list[dict[str, Any]] = field(default_factory=list)
    fetched: list[Fetch] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)  # files parsed and applied, in order
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def requested(self) -> list[str]:
        """File names in request order, the thing boot-order tests compare."""
        return [f.name for f in self.fetched]

    def to_dict(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "model": self.model,
            "mac": self.mac,
            "firmware": self.firmware,
            "user_agent": self.user_agent,
            "accounts": {str(i): a.to_dict() for i, a in sorted(self.accounts.items())},
            "keys": [k.to_dict() for _, k in sorted(self.keys.items())],
            "settings": dict(self.settings),
            "boot_settings": dict(self.boot_settings),
            "timezone": self.timezone,
            "timezone_name": self.timezone_name,
            "language": self.language,
            "web_language": self.web_language,
            "contacts": [dict(c) for c in self.contacts],
            "fetched": [f.to_dict() for f in self.fetched],
            "applied": list(self.applied),
            "errors": list(self.errors),
            "warnings": list(self.warnings),
        }


_HEX12 = re.compile(r"^[0-9a-f]{12}$")
_CHALLENGE_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


class DigestClient:
    """HTTP digest (RFC 7616, MD5, ``qop=auth``) as a phone does it: remember the server's
    nonce and answer it with an increasing nonce count; a new challenge starts a new count."""

    def __init__(self, username: str, password: str):
        self.username = username
        self.password = password
        self.realm = ""
        self.nonce = ""
        self.opaque: str | None = None
        self.nc = 0

    def learn(self, www_authenticate: str) -> bool:
        """Take a ``WWW-Authenticate`` challenge; False when it is not one we can answer."""
        scheme, _, rest = www_authenticate.strip().partition(" ")
        if scheme.lower() != "digest":
            return False
        params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
                  for m in _CHALLENGE_PARAM.finditer(rest)}
        if "auth" not in [q.strip() for q in params.get("qop", "").split(",")] or not params.get("nonce"):
            return False
        if params.get("algorithm", "MD5").upper() != "MD5":
            return False
        self.realm, self.nonce, self.opaque, self.nc = params.get("realm", ""), params["nonce"], params.get("opaque"), 0
        return True

    def authorization(self, method: str, uri: str) -> str | None:
        if not self.nonce:
            return None
        self.nc += 1
        nc, cnonce = f"{self.nc:08x}", secrets.token_hex(8)
        md5 = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731
        ha1 = md5(f"{self.username}:{self.realm}:{self.password}")
        ha2 = md5(f"{method}:{uri}")
        response = md5(f"{ha1}:{self.nonce}:{nc}:{cnonce}:auth:{ha2}")
        header = (f'Digest username="{self.username}", realm="{self.realm}", nonce="{self.nonce}", uri="{uri}", '
                  f'algorithm=MD5, qop=auth, nc={nc}, cnonce="{cnonce}", response="{response}"')
        return header + (f', opaque="{self.opaque}"' if self.opaque else "")


def normalize_mac(mac: str) -> str:
    """``80:5E:C0:AA:BB:01`` / ``805E-C0AA-BB01`` -> ``805ec0aabb01``."""
    cleaned = re.sub(r"[^0-9a-fA-F]", "", mac).lower()
    if not _HEX12.match(cleaned):
        raise ValueError(f"not a MAC address: {mac!r}")
    return cleaned


class PhoneProfile:
    """Vendor-specific behaviour.  Subclass per vendor and override the hooks.

    A profile instance describes one phone (model, MAC, firmware) and holds no
    per-boot state, so the same profile may be booted repeatedly.
    """

    vendor: ClassVar[str] = "generic"

    def __init__(self, model: str, mac: str, firmware: str, *, user_agent: str | None = None):
        self.model = model
        self.mac = normalize_mac(mac)
        self.firmware = firmware
        self._user_agent_override = user_agent

    @property
    def mac_colons(self) -> str:
        """Lowercase, colon-separated MAC, as most HTTP User-Agents carry it."""
        return ":".join(self.mac[i : i + 2] for i in range(0, 12, 2))

    def user_agent(self) -> str:
        """The HTTP User-Agent this phone sends (override for the vendor's format)."""
        return self._user_agent_override or f"{self.vendor} {self.model} {self.firmware} {self.mac}"

    def tftp_options(self) -> dict[str, Any]:
        """Options for TFTP requests (``blksize``, ``tsize``); real phones vary."""
        return {"blksize": 1428, "tsize": True}

    def new_state(self) -> PhoneState:
        return PhoneState(
            vendor=self.vendor, model=self.model, mac=self.mac, firmware=self.firmware, user_agent=self.user_agent()
        )

    async def boot(self, ctx: "BootContext") -> None:
        """The boot sequence: ``await ctx.fetch(name)`` files and apply them in order."""
        raise NotImplementedError

    async def boot_file(self, ctx: "BootContext", name: str) -> None:
        """Boot from a file URL (PnP/DHCP gave ``<folder>/name``).  Default: the phone uses the
        folder and its usual file names; profiles that really start from the named file override."""
        await self.boot(ctx)

    def pnp_subscribe(self) -> dict[str, Any]:
        """How this phone's PnP SUBSCRIBE looks (vendors.md §9): ``simulators.sip_phone`` arguments."""
        vendor, model, fw = self.vendor, self.model, self.firmware
        style = {"gigaset": "snom"}.get(vendor, vendor if vendor in MAC_STYLES else "bare")
        name = {"snom": "snom", "yealink": "yealink", "grandstream": "Grandstream", "gigaset": "Gigaset"}
        event_model = f"snom{model}" if vendor == "snom" else model
        ua = {"snom": f"snom{model}/{fw}", "grandstream": f"Grandstream {model} {fw}",
              "yealink": f"Yealink {'SIP-' if model[:1] == 'T' else ''}{model} {fw}"}
        return {"vendor": name.get(vendor, vendor), "model": event_model, "version": fw, "mac": self.mac,
                "mac_style": style, "user_agent": ua.get(vendor, f"{vendor} {model} {fw}")}

    def finalize(self, state: PhoneState) -> None:
        """Derive accounts/keys/etc. from the merged raw settings after all files."""

    #: The vendor's parameters for the provisioning server's username and password, as they
    #: appear in ``PhoneState.settings`` (None: the profile overrides provisioning_credentials).
    credential_settings: ClassVar[tuple[str, str] | None] = None

    def provisioning_credentials(self, state: PhoneState) -> tuple[str, str] | None:
        """The HTTP credentials the phone's config gave it for its provisioning server, if any:
        a real phone keeps them and answers the server's challenges with them."""
        if self.credential_settings is None:
            return None
        user, password = (state.settings.get(k, "") for k in self.credential_settings)
        return (user, password) if user and password else None


class BootContext:
    """One boot in progress: the transport plus the state being built.

    The profile only ever sees :meth:`fetch`, so the same boot sequence runs
    unchanged over HTTP and TFTP.  Absolute URLs (``http://``, ``https://``,
    ``tftp://host[:port]/path``) are fetched as given, whatever the base.
    """

    def __init__(
        self,
        state: PhoneState,
        *,
        base: str,
        user_agent: str,
        session: aiohttp.ClientSession | None = None,
        tftp_options: dict[str, Any] | None = None,
        tftp_timeout: float = 1.0,
        tftp_retries: int = 3,
        auth: aiohttp.BasicAuth | None = None,
        digest: DigestClient | None = None,
    ):
        self.digest = digest
        self.state = state
        self.base = base
        self.user_agent = user_agent
        self.session = session
        self.tftp_options = tftp_options or {}
        self.tftp_timeout = tftp_timeout
        self.tftp_retries = tftp_retries
        self.auth = auth

    def error(self, message: str) -> None:
        self.state.errors.append(message)

    def warn(self, message: str) -> None:
        self.state.warnings.append(message)

    def resolve(self, name: str) -> str:
        """Turn a file name into a full URL against the boot base."""
        if "://" in name:
            return name
        if name.startswith("/"):
            scheme, rest = self.base.split("://", 1)
            host = rest.split("/", 1)[0]
            return f"{scheme}://{host}{name}"
        return self.base + name

    async def fetch(self, name: str) -> bytes | None:
        """Fetch one file; returns its bytes, or ``None`` if missing or failed.

        Every attempt is recorded in ``state.fetched``.  Missing files are not
        errors (the boot path probes for them); other failures are.
        """
        url = self.resolve(name)
        started = time.perf_counter()
        if url.startswith("tftp://"):
            record, data = await self._fetch_tftp(name, url)
        elif url.startswith(("http://", "https://")):
            record, data = await self._fetch_http(name, url)
        else:
            record, data = Fetch("?", name, url, "error", error="unsupported URL scheme"), None
        record.elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
        self.state.fetched.append(record)
        if record.result == "error":
            self.error(f"fetch {name}: {record.error}")
        return data

    async def _fetch_http(self, name: str, url: str) -> tuple[Fetch, bytes | None]:
        if self.session is None:
            return Fetch("http", name, url, "error", error="no HTTP session"), None
        try:
            resp, body = await self._get(url)
            if resp.status == 200:
                return Fetch("http", name, url, "ok", resp.status, len(body)), body
            result = "not_found" if resp.status == 404 else "error"
            err = None if result == "not_found" else f"HTTP {resp.status}"
            return Fetch("http", name, url, result, resp.status, len(body), error=err), None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return Fetch("http", name, url, "error", error=f"{type(exc).__name__}: {exc}"), None

    async def _get(self, url: str) -> tuple[aiohttp.ClientResponse, bytes]:
        """GET with the phone's credentials: answer a digest challenge (and a stale nonce) once each."""
        parsed = URL(url)
        if parsed.user is not None:  # credentials in the URL (Snom's setting_server): answer challenges with them
            if self.digest is None and parsed.password:
                self.digest = DigestClient(parsed.user, parsed.password)
            url = str(parsed.with_user(None))
        uri = parsed.raw_path_qs
        for _ in range(3):
            headers = {"User-Agent": self.user_agent}
            if self.digest is not None and (authorization := self.digest.authorization("GET", uri)):
                headers["Authorization"] = authorization
            async with self.session.get(url, headers=headers, auth=self.auth) as resp:
                body = await resp.read()
            challenge = resp.headers.get("WWW-Authenticate", "")
            if resp.status != 401 or self.digest is None or not self.digest.learn(challenge):
                return resp, body
            if "Authorization" in headers and "stale=true" not in challenge.replace(" ", "").lower():
                return resp, body  # our credentials were refused: a phone gives up until its next poll
        return resp, body

    async def _fetch_tftp(self, name: str, url: str) -> tuple[Fetch, bytes | None]:
        rest = url[len("tftp://") :]
        hostport, _, path = rest.partition("/")
        host, port = _split_hostport(hostport, 69)
        client = TftpClient(host, port, timeout=self.tftp_timeout, retries=self.tftp_retries)
        try:
            res = await client.get_async(path, **self.tftp_options)
        except TftpError as exc:
            not_found = exc.remote and (exc.code == 1 or "not found" in exc.message.lower())
            if not_found:
                return Fetch("tftp", name, url, "not_found", exc.code), None
            return Fetch("tftp", name, url, "error", exc.code, error=str(exc)), None
        except OSError as exc:
            return Fetch("tftp", name, url, "error", error=f"{type(exc).__name__}: {exc}"), None
        return Fetch("tftp", name, url, "ok", None, len(res.data)), res.data


def _split_hostport(hostport: str, default_port: int) -> tuple[str, int]:
    if hostport.startswith("["):  # [v6]:port
        host, _, tail = hostport[1:].partition("]")
        return host, int(tail[1:]) if tail.startswith(":") else default_port
    if hostport.count(":") == 1:
        host, port = hostport.split(":")
        return host, int(port)
    return hostport, default_port


class Phone:
    """A simulated phone.  ``boot_http`` / ``boot_tftp`` return a fresh :class:`PhoneState`.

    Pass ``session`` to share one aiohttp session (and its connection pool)
    across many phones; otherwise each HTTP boot opens and closes its own.
    """

    def __init__(
        self,
        profile: PhoneProfile,
        *,
        session: aiohttp.ClientSession | None = None,
        auth: tuple[str, str] | None = None,
        http_timeout: float = 10.0,
        tftp_timeout: float = 1.0,
        tftp_retries: int = 3,
    ):
        self.profile = profile
        self.session = session
        self.auth = aiohttp.BasicAuth(*auth) if auth else None
        #: the provisioning credentials the phone's config gave it (kept across boots, like flash)
        self.credentials: tuple[str, str] | None = None
        self.http_timeout = http_timeout
        self.tftp_timeout = tftp_timeout
        self.tftp_retries = tftp_retries
        self.state: PhoneState | None = None  # state of the most recent boot
        #: how the last boot was started, so a check-sync NOTIFY can repeat it
        self.boot_source: tuple[Any, ...] | None = None
        self.pnp: PnpExchange | None = None  # the last PnP attempt
        self.sip_port: int | None = None  # the phone's SIP port (PnP source, NOTIFY listener)
        self.resyncs = 0  # boots triggered by a NOTIFY
        self.resync_events: list[str | None] = []
        self.resynced = asyncio.Event()  # set after each NOTIFY-triggered boot; clear it to wait again
        self._resync_listener: NotifyListener | None = None
        self._resync_task: asyncio.Task | None = None

    async def boot_http(self, base_url: str) -> PhoneState:
        """Boot from an HTTP(S) provisioning URL (the directory holding the files)."""
        if not base_url.endswith("/"):
            base_url += "/"
        self.boot_source = ("http", base_url)
        return await self._boot_with_session(base_url)

    async def _boot_with_session(self, base: str, entry: str | None = None) -> PhoneState:
        if self.session is not None:
            return await self._boot(base, self.session, entry)
        timeout = aiohttp.ClientTimeout(total=self.http_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return await self._boot(base, session, entry)

    async def boot_tftp(self, host: str, port: int = 69, path: str = "") -> PhoneState:
        """Boot from a TFTP server (DHCP option 66 style), optionally under ``path``."""
        path = path.strip("/")
        h = f"[{host}]" if ":" in host else host
        base = f"tftp://{h}:{port}/" + (path + "/" if path else "")
        self.boot_source = ("tftp", host, port, path)
        # A session only for absolute http(s) URLs a boot file might include.
        return await self._boot_with_session(base)

    async def boot_pnp(self, *, port: int = 5060, group: str = "224.0.1.75", interface: str = "127.0.0.1",
                       timeout: float = 5.0, local_port: int = 0, **subscribe: Any) -> PhoneState | None:
        """SIP plug-and-play, then boot from the URL the NOTIFY carried; None if nobody answered
        (a real phone would go on to DHCP).  ``subscribe`` overrides :meth:`PhoneProfile.pnp_subscribe`.

        The SUBSCRIBE's source port becomes :attr:`sip_port`, as on a phone whose SIP port sends
        it, so :meth:`listen_for_resync` then listens where the server saw the phone.
        """
        args = {**self.profile.pnp_subscribe(), **subscribe}
        self.pnp = await pnp_exchange(group=group, port=port, interface=interface, timeout=timeout,
                                      local_port=local_port, **args)
        self.sip_port = self.pnp.local[1]
        if not self.pnp.url:
            return None
        return await self.boot_url(self.pnp.url)

    async def boot_url(self, url: str) -> PhoneState | None:
        """Boot from a provisioning URL as PnP or DHCP hands it over: ``{mac}``/``$mac``/``$MA``
        (lowercase, Snom/Gigaset uppercase for ``{mac}``), ``$MAU``/``%MACD`` (uppercase) are
        filled in; a folder URL (trailing ``/``) boots the folder, a file URL starts from the file.
        A Grandstream ignores anything but a folder (vendors.md §5.1): None."""
        mac = self.profile.mac
        upper = self.profile.vendor in ("snom", "gigaset")
        for token, value in (("{mac}", mac.upper() if upper else mac), ("$MAU", mac.upper()),
                             ("$MA", mac), ("$mac", mac), ("%MACD", mac.upper())):
            url = url.replace(token, value)
        if not url.endswith("/") and self.profile.vendor == "grandstream":
            return None
        folder, _, name = url.rpartition("/")
        if url.startswith("tftp://"):
            hostport, _, path = url[len("tftp://"):].partition("/")
            host, port = _split_hostport(hostport, 69)
            if not name:
                return await self.boot_tftp(host, port, path)
            folder_path = path.rpartition("/")[0]
            base = f"tftp://{hostport}/" + (folder_path + "/" if folder_path else "")
        else:
            base = folder + "/"
        self.boot_source = ("url", base, name or None)
        return await self._boot_with_session(base, name or None)

    async def reboot(self) -> PhoneState | None:
        """Boot again the way the last boot went (what a check-sync makes a phone do)."""
        if self.boot_source is None:
            return None
        kind, *rest = self.boot_source
        if kind == "http":
            return await self.boot_http(rest[0])
        if kind == "tftp":
            return await self.boot_tftp(*rest)
        return await self._boot_with_session(rest[0], rest[1])

    async def listen_for_resync(self, host: str = "127.0.0.1", port: int | None = None) -> NotifyListener:
        """Answer check-sync NOTIFYs on ``host:port`` (default: :attr:`sip_port`, else any) and
        re-fetch the files after each; :attr:`resyncs` / :attr:`resynced` tell the test."""
        await self.stop_listening()
        listener = NotifyListener(host=host, port=port if port is not None else (self.sip_port or 0))
        await listener.start()
        self.sip_port = listener.port
        self._resync_listener = listener
        self._resync_task = asyncio.get_running_loop().create_task(self._resync_loop(listener))
        return listener

    async def stop_listening(self) -> None:
        if self._resync_task is not None:
            self._resync_task.cancel()
            await asyncio.gather(self._resync_task, return_exceptions=True)
            self._resync_task = None
        if self._resync_listener is not None:
            await self._resync_listener.stop()
            self._resync_listener = None

    async def _resync_loop(self, listener: NotifyListener) -> None:
        while True:
            event = await listener.next_event(timeout=None)
            kind = (event or "").split(";", 1)[0].strip().lower()
            if kind not in ("check-sync", "resync", "reboot"):
                continue  # not a provisioning event: a real phone ignores it too
            await self.reboot()
            self.resyncs += 1
            self.resync_events.append(event)
            self.resynced.set()

    async def _boot(self, base: str, session: aiohttp.ClientSession, entry: str | None = None) -> PhoneState:
        state = self.profile.new_state()
        ctx = BootContext(
            state,
            base=base,
            user_agent=state.user_agent,
            session=session,
            tftp_options=self.profile.tftp_options(),
            tftp_timeout=self.tftp_timeout,
            tftp_retries=self.tftp_retries,
            auth=self.auth,
            digest=DigestClient(*self.credentials) if self.credentials else None,
        )
        try:
            await (self.profile.boot_file(ctx, entry) if entry else self.profile.boot(ctx))
        except Exception as exc:  # a simulator bug must not take down a 1000-phone benchmark
            state.errors.append(f"boot aborted: {type(exc).__name__}: {exc}")
        try:
            self.profile.finalize(state)
        except Exception as exc:
            state.errors.append(f"finalize failed: {type(exc).__name__}: {exc}")
        self.credentials = self.profile.provisioning_credentials(state) or self.credentials
        self.state = state
        return state


# --- profile registry ------------------------------------------------------

_PROFILES: dict[str, type[PhoneProfile]] = {}
#: Vendor profiles live in ``simulators/<vendor>.py`` and register themselves when imported;
#: they are imported on first use so the core does not depend on any vendor module.
_NOT_PROFILES = {"config_decrypt", "phone", "tftp_client", "gateway", "mobile", "sip_phone", "fleet", "mdns_phone", "desk_phone",
                 "scenario", "simulate_cli"}


def _profile_modules() -> dict[str, str]:
    import pkgutil

    import simulators

    return {m.name: f"simulators.{m.name}" for m in pkgutil.iter_modules(simulators.__path__)
            if m.name not in _NOT_PROFILES and not m.name.startswith("_")}


def register_profile(cls: type[PhoneProfile]) -> type[PhoneProfile]:
    """Class decorator: make a profile available to :func:`get_profile_class` and the CLI."""
    _PROFILES[cls.vendor] = cls
    return cls


def get_profile_class(vendor: str) -> type[PhoneProfile]:
    vendor = vendor.lower()
    modules = _profile_modules()
    if vendor not in _PROFILES and vendor in modules:
        importlib.import_module(modules[vendor])
    try:
        return _PROFILES[vendor]
    except KeyError:
        raise ValueError(f"unknown vendor {vendor!r}; known: {sorted(set(_PROFILES) | set(modules))}") from None


# --- CLI -------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.phone", description=__doc__.splitlines()[0])
    parser.add_argument("--vendor", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--mac", required=True)
    parser.add_argument("--firmware", required=True)
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--url", help="HTTP(S) provisioning base URL")
    src.add_argument("--tftp", metavar="HOST:PORT", help="TFTP server (port defaults to 69)")
    parser.add_argument("--auth", metavar="USER:PASSWORD", help="HTTP basic auth credentials")
    args = parser.parse_args(argv)

    try:
        profile = get_profile_class(args.vendor)(args.model, args.mac, args.firmware)
    except ValueError as exc:  # unknown vendor or bad MAC
        parser.error(str(exc))
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    phone = Phone(profile, auth=auth)  # type: ignore[arg-type]
    if args.url:
        state = asyncio.run(phone.boot_http(args.url))
    else:
        host, port = _split_hostport(args.tftp, 69)
        state = asyncio.run(phone.boot_tftp(host, port))
    json.dump(state.to_dict(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 1 if state.errors else 0


if __name__ == "__main__":
    # Run through the importable module so profiles registered by
    # ``simulators.yealink`` (which imports ``simulators.phone``) are visible.
    from simulators.phone import main as _main

    sys.exit(_main())
