"""Authorisation: what a principal may see. Anything outside it is 404, never 403.

A super admin sees everything; an organisation admin their own organisation; a user only
themselves (and only through the self-service operations). A resource of another tenant gets
exactly the answer a missing one gets, so ids cannot be probed across tenants.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from api.framework import Ctx
from api.problems import Problem, field_problem, not_found
from provisioning.model import (
    AnswerGroup, Contact, Device, Diversion, Line, Organization, Phonebook, User,
)


def can_admin_org(ctx: Ctx, organization_id: int | None) -> bool:
    me = ctx.me
    return me.is_super or (me.is_org_admin and organization_id == me.organization_id)


def visible_org_ids(ctx: Ctx, requested: int | None) -> int | None:
    """For list operations: the organisation to restrict to (None: all, super admins only)."""
    me = ctx.me
    if me.is_super:
        return requested
    if requested is not None and requested != me.organization_id:
        raise not_found("organization")
    return me.organization_id


def creation_org(ctx: Ctx, requested: int | None) -> int:
    """The organisation a new resource goes into: the admin's own; a super admin must name one."""
    me = ctx.me
    if me.is_super:
        if requested is None:
            raise field_problem(["body", "organization_id"], "provider staff must name the organisation",
                                "missing")
        return requested
    if requested is not None and requested != me.organization_id:
        raise not_found("organization")
    return me.organization_id


async def get_org(ctx: Ctx, org_id: int, *, admin: bool = False) -> Organization:
    org = await ctx.db.get(Organization, org_id)
    me = ctx.me
    if org is None or not (me.is_super or org.id == me.organization_id):
        raise not_found("organization")
    if admin and not can_admin_org(ctx, org.id):
        raise Problem(403, "only the organisation's administrators may change it")
    return org


def _user_query(user_id: int):
    return select(User).where(User.id == user_id).options(
        selectinload(User.numbers), selectinload(User.lines).selectinload(Line.device))


async def get_user(ctx: Ctx, user_id: int, *, allow_self: bool = False, for_update: bool = False) -> User:
    """A user the caller administers (or the caller, with allow_self)."""
    user = (await ctx.db.execute(_user_query(user_id))).scalar_one_or_none()
    me = ctx.me
    if user is None:
        raise not_found("user")
    if can_admin_org(ctx, user.organization_id):
        return user
    if allow_self and me.kind == "user" and me.id == user.id:
        return user
    raise not_found("user")


async def get_self(ctx: Ctx) -> User:
    me = ctx.me
    if me.kind != "user":
        raise Problem(404, "provider staff have no self-service page; use /api/v1/auth/session")
    return await get_user(ctx, me.id, allow_self=True)


async def get_device(ctx: Ctx, device_id: int) -> Device:
    device = (await ctx.db.execute(
        select(Device).where(Device.id == device_id).options(
            selectinload(Device.lines).selectinload(Line.user), selectinload(Device.keys))
    )).scalar_one_or_none()
    if device is None or not can_admin_org(ctx, device.organization_id):
        raise not_found("device")
    return device


async def get_group(ctx: Ctx, group_id: int) -> AnswerGroup:
    group = (await ctx.db.execute(
        select(AnswerGroup).where(AnswerGroup.id == group_id).options(
            selectinload(AnswerGroup.members), selectinload(AnswerGroup.numbers))
    )).scalar_one_or_none()
    if group is None or not can_admin_org(ctx, group.organization_id):
        raise not_found("group")
    return group


async def get_phonebook(ctx: Ctx, phonebook_id: int) -> Phonebook:
    book = (await ctx.db.execute(
        select(Phonebook).where(Phonebook.id == phonebook_id).options(
            selectinload(Phonebook.members), selectinload(Phonebook.contacts))
    )).scalar_one_or_none()
    if book is None or not can_admin_org(ctx, book.organization_id):
        raise not_found("phonebook")
    return book


async def get_contact(ctx: Ctx, book: Phonebook, contact_id: int) -> Contact:
    contact = await ctx.db.get(Contact, contact_id)
    if contact is None or contact.phonebook_id != book.id:
        raise not_found("contact")
    return contact


async def get_diversion(ctx: Ctx, diversion_id: int) -> Diversion:
    diversion = await ctx.db.get(Diversion, diversion_id)
    if diversion is None:
        raise not_found("diversion")
    me = ctx.me
    if can_admin_org(ctx, diversion.organization_id) or (me.kind == "user" and me.id == diversion.user_id):
        return diversion
    raise not_found("diversion")


async def org_user_ids(ctx: Ctx, organization_id: int, user_ids: list[int], loc: list) -> list[int]:
    """Check that every id is an active user of the organisation (422 naming the first that is not)."""
    if not user_ids:
        return []
    found = set((await ctx.db.execute(
        select(User.id).where(User.id.in_(set(user_ids)), User.organization_id == organization_id,
                              User.removed_at.is_(None)))).scalars())
    for i, uid in enumerate(user_ids):
        if uid not in found:
            raise field_problem([*loc, i], f"no user {uid} in this organisation")
    return list(dict.fromkeys(user_ids))
