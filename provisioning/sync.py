"""Resync push: after a device's files change, make the device fetch them, and know when it did.

The flow per device (``mac``)::

    files_changed ─► pending ──debounce──► NOTIFY ─200─► notified ──fetch──► in_sync
                       │  ▲                  │ timeout / 5xx: retry with backoff
                       │  └──────────────────┘ out of retries, 3xx/4xx, no route ─► unreachable
                       └──fetch of the changed files (the phone polled by itself)──► in_sync

Why it is shaped like this:

* **Debounced per device.**  An import or an admin editing keys one by one commits many changes
  in a few seconds; each device gets one NOTIFY ``debounce`` seconds after its last change (but
  no later than ``max_delay`` after the first), not one per commit.  Phones reboot on some of
  these events (Yealink with ``sip.notify_reboot_enable=1``), so a burst must not become a
  reboot loop.
* **The device address comes from its own requests.**  Every HTTP/TFTP fetch (and every PnP
  SUBSCRIBE, which also tells the SIP port) updates the last known address; the NOTIFY goes to
  ``ip:sip_port`` (5060 unless PnP said otherwise).  :class:`AddressBook` is the seam for keeping
  that across restarts (the device inbox table, later); :class:`MemoryAddressBook` is the default.
* **In sync means "fetched after the change".**  A change names the files it dropped from the
  render cache; the device is ``in_sync`` once it has fetched each of them again.  Files a phone
  only fetches on its own schedule (remote phone books) would hold that forever, so once it has
  fetched at least one changed file and then ``settle`` seconds pass, it counts as in sync and the
  rest are reported in ``DeviceSync.missing``.
* **Bounded.**  At most ``max_concurrent`` NOTIFY transactions at once (an org-wide phone book
  change touches every phone), each bounded by ``notify_timeout``; failures are retried
  ``retries`` times with exponential backoff, then the device is ``unreachable`` until its next
  change, fetch or manual request.
* **Testable time.**  Every decision reads ``clock()`` (a monotonic function); :meth:`tick` does
  whatever is due now, so tests drive debounce and backoff with a fake clock and call ``tick``.
  The background task (:meth:`start`) just calls ``tick`` when something becomes due.
* **Loopback stays loopback.**  With the default ``local_host="127.0.0.1"`` a device at a
  non-loopback address is never sent anything (it is reported unreachable with the reason): the
  operator opts in by configuring the SIP source address.

All methods must be called on the event loop's thread (the HTTP handler, the TFTP bridge and the
change listeners all run there).
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import inspect
import ipaddress
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from provisioning.discovery.fingerprints import vendor_for_mac
from provisioning.mac import MacError, normalize_mac
from provisioning.sync_notify import NotifyResult, send_check_sync
from provisioning.vendors import BY_NAME

__all__ = [
    "AddressBook", "DeviceAddress", "DeviceSync", "MemoryAddressBook", "SyncScheduler", "SyncState",
    "events_for",
]

log = logging.getLogger("deskprov.sync")

DEFAULT_RESYNC_EVENT = "check-sync"
DEFAULT_REBOOT_EVENT = "check-sync;reboot=true"


class SyncState(enum.StrEnum):
    pending = "pending"          # files changed, the device has not fetched them yet
    notified = "notified"        # it answered the NOTIFY; waiting for it to fetch
    in_sync = "in_sync"          # it fetched its changed files after the change
    unreachable = "unreachable"  # no answer after the retries, or refused, or no address


def events_for(vendor: str | None) -> tuple[str, str]:
    """(resync event, reboot event) for a vendor plugin name (vendors.md §8 via the plugins)."""
    plugin = BY_NAME.get(vendor or "")
    if plugin is None:
        return DEFAULT_RESYNC_EVENT, DEFAULT_REBOOT_EVENT
    return plugin.resync_event, plugin.reboot_event


# -- where devices are ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DeviceAddress:
    """Where a device was last seen.  ``sip_port`` None means "not told" (use the default)."""

    ip: str
    sip_port: int | None = None
    seen_at: float = 0.0
    how: str = "http"
    vendor: str | None = None


class AddressBook(Protocol):
    """Last known address per MAC.  Called on every fetch: implementations must be cheap and must
    not block (a database-backed one keeps a memory copy and writes behind)."""

    def get(self, mac: str) -> DeviceAddress | None: ...

    def put(self, mac: str, address: DeviceAddress) -> None: ...


class MemoryAddressBook:
    """An LRU dict: bounded so that requests for invented MACs can't grow it without limit."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._entries: OrderedDict[str, DeviceAddress] = OrderedDict()
        self.max_entries = max_entries

    def get(self, mac: str) -> DeviceAddress | None:
        return self._entries.get(mac)

    def put(self, mac: str, address: DeviceAddress) -> None:
        self._entries[mac] = address
        self._entries.move_to_end(mac)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


# -- per-device record ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DeviceSync:
    """A snapshot of one device's resync state (what the API shows)."""

    mac: str
    vendor: str | None
    state: SyncState
    changed_at: float | None
    notified_at: float | None
    synced_at: float | None
    attempts: int
    last_event: str | None
    last_result: str | None
    #: changed files not fetched since the change (while pending/notified), or, once in sync by
    #: ``settle``, the ones it never fetched again
    missing: frozenset[str]
    address: DeviceAddress | None
    reboot_requested: bool


@dataclass
class _Device:
    mac: str
    vendor: str | None = None
    state: SyncState = SyncState.in_sync
    changed_at: float | None = None
    first_change_at: float | None = None  # first change since the last NOTIFY (max_delay)
    notified_at: float | None = None
    synced_at: float | None = None
    attempts: int = 0
    last_event: str | None = None
    last_result: str | None = None
    #: changed files not yet fetched again; "any" when the change did not say which files
    missing: set[str] = field(default_factory=set)
    any_file: bool = False
    fetched_since_change: float | None = None  # last fetch of a changed file (for settle)
    due: float | None = None  # when the next NOTIFY goes out (None: none planned)
    reboot: bool = False
    #: a manual request: send even if the device fetches something before the NOTIFY goes out
    forced: bool = False
    in_flight: bool = False


Sender = Callable[..., Awaitable[NotifyResult]]
NotifyOptions = Callable[[str, "str | None"], "Mapping[str, Any] | Awaitable[Mapping[str, Any]] | None"]
OnState = Callable[[DeviceSync], None]


def _is_pseudo(name: str) -> bool:
    """Cache entries that are not files (render snapshots, vendor markers) start with NUL."""
    return not name or name.startswith("\0")


def _norm(name: str) -> str:
    return name.lstrip("/")


class SyncScheduler:
    """Debounced, retried, bounded check-sync NOTIFYs, and per-device sync state.

    Feed it :meth:`files_changed` / :meth:`cache_keys_dropped` (from cache invalidation),
    :meth:`fetched` (from every served request), :meth:`seen` (from PnP sightings) and
    :meth:`request` (manual resync/reboot from the API); read :meth:`status`.
    """

    def __init__(self, *, sender: Sender = send_check_sync, clock: Callable[[], float] = time.monotonic,
                 addresses: AddressBook | None = None, debounce: float = 5.0, max_delay: float = 30.0,
                 retries: int = 3, backoff: float = 10.0, backoff_factor: float = 2.0,
                 max_concurrent: int = 16, notify_timeout: float = 8.0, settle: float = 30.0,
                 default_sip_port: int = 5060, local_host: str = "127.0.0.1",
                 notify_options: NotifyOptions | None = None, on_state: OnState | None = None) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.sender, self.clock = sender, clock
        self.addresses: AddressBook = addresses if addresses is not None else MemoryAddressBook()
        self.debounce, self.max_delay = debounce, max(max_delay, debounce)
        self.retries, self.backoff, self.backoff_factor = retries, backoff, backoff_factor
        self.max_concurrent, self.notify_timeout, self.settle = max_concurrent, notify_timeout, settle
        self.default_sip_port, self.local_host = default_sip_port, local_host
        self.notify_options, self.on_state = notify_options, on_state
        self.counters: Counter[str] = Counter()
        self._devices: dict[str, _Device] = {}
        self._heap: list[tuple[float, int, str]] = []  # (when, seq, mac): due sends and settle checks
        self._seq = 0
        self._sem: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task] = set()
        self._runner: asyncio.Task | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ inputs

    def files_changed(self, mac: str, *, vendor: str | None = None, files: Iterable[str] = ()) -> None:
        """This device's files changed (``files``: their names; empty = unknown, any fetch counts)."""
        mac = self._mac(mac)
        if mac is None:
            return
        now = self.clock()
        dev = self._device(mac)
        dev.vendor = vendor or dev.vendor
        names = {_norm(f) for f in files if not _is_pseudo(f)}
        if dev.state in (SyncState.in_sync, SyncState.unreachable):
            dev.missing, dev.any_file = set(), False
            dev.first_change_at, dev.attempts, dev.fetched_since_change = now, 0, None
        elif dev.first_change_at is None:
            dev.first_change_at = now
        dev.missing |= names
        dev.any_file = dev.any_file or not names
        dev.changed_at, dev.fetched_since_change = now, None
        self.counters["changes"] += 1
        self._set_state(dev, SyncState.pending)
        self._schedule(dev, min(now + self.debounce, dev.first_change_at + self.max_delay))

    def cache_keys_dropped(self, keys: Iterable[tuple[str, str | None, str]]) -> None:
        """Cache invalidation: keys are ``(vendor, mac, file name)``; common files (no MAC) and the
        cache's own markers are ignored, the rest grouped per device."""
        per_mac: dict[str, tuple[str | None, set[str]]] = {}
        for vendor, mac, name in keys:
            if not mac:
                continue
            known_vendor, names = per_mac.setdefault(mac, (None, set()))
            per_mac[mac] = (known_vendor or vendor or None, names)
            if not _is_pseudo(name):
                names.add(name)
        for mac, (vendor, names) in per_mac.items():
            self.files_changed(mac, vendor=vendor, files=names)

    def fetched(self, mac: str, filename: str, ip: str, *, vendor: str | None = None,
                transport: str = "http", at: float | None = None) -> None:
        """Device ``mac`` asked for ``filename`` from ``ip`` (at ``at``, default now; pass the time
        the request arrived, so a fetch that raced a change does not count as after it)."""
        mac = self._mac(mac)
        if mac is None:
            return
        now = self.clock()
        at = now if at is None else at
        self._remember(mac, ip, vendor=vendor, how=transport, at=now)
        dev = self._devices.get(mac)
        if dev is None or dev.state is SyncState.in_sync or dev.changed_at is None:
            return
        self._wake_waiting(dev)
        if dev.forced or at < dev.changed_at:
            return
        dev.vendor = dev.vendor or vendor
        name = _norm(filename)
        if dev.missing:
            matched = name in dev.missing or any(m.rsplit("/", 1)[-1] == name.rsplit("/", 1)[-1]
                                                 for m in dev.missing)
            if not matched:
                return
            dev.missing = {m for m in dev.missing
                           if m != name and m.rsplit("/", 1)[-1] != name.rsplit("/", 1)[-1]}
        elif not dev.any_file:
            return
        dev.fetched_since_change = now
        dev.due = None  # it is fetching already: a NOTIFY now would only interrupt it
        if not dev.missing:
            self._mark_in_sync(dev, now)
        else:
            self._push(now + self.settle, mac)  # settle check

    def seen(self, mac: str, ip: str, *, sip_port: int | None = None, vendor: str | None = None,
             how: str = "pnp") -> None:
        """A discovery sighting (PnP knows the SIP port: the SUBSCRIBE came from it)."""
        mac = self._mac(mac)
        if mac is None:
            return
        self._remember(mac, ip, sip_port=sip_port, vendor=vendor, how=how, at=self.clock())
        dev = self._devices.get(mac)
        if dev is not None:
            self._wake_waiting(dev)

    def request(self, mac: str, *, reboot: bool = False) -> DeviceSync:
        """Manual resync (or reboot) now, without debounce.  LookupError if the address is unknown."""
        norm = self._mac(mac)
        if norm is None:
            raise ValueError(f"not a MAC address: {mac!r}")
        if self.addresses.get(norm) is None:
            raise LookupError(f"no known address for {norm}: it has not contacted deskprov yet")
        now = self.clock()
        dev = self._device(norm)
        if dev.state in (SyncState.in_sync, SyncState.unreachable):
            dev.missing, dev.fetched_since_change = set(), None
        dev.any_file = True  # whatever it fetches after the NOTIFY counts
        dev.changed_at = now
        dev.first_change_at = dev.first_change_at or now
        dev.attempts = 0
        dev.reboot = dev.reboot or reboot
        dev.forced = True
        self.counters["reboot_requests" if reboot else "resync_requests"] += 1
        self._set_state(dev, SyncState.pending)
        self._schedule(dev, now)
        return self._snapshot(dev)

    # ------------------------------------------------------------------ outputs

    def status(self, mac: str) -> DeviceSync | None:
        norm = self._mac(mac)
        dev = self._devices.get(norm) if norm else None
        return self._snapshot(dev) if dev is not None else None

    def statuses(self) -> list[DeviceSync]:
        return [self._snapshot(d) for d in self._devices.values()]

    def address(self, mac: str) -> DeviceAddress | None:
        norm = self._mac(mac)
        return self.addresses.get(norm) if norm else None

    # ------------------------------------------------------------------ running

    async def start(self) -> None:
        """Run :meth:`tick` in the background whenever something is due."""
        if self._runner is None:
            self._bind_loop()
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="sync-scheduler")

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> "SyncScheduler":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def tick(self) -> int:
        """Start every NOTIFY that is due and settle what has settled; returns NOTIFYs started."""
        self._bind_loop()
        now = self.clock()
        started = 0
        while self._heap and self._heap[0][0] <= now:
            when, _, mac = heapq.heappop(self._heap)
            dev = self._devices.get(mac)
            if dev is None:
                continue
            if dev.due is not None and dev.due == when and not dev.in_flight:
                dev.due = None
                dev.in_flight = True
                task = asyncio.get_running_loop().create_task(self._notify(dev), name=f"check-sync {mac}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                started += 1
            elif (dev.state in (SyncState.pending, SyncState.notified) and dev.missing
                  and dev.fetched_since_change is not None and now - dev.fetched_since_change >= self.settle):
                self._mark_in_sync(dev, now, settled=True)
        return started

    async def drain(self) -> None:
        """Wait for the NOTIFYs in flight (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            try:
                self.tick()
            except Exception:  # pragma: no cover - a bug must not stop resyncs for good
                log.exception("sync: tick failed")
            due = self.next_due()
            timeout = None if due is None else max(0.0, due - self.clock()) + 0.001
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    # ------------------------------------------------------------------ sending

    async def _notify(self, dev: _Device) -> None:
        assert self._sem is not None
        try:
            async with self._sem:
                await self._notify_once(dev)
        except asyncio.CancelledError:
            raise
        except Exception:  # pragma: no cover - keep the scheduler alive whatever a callback does
            log.exception("sync: NOTIFY to %s failed unexpectedly", dev.mac)
            self._fail(dev, "internal error", retry=True)
        finally:
            dev.in_flight = False
            if dev.due is not None:  # changed or requested again meanwhile: its heap entry was skipped
                self._push(dev.due, dev.mac)
            self._poke()

    async def _notify_once(self, dev: _Device) -> None:
        address = self.addresses.get(dev.mac)
        if address is None:
            dev.last_result = "no known address (waiting for the device to contact deskprov)"
            self.counters["no_address"] += 1
            return  # stays pending; seen()/fetched() bring it back
        vendor = dev.vendor or address.vendor or vendor_for_mac(dev.mac)
        dev.vendor = vendor
        resync_event, reboot_event = events_for(vendor)
        reboot = dev.reboot
        event = reboot_event if reboot else resync_event
        if not self._may_send(address.ip):
            dev.last_event = event
            self._fail(dev, f"not sent: {address.ip} is not on loopback and no SIP source address is "
                            "configured", retry=False)
            return
        port = address.sip_port or self.default_sip_port
        options: Mapping[str, Any] = {}
        if self.notify_options is not None:
            got = self.notify_options(dev.mac, vendor)
            if inspect.isawaitable(got):
                got = await got
            options = got or {}
        generation = dev.changed_at
        dev.last_event = event
        dev.attempts += 1
        self.counters["notify_sent"] += 1
        try:
            result = await self.sender(address.ip, port, event=event, timeout=self.notify_timeout,
                                       local_host=self.local_host, **options)
        except OSError as exc:
            log.info("sync: NOTIFY to %s at %s:%d failed: %s", dev.mac, address.ip, port, exc)
            self._fail(dev, f"send failed: {exc}", retry=True)
            return
        now = self.clock()
        if result.ok:
            self.counters["notify_ok"] += 1
            dev.notified_at, dev.attempts = now, 0
            dev.last_result = f"{result.status} {result.reason}"
            if dev.changed_at == generation:  # nothing new meanwhile
                dev.reboot = dev.reboot and not reboot
                dev.forced, dev.first_change_at = False, None
                if dev.state is SyncState.pending:
                    self._set_state(dev, SyncState.notified)
            return
        if result.status is None or result.status >= 500:
            why = "no answer" if result.status is None else f"{result.status} {result.reason}"
            self._fail(dev, why, retry=True)
            return
        self._fail(dev, f"refused: {result.status} {result.reason}", retry=False)

    def _fail(self, dev: _Device, why: str, *, retry: bool) -> None:
        dev.last_result = why
        if dev.state is SyncState.in_sync:
            return  # it fetched its files while we were trying: nothing left to do
        if retry and dev.attempts <= self.retries:
            self.counters["notify_retries"] += 1
            delay = self.backoff * self.backoff_factor ** max(0, dev.attempts - 1)
            self._schedule(dev, self.clock() + delay)
            log.info("sync: %s %s; retry %d/%d in %.0f s", dev.mac, why, dev.attempts, self.retries, delay)
            return
        self.counters["unreachable"] += 1
        log.warning("sync: %s unreachable (%s)", dev.mac, why)
        dev.due, dev.reboot, dev.forced, dev.first_change_at = None, False, False, None
        self._set_state(dev, SyncState.unreachable)

    def _may_send(self, ip: str) -> bool:
        try:
            if not ipaddress.ip_address(self.local_host).is_loopback:
                return True
            return ipaddress.ip_address(ip).is_loopback
        except ValueError:
            return False

    # ------------------------------------------------------------------ helpers

    def _mac(self, mac: str | None) -> str | None:
        try:
            return normalize_mac(mac or "")
        except MacError:
            return None

    def _device(self, mac: str) -> _Device:
        dev = self._devices.get(mac)
        if dev is None:
            dev = self._devices[mac] = _Device(mac)
        return dev

    def _remember(self, mac: str, ip: str, *, sip_port: int | None = None, vendor: str | None = None,
                  how: str, at: float) -> None:
        old = self.addresses.get(mac)
        if sip_port is None and old is not None:
            sip_port = old.sip_port  # the SIP port is the phone's setting, not its address's
        vendor = vendor or (old.vendor if old else None)
        if old is None or (old.ip, old.sip_port, old.vendor) != (ip, sip_port, vendor) or at - old.seen_at > 60:
            self.addresses.put(mac, DeviceAddress(ip, sip_port, at, how, vendor))

    def _schedule(self, dev: _Device, when: float) -> None:
        """Plan the device's next NOTIFY (replacing any planned one)."""
        dev.due = when
        self._push(when, dev.mac)

    def _wake_waiting(self, dev: _Device) -> None:
        """A pending device whose NOTIFY found no address: now there is one."""
        if dev.state is SyncState.pending and dev.due is None and not dev.in_flight \
                and dev.fetched_since_change is None and dev.last_result and dev.last_result.startswith("no known"):
            self._schedule(dev, self.clock())

    def _push(self, when: float, mac: str) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, mac))
        self._poke()

    def _mark_in_sync(self, dev: _Device, now: float, *, settled: bool = False) -> None:
        dev.due, dev.synced_at, dev.attempts, dev.first_change_at = None, now, 0, None
        if not settled:
            dev.missing = set()
        self.counters["settled" if settled else "synced"] += 1
        self._set_state(dev, SyncState.in_sync)

    def _set_state(self, dev: _Device, state: SyncState) -> None:
        if dev.state is state:
            return
        dev.state = state
        if self.on_state is not None:
            try:
                self.on_state(self._snapshot(dev))
            except Exception:
                log.exception("sync: on_state callback failed for %s", dev.mac)

    def _snapshot(self, dev: _Device) -> DeviceSync:
        return DeviceSync(dev.mac, dev.vendor, dev.state, dev.changed_at, dev.notified_at, dev.synced_at,
                          dev.attempts, dev.last_event, dev.last_result, frozenset(dev.missing),
                          self.addresses.get(dev.mac), dev.reboot)

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._sem = asyncio.Semaphore(self.max_concurrent)
            self._wake = asyncio.Event()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()
