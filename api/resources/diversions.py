"""Diversions (hänvisning, U4/A3): set by the user or by an admin, ending by themselves."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import or_, select

from api.access import get_diversion, get_self, get_user
from api.framework import Ctx, Reply, api, check_if_match, etag_of
from api.pagination import Page, PageQuery, paginate
from api.problems import Problem, field_problem
from api.types import Instant, PhoneNumber, Text, Timestamp
from provisioning.audit import record
from provisioning.model import Diversion, DiversionReason, DiversionTarget, User


class DiversionIn(BaseModel):
    reason: DiversionReason
    target: DiversionTarget = Field(description="voicemail, a colleague's number, the switchboard, or a message")
    target_number: PhoneNumber | None = Field(None, description="the colleague (target=colleague)")
    message: Text(200, 1) | None = Field(None, description="what callers hear or see (target=message)")
    starts_at: Instant | None = Field(None, description="default: now")
    ends_at: Instant | None = Field(None, description="the diversion ends by itself then; null: until ended")



class DiversionOut(BaseModel):
    id: int
    user_id: int
    reason: DiversionReason
    target: DiversionTarget
    target_number: str | None
    message: str | None
    starts_at: Timestamp
    ends_at: Timestamp | None
    ended_at: Timestamp | None
    state: str = Field(description="scheduled | active | expired | ended, by the server's clock")
    active: bool
    set_by: str = Field(description="user (self-service) or admin")
    set_by_name: str
    version: int


class DiversionPage(Page[DiversionOut]):
    pass


class DiversionQuery(PageQuery):
    state: str = Field("current", pattern="^(current|all)$",
                       description="current: active and scheduled ones; all: including expired and ended")


def diversion_out(d: Diversion, now: datetime) -> DiversionOut:
    return DiversionOut(id=d.id, user_id=d.user_id, reason=d.reason, target=d.target, target_number=d.target_number,
                        message=d.message, starts_at=d.starts_at, ends_at=d.ends_at, ended_at=d.ended_at,
                        state=d.state(now), active=d.is_active(now), set_by=d.set_by, set_by_name=d.set_by_name,
                        version=d.version)


async def active_diversion_user_ids(ctx: Ctx, user_ids: list[int]) -> set[int]:
    if not user_ids:
        return set()
    rows = (await ctx.db.execute(select(Diversion).where(
        Diversion.user_id.in_(user_ids), Diversion.ended_at.is_(None), Diversion.starts_at <= ctx.now))).scalars()
    return {d.user_id for d in rows if d.is_active(ctx.now)}


async def _list(ctx: Ctx, user: User) -> DiversionPage:
    q: DiversionQuery = ctx.query
    stmt = select(Diversion).where(Diversion.user_id == user.id)
    if q.state == "current":
        stmt = stmt.where(Diversion.ended_at.is_(None), or_(Diversion.ends_at.is_(None), Diversion.ends_at > ctx.now))
    rows, cursor = await paginate(ctx.db, stmt, Diversion.id, q)
    return DiversionPage(items=[diversion_out(d, ctx.now) for d in rows], next_cursor=cursor)


async def _create(ctx: Ctx, user: User) -> Reply:
    if user.removed_at is not None:
        raise Problem(409, "the user has been removed")
    body: DiversionIn = ctx.body
    if body.target == DiversionTarget.colleague and not body.target_number:
        raise field_problem(["body", "target_number"], "a diversion to a colleague needs the colleague's number")
    if body.target != DiversionTarget.colleague and body.target_number:
        raise field_problem(["body", "target_number"], "only for target=colleague")
    if body.target == DiversionTarget.message and not body.message:
        raise field_problem(["body", "message"], "a diversion to a message needs the message")
    starts = body.starts_at or ctx.now
    if body.ends_at is not None and body.ends_at <= starts:
        raise field_problem(["body", "ends_at"], "must lie after the start")
    if body.ends_at is not None and body.ends_at <= ctx.now:
        raise field_problem(["body", "ends_at"], "must lie in the future")
    by_admin = not (ctx.me.kind == "user" and ctx.me.id == user.id)
    # A new diversion replaces whatever diversion is current from its start on.
    current = (await ctx.db.execute(select(Diversion).where(
        Diversion.user_id == user.id, Diversion.ended_at.is_(None),
        or_(Diversion.ends_at.is_(None), Diversion.ends_at > starts)))).scalars().all()
    for old in current:
        old.ended_at = max(starts, ctx.now) if old.is_active(ctx.now) else ctx.now
    diversion = Diversion(organization_id=user.organization_id, user_id=user.id, reason=body.reason,
                          target=body.target, target_number=body.target_number, message=body.message,
                          starts_at=starts, ends_at=body.ends_at, set_by="admin" if by_admin else "user",
                          set_by_name=ctx.me.name[:200])
    ctx.db.add(diversion)
    await ctx.db.flush()
    out = diversion_out(diversion, ctx.now)
    record(ctx.db, ctx.actor(), now=ctx.now, action="create", entity="diversion", entity_id=diversion.id,
           organization_id=user.organization_id, after=out.model_dump(mode="json"))
    return Reply(out, etag=etag_of(diversion.version))


@api.route("GET", "/users/{user_id}/diversions", summary="A user's diversions", tags="diversions",
           query=DiversionQuery, response=DiversionPage)
async def list_user_diversions(ctx: Ctx):
    return await _list(ctx, await get_user(ctx, ctx.path["user_id"], allow_self=True))


@api.route("POST", "/users/{user_id}/diversions", summary="Set a diversion on a user (A3)", tags="diversions",
           body=DiversionIn, response=DiversionOut, status=201, etag=True, errors=(409,))
async def create_user_diversion(ctx: Ctx):
    """An admin may set a diversion on any user of the organisation; a user on themselves."""
    return await _create(ctx, await get_user(ctx, ctx.path["user_id"], allow_self=True))


@api.route("GET", "/me/diversions", summary="My diversions", tags="self-service", query=DiversionQuery,
           response=DiversionPage)
async def list_my_diversions(ctx: Ctx):
    return await _list(ctx, await get_self(ctx))


@api.route("POST", "/me/diversions", summary="Activate a diversion with an end time (U4)", tags="self-service",
           body=DiversionIn, response=DiversionOut, status=201, etag=True, errors=(409,))
async def create_my_diversion(ctx: Ctx):
    return await _create(ctx, await get_self(ctx))


@api.route("GET", "/diversions/{diversion_id}", summary="One diversion", tags="diversions",
           response=DiversionOut, etag=True)
async def get_diversion_route(ctx: Ctx):
    d = await get_diversion(ctx, ctx.path["diversion_id"])
    return Reply(diversion_out(d, ctx.now), etag=etag_of(d.version))


@api.route("DELETE", "/diversions/{diversion_id}", summary="End a diversion now", tags="diversions",
           if_match=True)
async def end_diversion(ctx: Ctx):
    """Ends it (kept in the history); ending one that is over already changes nothing."""
    d = await get_diversion(ctx, ctx.path["diversion_id"])
    check_if_match(ctx, d.version)
    if d.state(ctx.now) in ("active", "scheduled"):
        before = diversion_out(d, ctx.now).model_dump(mode="json")
        d.ended_at = ctx.now
        await ctx.db.flush()
        record(ctx.db, ctx.actor(), now=ctx.now, action="end", entity="diversion", entity_id=d.id,
               organization_id=d.organization_id, before=before, after=diversion_out(d, ctx.now).model_dump(mode="json"))
    return None
