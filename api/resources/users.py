"""Users (A1-A7): fields, numbers, feature flags, admin rights, deactivation, picture, outbox."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from aiohttp import web
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import delete, exists, or_, select
from sqlalchemy.orm import selectinload

from api.access import creation_org, get_user, visible_org_ids
from api.framework import Ctx, Reply, api, check_if_match, etag_of
from api.pagination import Page, PageQuery, paginate
from api.problems import Problem, field_problem
from api.types import Day, Email, Id, Name, Password, PhoneNumber, Text, Timestamp
from provisioning.accounts import normalize_username
from provisioning.audit import record
from provisioning.features import FLAGS, groups_from_flags
from provisioning.lifecycle import remove_user, removal_due
from provisioning.model import (
    CallerId, Line, MobileProfile, Number, NumberRole, Organization, OutboxMessage, User,
)
from provisioning.numbers import NumberError, to_e164
from provisioning.outbox import OutboundMessage, compose, new_enrolment_code
from provisioning.passwords import WeakPassword, check_policy, hash_password, secret_digest
from provisioning.pictures import PictureError, check_and_thumbnail

USERNAME = r"^[A-Za-z0-9._@+-]{1,64}$"
PICTURE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


class Features(BaseModel):
    """Typed feature flags (A8); see GET /api/v1/feature-groups for the group names behind them."""

    voicemail: bool = FLAGS["voicemail"]
    voicemail_operator_option: bool = False
    call_waiting_fixed: bool = False
    call_waiting_mobile: bool = False
    diversion_affects_mobile: bool = False
    forwarding_affects_mobile: bool = False
    show_mobile_outside_hours: bool = False


class FeaturesPatch(BaseModel):
    voicemail: bool | None = None
    voicemail_operator_option: bool | None = None
    call_waiting_fixed: bool | None = None
    call_waiting_mobile: bool | None = None
    diversion_affects_mobile: bool | None = None
    forwarding_affects_mobile: bool | None = None
    show_mobile_outside_hours: bool | None = None


class MobileIn(BaseModel):
    number: PhoneNumber
    profile: MobileProfile = Field(MobileProfile.non_mex, description="mex: integrated with the PBX "
                                   "(then also the user's secondary number); non_mex: another operator")


class MobileOut(BaseModel):
    number: str
    profile: MobileProfile


class UserPhone(BaseModel):
    device_id: int
    mac: str
    model: str | None
    line: int


class PictureLinks(BaseModel):
    url: str
    thumbnail_url: str


class UserOut(BaseModel):
    id: int
    organization_id: int
    name: str
    email: str | None
    username: str | None = Field(description="custom username; null: the primary number is the username")
    login: str | None = Field(description="what the user logs in with (username or primary number)")
    primary_number: str | None
    secondary_number: str | None = Field(description="the Mex mobile number, if any")
    mobile_numbers: list[MobileOut]
    extension: str | None
    keywords: list[str]
    deactivation_date: date | None
    removed_at: Timestamp | None
    admin: bool
    softphone_licence: bool
    caller_id: CallerId
    features: Features
    feature_groups: list[str] = Field(description="the EX groups the flags correspond to (read-only)")
    has_password: bool
    picture: PictureLinks | None
    phones: list[UserPhone]
    version: int
    created_at: Timestamp
    updated_at: Timestamp


class UserPage(Page[UserOut]):
    pass


class _UserFields(BaseModel):
    email: Email | None = None
    username: Text(64, 1, USERNAME) | None = None
    password: Password | None = Field(None, description="the web password (write-only; stored hashed)")
    extension: Text(16, 2, r"^[0-9]{2,8}$") | None = None
    mobile_numbers: list[MobileIn] | None = Field(None, max_length=5)
    keywords: list[Text(64, 1)] | None = Field(None, max_length=20)
    deactivation_date: Day | None = None
    softphone_licence: bool | None = None
    caller_id: CallerId | None = None
    features: FeaturesPatch | None = None

    @field_validator("mobile_numbers")
    @classmethod
    def _one_mex(cls, value):
        if value and sum(m.profile == MobileProfile.mex for m in value) > 1:
            raise ValueError("at most one mobile number can be Mex (it becomes the secondary number)")
        if value and len({m.number for m in value}) != len(value):
            raise ValueError("a mobile number is listed twice")
        return value


class UserCreate(_UserFields):
    organization_id: Id | None = Field(None, description="required for provider staff; admins: their own")
    name: Name
    primary_number: PhoneNumber | None = None
    admin: bool = False


class UserPatch(_UserFields):
    name: Name | None = None
    primary_number: PhoneNumber | None = None
    admin: bool | None = None


class UserQuery(PageQuery):
    organization_id: Id | None = None
    q: Text(100) | None = Field(None, description="search: name, username, e-mail, keyword or a number in "
                                                 "any common spelling")
    name: Text(100) | None = Field(None, description="part of the name (case-insensitive)")
    number: Text(32) | None = Field(None, description="a number of the user, any common spelling")
    keyword: Text(64) | None = Field(None, description="one of the user's search keywords")
    admin: bool | None = None
    state: str = Field("active", pattern="^(active|removed|all)$", description="active | removed | all")


class InstallationIn(BaseModel):
    channel: str = Field(pattern="^(sms|email)$", description="sms: mobile app (to the mobile number); "
                                                             "email: softphone (to the e-mail address)")


class InstallationOut(BaseModel):
    id: int
    user_id: int | None
    channel: str
    recipient: str
    subject: str
    body: str
    status: str
    created_at: Timestamp
    sent_at: Timestamp | None
    code_expires_at: Timestamp


class InstallationPage(Page[InstallationOut]):
    pass


class InstallationQuery(PageQuery):
    organization_id: Id | None = None
    user_id: Id | None = None


# ---------------------------------------------------------------------------------------------


def primary_of(user: User) -> str | None:
    return next((n.e164 for n in user.numbers if n.role == NumberRole.primary), None)


def user_out(user: User) -> UserOut:
    primary = primary_of(user)
    mobiles = sorted((n for n in user.numbers if n.role == NumberRole.mobile), key=lambda n: n.id or 0)
    flags = {name: getattr(user, name) for name in FLAGS}
    picture = None
    if user.picture_sha256:
        url = f"/api/v1/users/{user.id}/picture"
        picture = PictureLinks(url=f"{url}?v={user.picture_sha256[:12]}",
                               thumbnail_url=f"{url}?size=thumbnail&v={user.picture_sha256[:12]}")
    return UserOut(
        id=user.id, organization_id=user.organization_id, name=user.name, email=user.email, username=user.username,
        login=user.username or primary, primary_number=primary,
        secondary_number=next((n.e164 for n in mobiles if n.mobile_profile == MobileProfile.mex), None),
        mobile_numbers=[MobileOut(number=n.e164, profile=n.mobile_profile or MobileProfile.non_mex) for n in mobiles],
        extension=user.extension, keywords=list(user.keywords or []), deactivation_date=user.deactivation_date,
        removed_at=user.removed_at, admin=user.is_admin, softphone_licence=user.softphone_licence,
        caller_id=user.caller_id, features=Features(**flags), feature_groups=groups_from_flags(flags),
        has_password=user.password_hash is not None, picture=picture,
        phones=[UserPhone(device_id=line.device_id, mac=line.device.mac, model=line.device.model, line=line.index)
                for line in sorted(user.lines, key=lambda l: (l.device_id, l.index))],
        version=user.version, created_at=user.created_at, updated_at=user.updated_at)


async def reload_user(ctx: Ctx, user_id: int) -> User:
    return (await ctx.db.execute(select(User).where(User.id == user_id).options(
        selectinload(User.numbers), selectinload(User.lines).selectinload(Line.device))
        .execution_options(populate_existing=True))).scalar_one()


def _conflict(loc: list, msg: str) -> Problem:
    return Problem(409, f"{'.'.join(map(str, loc))}: {msg}", errors=[{"loc": loc, "msg": msg, "type": "conflict"}])


async def _set_numbers(ctx: Ctx, user: User, primary: str | None, primary_given: bool,
                       mobiles: list[MobileIn] | None) -> bool:
    """Make the user's numbers what was asked; returns whether anything changed."""
    current = {n.e164: n for n in user.numbers}
    wanted: dict[str, tuple[NumberRole, MobileProfile | None, list]] = {}
    keep_primary = primary if primary_given else primary_of(user)
    if keep_primary:
        wanted[keep_primary] = (NumberRole.primary, None, ["body", "primary_number"])
    if mobiles is None:
        for n in user.numbers:
            if n.role == NumberRole.mobile and n.e164 not in wanted:
                wanted[n.e164] = (NumberRole.mobile, n.mobile_profile, ["body", "mobile_numbers"])
    else:
        for i, m in enumerate(mobiles):
            if m.number in wanted:
                raise field_problem(["body", "mobile_numbers", i, "number"], "is also the primary number")
            wanted[m.number] = (NumberRole.mobile, m.profile, ["body", "mobile_numbers", i, "number"])
    new = [e for e in wanted if e not in current]
    if new:
        taken = {n.e164 for n in (await ctx.db.execute(select(Number).where(Number.e164.in_(new)))).scalars()}
        for e164 in new:
            if e164 in taken:
                raise _conflict(wanted[e164][2], f"number {e164} is already assigned")
    changed = False
    for e164, number in current.items():
        if e164 not in wanted:
            await ctx.db.delete(number)
            changed = True
    await ctx.db.flush()
    for e164, (role, profile, _) in wanted.items():
        number = current.get(e164)
        if number is None:
            ctx.db.add(Number(e164=e164, organization_id=user.organization_id, role=role, user_id=user.id,
                              mobile_profile=profile))
            changed = True
        elif number.role != role or number.mobile_profile != profile:
            number.role, number.mobile_profile = role, profile
            changed = True
    return changed


async def _check_unique(ctx: Ctx, user_id: int | None, org_id: int, username: str | None,
                        extension: str | None) -> None:
    if username:
        other = (await ctx.db.execute(select(User.id).where(User.username == username))).scalar_one_or_none()
        if other is not None and other != user_id:
            raise _conflict(["body", "username"], "this username is taken")
    if extension:
        other = (await ctx.db.execute(select(User.id).where(
            User.organization_id == org_id, User.extension == extension))).scalar_one_or_none()
        if other is not None and other != user_id:
            raise _conflict(["body", "extension"], f"extension {extension} is taken in this organisation")


async def _apply(ctx: Ctx, user: User, body: _UserFields, given: set[str]) -> None:
    """The fields both create and patch set."""
    if "username" in given:
        user.username = normalize_username(body.username) if body.username else None
    if "extension" in given:
        user.extension = body.extension
    await _check_unique(ctx, user.id, user.organization_id, user.username if "username" in given else None,
                        body.extension if "extension" in given else None)
    for name in ("name", "email", "softphone_licence", "caller_id", "deactivation_date"):
        if name in given:
            value = getattr(body, name)
            if value is None and name in ("name", "softphone_licence", "caller_id"):
                raise field_problem(["body", name], "may not be null")
            setattr(user, name, value)
    if "admin" in given:
        if body.admin is None:
            raise field_problem(["body", "admin"], "may not be null")
        user.is_admin = body.admin
    if "keywords" in given:
        user.keywords = list(dict.fromkeys(body.keywords or []))
    if "features" in given and body.features is not None:
        for name in body.features.model_fields_set:
            value = getattr(body.features, name)
            if value is not None:
                setattr(user, name, value)
    if "password" in given and body.password is not None:
        try:
            check_policy(body.password)
        except WeakPassword as exc:
            raise field_problem(["body", "password"], str(exc)) from None
        user.password_hash = await asyncio.to_thread(hash_password, body.password)
    user.refresh_search_text()


def _check_caller_id(user: User, loc: list) -> None:
    if user.caller_id == CallerId.mobile and not any(n.role == NumberRole.mobile for n in user.numbers):
        raise field_problem(loc, "the user has no mobile number to show")
    if user.caller_id == CallerId.fixed and not any(n.role == NumberRole.primary for n in user.numbers):
        raise field_problem(loc, "the user has no fixed number to show")


async def _maybe_remove_now(ctx: Ctx, user: User) -> None:
    """A deactivation date that has already come removes the user at once."""
    if user.deactivation_date is None or user.removed_at is not None:
        return
    zone = (await ctx.db.execute(select(Organization.timezone).where(
        Organization.id == user.organization_id))).scalar_one()
    if removal_due(user.deactivation_date, zone, ctx.now):
        await remove_user(ctx.db, user, ctx.now, ctx.actor())


# ---------------------------------------------------------------------------------------------


@api.route("GET", "/users", summary="List and search users", tags="users", auth="admin", query=UserQuery,
           response=UserPage)
async def list_users(ctx: Ctx):
    """Search by name, number (any common spelling, e.g. ``08-546 899 01``), keyword or free text."""
    q: UserQuery = ctx.query
    stmt = select(User).options(selectinload(User.numbers), selectinload(User.lines).selectinload(Line.device))
    org = visible_org_ids(ctx, q.organization_id)
    if org is not None:
        stmt = stmt.where(User.organization_id == org)
    if q.state == "active":
        stmt = stmt.where(User.removed_at.is_(None))
    elif q.state == "removed":
        stmt = stmt.where(User.removed_at.is_not(None))
    if q.admin is not None:
        stmt = stmt.where(User.is_admin == q.admin)
    if q.name:
        stmt = stmt.where(User.search_text.contains(q.name.casefold(), autoescape=True))
    if q.keyword:
        stmt = stmt.where(User.search_text.contains("kw:" + q.keyword.casefold(), autoescape=True))
    if q.number:
        try:
            e164 = to_e164(q.number)
        except NumberError as exc:
            raise field_problem(["query", "number"], str(exc)) from None
        stmt = stmt.where(exists().where(Number.user_id == User.id, Number.e164 == e164))
    if q.q:
        text_match = User.search_text.contains(q.q.casefold(), autoescape=True)
        try:
            e164 = to_e164(q.q)
            stmt = stmt.where(or_(text_match, exists().where(Number.user_id == User.id, Number.e164 == e164)))
        except NumberError:
            stmt = stmt.where(text_match)
    rows, cursor = await paginate(ctx.db, stmt, User.id, q)
    return UserPage(items=[user_out(u) for u in rows], next_cursor=cursor)


@api.route("POST", "/users", summary="Create a user", tags="users", auth="admin", body=UserCreate,
           response=UserOut, status=201, etag=True, errors=(409,))
async def create_user(ctx: Ctx):
    body: UserCreate = ctx.body
    org_id = creation_org(ctx, body.organization_id)
    if await ctx.db.get(Organization, org_id) is None:
        raise field_problem(["body", "organization_id"], "no such organisation")
    user = User(organization_id=org_id, name=body.name, keywords=[])
    given = body.model_fields_set | {"name", "admin"}
    await _check_unique(ctx, None, org_id, normalize_username(body.username) if body.username else None,
                        body.extension)
    ctx.db.add(user)
    await ctx.db.flush()
    await _apply(ctx, user, body, given)
    user = await _fresh(ctx, user)
    await _set_numbers(ctx, user, body.primary_number, True, body.mobile_numbers or [])
    await ctx.db.flush()
    user = await reload_user(ctx, user.id)
    if "caller_id" in body.model_fields_set:
        _check_caller_id(user, ["body", "caller_id"])
    elif user.caller_id == CallerId.fixed and body.primary_number is None:
        user.caller_id = CallerId.main
    await _maybe_remove_now(ctx, user)
    await ctx.db.flush()
    user = await reload_user(ctx, user.id)
    out = user_out(user)
    record(ctx.db, ctx.actor(), now=ctx.now, action="create", entity="user", entity_id=user.id,
           organization_id=org_id, after=out.model_dump(mode="json"))
    return Reply(out, etag=etag_of(user.version))


async def _fresh(ctx: Ctx, user: User) -> User:
    await ctx.db.refresh(user, ["numbers", "lines"])
    return user


@api.route("GET", "/users/{user_id}", summary="One user", tags="users", response=UserOut, etag=True)
async def get_user_route(ctx: Ctx):
    """Admins: users of their organisation; a user: only themselves."""
    user = await get_user(ctx, ctx.path["user_id"], allow_self=True)
    return Reply(user_out(user), etag=etag_of(user.version))


async def patch_user(ctx: Ctx, user: User, body: UserPatch, given: set[str]) -> Reply:
    check_if_match(ctx, user.version)
    before = user_out(user).model_dump(mode="json")
    await _apply(ctx, user, body, given)
    numbers_changed = False
    if "primary_number" in given or "mobile_numbers" in given:
        if "mobile_numbers" in given and body.mobile_numbers is None:
            body.mobile_numbers = []
        numbers_changed = await _set_numbers(ctx, user, body.primary_number, "primary_number" in given,
                                             body.mobile_numbers if "mobile_numbers" in given else None)
    await ctx.db.flush()
    user = await reload_user(ctx, user.id)
    if "caller_id" in given or numbers_changed:
        _check_caller_id(user, ["body", "caller_id" if "caller_id" in given else "mobile_numbers"])
    if "deactivation_date" in given:
        await _maybe_remove_now(ctx, user)
    after = user_out(user).model_dump(mode="json")
    if after != before or "password" in given:
        if numbers_changed or "password" in given:
            user.updated_at = ctx.now  # bumps the version even when only numbers changed
        await ctx.db.flush()
        user = await reload_user(ctx, user.id)
        after = user_out(user).model_dump(mode="json")
        changed = {k for k in after if after[k] != before.get(k)} - {"version", "updated_at"}
        record(ctx.db, ctx.actor(), now=ctx.now, action="update", entity="user", entity_id=user.id,
               organization_id=user.organization_id, before={k: before[k] for k in changed},
               after={k: after[k] for k in changed} | ({"password": "(changed)"} if "password" in given else {}))
    return Reply(user_out(user), etag=etag_of(user.version))


@api.route("PATCH", "/users/{user_id}", summary="Change a user", tags="users", auth="admin", body=UserPatch,
           response=UserOut, etag=True, if_match=True, errors=(409,))
async def update_user(ctx: Ctx):
    """Only the fields given change; ``null`` clears an optional field. A deactivation date that
    has already come removes the user at once."""
    user = await get_user(ctx, ctx.path["user_id"])
    if user.removed_at is not None:
        raise Problem(409, "the user has been removed (deactivated); it can only be deleted")
    return await patch_user(ctx, user, ctx.body, ctx.body.model_fields_set)


@api.route("DELETE", "/users/{user_id}", summary="Delete a user for good", tags="users", auth="admin",
           if_match=True)
async def delete_user(ctx: Ctx):
    """Deletes the user, their numbers and phone bindings; the audit history stays. To remove a
    user but keep their record, set a deactivation date instead."""
    user = await get_user(ctx, ctx.path["user_id"])
    check_if_match(ctx, user.version)
    if ctx.me.kind == "user" and ctx.me.id == user.id:
        raise Problem(409, "you cannot delete yourself")
    before = user_out(user).model_dump(mode="json")
    for line in user.lines:
        await ctx.db.delete(line)
    for number in user.numbers:
        await ctx.db.delete(number)
    await ctx.db.flush()
    await ctx.db.execute(delete(User).where(User.id == user.id))
    ctx.server.pictures.remove_others(user.id, None)
    record(ctx.db, ctx.actor(), now=ctx.now, action="delete", entity="user", entity_id=user.id,
           organization_id=user.organization_id, before=before)
    return None


# -- picture (U6) -------------------------------------------------------------------------------


async def put_picture(ctx: Ctx, user: User) -> Reply:
    check_if_match(ctx, user.version)
    media = ctx.request.content_type
    if media not in PICTURE_TYPES:
        raise Problem(415, f"send the picture as one of {', '.join(PICTURE_TYPES)}")
    limit = ctx.server.settings.max_picture_bytes
    if ctx.request.content_length is not None and ctx.request.content_length > limit:
        raise Problem(413, f"the picture is larger than {limit} bytes")
    data = await ctx.request.content.read(limit + 1)
    try:
        actual, thumb = await asyncio.to_thread(check_and_thumbnail, data, limit)
    except PictureError as exc:
        raise Problem(exc.status, str(exc)) from None
    sha = await asyncio.to_thread(ctx.server.pictures.save, user.id, data, actual, thumb)
    before = {"picture_sha256": user.picture_sha256}
    user.picture_sha256, user.picture_type = sha, actual
    await ctx.db.flush()
    record(ctx.db, ctx.actor(), now=ctx.now, action="update", entity="user_picture", entity_id=user.id,
           organization_id=user.organization_id, before=before,
           after={"picture_sha256": sha, "type": actual, "bytes": len(data)})
    await ctx.db.commit()
    await asyncio.to_thread(ctx.server.pictures.remove_others, user.id, sha)
    user = await reload_user(ctx, user.id)
    return Reply(user_out(user), etag=etag_of(user.version))


class PictureQuery(BaseModel):
    size: str = Field("original", pattern="^(original|thumbnail)$", description="original | thumbnail (128 px PNG)")
    v: Text(64) | None = Field(None, description="cache buster; ignored")


async def get_picture(ctx: Ctx, user: User) -> web.StreamResponse:
    if not user.picture_sha256:
        raise Problem(404, "the user has no picture")
    thumbnail = ctx.query.size == "thumbnail"
    path = ctx.server.pictures.path(user.id, user.picture_sha256, user.picture_type, thumbnail=thumbnail)
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise Problem(404, "the picture file is missing") from None
    etag = f'"{user.picture_sha256[:32]}{"t" if thumbnail else ""}"'
    if ctx.request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(body=data, content_type="image/png" if thumbnail else user.picture_type,
                        headers={"ETag": etag, "Cache-Control": "private, max-age=86400"})


async def delete_picture(ctx: Ctx, user: User) -> None:
    check_if_match(ctx, user.version)
    if user.picture_sha256:
        record(ctx.db, ctx.actor(), now=ctx.now, action="delete", entity="user_picture", entity_id=user.id,
               organization_id=user.organization_id, before={"picture_sha256": user.picture_sha256})
        user.picture_sha256 = user.picture_type = None
        await ctx.db.commit()
        await asyncio.to_thread(ctx.server.pictures.remove_others, user.id, None)


_PICTURE_MEDIA = dict(body_media=PICTURE_TYPES, response=UserOut, etag=True, if_match=True, errors=(413, 415))


@api.route("PUT", "/users/{user_id}/picture", summary="Upload a user's profile picture", tags="users",
           auth="admin", **_PICTURE_MEDIA)
async def put_user_picture(ctx: Ctx):
    """PNG, JPEG, GIF or WebP that really decodes, up to ``max_picture_bytes`` (413) and 25
    megapixels; anything else is 415. A 128-pixel PNG thumbnail is made at once."""
    return await put_picture(ctx, await get_user(ctx, ctx.path["user_id"]))


@api.route("GET", "/users/{user_id}/picture", summary="A user's profile picture", tags="users",
           query=PictureQuery, response_media=("image/png", "image/jpeg", "image/gif", "image/webp"))
async def get_user_picture(ctx: Ctx):
    return await get_picture(ctx, await get_user(ctx, ctx.path["user_id"], allow_self=True))


@api.route("DELETE", "/users/{user_id}/picture", summary="Remove a user's profile picture", tags="users",
           auth="admin", if_match=True)
async def delete_user_picture(ctx: Ctx):
    await delete_picture(ctx, await get_user(ctx, ctx.path["user_id"]))


# -- installation outbox (U7) --------------------------------------------------------------------


def installation_out(m: OutboxMessage) -> InstallationOut:
    return InstallationOut(id=m.id, user_id=m.user_id, channel=m.channel, recipient=m.recipient, subject=m.subject,
                           body=m.body, status=m.status, created_at=m.created_at, sent_at=m.sent_at,
                           code_expires_at=m.code_expires_at)


@api.route("POST", "/users/{user_id}/installation-messages", tags="users", auth="admin", body=InstallationIn,
           summary="Send the installation SMS (mobile app) or e-mail (softphone)", response=InstallationOut,
           status=201, errors=(409,))
async def send_installation(ctx: Ctx):
    """U7: creates a message with a one-time enrolment link and code (valid 7 days) in the
    outbox. The code is only in the message; deskprov keeps its hash."""
    user = await get_user(ctx, ctx.path["user_id"])
    if user.removed_at is not None:
        raise Problem(409, "the user has been removed")
    channel = ctx.body.channel
    if channel == "sms":
        mobiles = [n for n in user.numbers if n.role == NumberRole.mobile]
        mobiles.sort(key=lambda n: n.mobile_profile != MobileProfile.mex)
        if not mobiles:
            raise field_problem(["body", "channel"], "the user has no mobile number to send an SMS to")
        recipient = mobiles[0].e164
    else:
        if not user.email:
            raise field_problem(["body", "channel"], "the user has no e-mail address")
        recipient = user.email
    org = await ctx.db.get(Organization, user.organization_id)
    code = new_enrolment_code()
    link = f"{ctx.server.settings.provisioning_url}enrol/{code}"
    subject, text = compose(channel, user.name, org.name, link, code)
    message = OutboxMessage(organization_id=user.organization_id, user_id=user.id, channel=channel,
                            recipient=recipient, subject=subject, body=text, code_hash=secret_digest(code),
                            code_expires_at=ctx.now + timedelta(days=7), created_at=ctx.now,
                            created_by=ctx.me.name[:200])
    ctx.db.add(message)
    await ctx.db.flush()
    record(ctx.db, ctx.actor(), now=ctx.now, action="send", entity="installation_message", entity_id=message.id,
           organization_id=user.organization_id,
           after={"user_id": user.id, "channel": channel, "recipient": recipient})
    await ctx.db.commit()
    try:
        await ctx.server.outbox.deliver(OutboundMessage(message.id, channel, recipient, subject, text, ctx.now))
        message.status, message.sent_at = "sent", ctx.now
    except Exception as exc:  # a failing gateway is recorded on the message, not a 500
        message.status, message.error = "failed", f"{type(exc).__name__}: {exc}"[:500]
    await ctx.db.commit()
    return installation_out(message)


@api.route("GET", "/installation-messages", summary="Installation messages sent", tags="users", auth="admin",
           query=InstallationQuery, response=InstallationPage)
async def list_installations(ctx: Ctx):
    q: InstallationQuery = ctx.query
    stmt = select(OutboxMessage)
    org = visible_org_ids(ctx, q.organization_id)
    if org is not None:
        stmt = stmt.where(OutboxMessage.organization_id == org)
    if q.user_id is not None:
        stmt = stmt.where(OutboxMessage.user_id == q.user_id)
    rows, cursor = await paginate(ctx.db, stmt, OutboxMessage.id, q)
    return InstallationPage(items=[installation_out(m) for m in rows], next_cursor=cursor)
