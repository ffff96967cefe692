"""The database's side of routing: rows <-> the routing model's values, and the whole snapshot.

:func:`load_organisation` reads one organisation's users, groups, menus, calendars and voice
messages and builds the immutable :class:`~provisioning.routing.model.Organisation` the engine
walks (so ``deskprov simulate call`` can run on the real model). The smaller helpers are shared
with the API and the organisation file: how a stored destination (``kind`` + ``target``, where
the target is a database id as text, or an E.164 number for ``external``) becomes the routing
model's :class:`~provisioning.routing.menus.Destination` (names and numbers), and how a
``schedule_entry`` row becomes a :class:`~provisioning.routing.schedule.ScheduleEntry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from provisioning.clock import aware
from provisioning.features import FLAGS
from provisioning.model import (
    AnswerGroup, Device, Diversion, Line, Menu, MobileProfile, NumberRole, Organization, Schedule,
    ScheduleEntry, User, VoiceMessage,
)
from provisioning.routing import model as rm
from provisioning.routing.menus import HANGUP, Destination, DestinationKind
from provisioning.routing.menus import Menu as RoutingMenu
from provisioning.routing.schedule import Override
from provisioning.routing.schedule import Schedule as RoutingSchedule
from provisioning.routing.schedule import ScheduleEntry as RoutingEntry
from provisioning.routing.schedule import Weekday
from provisioning.routing.strategies import GroupSettings, QueueSettings

__all__ = ["OrgRefs", "RefError", "calendar_of", "dest_to_routing", "entry_to_routing", "group_code_of",
           "load_organisation", "routing_schedule"]

#: Destination kinds whose target is a database id, and the table it names.
ID_KINDS = {"user": "user", "voicemail": "user", "group": "group", "menu": "menu", "message": "message"}


class RefError(ValueError):
    """A stored or requested reference names nothing in the organisation."""


@dataclass
class OrgRefs:
    """Names and numbers of one organisation's referable things, by id and back."""

    organization_id: int
    users: dict[int, tuple[str | None, str | None, str]] = field(default_factory=dict)  # id -> (primary, ext, name)
    groups: dict[int, str] = field(default_factory=dict)
    menus: dict[int, str] = field(default_factory=dict)
    messages: dict[int, str] = field(default_factory=dict)

    @classmethod
    async def load(cls, session: AsyncSession, organization_id: int) -> OrgRefs:
        refs = cls(organization_id)
        users = (await session.execute(select(User).where(User.organization_id == organization_id)
                                       .options(selectinload(User.numbers)))).scalars().all()
        for u in users:
            primary = next((n.e164 for n in u.numbers if n.role == NumberRole.primary), None)
            refs.users[u.id] = (primary, u.extension, u.name)
        refs.groups = dict((await session.execute(select(AnswerGroup.id, AnswerGroup.name).where(
            AnswerGroup.organization_id == organization_id))).all())
        refs.menus = dict((await session.execute(select(Menu.id, Menu.name).where(
            Menu.organization_id == organization_id))).all())
        refs.messages = dict((await session.execute(select(VoiceMessage.id, VoiceMessage.name).where(
            VoiceMessage.organization_id == organization_id))).all())
        return refs

    def table(self, kind: str) -> dict[int, Any]:
        return {"user": self.users, "group": self.groups, "menu": self.menus, "message": self.messages}[ID_KINDS[kind]]

    def name_of(self, kind: str, target: str | None) -> str | None:
        """What a stored destination's target is called (a user's name, a group's...)."""
        if kind not in ID_KINDS or target is None:
            return target
        value = self.table(kind).get(int(target))
        if value is None:
            return None
        return value[2] if ID_KINDS[kind] == "user" else value

    def user_by_ref(self, ref: str) -> int | None:
        """A user by primary number or extension."""
        return next((uid for uid, (primary, ext, _) in self.users.items() if ref in (primary, ext)), None)

    def id_by_name(self, kind: str, name: str) -> int | None:
        if ID_KINDS[kind] == "user":
            return self.user_by_ref(name)
        return next((i for i, n in self.table(kind).items() if n == name), None)

    def check(self, kind: str, target: str | None) -> None:
        if kind in ID_KINDS and (target is None or not target.isdigit() or int(target) not in self.table(kind)):
            raise RefError(f"no {ID_KINDS[kind]} {target} in this organisation")


def dest_to_routing(kind: str | None, target: str | None, refs: OrgRefs) -> Destination:
    """A stored destination as the engine's Destination (users by number, the rest by name)."""
    if not kind:
        return HANGUP
    if kind in ID_KINDS:
        refs.check(kind, target)
        value = refs.table(kind)[int(target)]  # type: ignore[arg-type]
        if ID_KINDS[kind] == "user":
            if value[0] is None:
                raise RefError(f"user {target} has no primary number")
            value = value[0]
        return Destination(DestinationKind(kind), value)
    return Destination(DestinationKind(kind), target)


def dest_from_routing(dest: Destination, refs: OrgRefs) -> tuple[str, str | None]:
    """The stored pair for a Destination written with names/numbers/extensions (the YAML shape)."""
    kind = dest.kind.value
    if kind in ID_KINDS:
        found = refs.id_by_name(kind, dest.target or "")
        if found is None and ID_KINDS[kind] == "user":
            from provisioning.numbers import NumberError, to_e164
            try:
                found = refs.user_by_ref(to_e164(dest.target or ""))
            except NumberError:
                found = None
        if found is None:
            raise RefError(f"{kind} destination: no {ID_KINDS[kind]} {dest.target!r}")
        return kind, str(found)
    if kind == "external":
        from provisioning.numbers import NumberError, to_e164
        try:
            return kind, to_e164(dest.target or "")
        except NumberError as exc:
            raise RefError(f"external destination: {exc}") from None
    return kind, None


def dest_to_yaml(kind: str | None, target: str | None, refs: OrgRefs) -> Any:
    return dest_to_routing(kind, target, refs).to_mapping()


def entry_to_routing(row: ScheduleEntry, refs: OrgRefs) -> RoutingEntry:
    """A stored calendar entry, its message referred to by name."""
    message = refs.messages.get(row.message_id) if row.message_id is not None else None
    if row.message_id is not None and message is None:
        raise RefError(f"entry {row.name!r}: no voice message {row.message_id}")
    weekdays = [w for w in row.weekdays.split(",") if w]
    span_from = row.time_from
    span_to = row.time_to
    if row.date_first is not None:
        return RoutingEntry.on_date(row.name, row.date_first, row.action, message, last=row.date_last,
                                    start=span_from, end=span_to, weekdays=weekdays)
    if weekdays:
        return RoutingEntry.weekly(row.name, weekdays, row.action, message, start=span_from, end=span_to)
    return RoutingEntry.default(row.action, message)


def weekdays_text(entry: RoutingEntry) -> str:
    return ",".join(Weekday(w).name.lower() for w in sorted(entry.weekdays))


def entry_columns(entry: RoutingEntry) -> dict[str, Any]:
    """The columns of a routing entry, apart from its message and ``then``."""
    span = entry.span
    return {
        "name": entry.name, "action": entry.action.value,
        "date_first": entry.dates.first if entry.dates else None,
        "date_last": entry.dates.last if entry.dates and not entry.dates.single else None,
        "weekdays": weekdays_text(entry),
        "time_from": span.start if span else None, "time_to": span.end if span else None,
    }


def routing_schedule(schedule: Schedule, timezone: str, refs: OrgRefs) -> RoutingSchedule:
    """The calendar as the pure logic evaluates and lints it (the override included)."""
    override = None
    if schedule.override_action and schedule.override_until is not None:
        message = refs.messages.get(schedule.override_message_id) if schedule.override_message_id else None
        override = Override(schedule.override_action, aware(schedule.override_until), message)
    return RoutingSchedule(tuple(entry_to_routing(e, refs) for e in schedule.entries), timezone, override)


def calendar_of(schedule: Schedule | None, timezone: str, refs: OrgRefs) -> rm.Calendar | None:
    if schedule is None:
        return None
    after = {e.name: dest_to_routing(e.then_kind, e.then_target, refs) for e in schedule.entries if e.then_kind}
    return rm.Calendar(routing_schedule(schedule, timezone, refs), after)


def group_code_of(group: AnswerGroup, index: int) -> str:
    """The group id shown after the caller's number: the stored one, else 0001, 0002... by name order."""
    return group.group_code or f"{index + 1:04d}"


def group_settings(group: AnswerGroup) -> GroupSettings:
    return GroupSettings(strategy=group.strategy, ring_time=float(group.ring_time),
                         no_answer_time=float(group.no_answer_time), repeat=group.repeat,
                         retry_delay=float(group.retry_delay))


def queue_settings(group: AnswerGroup, refs: OrgRefs) -> QueueSettings | None:
    if not group.queue_enabled:
        return None

    def seconds(value: int | None) -> float | None:
        return None if value is None else float(value)
    return QueueSettings(
        max_callers=group.queue_max_callers, max_wait=seconds(group.queue_max_wait),
        message=refs.messages.get(group.queue_message_id) if group.queue_message_id else None,
        announce_interval=seconds(group.queue_announce_interval),
        first_announcement=seconds(group.queue_first_announcement),
        announce_position=group.queue_announce_position, join_empty=group.queue_join_empty)


async def load_schedules(session: AsyncSession, organization_id: int) -> list[Schedule]:
    return list((await session.execute(select(Schedule).where(Schedule.organization_id == organization_id)
                                       .options(selectinload(Schedule.entries)))).scalars())


async def load_organisation(session: AsyncSession, organization: int | str, now: datetime) -> rm.Organisation:
    """The routing snapshot of one organisation (by id or name) as it stands at ``now``.

    Each user's diversion is the one active at ``now``, else the next scheduled one. Raises
    ``LookupError`` for an unknown organisation and :class:`~provisioning.routing.model.RoutingModelError`
    when the stored model cannot be routed.
    """
    stmt = select(Organization).options(selectinload(Organization.numbers))
    stmt = stmt.where(Organization.id == organization if isinstance(organization, int)
                      else Organization.name == organization)
    org = (await session.execute(stmt)).scalar_one_or_none()
    if org is None:
        raise LookupError(f"no organisation {organization!r}")
    refs = await OrgRefs.load(session, org.id)
    tz = org.timezone

    messages = {m.name: rm.VoiceMessage(m.name, m.text, m.duration) for m in (await session.execute(
        select(VoiceMessage).where(VoiceMessage.organization_id == org.id))).scalars()}

    users = (await session.execute(select(User).where(User.organization_id == org.id, User.removed_at.is_(None))
                                   .options(selectinload(User.numbers)))).scalars().all()
    diversions: dict[int, Diversion] = {}
    for d in (await session.execute(select(Diversion).where(
            Diversion.organization_id == org.id, Diversion.ended_at.is_(None)).order_by(Diversion.starts_at))).scalars():
        if d.state(now) in ("active", "scheduled"):
            current = diversions.get(d.user_id)
            if current is None or (not current.is_active(now) and d.is_active(now)):
                diversions[d.user_id] = d
    phones: dict[int, list[rm.DeskPhoneRef]] = {}
    for line in (await session.execute(select(Line).join(Device, Device.id == Line.device_id)
                                       .where(Device.organization_id == org.id, Line.index == 1)
                                       .options(selectinload(Line.device)))).scalars():
        phones.setdefault(line.user_id, []).append(rm.DeskPhoneRef(line.device.mac, line.device.model))

    routed_users: dict[str, rm.User] = {}
    for u in users:
        primary = next((n.e164 for n in u.numbers if n.role == NumberRole.primary), None)
        if primary is None:
            continue
        mobiles = tuple(rm.Mobile(n.e164, mex=n.mobile_profile == MobileProfile.mex)
                        for n in sorted(u.numbers, key=lambda n: n.e164) if n.role == NumberRole.mobile)
        d = diversions.get(u.id)
        diversion = None
        if d is not None:
            diversion = rm.Diversion(reason=d.reason.value, target=d.target.value, target_number=d.target_number,
                                     message=d.message, starts_at=aware(d.starts_at), ends_at=aware(d.ends_at))
        routed_users[primary] = rm.User(
            number=primary, name=u.name, extension=u.extension, mobiles=mobiles,
            flags=rm.Flags(**{name: getattr(u, name) for name in FLAGS}), diversion=diversion,
            desk_phones=tuple(phones.get(u.id, ())), softphone=u.softphone_licence)

    schedules = await load_schedules(session, org.id)
    by_group = {s.group_id: s for s in schedules if s.owner == "group"}
    by_menu = {s.menu_id: s for s in schedules if s.owner == "menu"}
    main_schedule = next((s for s in schedules if s.owner == "main"), None)

    groups = (await session.execute(select(AnswerGroup).where(AnswerGroup.organization_id == org.id)
                                    .order_by(AnswerGroup.name)
                                    .options(selectinload(AnswerGroup.members), selectinload(AnswerGroup.numbers))
                                    )).scalars().all()
    routed_groups: dict[str, rm.Group] = {}
    for index, g in enumerate(groups):
        members = []
        for order, m in enumerate(sorted(g.members, key=lambda m: (m.position, m.user_id)), start=1):
            primary = refs.users.get(m.user_id, (None,))[0]
            if primary is None or primary not in routed_users:
                continue
            members.append(rm.GroupMember(primary, logged_in=m.logged_in,
                                          ring_time=None if m.ring_time is None else float(m.ring_time), order=order))
        routed_groups[g.name] = rm.Group(
            name=g.name, group_id=group_code_of(g, index),
            numbers=tuple(sorted(n.e164 for n in g.numbers)), settings=group_settings(g), members=tuple(members),
            queue=queue_settings(g, refs), calendar=calendar_of(by_group.get(g.id), tz, refs),
            no_answer=dest_to_routing(g.no_answer_kind, g.no_answer_target, refs))

    menus = (await session.execute(select(Menu).where(Menu.organization_id == org.id)
                                   .options(selectinload(Menu.options), selectinload(Menu.numbers)))).scalars().all()
    routed_menus: dict[str, rm.RoutedMenu] = {}
    for m in menus:
        menu = RoutingMenu(
            name=m.name, message=refs.messages[m.message_id],
            options={o.key: dest_to_routing(o.kind, o.target, refs) for o in m.options},
            timeout=m.timeout, retries=m.retries,
            invalid_message=refs.messages.get(m.invalid_message_id) if m.invalid_message_id else None,
            timeout_destination=dest_to_routing(m.timeout_kind, m.timeout_target, refs) if m.timeout_kind else None,
            final_destination=dest_to_routing(m.final_kind, m.final_target, refs))
        routed_menus[m.name] = rm.RoutedMenu(menu, tuple(sorted(n.e164 for n in m.numbers)),
                                             calendar_of(by_menu.get(m.id), tz, refs))

    main = next((n for n in org.numbers if n.role == NumberRole.main), None)
    return rm.Organisation(
        name=org.name, main_number=main.e164 if main else None, timezone=tz, users=routed_users,
        groups=routed_groups, menus=routed_menus, messages=messages,
        main_calendar=calendar_of(main_schedule, tz, refs))
