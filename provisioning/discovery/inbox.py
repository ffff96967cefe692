"""The device inbox: sightings from every channel, stored; unbound devices listed; binding.

Sightings arrive from discovery (PnP, mDNS, SNMP) and from every config request. They are
buffered and written in batches, one upsert per MAC per flush, so a boot storm costs a handful
of writes a second and a MAC scan (already banned by the guard after a burst) cannot turn into a
write per guess. Only sightings of known vendors' MACs, or with a known vendor, are kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from provisioning.device_auth import open_first_contact
from provisioning.discovery.fingerprints import vendor_for_mac
from provisioning.discovery.sighting import Sighting as Seen
from provisioning.mac import normalize_mac
from provisioning.model import Device, Line, Number, NumberRole, Organization, Sighting, User
from provisioning.model.base import utcnow
from provisioning.numbers import NumberError, to_e164
from provisioning.orgfile import new_credentials, resolve_model
from provisioning.vendors import BY_NAME

log = logging.getLogger("deskprov.inbox")

#: Most sightings kept per flush; beyond it the oldest are dropped (a flood, not a fleet).
MAX_PENDING = 10_000
#: A device seen again exactly as last written (same address, channel, vendor, User-Agent) is
#: written again at most this often (seconds): a fleet fetching all day would otherwise rewrite
#: every device's row every flush (measured: 2,000 phones under wrk stalled serving for hundreds
#: of milliseconds each second).
REFRESH_SECONDS = 60.0
#: Devices whose last written sighting is remembered for that, at most.
MAX_REMEMBERED = 100_000


class BindError(ValueError):
    """The device cannot be bound as asked; nothing was changed."""


@dataclass(frozen=True)
class InboxEntry:
    mac: str
    how: str
    ip: str | None
    vendor: str | None
    model: str | None
    firmware: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    times_seen: int
    #: the organisation it is registered in but not yet bound to a user, if any
    organization_id: int | None


class Inbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], interval: float = 1.0) -> None:
        self._sessions = sessions
        self._pending: dict[str, tuple[Seen, str | None, datetime]] = {}
        #: MAC -> (the sighting last written, its User-Agent, when: monotonic seconds)
        self._written: dict[str, tuple[Seen, str | None, float]] = {}
        self._interval = interval
        self._task: asyncio.Task | None = None
        self.dropped = 0

    # -- recording ---------------------------------------------------------------------------
    def saw(self, sighting: Seen, user_agent: str | None = None) -> None:
        """Note a sighting (cheap, never blocks; written on the next flush)."""
        if sighting.mac is None or (sighting.vendor is None and vendor_for_mac(sighting.mac) is None):
            return
        written = self._written.get(sighting.mac)
        if written is not None and (written[0] is sighting or written[0] == sighting) and written[1] == user_agent \
                and time.monotonic() - written[2] < REFRESH_SECONDS:
            return  # nothing new to tell yet
        if sighting.mac not in self._pending and len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            return
        previous = self._pending.get(sighting.mac)
        if previous is not None and previous[0] is not sighting:  # the same one again: nothing to merge
            # keep what an earlier sighting knew and this one does not (PnP knows the SIP port)
            old = previous[0]
            sighting = Seen(mac=sighting.mac, ip=sighting.ip, how=sighting.how,
                            vendor=sighting.vendor or old.vendor, model=sighting.model or old.model,
                            firmware=sighting.firmware or old.firmware, port=sighting.port or old.port)
            user_agent = user_agent or previous[1]
        self._pending[sighting.mac] = (sighting, user_agent, utcnow())

    async def flush(self) -> int:
        """Write the buffered sightings; returns how many MACs were written.

        Read first, then write in a transaction of its own whose first statement writes: on
        SQLite a transaction that reads and then writes fails at once ("database is locked",
        whatever the busy timeout) when another connection committed in between, which in a
        boot storm is always."""
        if not self._pending:
            return 0
        batch, self._pending = self._pending, {}
        async with self._sessions() as session:
            known = {r.mac: r for r in (await session.execute(
                select(Sighting).where(Sighting.mac.in_(list(batch))))).scalars()}
        inserts, updates = [], []
        for mac, (seen, user_agent, at) in batch.items():
            row = known.get(mac)
            values = {
                "last_seen_at": at, "how": seen.how, "ip": seen.ip,
                "times_seen": (row.times_seen if row else 0) + 1,
                "sip_port": seen.port if seen.how == "pnp" and seen.port else (row.sip_port if row else None),
                "vendor": seen.vendor or (row.vendor if row else None) or vendor_for_mac(mac),
                "model": seen.model or (row.model if row else None),
                "firmware": seen.firmware or (row.firmware if row else None),
                "user_agent": (user_agent or (row.user_agent if row else None) or "")[:512] or None,
            }
            if row is None:
                inserts.append({"mac": mac, "first_seen_at": at, **values})
            else:
                updates.append({"b_mac": mac, **values})
        async with self._sessions() as session:
            if updates:
                table = Sighting.__table__  # Core executemany: one UPDATE per row, keyed by MAC
                await session.execute(update(table).where(table.c.mac == bindparam("b_mac")), updates)
            if inserts:
                await session.execute(insert(Sighting), inserts)
            await session.commit()
        if len(self._written) > MAX_REMEMBERED:
            self._written.clear()
        now = time.monotonic()
        for mac, (seen, user_agent, _) in batch.items():
            self._written[mac] = (seen, user_agent, now)
        return len(batch)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbox-flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self.flush()
        except Exception:
            log.warning("could not write the last sightings", exc_info=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be briefly away; the next flush retries
                log.warning("sighting flush failed", exc_info=True)

    # -- reading -----------------------------------------------------------------------------
    @staticmethod
    async def unbound(session: AsyncSession, organization_id: int | None = None) -> list[InboxEntry]:
        """Devices seen but not bound to any user, newest first. With ``organization_id``: those
        not registered anywhere plus those registered (unbound) in that organisation."""
        bound = select(Line.device_id).where(Line.device_id == Device.id).exists()
        query = (select(Sighting, Device.organization_id)
                 .outerjoin(Device, Device.mac == Sighting.mac)
                 .where(~bound | Device.id.is_(None))
                 .order_by(Sighting.last_seen_at.desc()))
        if organization_id is not None:
            query = query.where((Device.organization_id == organization_id) | Device.organization_id.is_(None))
        return [InboxEntry(s.mac, s.how, s.ip, s.vendor, s.model, s.firmware, s.first_seen_at, s.last_seen_at,
                           s.times_seen, org) for s, org in (await session.execute(query)).all()]


async def bind(session: AsyncSession, mac_text: str, user_text: str, *, model: str | None = None,
               organization_id: int | None = None) -> Device:
    """Bind a device to a user (line 1): registers the device in the user's organisation if
    needed, takes vendor and model from the argument or from what was seen, and gives the line
    fresh SIP credentials. The caller commits."""
    mac = normalize_mac(mac_text)
    user = await _find_user(session, user_text, organization_id)
    device = (await session.execute(select(Device).where(Device.mac == mac))).scalar_one_or_none()
    if device is not None and device.organization_id not in (None, user.organization_id):
        raise BindError(f"{mac} belongs to another organisation")
    seen = await session.get(Sighting, mac)
    vendor = model_name = None
    if model:
        try:
            plugin, catalogued, name = resolve_model(model)
        except ValueError as exc:
            raise BindError(str(exc)) from None
        vendor, model_name = plugin.name, catalogued.name if catalogued else name
    elif seen is not None and seen.vendor in BY_NAME:
        vendor = seen.vendor
        catalogued = BY_NAME[vendor].find_model(seen.model)
        model_name = catalogued.name if catalogued else seen.model
    if device is None:
        device = Device(mac=mac, organization_id=user.organization_id)
        session.add(device)
    device.organization_id = user.organization_id
    if vendor:
        device.vendor, device.model = vendor, model_name
    if seen is not None and seen.firmware:
        device.firmware = seen.firmware
    await session.flush()
    line = (await session.execute(
        select(Line).where(Line.device_id == device.id, Line.index == 1))).scalar_one_or_none()
    if line is None:
        username, password = new_credentials()
        session.add(Line(device_id=device.id, index=1, user_id=user.id, auth_username=username, password=password))
    elif line.user_id != user.id:
        line.user_id = user.id
        line.auth_username, line.password = new_credentials()  # a new owner never inherits the secret
    # an admin's bind: the phone about to boot may fetch its files once without credentials
    minutes = await session.scalar(select(Organization.first_contact_minutes)
                                   .where(Organization.id == user.organization_id))
    open_first_contact(device, minutes, utcnow())
    await session.flush()
    return device


async def _find_user(session: AsyncSession, text: str, organization_id: int | None) -> User:
    """A user by primary number (any spelling), extension or username."""
    query = select(User).where(User.removed_at.is_(None))
    if organization_id is not None:
        query = query.where(User.organization_id == organization_id)
    try:
        e164 = to_e164(text)
    except NumberError:
        e164 = None
    if e164:
        found = (await session.execute(query.join(Number, Number.user_id == User.id).where(
            Number.e164 == e164, Number.role == NumberRole.primary))).scalars().all()
    else:
        found = (await session.execute(query.where(
            (User.username == text) | (User.extension == text)))).scalars().all()
    if len(found) != 1:
        raise BindError(f"no user {text!r}" if not found else f"{text!r} names {len(found)} users; use the number")
    return found[0]
