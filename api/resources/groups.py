"""Answer groups and logging in and out of them (U5; the IN/UT-loggning page reads /me/groups)."""

from __future__ import annotations


from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from api.access import creation_org, get_group, get_self, org_user_ids, visible_org_ids
from api.framework import Ctx, Reply, api, check_if_match, etag_of
from api.pagination import Page, PageQuery, paginate
from api.problems import Problem, field_problem, not_found
from api.resources.diversions import active_diversion_user_ids
from api.types import Id, PhoneNumber, Text, Timestamp
from provisioning.audit import record
from provisioning.model import AnswerGroup, GroupMember, Number, NumberRole, User


class MemberOut(BaseModel):
    user_id: int
    name: str
    logged_in: bool
    diverted: bool = Field(description="has an active diversion now")
    changed_at: Timestamp


class GroupOut(BaseModel):
    id: int
    organization_id: int
    name: str
    number: str | None
    members: list[MemberOut]
    version: int


class GroupPage(Page[GroupOut]):
    pass


class GroupCreate(BaseModel):
    organization_id: Id | None = None
    name: Text(100, 1)
    number: PhoneNumber | None = None
    members: list[Id] = Field([], max_length=500, description="user ids; they start logged in")


class GroupPatch(BaseModel):
    name: Text(100, 1) | None = None
    number: PhoneNumber | None = None
    members: list[Id] | None = Field(None, max_length=500)


class GroupQuery(PageQuery):
    organization_id: Id | None = None
    q: Text(100) | None = None


class MembershipIn(BaseModel):
    logged_in: bool


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
    return {g.id: [MemberOut(user_id=m.user_id, name=names.get(m.user_id, ""), logged_in=m.logged_in,
                             diverted=m.user_id in diverted, changed_at=m.changed_at)
                   for m in sorted(g.members, key=lambda m: names.get(m.user_id, "").casefold())] for g in groups}


def _number(group: AnswerGroup) -> str | None:
    return next((n.e164 for n in group.numbers), None)


async def group_out(ctx: Ctx, group: AnswerGroup) -> GroupOut:
    members = (await _members(ctx, [group]))[group.id]
    return GroupOut(id=group.id, organization_id=group.organization_id, name=group.name, number=_number(group),
                    members=members, version=group.version)


async def _load(ctx: Ctx, group_id: int) -> AnswerGroup:
    return (await ctx.db.execute(select(AnswerGroup).where(AnswerGroup.id == group_id).options(
        selectinload(AnswerGroup.members), selectinload(AnswerGroup.numbers))
        .execution_options(populate_existing=True))).scalar_one()


async def _name_free(ctx: Ctx, org_id: int, name: str, but: int | None = None) -> None:
    other = (await ctx.db.execute(select(AnswerGroup.id).where(
        AnswerGroup.organization_id == org_id, AnswerGroup.name == name))).scalar_one_or_none()
    if other is not None and other != but:
        raise Problem(409, f"a group named {name!r} exists",
                      errors=[{"loc": ["body", "name"], "msg": "already in use", "type": "conflict"}])


async def _set_number(ctx: Ctx, group: AnswerGroup, e164: str | None) -> None:
    current = group.numbers[0] if group.numbers else None
    if current is not None and current.e164 == e164:
        return
    if e164 is not None and (await ctx.db.execute(select(Number.id).where(Number.e164 == e164))).first():
        raise Problem(409, f"number {e164} is already assigned",
                      errors=[{"loc": ["body", "number"], "msg": "already assigned", "type": "conflict"}])
    if current is not None:
        await ctx.db.delete(current)
        await ctx.db.flush()
    if e164 is not None:
        ctx.db.add(Number(e164=e164, organization_id=group.organization_id, role=NumberRole.group,
                          group_id=group.id))


async def _set_members(ctx: Ctx, group: AnswerGroup, user_ids: list[int]) -> None:
    wanted = await org_user_ids(ctx, group.organization_id, user_ids, ["body", "members"])
    for member in list(group.members):
        if member.user_id not in wanted:
            group.members.remove(member)
    have = {m.user_id for m in group.members}
    for uid in wanted:
        if uid not in have:
            group.members.append(GroupMember(user_id=uid, logged_in=True, changed_at=ctx.now))


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
    return GroupPage(items=[GroupOut(id=g.id, organization_id=g.organization_id, name=g.name, number=_number(g),
                                     members=members[g.id], version=g.version) for g in rows], next_cursor=cursor)


@api.route("POST", "/groups", summary="Create an answer group", tags="groups", auth="admin", body=GroupCreate,
           response=GroupOut, status=201, etag=True, errors=(409,))
async def create_group(ctx: Ctx):
    body: GroupCreate = ctx.body
    org_id = creation_org(ctx, body.organization_id)
    await _name_free(ctx, org_id, body.name)
    group = AnswerGroup(organization_id=org_id, name=body.name, members=[], numbers=[])
    await org_user_ids(ctx, org_id, body.members, ["body", "members"])
    ctx.db.add(group)
    await ctx.db.flush()
    await _set_members(ctx, group, body.members)
    await _set_number(ctx, group, body.number)
    await ctx.db.flush()
    group = await _load(ctx, group.id)
    out = await group_out(ctx, group)
    record(ctx.db, ctx.actor(), now=ctx.now, action="create", entity="group", entity_id=group.id,
           organization_id=org_id, after=out.model_dump(mode="json"))
    return Reply(out, etag=etag_of(group.version))


@api.route("GET", "/groups/{group_id}", summary="One answer group", tags="groups", auth="admin",
           response=GroupOut, etag=True)
async def get_group_route(ctx: Ctx):
    group = await get_group(ctx, ctx.path["group_id"])
    return Reply(await group_out(ctx, group), etag=etag_of(group.version))


@api.route("PATCH", "/groups/{group_id}", summary="Rename, renumber or change the members", tags="groups",
           auth="admin", body=GroupPatch, response=GroupOut, etag=True, if_match=True, errors=(409,))
async def update_group(ctx: Ctx):
    group = await get_group(ctx, ctx.path["group_id"])
    check_if_match(ctx, group.version)
    body: GroupPatch = ctx.body
    given = body.model_fields_set
    before = (await group_out(ctx, group)).model_dump(mode="json")
    if "name" in given:
        if body.name is None:
            raise field_problem(["body", "name"], "may not be null")
        await _name_free(ctx, group.organization_id, body.name, group.id)
        group.name = body.name
    if "members" in given:
        await _set_members(ctx, group, body.members or [])
    if "number" in given:
        await _set_number(ctx, group, body.number)
    await ctx.db.flush()
    group = await _load(ctx, group.id)
    after = (await group_out(ctx, group)).model_dump(mode="json")
    if after != before:
        group.updated_at = ctx.now
        await ctx.db.flush()
        group = await _load(ctx, group.id)
        record(ctx.db, ctx.actor(), now=ctx.now, action="update", entity="group", entity_id=group.id,
               organization_id=group.organization_id, before=before, after=after)
    return Reply(await group_out(ctx, group), etag=etag_of(group.version))


@api.route("DELETE", "/groups/{group_id}", summary="Delete an answer group", tags="groups", auth="admin",
           if_match=True)
async def delete_group(ctx: Ctx):
    group = await get_group(ctx, ctx.path["group_id"])
    check_if_match(ctx, group.version)
    before = (await group_out(ctx, group)).model_dump(mode="json")
    for number in group.numbers:
        await ctx.db.delete(number)
    await ctx.db.delete(group)
    record(ctx.db, ctx.actor(), now=ctx.now, action="delete", entity="group", entity_id=group.id,
           organization_id=group.organization_id, before=before)
    return None


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
