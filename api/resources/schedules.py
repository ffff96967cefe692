"""Calendars (A11) on the main number, a group or a menu: ordered entries, first match wins.

``PUT /organizations/{id}/schedule`` (the main number), ``/groups/{id}/schedule`` and
``/menus/{id}/schedule`` create or replace a calendar; everything else addresses it by id:
entries are added, changed, removed and moved up or down, public holidays of a year are added
in one call, a manual override ("closed now until ...") expires by itself. Every answer carries
the lint warnings (English and Swedish) and what the calendar says now, evaluated by
:mod:`provisioning.routing.schedule` in the organisation's time zone on the server's clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from api.access import can_admin_org, get_group, get_org
from api.framework import Ctx, Reply, api, check_if_match, etag_of
from api.problems import Problem, field_problem, not_found
from api.resources.menus import DestinationIn, DestinationOut, destination_in, destination_out, get_menu
from api.resources.messages import org_message_id
from api.types import Day, Id, Instant, Text, Timestamp
from provisioning.audit import record
from provisioning.model import AnswerGroup, Menu, Organization, Schedule, ScheduleEntry
from provisioning.routing.schedule import ScheduleEntry as RoutingEntry
from provisioning.routing.schedule import ScheduleError, holiday_entries, lint, move
from provisioning.routing.snapshot import OrgRefs, entry_columns, entry_to_routing, routing_schedule

#: Which field a schedule error is about.
_ERROR_FIELD = {"bad_date": "date", "bad_time": "from", "bad_weekday": "weekdays", "bad_action": "action",
                "open_with_message": "message_id", "closed_without_message": "message_id", "needs_when": "date",
                "default_with_when": "name", "empty_name": "name", "bad_span": "to", "date_order": "end_date"}


class EntryIn(BaseModel):
    """A specific date (``date``, optionally to ``end_date``), or weekly (``weekdays``), or the
    ``default`` entry (neither); ``from``/``to`` narrow it to a time span (none: the whole day)."""

    model_config = ConfigDict(populate_by_name=True)

    name: Text(100, 1)
    date: Day | None = None
    end_date: Day | None = None
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field([], max_length=7)
    from_: Text(8, 4, pattern=r"^[0-9]{1,2}[:.][0-9]{2}$") | None = Field(None, alias="from", examples=["12:00"])
    to: Text(8, 4, pattern=r"^[0-9]{1,2}[:.][0-9]{2}$") | None = Field(None, examples=["13:00"])
    action: Literal["open", "closed"]
    message_id: Id | None = Field(None, description="required for closed, not allowed for open")
    then: DestinationIn | None = Field(None, description="where a closed entry's calls go after the message; "
                                                         "null: hang up")


class EntryOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    position: int = Field(description="1-based, top to bottom")
    name: str
    date: str | None
    end_date: str | None
    weekdays: list[str]
    from_: str | None = Field(alias="from")
    to: str | None
    action: str
    message_id: int | None
    message: str | None
    then: DestinationOut | None
    holiday: bool = Field(description="added by 'public holidays for a year'")


class LintOut(BaseModel):
    key: str
    severity: str = Field(description="warning | info")
    position: int | None = Field(description="1-based position of the entry concerned")
    entry_id: int | None
    text: dict[str, str] = Field(description="the warning in English (en) and Swedish (sv)")


class StateOut(BaseModel):
    at: Timestamp
    action: str = Field(description="open | closed")
    source: str = Field(description="override | entry | default | none")
    entry: str | None
    message_id: int | None
    message: str | None
    until: Timestamp | None = Field(description="when the answer changes next")


class OverrideIO(BaseModel):
    action: Literal["open", "closed"]
    message_id: Id | None = Field(None, description="required for closed")
    until: Instant = Field(description="the override expires by itself then")


class OwnerOut(BaseModel):
    kind: str = Field(description="main | group | menu")
    id: int
    name: str


class ScheduleOut(BaseModel):
    id: int
    organization_id: int
    owner: OwnerOut
    timezone: str
    entries: list[EntryOut]
    override: OverrideIO | None = Field(description="null, or the manual override while it lasts")
    lint: list[LintOut]
    state: StateOut
    version: int


class ScheduleIn(BaseModel):
    entries: list[EntryIn] = Field(max_length=500, description="top to bottom")


class EntryCreate(EntryIn):
    position: int | None = Field(None, ge=1, le=501, description="1-based; default: above [default], else last")


class MoveIn(BaseModel):
    direction: Literal["up", "down"]
    steps: int = Field(1, ge=1, le=500)


class HolidaysIn(BaseModel):
    year: int = Field(ge=2000, le=2199)
    country: Text(2, 2, pattern=r"^[A-Z]{2}$") = "SE"
    action: Literal["open", "closed"] = "closed"
    message_id: Id | None = None


class StateQuery(BaseModel):
    at: Instant | None = Field(None, description="default: now")


# -- helpers ---------------------------------------------------------------------------------------------


async def _load(ctx: Ctx, schedule_id: int) -> Schedule:
    s = (await ctx.db.execute(select(Schedule).where(Schedule.id == schedule_id).options(
        selectinload(Schedule.entries)).execution_options(populate_existing=True))).scalar_one_or_none()
    if s is None or not can_admin_org(ctx, s.organization_id):
        raise not_found("schedule")
    return s


async def _owner(ctx: Ctx, s: Schedule) -> OwnerOut:
    if s.owner == "group":
        return OwnerOut(kind="group", id=s.group_id, name=(await ctx.db.get(AnswerGroup, s.group_id)).name)
    if s.owner == "menu":
        return OwnerOut(kind="menu", id=s.menu_id, name=(await ctx.db.get(Menu, s.menu_id)).name)
    return OwnerOut(kind="main", id=s.organization_id, name=(await ctx.db.get(Organization, s.organization_id)).name)


def _entry_out(e: ScheduleEntry, position: int, refs: OrgRefs) -> EntryOut:
    when = entry_to_routing(e, refs).when()
    return EntryOut(id=e.id, position=position, name=e.name,
                    date=e.date_first.isoformat() if e.date_first else None,
                    end_date=e.date_last.isoformat() if e.date_last else None,
                    weekdays=[w for w in e.weekdays.split(",") if w], from_=when.get("from"), to=when.get("to"),
                    action=e.action, message_id=e.message_id, message=refs.messages.get(e.message_id),
                    then=destination_out(e.then_kind, e.then_target, refs), holiday=e.holiday)


async def schedule_out(ctx: Ctx, s: Schedule, at: datetime | None = None) -> ScheduleOut:
    org = await ctx.db.get(Organization, s.organization_id)
    refs = await OrgRefs.load(ctx.db, s.organization_id)
    entries = sorted(s.entries, key=lambda e: (e.position, e.id))
    routing = routing_schedule(s, org.timezone, refs)
    today = ctx.now.astimezone(routing.tz).date()
    warnings = [LintOut(key=w.key, severity=w.severity, position=w.position,
                        entry_id=entries[w.position - 1].id if w.position else None,
                        text={"en": w.text("en"), "sv": w.text("sv")})
                for w in lint(routing.entries, today=today)]
    at = at or ctx.now
    decision = routing.evaluate(at)
    override = None
    if s.override_action and s.override_until is not None and routing.override and routing.override.active(ctx.now):
        override = OverrideIO(action=s.override_action, message_id=s.override_message_id, until=routing.override.until)
    state = StateOut(at=at, action=decision.action.value, source=decision.source, entry=decision.entry_name,
                     message_id=refs.id_by_name("message", decision.message) if decision.message else None,
                     message=decision.message, until=decision.until)
    return ScheduleOut(id=s.id, organization_id=s.organization_id, owner=await _owner(ctx, s), timezone=org.timezone,
                       entries=[_entry_out(e, i + 1, refs) for i, e in enumerate(entries)], override=override,
                       lint=warnings, state=state, version=s.version)


async def _reply(ctx: Ctx, s: Schedule, status: int | None = None) -> Reply:
    s = await _load(ctx, s.id)
    return Reply(await schedule_out(ctx, s), status=status, etag=etag_of(s.version))


async def _entry_values(ctx: Ctx, org_id: int, e: EntryIn, loc: list, refs: OrgRefs) -> dict:
    """Check an entry with the routing logic (422 naming the field) and return its columns."""
    if e.end_date is not None and e.date is None:
        raise field_problem([*loc, "date"], "an end_date needs a date")
    message_id = await org_message_id(ctx, org_id, e.message_id, [*loc, "message_id"])
    try:
        entry = RoutingEntry.on_date(e.name, e.date, e.action, str(message_id) if message_id else None,
                                     last=e.end_date, start=e.from_, end=e.to, weekdays=e.weekdays) \
            if e.date is not None else \
            RoutingEntry.weekly(e.name, e.weekdays, e.action, str(message_id) if message_id else None,
                                start=e.from_, end=e.to) if e.weekdays else \
            RoutingEntry(e.name, e.action, str(message_id) if message_id else None,
                         span=None if e.from_ is None and e.to is None else _span_error(loc))
    except ScheduleError as exc:
        raise field_problem([*loc, _ERROR_FIELD.get(exc.key, "name")], str(exc)) from None
    then_kind, then_target = await destination_in(ctx, org_id, e.then, [*loc, "then"], refs)
    if then_kind == "repeat":
        raise field_problem([*loc, "then", "kind"], "a calendar entry cannot lead to repeat")
    if then_kind and e.action == "open":
        raise field_problem([*loc, "then"], "only a closed entry leads somewhere after its message")
    return {**entry_columns(entry), "message_id": message_id, "then_kind": then_kind, "then_target": then_target}


def _span_error(loc: list):
    raise field_problem([*loc, "from"], "the default entry has no time span (it applies whenever nothing above does)")


def _touch(ctx: Ctx, s: Schedule) -> None:
    s.updated_at = ctx.now  # bumps the version: entries are part of the calendar


def _renumber(s: Schedule, ordered: list[ScheduleEntry]) -> None:
    for position, entry in enumerate(ordered):
        if entry.position != position:
            entry.position = position


def _audit(ctx: Ctx, s: Schedule, action: str, before: dict | None, after: dict | None) -> None:
    record(ctx.db, ctx.actor(), now=ctx.now, action=action, entity="schedule", entity_id=s.id,
           organization_id=s.organization_id, before=before, after=after)


def _snapshot(s: Schedule) -> dict:
    return {"entries": [{"name": e.name, "action": e.action, "message_id": e.message_id,
                         "dates": [str(e.date_first), str(e.date_last)] if e.date_first else None,
                         "weekdays": e.weekdays, "from": str(e.time_from) if e.time_from else None,
                         "to": str(e.time_to) if e.time_to else None}
                        for e in sorted(s.entries, key=lambda e: (e.position, e.id))],
            "override": {"action": s.override_action, "until": s.override_until.isoformat()
                         if s.override_until else None, "message_id": s.override_message_id}}


async def _put(ctx: Ctx, org_id: int, owner: str, owner_id: int | None) -> Reply:
    column = {"group": Schedule.group_id, "menu": Schedule.menu_id}.get(owner)
    stmt = select(Schedule.id).where(Schedule.organization_id == org_id, Schedule.owner == owner)
    if column is not None:
        stmt = stmt.where(column == owner_id)
    existing = (await ctx.db.execute(stmt)).scalar_one_or_none()
    refs = await OrgRefs.load(ctx.db, org_id)
    rows = [await _entry_values(ctx, org_id, e, ["body", "entries", i], refs) for i, e in enumerate(ctx.body.entries)]
    if existing is None:
        s = Schedule(organization_id=org_id, owner=owner, entries=[],
                     **({"group_id": owner_id} if owner == "group" else {"menu_id": owner_id} if owner == "menu" else {}))
        ctx.db.add(s)
        before = None
    else:
        s = await _load(ctx, existing)
        check_if_match(ctx, s.version)
        before = _snapshot(s)
        s.entries.clear()
        await ctx.db.flush()
        _touch(ctx, s)
    for position, values in enumerate(rows):
        s.entries.append(ScheduleEntry(position=position, **values))
    await ctx.db.flush()
    s = await _load(ctx, s.id)
    _audit(ctx, s, "create" if before is None else "update", before, _snapshot(s))
    return await _reply(ctx, s, status=201 if existing is None else 200)


async def _get_owned(ctx: Ctx, owner: str, owner_id: int, org_id: int) -> Reply:
    column = {"group": Schedule.group_id, "menu": Schedule.menu_id}.get(owner)
    stmt = select(Schedule.id).where(Schedule.organization_id == org_id, Schedule.owner == owner)
    if column is not None:
        stmt = stmt.where(column == owner_id)
    existing = (await ctx.db.execute(stmt)).scalar_one_or_none()
    if existing is None:
        raise Problem(404, "no calendar yet: PUT one (its entries) to create it")
    return await _reply(ctx, await _load(ctx, existing))


_OWNED = dict(tags="schedules", auth="admin", response=ScheduleOut, etag=True)
_PUT = dict(_OWNED, body=ScheduleIn, if_match=True, errors=(409,))


# -- the owners' calendars -------------------------------------------------------------------------------


@api.route("GET", "/organizations/{organization_id}/schedule", summary="The main number's calendar", **_OWNED)
async def get_main_schedule(ctx: Ctx):
    org = await get_org(ctx, ctx.path["organization_id"], admin=True)
    return await _get_owned(ctx, "main", org.id, org.id)


@api.route("PUT", "/organizations/{organization_id}/schedule", summary="Create or replace the main number's calendar",
           **_PUT)
async def put_main_schedule(ctx: Ctx):
    org = await get_org(ctx, ctx.path["organization_id"], admin=True)
    return await _put(ctx, org.id, "main", None)


@api.route("GET", "/groups/{group_id}/schedule", summary="An answer group's calendar", **_OWNED)
async def get_group_schedule(ctx: Ctx):
    group = await get_group(ctx, ctx.path["group_id"])
    return await _get_owned(ctx, "group", group.id, group.organization_id)


@api.route("PUT", "/groups/{group_id}/schedule", summary="Create or replace an answer group's calendar", **_PUT)
async def put_group_schedule(ctx: Ctx):
    group = await get_group(ctx, ctx.path["group_id"])
    return await _put(ctx, group.organization_id, "group", group.id)


@api.route("GET", "/menus/{menu_id}/schedule", summary="A menu's calendar", **_OWNED)
async def get_menu_schedule(ctx: Ctx):
    menu = await get_menu(ctx, ctx.path["menu_id"])
    return await _get_owned(ctx, "menu", menu.id, menu.organization_id)


@api.route("PUT", "/menus/{menu_id}/schedule", summary="Create or replace a menu's calendar", **_PUT)
async def put_menu_schedule(ctx: Ctx):
    menu = await get_menu(ctx, ctx.path["menu_id"])
    return await _put(ctx, menu.organization_id, "menu", menu.id)


# -- one calendar by id --------------------------------------------------------------------------------


@api.route("GET", "/schedules/{schedule_id}", summary="A calendar, its lint warnings and what it says now",
           **_OWNED)
async def get_schedule(ctx: Ctx):
    return await _reply(ctx, await _load(ctx, ctx.path["schedule_id"]))


@api.route("DELETE", "/schedules/{schedule_id}", summary="Remove a calendar (calls always go through)",
           tags="schedules", auth="admin", if_match=True)
async def delete_schedule(ctx: Ctx):
    s = await _load(ctx, ctx.path["schedule_id"])
    check_if_match(ctx, s.version)
    _audit(ctx, s, "delete", _snapshot(s), None)
    await ctx.db.delete(s)
    return None


@api.route("GET", "/schedules/{schedule_id}/state", summary="What the calendar says at an instant (default now)",
           tags="schedules", auth="admin", query=StateQuery, response=StateOut)
async def get_schedule_state(ctx: Ctx):
    s = await _load(ctx, ctx.path["schedule_id"])
    return (await schedule_out(ctx, s, ctx.query.at)).state


@api.route("POST", "/schedules/{schedule_id}/entries", summary="Add an entry", body=EntryCreate, status=201,
           if_match=True, **_OWNED)
async def add_schedule_entry(ctx: Ctx):
    """Without a position, the entry goes right above [default] (or last)."""
    s = await _load(ctx, ctx.path["schedule_id"])
    check_if_match(ctx, s.version)
    body: EntryCreate = ctx.body
    before = _snapshot(s)
    values = await _entry_values(ctx, s.organization_id, body, ["body"], await OrgRefs.load(ctx.db, s.organization_id))
    ordered = sorted(s.entries, key=lambda e: (e.position, e.id))
    if body.position is not None:
        at = min(body.position - 1, len(ordered))
    else:
        at = next((i for i, e in enumerate(ordered) if e.name == "default" and not e.weekdays and not e.date_first),
                  len(ordered))
    entry = ScheduleEntry(position=at, **values)
    s.entries.append(entry)
    ordered.insert(at, entry)
    _renumber(s, ordered)
    _touch(ctx, s)
    await ctx.db.flush()
    _audit(ctx, s, "update", before, _snapshot(s))
    return await _reply(ctx, s)


async def _entry(ctx: Ctx, s: Schedule) -> ScheduleEntry:
    entry = next((e for e in s.entries if e.id == ctx.path["entry_id"]), None)
    if entry is None:
        raise not_found("schedule entry")
    return entry


@api.route("PUT", "/schedules/{schedule_id}/entries/{entry_id}", summary="Change an entry", body=EntryIn,
           if_match=True, **_OWNED)
async def update_schedule_entry(ctx: Ctx):
    s = await _load(ctx, ctx.path["schedule_id"])
    check_if_match(ctx, s.version)
    entry = await _entry(ctx, s)
    before = _snapshot(s)
    values = await _entry_values(ctx, s.organization_id, ctx.body, ["body"],
                                 await OrgRefs.load(ctx.db, s.organization_id))
    for name, value in values.items():
        setattr(entry, name, value)
    entry.holiday = False
    _touch(ctx, s)
    await ctx.db.flush()
    _audit(ctx, s, "update", before, _snapshot(s))
    return await _reply(ctx, s)


@api.route("DELETE", "/schedules/{schedule_id}/entries/{entry_id}", summary="Remove an entry", if_match=True,
           **_OWNED)
async def delete_schedule_entry(ctx: Ctx):
    s = await _load(ctx, ctx.path["schedule_id"])
    check_if_match(ctx, s.version)
    entry = await _entry(ctx, s)
    before = _snapshot(s)
    s.entries.remove(entry)
    _renumber(s, [e for e in sorted(s.entries, key=lambda e: (e.position, e.id))])
    _touch(ctx, s)
    await ctx.db.flush()
    _audit(ctx, s, "update", before, _snapshot(s))
    return await _reply(ctx, s)


@api.route("POST", "/schedules/{schedule_id}/entries/{entry_id}/move", summary="Move an entry up or down",
           body=MoveIn, if_match=True, **_OWNED)
async def move_schedule_entry(ctx: Ctx):
    """The calendar is read top to bottom and the first match wins: the answer's lint shows
    whether the order now works."""
    s = await _load(ctx, ctx.path["schedule_id"])
    check_if_match(ctx, s.version)
    entry = await _entry(ctx, s)
    before = _snapshot(s)
    ordered = sorted(s.entries, key=lambda e: (e.position, e.id))
    delta = -ctx.body.steps if ctx.body.direction == "up" else ctx.body.steps
    moved = list(move(ordered, ordered.index(entry), delta))
    if moved != ordered:
        _renumber(s, moved)
        _touch(ctx, s)
        await ctx.db.flush()
        _audit(ctx, s, "update", before, _snapshot(s))
    return await _reply(ctx, s)


@api.route("POST", "/schedules/{schedule_id}/holidays", summary="Add the public holidays of a year",
           body=HolidaysIn, if_match=True, **_OWNED)
async def add_schedule_holidays(ctx: Ctx):
    """One whole-day dated entry per holiday (Swedish ones incl. Easter, midsummer and the
    Christmas and New Year's eves), placed below your own specific dates and above the weekly
    entries; a date you already have an entry for is left to yours. Adding a year twice adds
    nothing the second time."""
    s = await _load(ctx, ctx.path["schedule_id"])
    check_if_match(ctx, s.version)
    body: HolidaysIn = ctx.body
    message_id = await org_message_id(ctx, s.organization_id, body.message_id, ["body", "message_id"])
    try:
        added = holiday_entries(body.year, action=body.action, message=str(message_id) if message_id else None,
                                country=body.country)
    except ScheduleError as exc:
        raise field_problem(["body", _ERROR_FIELD.get(exc.key, "message_id")], str(exc)) from None
    except (NotImplementedError, KeyError, ValueError) as exc:
        raise field_problem(["body", "country"], f"no public holidays known for {body.country}: {exc}") from None
    before = _snapshot(s)
    ordered = sorted(s.entries, key=lambda e: (e.position, e.id))
    taken = {e.date_first for e in ordered if e.date_first is not None and e.date_last is None}
    at = 0
    while at < len(ordered) and ordered[at].date_first is not None and ordered[at].date_last is None:
        at += 1
    new = [ScheduleEntry(**entry_columns(h), message_id=message_id, holiday=True)
           for h in added if h.dates.first not in taken]
    if new:
        for entry in new:
            s.entries.append(entry)
        _renumber(s, ordered[:at] + new + ordered[at:])
        s.holidays_country, s.holidays_action, s.holidays_message_id = body.country, body.action, message_id
        _touch(ctx, s)
        await ctx.db.flush()
        _audit(ctx, s, "update", before, _snapshot(s))
    return await _reply(ctx, s)


@api.route("PUT", "/schedules/{schedule_id}/override", summary="Closed (or open) now until a time",
           body=OverrideIO, if_match=True, **_OWNED)
async def set_schedule_override(ctx: Ctx):
    """Wins over every entry until ``until``, then the calendar applies again by itself."""
    s = await _load(ctx, ctx.path["schedule_id"])
    check_if_match(ctx, s.version)
    body: OverrideIO = ctx.body
    if body.until <= ctx.now:
        raise field_problem(["body", "until"], "must lie in the future")
    if body.action == "closed" and body.message_id is None:
        raise field_problem(["body", "message_id"], "closed needs the voice message callers hear")
    if body.action == "open" and body.message_id is not None:
        raise field_problem(["body", "message_id"], "open has no voice message")
    message_id = await org_message_id(ctx, s.organization_id, body.message_id, ["body", "message_id"])
    before = _snapshot(s)
    s.override_action, s.override_message_id, s.override_until = body.action, message_id, body.until
    _touch(ctx, s)
    await ctx.db.flush()
    _audit(ctx, s, "override", before, _snapshot(s))
    return await _reply(ctx, s)


@api.route("DELETE", "/schedules/{schedule_id}/override", summary="End the manual override now", if_match=True,
           **_OWNED)
async def end_schedule_override(ctx: Ctx):
    s = await _load(ctx, ctx.path["schedule_id"])
    check_if_match(ctx, s.version)
    if s.override_action is not None:
        before = _snapshot(s)
        s.override_action = s.override_message_id = s.override_until = None
        _touch(ctx, s)
        await ctx.db.flush()
        _audit(ctx, s, "override", before, _snapshot(s))
    return await _reply(ctx, s)
