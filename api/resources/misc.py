"""Read-only views: the audit log, the number inventory and the feature-group mapping."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from api.access import visible_org_ids
from api.framework import Ctx, api
from api.pagination import Page, PageQuery, paginate
from api.types import Id, Text, Timestamp
from provisioning.features import FLAGS, GROUPS
from provisioning.model import AnswerGroup, AuditEntry, MobileProfile, Number, NumberRole, Organization, User


class AuditOut(BaseModel):
    id: int
    at: Timestamp
    actor_kind: str
    actor_id: int | None
    actor_name: str
    organization_id: int | None
    action: str
    entity: str
    entity_id: str | None
    before: Any = Field(None, description="the entity (or the changed fields) before; never secrets")
    after: Any = Field(None, description="the entity (or the changed fields) after; never secrets")


class AuditPage(Page[AuditOut]):
    pass


class AuditQuery(PageQuery):
    organization_id: Id | None = None
    entity: Text(32) | None = Field(None, description="user, device, group, diversion, ...")
    entity_id: Text(64) | None = None
    actor_id: Id | None = None


@api.route("GET", "/audit", summary="The audit log, newest first", tags="audit", auth="admin",
           query=AuditQuery, response=AuditPage)
async def list_audit(ctx: Ctx):
    """Every admin and self-service change: who, when, what, before and after. Organisation
    admins see their organisation's entries; provider staff all."""
    q: AuditQuery = ctx.query
    stmt = select(AuditEntry)
    org = visible_org_ids(ctx, q.organization_id)
    if org is not None:
        stmt = stmt.where(AuditEntry.organization_id == org)
    if q.entity:
        stmt = stmt.where(AuditEntry.entity == q.entity)
    if q.entity_id:
        stmt = stmt.where(AuditEntry.entity_id == q.entity_id)
    if q.actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == q.actor_id)
    rows, cursor = await paginate(ctx.db, stmt, AuditEntry.id, q, newest_first=True)
    return AuditPage(items=[AuditOut(
        id=e.id, at=e.at, actor_kind=e.actor_kind, actor_id=e.actor_id, actor_name=e.actor_name,
        organization_id=e.organization_id, action=e.action, entity=e.entity, entity_id=e.entity_id,
        before=json.loads(e.before) if e.before else None, after=json.loads(e.after) if e.after else None)
        for e in rows], next_cursor=cursor)


class NumberOwner(BaseModel):
    kind: str = Field(description="user | group | organization")
    id: int
    name: str


class NumberOut(BaseModel):
    e164: str
    role: NumberRole
    organization_id: int
    mobile_profile: MobileProfile | None
    owner: NumberOwner


class NumberPage(Page[NumberOut]):
    pass


class NumberQuery(PageQuery):
    organization_id: Id | None = None
    role: NumberRole | None = None
    q: Text(32) | None = Field(None, description="digits the number contains")


@api.route("GET", "/numbers", summary="The numbers and who owns each", tags="numbers", auth="admin",
           query=NumberQuery, response=NumberPage)
async def list_numbers(ctx: Ctx):
    """Every number belongs to exactly one user, group or organisation (its main number)."""
    q: NumberQuery = ctx.query
    stmt = select(Number)
    org = visible_org_ids(ctx, q.organization_id)
    if org is not None:
        stmt = stmt.where(Number.organization_id == org)
    if q.role is not None:
        stmt = stmt.where(Number.role == q.role)
    if q.q:
        digits = "".join(c for c in q.q if c.isdigit())
        if digits.startswith("0"):
            digits = digits.lstrip("0")
        stmt = stmt.where(Number.e164.contains(digits, autoescape=True))
    rows, cursor = await paginate(ctx.db, stmt, Number.id, q)
    users = {u.id: u.name for u in (await ctx.db.execute(select(User).where(
        User.id.in_({n.user_id for n in rows if n.user_id})))).scalars()} if rows else {}
    groups = {g.id: g.name for g in (await ctx.db.execute(select(AnswerGroup).where(
        AnswerGroup.id.in_({n.group_id for n in rows if n.group_id})))).scalars()} if rows else {}
    orgs = {o.id: o.name for o in (await ctx.db.execute(select(Organization).where(
        Organization.id.in_({n.organization_id for n in rows})))).scalars()} if rows else {}
    items = []
    for n in rows:
        if n.user_id is not None:
            owner = NumberOwner(kind="user", id=n.user_id, name=users.get(n.user_id, ""))
        elif n.group_id is not None:
            owner = NumberOwner(kind="group", id=n.group_id, name=groups.get(n.group_id, ""))
        else:
            owner = NumberOwner(kind="organization", id=n.organization_id, name=orgs.get(n.organization_id, ""))
        items.append(NumberOut(e164=n.e164, role=n.role, organization_id=n.organization_id,
                               mobile_profile=n.mobile_profile, owner=owner))
    return NumberPage(items=items, next_cursor=cursor)


class FeatureGroupOut(BaseModel):
    name: str
    family: str = Field(description="ex | legacy")
    sets: dict[str, bool]


class FeatureGroups(BaseModel):
    flags: dict[str, bool] = Field(description="every typed flag and its default")
    groups: list[FeatureGroupOut]


@api.route("GET", "/feature-groups", summary="The feature groups (EX- and legacy) and the flags they set",
           tags="users", response=FeatureGroups)
async def list_feature_groups(ctx: Ctx):
    return FeatureGroups(flags=dict(FLAGS), groups=[
        FeatureGroupOut(name=name, family="ex" if name.startswith("EX-") else "legacy", sets=sets)
        for name, sets in GROUPS.items()])
