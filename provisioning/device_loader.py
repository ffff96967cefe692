"""Cold reads of devices, coalesced: a boot storm's cache misses share a few queries.

A device's files need about nine statements (the device, its organisation, lines, users, their
numbers, keys, the colleagues its keys watch, phonebook contacts). Read one device at a time, a
storm of thousands of phones queues tens of thousands of statements behind the database (on
SQLite each is a thread hop); reading every device asked for meanwhile in one go costs the same
nine statements for a few hundred devices. The first request after a quiet spell is read at
once; whatever arrives while a read is under way goes into the next one. What was read is
handed out again until anything in the cache is invalidated, so a device's authentication
facts and its files (asked for one after the other) come from one read.

Reads only: a device that needs a write first (its vendor or model still unknown, a config key
to make, credentials to issue) is handled by the caller's own session.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from provisioning.model import Device
from provisioning.render import Extras, load_devices, load_extras

log = logging.getLogger("deskprov.serve")

#: Devices read together at most (a SQLite statement takes up to 32,766 parameters; the
#: selectin loads pass a batch's ids in one IN list).
BATCH = 250


@dataclass(frozen=True)
class LoadedDevice:
    """A device as read (detached from its session, relationships loaded; None: no such MAC),
    with its extras (None when it is not bound: nothing to render) and the cache epoch its read
    began at (for ``ConfigCache.put(since=...)``)."""

    device: Device | None
    extras: Extras | None
    epoch: int


class DeviceLoader:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], epoch: Callable[[], int],
                 timeout: float, batch: int = BATCH, parallel: int = 1) -> None:
        """``epoch`` tells the cache's invalidation count (noted when a read begins); a read taking
        longer than ``timeout`` fails for all its waiters (a hung database must not hold the
        reads queued behind it); ``parallel`` reads may run at once."""
        self._sessions = sessions
        self._timeout = timeout
        self._epoch = epoch
        self._batch = batch
        self._waiting: dict[str, asyncio.Future] = {}
        self._reading: dict[str, asyncio.Future] = {}
        self._readers = 0
        self._parallel = parallel
        self._recent: OrderedDict[str, LoadedDevice] = OrderedDict()
        #: reads done and devices read (for the stats and the tests)
        self.reads = 0
        self.devices_read = 0

    async def load(self, mac: str, *, again: bool = False) -> LoadedDevice:
        """The device with this MAC, read alone or with others."""
        recent = self._recent.get(mac)
        if recent is not None and recent.epoch == self._epoch():
            return recent
        future = self._reading.get(mac)
        joined = future is not None  # a read that began before this request asked
        if future is None:
            future = self._waiting.get(mac)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[mac] = future
            if self._readers < self._parallel:
                self._readers += 1
                asyncio.get_running_loop().create_task(self._read_while_waiting())
        try:
            # shielded: one waiter giving up (its request timed out) does not cancel the others'
            return await asyncio.shield(future)
        except Exception:
            if not joined or again:
                raise
            # that read failed (the database was away when it began): one read of its own
            return await self.load(mac, again=True)

    async def _read_while_waiting(self) -> None:
        try:
            while self._waiting:
                macs = list(self._waiting)[:self._batch]
                batch = {mac: self._waiting.pop(mac) for mac in macs}
                self._reading.update(batch)
                try:
                    found = await self._read(macs)
                except asyncio.CancelledError:  # the server is stopping
                    for future in batch.values():
                        future.cancel()
                    raise
                except Exception as exc:  # the database is down or hung: every waiter hears it
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(exc)
                    continue
                finally:
                    for mac in macs:
                        self._reading.pop(mac, None)
                self._remember(found)
                for mac, future in batch.items():
                    if not future.done():
                        future.set_result(found[mac])
        finally:
            self._readers -= 1

    def _remember(self, found: dict[str, LoadedDevice]) -> None:
        for mac, loaded in found.items():
            self._recent[mac] = loaded
            self._recent.move_to_end(mac)
        while len(self._recent) > 2 * self._batch:
            self._recent.popitem(last=False)

    async def _read(self, macs: list[str]) -> dict[str, LoadedDevice]:
        epoch = self._epoch()
        async with asyncio.timeout(self._timeout), self._sessions() as session:
            devices = await load_devices(session, macs)
            bound = [d for d in devices.values() if d.organization is not None and d.lines]
            extras = await load_extras(session, bound) if bound else {}
        self.reads += 1
        self.devices_read += len(macs)
        return {mac: LoadedDevice(devices.get(mac), extras.get(devices[mac].id) if mac in devices else None, epoch)
                for mac in macs}
