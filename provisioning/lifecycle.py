"""Time-driven changes: users removed on their deactivation date, expired sessions purged.

Run by the server's housekeeping task (at start and periodically) with the server's clock;
``now`` is always passed in, so tests move the clock instead of waiting for a date.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from provisioning.audit import SYSTEM, Actor, record
from provisioning.model import (
    ApiToken, Device, Diversion, GroupMember, Line, LoginSession, Organization, PhonebookMember, User,
)

log = logging.getLogger("deskprov.lifecycle")


async def remove_user(session: AsyncSession, user: User, now: datetime, actor: Actor = SYSTEM) -> dict:
    """Remove a user the way the deactivation date does: phones unbound, group and phonebook
    memberships ended, sessions and tokens revoked, diversions ended; the user row, its numbers
    and the audit history stay. Returns what was ended (also written to the audit log)."""
    lines = (await session.execute(select(Line).where(Line.user_id == user.id))).scalars().all()
    devices = sorted({line.device_id for line in lines})
    for line in lines:
        await session.delete(line)
    if devices:  # the devices changed: their ETags must move
        await session.execute(update(Device).where(Device.id.in_(devices))
                              .values(version=Device.version + 1, updated_at=now)
                              .execution_options(synchronize_session=False))
    groups = (await session.execute(delete(GroupMember).where(GroupMember.user_id == user.id)
                                    .returning(GroupMember.group_id))).scalars().all()
    books = (await session.execute(select(PhonebookMember).where(PhonebookMember.user_id == user.id))).scalars().all()
    for member in books:
        await session.delete(member)
    await session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    await session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    await session.execute(update(Diversion).where(
        Diversion.user_id == user.id, Diversion.ended_at.is_(None),
        or_(Diversion.ends_at.is_(None), Diversion.ends_at > now)).values(ended_at=now))
    user.removed_at = now
    user.is_admin = False
    ended = {"devices_unbound": devices, "groups_left": sorted(groups),
             "phonebooks_left": sorted(m.phonebook_id for m in books)}
    record(session, actor, now=now, action="remove", entity="user", entity_id=user.id,
           organization_id=user.organization_id, before={"removed_at": None},
           after={"removed_at": now.isoformat(), **ended})
    return ended


def removal_due(deactivation_date, timezone: str, now: datetime) -> bool:
    """The user is removed at the start of the deactivation date in the organisation's time zone."""
    try:
        zone = ZoneInfo(timezone)
    except Exception:
        zone = ZoneInfo("Europe/Stockholm")
    return now.astimezone(zone).date() >= deactivation_date


async def remove_due_users(session: AsyncSession, now: datetime) -> list[int]:
    """Remove every user whose deactivation date has come; commits; returns their ids."""
    horizon = (now + timedelta(days=1)).date()  # no zone is more than a day ahead of UTC
    rows = (await session.execute(
        select(User, Organization.timezone).join(Organization, Organization.id == User.organization_id)
        .where(User.removed_at.is_(None), User.deactivation_date.is_not(None), User.deactivation_date <= horizon)
        .order_by(User.id)
    )).all()
    removed = []
    for user, zone in rows:
        if removal_due(user.deactivation_date, zone, now):
            await remove_user(session, user, now)
            removed.append(user.id)
            log.info("user %d (%s) removed: deactivation date %s", user.id, user.name, user.deactivation_date)
    await session.execute(delete(LoginSession).where(LoginSession.expires_at < now))
    await session.commit()
    return removed
