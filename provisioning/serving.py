"""What a device gets when it asks for a file: identify, authorise, then serve cached bytes.

Shared by the HTTP and TFTP listeners, so both serve exactly the same bytes. Every refusal is
the same answer as a missing file (404 / TFTP "file not found") and is logged with its reason.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import time
from dataclasses import dataclass, replace
from enum import Enum
from datetime import datetime, timedelta, timezone
from typing import Callable, NamedTuple
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from provisioning import config_crypto
from provisioning.cache import ConfigCache, RenderedFile, Refusal
from provisioning.clock import Clock, SystemClock
from provisioning.device_auth import (
    Check, DeviceAccess, DigestAuthority, new_credentials, parse_authorization, parse_network_list,
)
from provisioning.guard import GuardSettings, SourceGuard, parse_networks
from provisioning.model import Device
from provisioning.device_loader import DeviceLoader
from provisioning.render import build_device_context, common_context, device_snapshot, load_device
from provisioning.settings import Settings
from provisioning.templating import PhoneTemplates
from provisioning.uploads import UploadError, UploadStore
from provisioning.vendors import BY_NAME, PLUGINS
from provisioning.vendors.base import FileKind, FileRequest, UserAgentInfo, VendorPlugin

log = logging.getLogger("deskprov.serve")
#: User-Agents and file names whose identification is remembered (each kept small, least
#: recently used dropped first: random ones from a scanner cannot grow memory).
IDENTIFY_CACHE = 20_000

MAX_PATH = 255
#: One or more segments of safe characters, "/" between them (one match for the whole path: a
#: match per segment was a tenth of a cached hit's cost)
_SAFE_PATH = re.compile(r"[A-Za-z0-9._+@-]+(?:/[A-Za-z0-9._+@-]+)*")
#: A "." or ".." segment anywhere in a path of safe segments
_DOT_SEGMENT = re.compile(r"(?:^|/)\.\.?(?:/|$)")
#: Cache key "file name" under which a device's render snapshot is kept (never a real file name:
#: clean_path refuses the NUL byte).
SNAPSHOT = "\0snapshot"
VENDOR = "\0vendor"
#: How long a device's first boot may go on fetching without credentials once it has begun
#: (its first unauthenticated fetch within the first-contact window): a boot's handful of files.
FIRST_BOOT = timedelta(seconds=120)
#: Cache key "file name" of a device's authentication facts (DeviceAccess), and the suffix of
#: its secret-free bootstrap files' keys: never the same entry as a secret-bearing file.
ACCESS = "\0access"
BOOTSTRAP = "\0bootstrap"
#: How long a per-model common file request from an address tells us the model of the
#: device behind that address (TFTP has no User-Agent; the model comes from the file name).
HINT_SECONDS = 120.0
#: The longest a request waits for the database in one step (reading a device, changing it; cache
#: misses only). A database that is down or hung gives 503 + Retry-After instead of a 500 or a
#: phone waiting forever; cached files are served throughout.
DATABASE_TIMEOUT = 5.0
DATABASE_RETRY_AFTER = 30
#: What "the database is unavailable" looks like: driver errors wrapped by SQLAlchemy, a refused
#: or reset connection (OSError), and our own timeout.
_DATABASE_DOWN = (SQLAlchemyError, OSError, TimeoutError)


class BadPath(ValueError):
    """A requested path that no device would ask for (traversal, control bytes, too long)."""


class Deferred(Enum):
    """Why ``Provisioner.answer_now`` gave no answer."""

    fetch = "fetch"     # the database, the disk or a write is needed: ``await fetch(...)`` answers it
    static = "static"   # a static file from tftp_root: the HTTP layer's file sender serves it


class _NeedsWaiting(Exception):
    """Raised in memory-only mode (``Provisioner.answer_now``) where the answer needs the
    database, the disk or a write, always before anything that leaves a trace (a nonce count,
    a ban, an audit row): the request is then answered by ``fetch`` as if never seen."""

    def __init__(self, deferred: Deferred = Deferred.fetch) -> None:
        super().__init__(deferred.value)
        self.deferred = deferred


class _Raced(SQLAlchemyError):
    """Another request (a phone fetches several files at once) changed the same device first.

    Read again; after RACE_RETRIES reads it answers like a busy database (503, come back later)."""


#: How often a read that lost such a race is done again before the phone is asked to come back.
RACE_RETRIES = 3


async def _until_not_raced(step, *args):
    """``await step(*args)``, done again (RACE_RETRIES times in all) while it loses a race (_Raced)."""
    for _ in range(RACE_RETRIES - 1):
        try:
            return await step(*args)
        except _Raced:
            continue
    return await step(*args)


def _database_step(method):
    """A step of a request that goes to the database, bounded by DATABASE_TIMEOUT. Steps, not
    whole requests: a cached hit reaches none and pays for no timer (a third of its cost)."""
    @functools.wraps(method)
    async def bounded(*args, **kwargs):
        async with asyncio.timeout(DATABASE_TIMEOUT):
            return await method(*args, **kwargs)
    return bounded


async def _commit_device(session: AsyncSession) -> None:
    """Commit a change a request makes to its device; a concurrent change to the same row (its
    version moved on) becomes _Raced, so the caller reads the device again instead of failing."""
    try:
        await session.commit()
    except StaleDataError as exc:
        await session.rollback()
        raise _Raced() from exc


def clean_path(raw: str) -> str:
    """The request path relative to the server root, or BadPath."""
    # surrogatepass: any lone surrogate counts as bytes instead of raising UnicodeEncodeError
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_PATH:
        raise BadPath("path too long")
    path = raw.lstrip("/")
    # fullmatch: with match(), "$" also matched before a trailing newline ("x.cfg\n" passed)
    if not _SAFE_PATH.fullmatch(path) or _DOT_SEGMENT.search(path):
        raise BadPath("illegal path")
    return path


# Outcome, Fetched and FetchRecord are made for every request: named tuples, immutable like a
# frozen dataclass but built five times faster (a frozen dataclass sets each field through
# object.__setattr__).
class Outcome(NamedTuple):
    """The answer to one request: a rendered file, a static file on disk, or a refusal."""

    file: RenderedFile | None = None
    static_path: Path | None = None
    reason: str = ""
    vendor: str | None = None
    mac: str | None = None
    #: a refusal that looks like probing (unknown MAC, another device's file, a hostile path):
    #: these count towards the source's ban; a phone asking for optional files does not
    suspicious: bool = False
    #: 429 (banned) or 503 (over its concurrency share) instead of a plain "not found"
    status: int = 0
    retry_after: int = 0
    #: how the requester proved it is the device: digest | certificate | first-contact | network | none
    auth: str = "none"
    #: a 401 challenge (``WWW-Authenticate`` value): the device must prove who it is
    challenge: str = ""

    @property
    def found(self) -> bool:
        return self.file is not None or self.static_path is not None

    @property
    def http_status(self) -> int:
        """The answer as an HTTP status (TFTP's answers are recorded the same way)."""
        return 200 if self.found else (self.status or (401 if self.challenge else 404))


class Fetched(NamedTuple):
    """A request that named a device (and was not probing): for the inbox and resync tracking."""

    mac: str
    path: str
    ip: str
    vendor: str | None
    transport: str
    user_agent: str | None
    served: bool


class FetchRecord(NamedTuple):
    """One request for a file and its answer, whoever asked: for the fetch audit trail."""

    path: str
    transport: str
    source: str
    user_agent: str | None
    mac: str | None
    status: int
    reason: str
    auth: str


class Provisioner:
    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession], cache: ConfigCache,
                 templates: PhoneTemplates) -> None:
        self.settings = settings
        self.sessions = sessions
        self.cache = cache
        self.templates = templates
        self._common = common_context(settings)
        self._hints: dict[str, tuple[str, str, float]] = {}
        self._static_root = settings.tftp_root.resolve()
        self.uploads = UploadStore(settings.data_dir / "uploads")
        #: MAC -> the address its own config was last served to
        self.addresses: dict[str, str] = {}
        #: called with every Fetched (cheap and synchronous: they only note it)
        self.observers: list[Callable[[Fetched], None]] = []
        #: called with a FetchRecord for every request, refusals included (cheap and synchronous)
        self.fetch_observers: list[Callable[[FetchRecord], None]] = []
        self.clock: Clock = SystemClock()
        self.digest = DigestAuthority(_nonce_key_of(sessions))
        #: set while answer_now runs a request in memory-only mode
        self._memory_only = False
        # A hung read fails just before the requests waiting on it give up, so no request that
        # arrives as they answer 503 joins it: it starts a fresh read.
        self.loader = DeviceLoader(sessions, lambda: self.cache.epoch, timeout=0.9 * DATABASE_TIMEOUT,
                                   parallel=_parallel_reads(sessions))
        self.guard = SourceGuard(GuardSettings(
            refusal_burst=settings.guard_refusal_burst, refusal_window=settings.guard_refusal_window,
            ban_seconds=settings.guard_ban_seconds,
            max_concurrent_per_source=settings.guard_max_concurrent_per_source,
            trusted_proxies=parse_networks(settings.trusted_proxies.split(",")),
        ), log=log)

    def use_settings(self, settings: Settings) -> None:
        """Switch to new settings (e.g. the real port once bound); everything rendered is redone."""
        self.settings = settings
        self._common = common_context(settings)
        self.cache.clear()

    # -- identification ------------------------------------------------------------------------
    @staticmethod
    @functools.lru_cache(maxsize=IDENTIFY_CACHE)
    def identify_user_agent(user_agent: str | None) -> UserAgentInfo | None:
        """Memoised: matching every vendor's patterns and model catalogue was most of a cached
        hit's cost, and a fleet's phones repeat the same few thousand User-Agents."""
        if not user_agent:
            return None
        for plugin in PLUGINS:
            info = plugin.match_user_agent(user_agent)
            if info is not None:
                return info
        return None

    @staticmethod
    @functools.lru_cache(maxsize=IDENTIFY_CACHE)
    def _candidates(filename: str) -> tuple[FileRequest, ...]:
        return tuple(r for p in PLUGINS if (r := p.match_path(filename)) is not None)

    def _choose(self, candidates: list[FileRequest], ua: UserAgentInfo | None) -> FileRequest | None:
        if ua is not None:
            return next((c for c in candidates if c.vendor == ua.vendor), None)
        if len(candidates) > 1:
            for c in candidates:
                if c.mac and BY_NAME[c.vendor].owns_mac(c.mac):
                    return c
        return candidates[0] if candidates else None

    async def _choose_by_device(self, candidates: list[FileRequest], chosen: FileRequest) -> FileRequest:
        """Several vendors ask for this name (``<MAC>.xml``, ``<mac>.cfg``) and nothing in the
        request tells which one is asking: the vendor recorded for the device decides."""
        key = ("", chosen.mac, VENDOR)
        vendor = self.cache.get(key)
        if vendor is None:
            self._must_wait()
            vendor = await self._read_vendor(chosen.mac, key)
        return next((c for c in candidates if c.vendor == vendor), chosen)

    @_database_step
    async def _read_vendor(self, mac: str, key) -> str | Refusal:
        loaded = await self.loader.load(mac)
        device = loaded.device
        vendor = Refusal("unknown") if device is None or device.vendor is None else device.vendor
        deps = {("mac", mac)} | ({("device", device.id)} if device is not None else set())
        self.cache.put(key, vendor, deps, since=loaded.epoch)
        return vendor

    # -- serving -------------------------------------------------------------------------------
    def answer_now(self, raw_path: str, **request) -> Outcome | Deferred:
        """``fetch``'s answer if memory alone gives it (cached files, access facts and refusals:
        a phone's usual request), without an event-loop round trip; else why not (Deferred). The
        very same code as ``fetch``: run to completion synchronously, with every step that would
        wait raising _NeedsWaiting first."""
        self._memory_only = True
        running = self.fetch(raw_path, **request)
        try:
            running.send(None)
        except StopIteration as done:
            return done.value
        except _NeedsWaiting as waiting:
            return waiting.deferred
        finally:
            self._memory_only = False
        running.close()  # it waited on something without saying so first: a bug, never an answer
        raise RuntimeError(f"memory-only fetch of {raw_path!r} waited without raising _NeedsWaiting")

    def _must_wait(self) -> None:
        if self._memory_only:
            raise _NeedsWaiting()

    async def fetch(self, raw_path: str, *, user_agent: str | None, client_ip: str, transport: str,
                    certificate_mac: str | None = None, authorization: str | None = None,
                    method: str = "GET") -> Outcome:
        """Answer one request. ``certificate_mac`` is the MAC a verified TLS client certificate names;
        ``authorization`` the request's Authorization header (HTTP digest)."""
        verdict = self.guard.admit(client_ip)
        if not verdict.allowed:
            return Outcome(reason=verdict.reason, status=verdict.status, retry_after=verdict.retry_after)
        try:
            outcome = await self._fetch(raw_path, user_agent, client_ip, certificate_mac,
                                        _Asking(transport, authorization, method))
        except _DATABASE_DOWN as exc:
            outcome = self._unavailable(exc)
        finally:
            self.guard.release(client_ip)
        if outcome.found:
            log.debug("%s %s to %s", transport, raw_path, client_ip)
        else:
            log.info("refused %s %r from %s (UA %r): %s", transport, raw_path[:300], client_ip,
                     (user_agent or "")[:200], outcome.reason)
            if outcome.suspicious:
                self.guard.refused(client_ip, outcome.reason)
        if outcome.mac and not outcome.suspicious and self.observers:
            event = Fetched(outcome.mac, raw_path, client_ip, outcome.vendor, transport, user_agent, outcome.found)
            for observer in self.observers:
                observer(event)
        if self.fetch_observers:
            record = FetchRecord(raw_path[:255], transport, client_ip, user_agent, outcome.mac, outcome.http_status,
                                 outcome.reason[:200], outcome.auth)
            for fetch_observer in self.fetch_observers:
                fetch_observer(record)
        return outcome

    async def _fetch(self, raw_path: str, user_agent: str | None, client_ip: str,
                     certificate_mac: str | None = None, asking: "_Asking | None" = None) -> Outcome:
        try:
            path = clean_path(raw_path)
        except BadPath as exc:
            return Outcome(reason=str(exc), suspicious=True)
        filename = path.rsplit("/", 1)[-1]
        ua = self.identify_user_agent(user_agent)
        # Most vendors name the device in the file name; some in a folder (Grandstream's
        # phonebook folder: pb<mac>/phonebook.xml), so the whole path is the second try.
        candidates = self._candidates(filename) or self._candidates(path)
        request = self._choose(candidates, ua)
        if request is None:
            if self._memory_only:
                raise _NeedsWaiting(Deferred.static)
            return self._static(path)
        if ua is None and request.mac and len({c.vendor for c in candidates}) > 1 \
                and not BY_NAME[request.vendor].owns_mac(request.mac):
            request = await self._choose_by_device(candidates, request)
        if ua is not None and ua.mac and request.mac and ua.mac != request.mac:
            return Outcome(reason=f"MAC in path {request.mac} is not the User-Agent's {ua.mac}",
                           vendor=request.vendor, suspicious=True)
        if certificate_mac and request.mac and request.mac != certificate_mac:
            return Outcome(reason=f"client certificate is for {certificate_mac}, not {request.mac}",
                           vendor=request.vendor, suspicious=True)
        if request.kind is FileKind.common:
            if request.model:
                self._hints[client_ip] = (request.vendor, request.model, time.monotonic())
            return self._common_file(request)
        if request.kind is FileKind.upload:
            if self.addresses.get(request.mac) != client_ip:
                return Outcome(reason="uploads are read back only from the address the device provisions from",
                               vendor=request.vendor, mac=request.mac, suspicious=True)
            self._must_wait()
            data = await asyncio.to_thread(self.uploads.read, request.mac, request.name)
            if data is None:
                return Outcome(reason="nothing uploaded under that name", vendor=request.vendor, mac=request.mac)
            return Outcome(file=RenderedFile.of(data, "application/octet-stream"), vendor=request.vendor,
                           mac=request.mac)
        outcome = await self._authorised_file(request, ua, client_ip, certificate_mac,
                                              asking or _Asking("http", None, "GET"), raw_path)
        if outcome.file is not None and outcome.auth != "none":
            self.addresses[request.mac] = client_ip
        return outcome

    # -- device authentication -----------------------------------------------------------------
    async def _authorised_file(self, request: FileRequest, ua: UserAgentInfo | None, client_ip: str,
                               certificate_mac: str | None, asking: "_Asking", raw_path: str) -> Outcome:
        """A device's own file, to the device only: secrets need proof (certificate, digest,
        first contact, a TFTP secret network); anyone else gets a challenge, a bootstrap file or
        nothing."""
        access = await self._access(request.mac)
        if isinstance(access, Refusal):  # unknown or unbound
            return self._outcome(access, request)
        if access.vendor and access.vendor != request.vendor:  # the file's own refusal says why
            return await self._device_file(request, ua, client_ip)
        refuse = dict(vendor=request.vendor, mac=request.mac)
        if self._memory_only and (access.first_contact_until is not None or self.cache.get(
                (request.vendor, request.mac, request.name)) is None):
            # the window may be shortened (a write), or the file is not at hand: decided by fetch,
            # before the digest check below counts this nonce
            raise _NeedsWaiting()
        if not access.source_allowed(client_ip):
            return Outcome(reason=f"{client_ip} is outside the organisation's allowed networks", suspicious=True,
                           **refuse)
        # the clock only matters while a first-contact window is open (most fetches: none)
        now = self.clock.now() if access.first_contact_until is not None else None
        if certificate_mac == request.mac:
            auth = "certificate"
        elif asking.transport == "tftp":
            if not access.tftp_secrets_allowed(client_ip):
                return await self._bootstrap_file(request, ua, client_ip)
            auth = "network"
        else:
            params = parse_authorization(asking.authorization)
            if params is None and asking.authorization:
                return Outcome(reason="unusable Authorization header", challenge=self.digest.challenge(),
                               suspicious=True, **refuse)
            if params is None:
                if not access.first_contact_open(now):
                    return Outcome(reason="authentication required", challenge=self.digest.challenge(), **refuse)
                auth = "first-contact"
            else:
                check = Check.bad
                if access.username and access.password and params.get("username") == access.username:
                    check = self.digest.check(params, method=asking.method, path="/" + raw_path.lstrip("/"),
                                              username=access.username, password=access.password)
                if check is Check.stale:
                    return Outcome(reason="digest nonce expired", challenge=self.digest.challenge(stale=True),
                                   **refuse)
                if check is Check.ok:
                    auth = "digest"
                elif params.get("username") == access.username and access.first_contact_open(now):
                    # its own username with an old password: the device after a credential rotation
                    auth = "first-contact"
                else:
                    why = {Check.replay: "replayed digest (nonce count not increasing)"}.get(
                        check, "digest credentials do not prove this device"
                        if params.get("username") == access.username else "credentials of another or no device")
                    return Outcome(reason=why, challenge=self.digest.challenge(), suspicious=True, **refuse)
        outcome = await self._device_file(request, ua, client_ip, auth)
        if outcome.found and access.first_contact_until is not None:
            if auth in ("digest", "certificate"):
                await self._shorten_first_contact(access, None)
            elif auth == "first-contact" and access.first_contact_until > now + FIRST_BOOT:
                # "once": the rest of this boot may follow without credentials, later ones may not
                await self._shorten_first_contact(access, now + FIRST_BOOT)
        return outcome

    async def _access(self, mac: str) -> DeviceAccess | Refusal:
        """The device's authentication facts (cached until the device or its organisation
        changes), or why it has no files: unknown (suspicious) or not bound."""
        key = ("", mac, ACCESS)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        self._must_wait()
        return await _until_not_raced(self._read_access, mac, key)

    @_database_step
    async def _read_access(self, mac: str, key) -> DeviceAccess | Refusal:
        # Read with the device's render data (one batched read serves both, and a storm's devices)
        loaded = await self.loader.load(mac)
        device = loaded.device
        deps = {("mac", mac)}
        refusal = _unbound(device)
        if refusal is not None:
            if device is not None:
                deps.add(("device", device.id))
            self.cache.put(key, refusal, deps, since=loaded.epoch)
            return refusal
        username, password = device.http_username, device.http_password
        if not username or not password:
            # bound before device authentication existed, or by a path that issued none
            username, password = await self._issue_credentials(device.id)
        org = device.organization
        access = DeviceAccess(
            mac=mac, device_id=device.id, vendor=device.vendor, username=username, password=password,
            first_contact_until=_aware(device.first_contact_until),
            allowed_networks=_networks(org.allowed_networks, closed=True),
            tftp_secret_networks=_networks(org.tftp_secret_networks),
        )
        deps |= {("device", device.id), ("access", device.id), ("org", org.id)}
        self.cache.put(key, access, deps, since=loaded.epoch)
        return access

    async def _issue_credentials(self, device_id: int) -> tuple[str, str]:
        async with self.sessions() as session:
            device = await session.get(Device, device_id)
            if device is None:  # deleted meanwhile: read it again
                raise _Raced()
            if not device.http_username or not device.http_password:
                device.http_username, device.http_password = new_credentials(device.mac)
                device.credentials_issued_at = self.clock.now()
                await _commit_device(session)
            return device.http_username, device.http_password

    @_database_step
    async def _shorten_first_contact(self, access: DeviceAccess, until: datetime | None) -> None:
        """Close the device's first-contact window (it has authenticated: None) or end it soon
        (its first boot without credentials has begun). The commit drops the cached access
        facts on every other node; here they are replaced at once, so the rest of the boot
        reads nothing again."""
        key = ("", access.mac, ACCESS)
        deps = self.cache.deps(key)
        async with self.sessions() as session:
            device = await session.get(Device, access.device_id)
            current = _aware(device.first_contact_until) if device is not None else None
            if current is not None and (until is None or until < current):
                device.first_contact_until = until
                try:
                    await _commit_device(session)
                except _Raced:  # another of its requests got there first; the next one tries again
                    return
                if deps:
                    self.cache.put(key, replace(access, first_contact_until=until), deps)
                log.info("%s %s", access.mac, "authenticated: its first-contact window is closed" if until is None
                         else f"fetched its files on first contact: the window ends at {until:%H:%M:%S} UTC")

    async def _bootstrap_file(self, request: FileRequest, ua: UserAgentInfo | None, client_ip: str) -> Outcome:
        """The device's file without any secret (no accounts, no admin password, no phonebook, no
        credentials), where its vendor has one; a separate cache entry from the real file."""
        key = (request.vendor, request.mac, request.name + BOOTSTRAP)
        entry = self.cache.get(key)
        if entry is None:
            self._must_wait()
            snapshot, deps, since = await self._device_snapshot(request, ua, client_ip)
            if isinstance(snapshot, Refusal):
                entry = snapshot
            else:
                plugin = BY_NAME[request.vendor]
                body = plugin.render_bootstrap(request, snapshot.context, self.templates)
                entry = Refusal("no secret-free file for an unauthenticated request") if body is None \
                    else RenderedFile.of(body, plugin.content_type(request))
            self.cache.put(key, entry, deps, since=since)
        return self._outcome(entry, request)

    async def store(self, raw_path: str, data: bytes, *, user_agent: str | None, client_ip: str) -> Outcome:
        """Keep a file a device uploads, if it is one its vendor uploads and the device is bound.

        Guarded like ``fetch``: refused PUTs count towards the source's ban, so PUT is no way
        around the enumeration defence."""
        verdict = self.guard.admit(client_ip)
        if not verdict.allowed:
            return Outcome(reason=verdict.reason, status=verdict.status, retry_after=verdict.retry_after)
        try:
            outcome = await self._store(raw_path, data, user_agent, client_ip)
        except UploadError:  # an OSError too, but the disk's, not the database's: 507 from the caller
            raise
        except _DATABASE_DOWN as exc:
            outcome = self._unavailable(exc)
        finally:
            self.guard.release(client_ip)
        if outcome.found:
            log.info("stored upload %r (%d bytes) from %s", raw_path[:300], len(data), client_ip)
        else:
            log.info("refused upload %r from %s (UA %r): %s", raw_path[:300], client_ip, (user_agent or "")[:200],
                     outcome.reason)
            if outcome.suspicious:
                self.guard.refused(client_ip, outcome.reason)
        return outcome

    async def _store(self, raw_path: str, data: bytes, user_agent: str | None, client_ip: str) -> Outcome:
        try:
            path = clean_path(raw_path)
        except BadPath as exc:
            return Outcome(reason=str(exc), suspicious=True)
        ua = self.identify_user_agent(user_agent)
        request = self._choose(self._candidates(path.rsplit("/", 1)[-1]) or self._candidates(path), ua)
        if request is None or request.kind is not FileKind.upload:
            return Outcome(reason="not a file devices upload", suspicious=True)
        if ua is not None and ua.mac and ua.mac != request.mac:
            return Outcome(reason=f"MAC in path {request.mac} is not the User-Agent's {ua.mac}", suspicious=True)
        if len(data) > self.settings.max_upload_bytes:
            return Outcome(reason="upload too large")
        if self.addresses.get(request.mac) != client_ip:
            # Poly's User-Agent names no MAC: without this anyone could plant an override file
            # (a new registrar) for any phone. Device credentials (digest/TLS) will tighten it.
            return Outcome(reason="uploads are accepted only from the address the device provisions from",
                           suspicious=True)
        device = (await self.loader.load(request.mac)).device  # not around the write: a slow disk is not a 503
        if _unbound(device) is not None:
            return Outcome(reason="unknown or unbound device")
        stored = await asyncio.to_thread(self.uploads.write, request.mac, request.name, data)
        return Outcome(static_path=stored, vendor=request.vendor, mac=request.mac)

    def _common_file(self, request: FileRequest) -> Outcome:
        key = (request.vendor, None, request.name)
        entry = self.cache.get(key)
        if entry is None:
            plugin = BY_NAME[request.vendor]
            body = plugin.render_common(request, self._common, self.templates)
            entry = RenderedFile.of(body, plugin.content_type(request)) if body is not None \
                else Refusal(f"{plugin.display_name} file not served")
            self.cache.put(key, entry, ())
        return self._outcome(entry, request)

    async def _device_file(self, request: FileRequest, ua: UserAgentInfo | None, client_ip: str,
                           auth: str = "none") -> Outcome:
        key = (request.vendor, request.mac, request.name)
        entry = self.cache.get(key)  # plain files; a device's encrypted ones are cached apart
        if entry is None:
            self._must_wait()
            snapshot, deps, since = await self._device_snapshot(request, ua, client_ip)
            if isinstance(snapshot, Refusal):
                entry = snapshot
                self.cache.put(key, entry, deps, since=since)
            else:
                plugin = BY_NAME[request.vendor]
                ctx = snapshot.context
                sealed = config_crypto.sealed(plugin, request, ctx)
                if sealed:
                    key = (request.vendor, request.mac, request.name + config_crypto.SEALED)
                    entry = self.cache.get(key)
                if entry is None:
                    body = plugin.render_device(request, ctx, self.templates)
                    if body is not None and sealed:
                        body = config_crypto.seal(plugin, ctx, body)
                    content_type = "application/octet-stream" if sealed else plugin.content_type(request)
                    entry = Refusal("no such file for this device") if body is None \
                        else RenderedFile.of(body, content_type)
                    self.cache.put(key, entry, deps, since=since)
                if isinstance(entry, RenderedFile) and config_crypto.delivers_key(plugin, request, ctx):
                    await self._config_key_delivered(request.mac, ctx.config_key)
        return self._outcome(entry, request, auth)

    @_database_step
    async def _config_key_delivered(self, mac: str, key: str) -> None:
        """The device now has its config key: the commit drops its cached files (the change log),
        so its next fetch renders the encrypted variant."""
        async with self.sessions() as session:
            device = await load_device(session, mac)
            if device is not None and device.config_key == key and device.config_key_delivered_at is None:
                device.config_key_delivered_at = self.clock.now()
                try:
                    await _commit_device(session)
                except _Raced:  # another of its requests changed it first: the next serve records it
                    return
                log.info("config key delivered to %s; its files are served encrypted from now on", mac)

    async def _device_snapshot(self, request: FileRequest, ua: UserAgentInfo | None, client_ip: str):
        """What a device's files are rendered from, read once and shared by all its files:
        (snapshot or refusal, its dependencies, the cache epoch it was read at)."""
        key = (request.vendor, request.mac, SNAPSHOT)
        cached = self.cache.get(key)
        if cached is not None:
            return cached, self.cache.deps(key), self.cache.epoch
        snapshot, deps, complete, since = await _until_not_raced(self._load_snapshot, request, ua, client_ip)
        if complete:
            # A device whose model is still unknown is read again on its next request: the file
            # names it asks for next (a per-model common file) may yet tell its model.
            self.cache.put(key, snapshot, deps, since=since)
        return snapshot, deps, since

    @_database_step
    async def _load_snapshot(self, request: FileRequest, ua: UserAgentInfo | None, client_ip: str):
        """(snapshot or refusal, dependencies, whether it is final enough to cache, the cache
        epoch its read began at). From the batched read; a device that must change first (its
        model to learn, a config key to make) is read again and changed in a session of its own."""
        loaded = await self.loader.load(request.mac)
        device, plugin = loaded.device, BY_NAME[request.vendor]
        deps = {("mac", request.mac)} | ({("device", device.id)} if device is not None else set())
        refusal = _unservable(device, plugin)
        if refusal is not None:
            return refusal, deps, True, loaded.epoch
        if device.vendor is not None and device.model is not None:
            model = self._model(plugin, device)
            cipher = plugin.config_cipher(model)
            if not config_crypto.must_change(device, cipher):
                snapshot = config_crypto.with_key(device_snapshot(device, model, self.settings, loaded.extras),
                                                  device, cipher)
                return snapshot, deps | snapshot.deps, True, loaded.epoch
        return await self._change_and_load_snapshot(request, ua, client_ip)

    async def _change_and_load_snapshot(self, request: FileRequest, ua: UserAgentInfo | None, client_ip: str):
        mac = request.mac
        deps = {("mac", mac)}
        since = self.cache.epoch
        async with self.sessions() as session:
            device = await load_device(session, mac)
            plugin = BY_NAME[request.vendor]
            deps |= {("device", device.id)} if device is not None else set()
            refusal = _unservable(device, plugin)
            if refusal is not None:
                return refusal, deps, True, since
            if device.vendor is None or device.model is None:
                await self._learn(session, device, plugin, ua, client_ip)
            model = self._model(plugin, device)
            cipher = plugin.config_cipher(model)
            if config_crypto.prepare(device, cipher):
                await _commit_device(session)
            snapshot = await build_device_context(session, device, model, self.settings)
            snapshot = config_crypto.with_key(snapshot, device, cipher)
        return snapshot, deps | snapshot.deps, device.model is not None, since

    @staticmethod
    def _model(plugin: VendorPlugin, device: Device):
        model = plugin.find_model(device.model)
        if model is None:
            log.warning("%s %s: unknown model %r, serving the generic %s profile", plugin.display_name,
                        device.mac, device.model, plugin.display_name)
            model = plugin.generic_model()
        return model

    async def _learn(self, session: AsyncSession, device, plugin: VendorPlugin, ua: UserAgentInfo | None,
                     client_ip: str) -> None:
        """Record vendor and model of a device registered by MAC alone, from its first request."""
        model = ua.model if ua else None
        firmware = ua.firmware if ua else None
        hint = self._hints.get(client_ip)
        if model is None and hint and hint[0] == plugin.name and time.monotonic() - hint[2] < HINT_SECONDS:
            model = hint[1]
        catalogued = plugin.find_model(model)
        device.vendor = plugin.name
        device.model = device.model or (catalogued.name if catalogued else model)
        device.firmware = device.firmware or firmware
        await _commit_device(session)
        log.info("learnt %s is a %s %s (firmware %s) from its request", device.mac, plugin.display_name,
                 device.model or "of unknown model", device.firmware or "unknown")

    @staticmethod
    def _unavailable(exc: BaseException) -> Outcome:
        """The database is down or hung: nothing is cached, the device is asked to come back."""
        log.warning("database unavailable, answering 503: %s",
                    (str(exc) or type(exc).__name__).splitlines()[0][:300])
        return Outcome(reason="database unavailable", status=503, retry_after=DATABASE_RETRY_AFTER)

    def _outcome(self, entry: RenderedFile | Refusal, request: FileRequest, auth: str = "none") -> Outcome:
        if isinstance(entry, Refusal):
            return Outcome(reason=entry.reason, vendor=request.vendor, mac=request.mac,
                           suspicious=entry.suspicious, auth=auth)
        return Outcome(file=entry, vendor=request.vendor, mac=request.mac, auth=auth)

    def _static(self, path: str) -> Outcome:
        """Firmware, ringtones, wallpapers from tftp_root; never outside it, never a symlink out."""
        candidate = (self._static_root / path).resolve()
        if candidate.is_relative_to(self._static_root) and candidate.is_file() and os.access(candidate, os.R_OK):
            return Outcome(static_path=candidate)
        return Outcome(reason="no such file")


def _unbound(device: Device | None) -> Refusal | None:
    """Why this device has no files at all, if it has none: unknown, or not bound to a user."""
    if device is None:
        return Refusal("unknown MAC", suspicious=True)
    if device.organization is None or not device.lines:
        return Refusal("device is not bound to a user")
    return None


def _unservable(device: Device | None, plugin: VendorPlugin) -> Refusal | None:
    """Why this device gets no files from this vendor's plugin, if it gets none."""
    refusal = _unbound(device)
    if refusal is not None:
        return refusal
    if device.vendor and device.vendor != plugin.name:
        return Refusal(f"device is a {device.vendor}, not a {plugin.name}")
    return None


def _engine_of(sessions):
    """The engine a sessionmaker is bound to (None for one made without an engine, as in tests)."""
    return getattr(sessions, "kw", {}).get("bind")


def _parallel_reads(sessions) -> int:
    """Batched device reads at once: one on SQLite (a single writer; reads gain nothing from
    queueing on more threads), a few on PostgreSQL (its pool serves them side by side)."""
    bind = _engine_of(sessions)
    return 1 if bind is None or bind.dialect.name == "sqlite" else 4


@dataclass(frozen=True)
class _Asking:
    """How a request reached us: what authentication it can carry."""

    transport: str
    authorization: str | None
    method: str


def _networks(text: str | None, *, closed: bool = False) -> tuple:
    """Stored networks; an unparsable value (validated on the way in) opens nothing: as allowed
    networks it allows no source (``closed``), as TFTP secret networks it names none."""
    try:
        return parse_network_list(text)
    except ValueError:
        log.error("unparsable network list %r: treated as none", text)
        return parse_network_list("255.255.255.255/32") if closed else ()


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes (stored as UTC)."""
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


def _nonce_key_of(sessions) -> bytes | None:
    """A nonce key every worker and node shares: derived from the secret key on the engine."""
    from provisioning.secretbox import box_of
    try:
        box = box_of(_engine_of(sessions).sync_engine.dialect)
    except Exception:  # no engine or no key attached: a per-process key (nonces then stay per process)
        return None
    return box.derive_key(b"deskprov digest nonce key")
