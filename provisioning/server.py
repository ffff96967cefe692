"""The running server: database, caches, the phone-facing HTTP and TFTP listeners, the admin side.

``Server`` is what ``deskprov serve`` runs and what the end-to-end tests start on ephemeral
ports. The admin application is passed in as a factory so that the core never imports ``api``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from pathlib import Path
from typing import Awaitable, Callable

from aiohttp import web

from provisioning.cache import ConfigCache
from provisioning.certs import server_context
from provisioning.changes import ChangeFeed, Listener, listen_dsn, tracked_sessionmaker
from provisioning.clock import Clock, SystemClock
from provisioning.db import engine_for, upgrade
from provisioning.discovery.fingerprints import vendor_for_mac
from provisioning.discovery.inbox import Inbox
from provisioning.discovery.mdns import MdnsDiscovery
from provisioning.discovery.pnp import PnpResponder
from provisioning.discovery.sighting import Sighting as Seen
from provisioning.fetch_audit import FetchAudit
from provisioning.key_rotation import check_key
from provisioning.lifecycle import remove_due_users
from provisioning.outbox import FileOutbox, Outbox
from provisioning.pictures import PictureStore
from provisioning import http as phone_http
from provisioning.http import MAX_FIELD, MAX_LINE, MalformedRequestNoise, make_phone_app
from provisioning.phone_protocol import FastLane
from provisioning.serving import Fetched, Provisioner
from provisioning.settings import Settings
from provisioning.sync import SyncScheduler
from provisioning.templating import PhoneTemplates
from provisioning.tftp import TftpService, TftpUnavailable
from provisioning.vendors import BY_NAME

log = logging.getLogger("deskprov.server")
#: How long a stopping server waits for its last buffered writes (sightings, fetch audit).
STOP_WRITE_SECONDS = 5

#: Seconds the admin listener (admin UI, API and the users' self-service pages) keeps a connection
#: that has no request under way: a browser's idle keep-alive, or a request head that never ends
#: (aiohttp's own default is an hour, which would let a slowloris hold connections).
ADMIN_IDLE_TIMEOUT = 60.0

AdminAppFactory = Callable[["Server"], web.Application]
#: Devices whose last sighting is kept for reuse (a fleet; emptied when full, so a scan of
#: made-up MACs cannot grow it).
MAX_REMEMBERED_SIGHTINGS = 200_000


class Server:
    def __init__(self, settings: Settings, admin_app: AdminAppFactory | None = None, *,
                 clock: Clock | None = None, outbox: Outbox | None = None, phone_only: bool = False) -> None:
        self.settings = settings
        #: a secondary worker of ``deskprov serve --workers N`` (provisioning/workers.py): phone
        #: HTTP(S) only; TFTP, PnP, mDNS, the admin side and the deactivation job run in worker 0
        self.phone_only = phone_only
        self._admin_app = admin_app
        #: Every time-driven decision (deactivation, diversions, sessions) reads this clock.
        self.clock: Clock = clock or SystemClock()
        #: Where installation SMS/e-mails go (U7); a file outbox under the data dir by default.
        self.outbox: Outbox = outbox or FileOutbox(settings.data_dir / "outbox")
        self.pictures = PictureStore(settings.data_dir / "pictures")
        self._deactivations: asyncio.Task | None = None
        self.cache = ConfigCache(max_bytes=settings.cache_max_bytes)
        #: Resync push: devices whose cached files a change dropped get their vendor's NOTIFY.
        self.sync = SyncScheduler(local_host=settings.sip_source_address,
                                  debounce=float(settings.resync_debounce_seconds))
        self.listeners: list[Listener] = [self._invalidate]
        self.engine = engine_for(settings)
        #: this node in the change log: several servers may share one database (and one process)
        self.node = uuid.uuid4().hex
        self.sessions = tracked_sessionmaker(self.engine, self.listeners, self.node)
        self.templates = PhoneTemplates(settings.templates_dir)
        self.provisioner = Provisioner(settings, self.sessions, self.cache, self.templates)
        self.inbox = Inbox(self.sessions)
        self.provisioner.observers.append(self._fetched)
        #: MAC -> (where and how it last fetched, its sighting), see _fetched
        self._sightings: dict[str, tuple[tuple, Seen]] = {}
        #: every config request, refusals included, written in batches (provisioning/fetch_audit.py)
        self.fetch_audit = FetchAudit(self.sessions, now=self.clock.now, prune=not phone_only,
                                      retention_days=settings.fetch_audit_retention_days)
        self.provisioner.fetch_observers.append(self.fetch_audit.record)
        self.pnp: PnpResponder | None = None
        self.mdns: MdnsDiscovery | None = None
        self.feed = ChangeFeed(self.sessions, self.listeners, self.node,
                               listen_dsn=listen_dsn(settings.database_url))
        self._runners: list[web.AppRunner] = []
        #: the phone listeners' fast lanes (provisioning/phone_protocol.py)
        self.lanes: list[FastLane] = []
        self.tftp: TftpService | None = None
        self.http_port = 0
        self.https_port = 0
        self.api_port = 0
        self.tftp_port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._housekeeping: asyncio.Task | None = None

    async def start(self) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        await upgrade(self.engine)
        await check_key(self.engine)  # the wrong secret_key stops here, with a message saying so
        await self.feed.start()
        if not self.phone_only:
            await self.run_deactivations()
            self._deactivations = asyncio.create_task(self._deactivation_loop(), name="deactivations")
        self.http_port = await self._listen(make_phone_app(self.provisioner), s.http_port, phone=True)
        log.info("phone HTTP listening on http://%s:%d/", s.host, self.http_port)
        if not s.public_url and s.http_port == 0:
            # An ephemeral port (tests): files that link to other files must name the real one.
            self.settings = s = s.replace(public_url=f"http://{s.host}:{self.http_port}/")
            self.provisioner.use_settings(s)
        if s.tls_cert:
            context = server_context(Path(s.tls_cert), Path(s.tls_key or s.tls_cert),
                                     Path(s.tls_client_ca) if s.tls_client_ca else None,
                                     s.tls_require_client_cert)
            self.https_port = await self._listen(make_phone_app(self.provisioner), s.https_port, context, phone=True)
            log.info("phone HTTPS listening on https://%s:%d/%s", s.host, self.https_port,
                     " (client certificates " + ("required" if s.tls_require_client_cert else "accepted") + ")"
                     if s.tls_client_ca else "")
        await self.inbox.start()
        await self.fetch_audit.start()
        await self.sync.start()
        self._housekeeping = asyncio.create_task(self._housekeep(), name="housekeeping")
        if self.phone_only:
            return
        if self._admin_app is not None:
            self.api_port = await self._listen(self._admin_app(self), s.api_port)
            log.info("admin API listening on http://%s:%d/api/v1/", s.host, self.api_port)
        self.tftp = TftpService(s.host, s.tftp_port, self._tftp_resolve, max_sessions=s.tftp_max_sessions,
                                max_sessions_per_client=s.tftp_max_sessions_per_client)
        await self.tftp.start()
        self.tftp_port = self.tftp.port
        log.info("phone TFTP listening on %s:%d", s.host, self.tftp_port)
        if s.pnp_enabled:
            pnp = PnpResponder(url_for=self._pnp_url, on_sighting=self._pnp_seen, group=s.pnp_group,
                               port=s.pnp_port, interface=s.pnp_interface)
            try:
                await pnp.start()
            except OSError as exc:  # provisioning works without it; say why it is off
                log.error("SIP plug-and-play is off: cannot listen on %s:%d on %s: %s", s.pnp_group, s.pnp_port,
                          s.pnp_interface, exc.strerror or exc)
            else:
                self.pnp = pnp
                log.info("SIP plug-and-play answering on %s:%d (interface %s)", s.pnp_group, pnp.port,
                         s.pnp_interface)
        if s.mdns_enabled:
            self.mdns = MdnsDiscovery(interfaces=(s.pnp_interface,), on_sighting=self.inbox.saw)
            await self.mdns.advertise(s.provisioning_url)
            await self.mdns.browse()
            log.info("mDNS advertising %s and browsing on %s", s.provisioning_url, s.pnp_interface)

    # -- discovery and resync ----------------------------------------------------------------
    def _invalidate(self, deps) -> None:
        """A committed change (here or on another node): drop what it affects, push resyncs."""
        self.sync.cache_keys_dropped(self.cache.invalidate_keys(deps))

    def _fetched(self, event: Fetched) -> None:
        # Every served request lands here: a phone that asks again from the same place with the
        # same User-Agent reuses its sighting (building and validating one was a third of a
        # cached hit's cost).
        memo = (event.ip, event.transport, event.vendor, event.user_agent)
        remembered = self._sightings.get(event.mac)
        if remembered is not None and remembered[0] == memo:
            seen = remembered[1]
        else:
            ua = self.provisioner.identify_user_agent(event.user_agent)
            try:
                seen = Seen(mac=event.mac, ip=event.ip, how=event.transport, vendor=event.vendor,
                            model=ua.model if ua else None, firmware=ua.firmware if ua else None)
            except ValueError:
                return
            if len(self._sightings) >= MAX_REMEMBERED_SIGHTINGS:
                self._sightings.clear()
            self._sightings[event.mac] = (memo, seen)
        self.inbox.saw(seen, event.user_agent)
        if event.served:
            self.sync.fetched(event.mac, event.path, event.ip, vendor=event.vendor, transport=event.transport)

    def _pnp_url(self, vendor: str | None, model: str | None, mac: str | None) -> str:
        plugin = BY_NAME.get(vendor or "") or (BY_NAME.get(vendor_for_mac(mac) or "") if mac else None)
        base = self.settings.provisioning_url
        return plugin.pnp_url(base, mac) if plugin else base

    def _pnp_seen(self, sighting) -> None:
        if not sighting.mac:
            return
        vendor = (sighting.vendor or "").lower()
        vendor = vendor if vendor in BY_NAME else vendor_for_mac(sighting.mac)
        try:
            self.inbox.saw(Seen(mac=sighting.mac, ip=sighting.ip, how="pnp", vendor=vendor, model=sighting.model,
                                firmware=sighting.firmware, port=sighting.port), sighting.user_agent)
        except ValueError:
            return
        self.sync.seen(sighting.mac, sighting.ip, sip_port=sighting.port, vendor=vendor)

    async def _housekeep(self, interval: float = 60.0) -> None:
        """Periodic chores that keep memory bounded under a scan."""
        while True:
            await asyncio.sleep(interval)
            self.provisioner.guard.sweep()

    async def _listen(self, app: web.Application, port: int, ssl_context=None, *, phone: bool = False) -> int:
        # Phone listeners face the internet: a request head must arrive within REQUEST_TIMEOUT
        # (aiohttp closes a connection still waiting for one when its keep-alive timer fires,
        # which it arms at connect and after every response; its default is an hour).
        limits = {"keepalive_timeout": phone_http.REQUEST_TIMEOUT if phone else ADMIN_IDLE_TIMEOUT}
        MalformedRequestNoise.install()
        options = dict(access_log=None, handler_cancellation=True, max_line_size=MAX_LINE, max_field_size=MAX_FIELD,
                       **limits)
        if phone:  # what memory alone can answer is answered before aiohttp (provisioning/phone_protocol.py)
            lane = FastLane(self.provisioner, secure=ssl_context is not None)
            self.lanes.append(lane)
            runner = _FastLaneRunner(app, lane, **options)
        else:
            runner = web.AppRunner(app, **options)
        await runner.setup()
        # Several workers share the phone ports (provisioning/workers.py); never the admin port.
        site = web.TCPSite(runner, self.settings.host, port, ssl_context=ssl_context,
                           reuse_port=phone and self.settings.workers > 1)
        await site.start()
        self._runners.append(runner)
        return runner.addresses[0][1]

    def _tftp_resolve(self, filename: str, client_ip: str):
        """Called on the TFTP thread: starts the same lookup as HTTP on the event loop and hands
        back its future at once, so a render from the database holds up no other transfer."""
        return asyncio.run_coroutine_threadsafe(self._tftp_fetch(filename, client_ip), self._loop)

    async def _tftp_fetch(self, filename: str, client_ip: str) -> bytes | None:
        outcome = await self.provisioner.fetch(filename, user_agent=None, client_ip=client_ip, transport="tftp")
        if outcome.file is not None:
            return outcome.file.body
        if outcome.static_path is not None:
            return await asyncio.to_thread(outcome.static_path.read_bytes)
        if outcome.status == 503:  # database down or the source over its share: "try again"
            raise TftpUnavailable(outcome.reason)
        return None

    async def run_deactivations(self) -> list[int]:
        """Remove users whose deactivation date has come (by this server's clock), purge expired
        sessions; returns the removed users' ids. Runs at start and every deactivation_check_seconds."""
        async with self.sessions() as session:
            return await remove_due_users(session, self.clock.now())

    async def _deactivation_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.deactivation_check_seconds)
            try:
                await self.run_deactivations()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be briefly away; try again next round
                log.warning("deactivation run failed", exc_info=True)

    async def stop(self) -> None:
        if self.mdns is not None:
            await self.mdns.stop()
        if self.pnp is not None:
            await self.pnp.stop()
        await self.sync.stop()
        if self._deactivations is not None:
            self._deactivations.cancel()
            await asyncio.gather(self._deactivations, return_exceptions=True)
            self._deactivations = None
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.gather(self._housekeeping, return_exceptions=True)
        if self.tftp is not None:
            await self.tftp.stop()
        # Connections still in a fast lane are idle keep-alives (an answer is written at once):
        # closed before the listeners stop, and once more after for any accepted meanwhile
        for lane in self.lanes:
            lane.close()
        for runner in reversed(self._runners):
            await runner.cleanup()
        for lane in self.lanes:
            lane.close()
        self._runners.clear()
        self.lanes.clear()
        # After the listeners, so their last sightings and fetches are written too; bounded, so
        # a server stopping while its database is gone still stops.
        for last_writes in (self.inbox.stop, self.fetch_audit.stop):
            try:
                async with asyncio.timeout(STOP_WRITE_SECONDS):
                    await last_writes()
            except TimeoutError:
                log.warning("stopping: the last buffered writes did not reach the database within %d s",
                            STOP_WRITE_SECONDS)
        await self.feed.stop()
        await self.engine.dispose()

    async def __aenter__(self) -> "Server":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()


async def run_until_signalled(server: Server, ready: Callable[[], Awaitable[None]] | None = None) -> None:
    """Run until SIGTERM or SIGINT, then stop cleanly."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    if ready is not None:
        await ready()
    # Everything loaded so far (modules, the ORM's metadata, templates, vendor catalogues) lives
    # as long as the process: out of the collector's sight, a full collection walks only what
    # serving creates (it cut the longest GC pause under a storm noticeably).
    gc.collect()
    gc.freeze()
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        await server.stop()


class _FastLaneRunner(web.AppRunner):
    """An AppRunner whose listeners start every connection in the fast lane; aiohttp's own
    server (its protocol for what the lane hands over, its shutdown) is untouched."""

    def __init__(self, app: web.Application, lane: FastLane, **kwargs) -> None:
        super().__init__(app, **kwargs)
        self._lane = lane

    @property
    def server(self):
        aiohttp_server = super().server
        return None if aiohttp_server is None else self._lane.factory(aiohttp_server)
