"""Answer groups (A10) and logging in and out of them (U5; the IN/UT-loggning page reads /me/groups).

A group has a distribution strategy, ordered members with their own ring times, a no-answer
time and destination, an optional queue with its "kösvar" announcement, and a calendar
(``/groups/{id}/schedule``). Members' status: logged in or out, diverted (their active
diversion), and on a call — live state the database does not have: a call-state provider
(``set_call_state_provider``) fills it in when the server runs one, else it is null.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from api.access import creation_org, get_group, get_self, org_user_ids, visible_org_ids
from api.framework import Ctx, Reply, api, etag_of
from api.pagination import Page, PageQuery, paginate
from api.problems import field_problem, not_found
from api.resources import routed
from api.resources.diversions import active_diversion_user_ids
from api.resources.menus import DestinationIn, DestinationOut, destination_in, destination_out
from api.resources.messages import org_message_id
from api.types import Id, PhoneNumber, Text, Timestamp
from provisioning.audit import record
from provisioning.model import AnswerGroup, GroupMember, NumberRole, Schedule, User
from provisioning.routing.snapshot import OrgRefs
from provisioning.routing.strategies import Strategy

#: Who is on a call right now: user ids -> the subset busy. None: unknown (no call state here).
CallStateProvider = Callable[[Ctx, list[int]], Awaitable[set[int]]]
_call_state: CallStateProvider | None = None


def set_call_state_provider(provider: CallStateProvider | None) -> None:
    """The hook for live call state (the routing engine or a PBX feed); None removes it."""
    global _call_state
    _call_state = provider


class MemberOut(BaseModel):
    user_id: int
    name: str
    position: int = Field(description="the member order, 0-based")
    ring_time: int | None = Field(description="seconds this member rings; null: the group's ring time")
    logged_in: bool
    diverted: bool = Field(description="has an active diversion now")
    on_call: bool | None = Field(description="on a call now; null: this server has no live call state")
    status: str = Field(description="logged_out | diverted | on_call | available")
    changed_at: Timestamp


class QueueIO(BaseModel):
    """The queue in front of the group; callers hear the "kösvar" message while they wait."""

    max_callers: int | None = Field(None, ge=1, le=1000, description="null: no limit")
    max_wait: int | None = Field(None, ge=1, le=86400, description="seconds; then the no-answer destination")
    message_id: Id | None = Field(None, description="the kösvar announcement")
    first_announcement: int | None = Field(None, ge=0, le=3600, description="seconds after joining")
    announce_interval: int | None = Field(None, ge=5, le=3600, description="seconds between announcements")
    announce_position: bool = False
    join_empty: bool = Field(False, description="callers may queue when no member is logged in")


class GroupOut(BaseModel):
    id: int
    organization_id: int
    name: str
    number: str | None
    answers_main_number: bool = Field(description="the group answers the organisation's main number")
    group_id: str | None = Field(description="appended to the presented caller number (C1)")
    strategy: str
    ring_time: int
    no_answer_time: int
    repeat: bool
    retry_delay: int
    no_answer: DestinationOut | None
    queue: QueueIO | None
    schedule_id: int | None
    members: list[MemberOut]
    version: int


class MemberIn(BaseModel):
    user_id: Id
    ring_time: int | None = Field(None, ge=1, le=600)
    logged_in: bool | None = Field(None, description="null: new members start logged in, others keep their state")


class GroupFields(BaseModel):
    group_id: Text(6, 1, pattern=r"^[0-9]{1,6}$") | None = None
    strategy: Literal["ring_all", "linear", "round_robin", "longest_idle", "fewest_calls", "random"] | None = None
    ring_time: int | None = Field(None, ge=1, le=600)
    no_answer_time: int | None = Field(None, ge=1, le=3600)
    repeat: bool | None = None
    retry_delay: int | None = Field(None, ge=0, le=600)
    no_answer: DestinationIn | None = Field(None, description="where unanswered calls go; null: hang up")
    queue: QueueIO | None = Field(None, description="null: no queue")


class GroupPage(Page[GroupOut]):
    pass


class GroupCreate(GroupFields):
    organization_id: Id | None = None
    name: Text(100, 1)
    number: PhoneNumber | None = Field(None, description="a number of its own, or the organisation's main number")
    members: list[Id | MemberIn] = Field([], max_length=500, description="in order: user ids or {user_id, ...}")


class GroupPatch(GroupFields):
    name: Text(100, 1) | None = None
    number: PhoneNumber | None = None
    members: list[Id | MemberIn] | None = Field(None, max_length=500)


class GroupQuery(PageQuery):
    organization_id: Id | None = None
    q: Text(100) | None = None


class MembershipIn(BaseModel):
    logged_in: bool


class GroupStatus(BaseModel):
    id: int
    name: str
    members: list[MemberOut]
    as_of: Timestamp = Field(description="the server time the states were read at")


class MyGroupOut(BaseModel):
    id: int
    name: str
    number: str | None
    logged_in: bool
    members: list[MemberOut]


class MyGroups(BaseModel):
    items: list[MyGroupOut]
    as_of: Timestamp = Field(description="the server time the states were read at")


async def _members(ctx: Ctx, groups: list[AnswerGroup]) -> dict[int, list[MemberOut]]:
    ids = sorted({m.user_id for g in groups for m in g.members})
    names = dict((await ctx.db.execute(select(User.id, User.name).where(User.id.in_(ids)))).all()) if ids else {}
    diverted = await active_diversion_user_ids(ctx, ids)
    busy = await _call_state(ctx, ids) if _call_state is not None and ids else None

    def out(m: GroupMember) -> MemberOut:
        on_call = None if busy is None else m.user_id in busy
        status = ("logged_out" if not m.logged_in else "diverted" if m.user_id in diverted
                  else "on_call" if on_call else "available")
        return MemberOut(user_id=m.user_id, name=names.get(m.user_id, ""), position=m.position,
                         ring_time=m.ring_time, logged_in=m.logged_in, diverted=m.user_id in diverted,
                         on_call=on_call, status=status, changed_at=m.changed_at)
    return {g.id: [out(m) for m in sorted(g.members, key=lambda m: (m.position, m.user_id))] for g in groups}


def _number(group: AnswerGroup) -> str | None:
    return next((n.e164 for n in group.numbers), None)


async def group_out(ctx: Ctx, group: AnswerGroup, members: list[MemberOut] | None = None,
                    refs: OrgRefs | None = None) -> GroupOut:
    if members is None:
        members = (await _members(ctx, [group]))[group.id]
    refs = refs or await OrgRefs.load(ctx.db, group.organization_id)
    schedule_id = (await ctx.db.execute(select(Schedule.id).where(Schedule.group_id == group.id))).scalar_one_or_none()
    queue = None
    if group.queue_enabled:
        queue = QueueIO(max_callers=group.queue_max_callers, max_wait=group.queue_max_wait,
                        message_id=group.queue_message_id, first_announcement=group.queue_first_announcement,
                        announce_interval=group.queue_announce_interval,
                        announce_position=group.queue_announce_position, join_empty=group.queue_join_empty)
    return GroupOut(id=group.id, organization_id=group.organization_id, name=group.name, number=_number(group),
                    answers_main_number=any(n.role == NumberRole.main for n in group.numbers),
                    group_id=group.group_code, strategy=group.strategy, ring_time=group.ring_time,
                    no_answer_time=group.no_answer_time, repeat=group.repeat, retry_delay=group.retry_delay,
                    no_answer=destination_out(group.no_answer_kind if group.no_answer_kind != "hangup" else None,
                                              group.no_answer_target, refs),
                    queue=queue, schedule_id=schedule_id, members=members, version=group.version)


async def _load(ctx: Ctx, group_id: int) -> AnswerGroup:
    return (await ctx.db.execute(select(AnswerGroup).where(AnswerGroup.id == group_id).options(
        selectinload(AnswerGroup.members), selectinload(AnswerGroup.numbers))
        .execution_options(populate_existing=True))).scalar_one()


GROUP = routed.Routed("group", AnswerGroup, get=get_group, reload=_load, out=group_out)


async def _set_members(ctx: Ctx, group: AnswerGroup, members: list[int | MemberIn]) -> None:
    specs = [m if isinstance(m, MemberIn) else MemberIn(user_id=m) for m in members]
    wanted = await org_user_ids(ctx, group.organization_id, [m.user_id for m in specs], ["body", "members"])
    by_user = {m.user_id: m for m in specs}
    for member in list(group.members):
        if member.user_id not in wanted:
            group.members.remove(member)
    have = {m.user_id: m for m in group.members}
    for position, uid in enumerate(wanted):
        spec = by_user[uid]
        member = have.get(uid)
        if member is None:
            member = GroupMember(user_id=uid, logged_in=True if spec.logged_in is None else spec.logged_in,
                                 changed_at=ctx.now)
            group.members.append(member)
        elif spec.logged_in is not None and spec.logged_in != member.logged_in:
            member.logged_in, member.changed_at = spec.logged_in, ctx.now
        if member.position != position:
            member.position = position
        if member.ring_time != spec.ring_time:
            member.ring_time = spec.ring_time


async def _set_fields(ctx: Ctx, group: AnswerGroup, body: GroupFields, given: set[str]) -> None:
    for name in ("strategy", "ring_time", "no_answer_time", "repeat", "retry_delay"):
        if name in given:
            value = getattr(body, name)
            if value is None:
                raise field_problem(["body", name], "may not be null")
            setattr(group, name, Strategy(value).value if name == "strategy" else value)
    if "group_id" in given:
        group.group_code = body.group_id
    if "no_answer" in given:
        if body.no_answer is not None and body.no_answer.kind == "repeat":
            raise field_problem(["body", "no_answer", "kind"], "a group's no-answer destination cannot be repeat")
        kind, target = await destination_in(ctx, group.organization_id, body.no_answer, ["body", "no_answer"])
        group.no_answer_kind, group.no_answer_target = kind or "hangup", target
    if "queue" in given:
        q = body.queue
        group.queue_enabled = q is not None
        q = q or QueueIO()
        group.queue_message_id = await org_message_id(ctx, group.organization_id, q.message_id,
                                                      ["body", "queue", "message_id"])
        group.queue_max_callers, group.queue_max_wait = q.max_callers, q.max_wait
        group.queue_first_announcement, group.queue_announce_interval = q.first_announcement, q.announce_interval
        group.queue_announce_position, group.queue_join_empty = q.announce_position, q.join_empty


async def _set_patch(ctx: Ctx, group: AnswerGroup, body: GroupPatch, given: set[str]) -> None:
    """A PATCH's own fields: all but the name and the number (``routed.update`` does those)."""
    await _set_fields(ctx, group, body, given)
    if "members" in given:
        await _set_members(ctx, group, body.members or [])


@api.route("GET", "/groups", summary="List answer groups", tags="groups", auth="admin", query=GroupQuery,
           response=GroupPage)
async def list_groups(ctx: Ctx):
    q: GroupQuery = ctx.query
    stmt = select(AnswerGroup).options(selectinload(AnswerGroup.members), selectinload(AnswerGroup.numbers))
    org = visible_org_ids(ctx, q.organization_id)
    if org is not None:
        stmt = stmt.where(AnswerGroup.organization_id == org)
    if q.q:
        stmt = stmt.where(AnswerGroup.name.contains(q.q, autoescape=True))
    rows, cursor = await paginate(ctx.db, stmt, AnswerGroup.id, q)
    members = await _members(ctx, rows)
    return GroupPage(items=[await group_out(ctx, g, members[g.id]) for g in rows], next_cursor=cursor)


@api.route("POST", "/groups", summary="Create an answer group", tags="groups", auth="admin", body=GroupCreate,
           response=GroupOut, status=201, etag=True, errors=(409,))
async def create_group(ctx: Ctx):
    body: GroupCreate = ctx.body
    org_id = creation_org(ctx, body.organization_id)
    await routed.name_free(ctx, GROUP, org_id, body.name)
    group = AnswerGroup(organization_id=org_id, name=body.name, members=[], numbers=[])
    await org_user_ids(ctx, org_id, [m if isinstance(m, int) else m.user_id for m in body.members],
                       ["body", "members"])
    ctx.db.add(group)
    await ctx.db.flush()
    await _set_fields(ctx, group, body, body.model_fields_set)
    await _set_members(ctx, group, body.members)
    return await routed.created(ctx, GROUP, group, body.number)


@api.route("GET", "/groups/{group_id}", summary="One answer group", tags="groups", auth="admin",
           response=GroupOut, etag=True)
async def get_group_route(ctx: Ctx):
    group = await get_group(ctx, ctx.path["group_id"])
    return Reply(await group_out(ctx, group), etag=etag_of(group.version))


@api.route("PATCH", "/groups/{group_id}", summary="Rename, renumber or change the members", tags="groups",
           auth="admin", body=GroupPatch, response=GroupOut, etag=True, if_match=True, errors=(409,))
async def update_group(ctx: Ctx):
    return await routed.update(ctx, GROUP, _set_patch)


@api.route("DELETE", "/groups/{group_id}", summary="Delete an answer group", tags="groups", auth="admin",
           if_match=True, errors=(409,))
async def delete_group(ctx: Ctx):
    """409 while a menu key, a no-answer destination or a calendar entry leads to the group."""
    return await routed.delete(ctx, GROUP)


async def _set_login(ctx: Ctx, group: AnswerGroup, user_id: int, logged_in: bool) -> GroupMember:
    member = next((m for m in group.members if m.user_id == user_id), None)
    if member is None:
        raise not_found("group membership")
    if member.logged_in != logged_in:
        member.logged_in, member.changed_at = logged_in, ctx.now
        group.updated_at = ctx.now
        record(ctx.db, ctx.actor(), now=ctx.now, action="log_in" if logged_in else "log_out", entity="group_member",
               entity_id=f"{group.id}/{user_id}", organization_id=group.organization_id,
               before={"logged_in": not logged_in}, after={"logged_in": logged_in})
    await ctx.db.flush()
    return member


@api.route("PUT", "/groups/{group_id}/members/{user_id}", summary="Log a member in or out", tags="groups",
           auth="admin", body=MembershipIn, response=GroupOut, etag=True)
async def set_member_login(ctx: Ctx):
    group = await get_group(ctx, ctx.path["group_id"])
    await _set_login(ctx, group, ctx.path["user_id"], ctx.body.logged_in)
    group = await _load(ctx, group.id)
    return Reply(await group_out(ctx, group), etag=etag_of(group.version))


@api.route("GET", "/groups/{group_id}/members", summary="Members' status: logged in, on a call, diverted",
           tags="groups", auth="admin", response=GroupStatus)
async def group_status(ctx: Ctx):
    """Always read fresh: for the switchboard's overview."""
    group = await get_group(ctx, ctx.path["group_id"])
    members = (await _members(ctx, [group]))[group.id]
    return GroupStatus(id=group.id, name=group.name, members=members, as_of=ctx.now)


async def my_groups(ctx: Ctx, user: User) -> MyGroups:
    groups = (await ctx.db.execute(
        select(AnswerGroup).join(GroupMember, GroupMember.group_id == AnswerGroup.id)
        .where(GroupMember.user_id == user.id).order_by(AnswerGroup.name)
        .options(selectinload(AnswerGroup.members), selectinload(AnswerGroup.numbers))
        .execution_options(populate_existing=True))).scalars().unique().all()
    members = await _members(ctx, list(groups))
    items = []
    for g in groups:
        mine = next(m for m in g.members if m.user_id == user.id)
        items.append(MyGroupOut(id=g.id, name=g.name, number=_number(g), logged_in=mine.logged_in,
                                members=members[g.id]))
    return MyGroups(items=items, as_of=ctx.now)


@api.route("GET", "/me/groups", summary="My answer groups, their members and their status (U5)",
           tags="self-service", response=MyGroups)
async def list_my_groups(ctx: Ctx):
    """Always read fresh (no caching): the IN/UT page refreshes from here."""
    return await my_groups(ctx, await get_self(ctx))


@api.route("PUT", "/me/groups/{group_id}", summary="Log in to or out of one of my groups (U5)",
           tags="self-service", body=MembershipIn, response=MyGroups)
async def set_my_login(ctx: Ctx):
    user = await get_self(ctx)
    group = (await ctx.db.execute(select(AnswerGroup).where(AnswerGroup.id == ctx.path["group_id"]).options(
        selectinload(AnswerGroup.members)))).scalar_one_or_none()
    if group is None or group.organization_id != user.organization_id:
        raise not_found("group")
    await _set_login(ctx, group, user.id, ctx.body.logged_in)
    return await my_groups(ctx, user)
