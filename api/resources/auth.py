"""Logging in and out, the current principal, password change, API tokens (U1, U2)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import delete, select

from api.framework import Ctx, api
from api.principals import COOKIE, TOKEN_PREFIX, Principal, principal_for
from api.problems import Problem, field_problem, not_found
from api.throttle import LoginThrottle
from api.types import Instant, Password, Text, Timestamp
from provisioning.accounts import find_user_by_login, normalize_username
from provisioning.audit import record
from provisioning.model import ApiToken, LoginSession, SuperAdmin, User
from provisioning.numbers import NumberError, to_e164
from provisioning.passwords import (
    WeakPassword, check_policy, hash_password, needs_rehash, new_secret, secret_digest, verify_password,
)

THROTTLE = web.AppKey("login_throttle", LoginThrottle)


class LoginIn(BaseModel):
    login: Text(64, 1) = Field(description="fixed number in +46 format (any common spelling) or username")
    password: Password
    remember: bool = Field(False, description='"keep me logged in": a long-lived cookie')
    realm: Literal["user", "staff"] = Field("user", description="staff: provider super admins")


class PrincipalOut(BaseModel):
    kind: Literal["user", "super_admin"]
    id: int
    name: str
    organization_id: int | None
    admin: bool = Field(description="organisation admin (always true for super admins)")
    via: Literal["session", "token"]


class SessionOut(BaseModel):
    principal: PrincipalOut
    persistent: bool
    expires_at: Timestamp


class PasswordChangeIn(BaseModel):
    current_password: Password
    new_password: Password


class TokenIn(BaseModel):
    name: Text(100, 1)
    expires_at: Instant | None = None


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: Timestamp
    expires_at: Timestamp | None
    last_used_at: Timestamp | None


class TokenCreated(TokenOut):
    token: str = Field(description="the secret; shown only in this response")


class TokenPage(BaseModel):
    items: list[TokenOut]


def principal_out(p: Principal) -> PrincipalOut:
    return PrincipalOut(kind=p.kind, id=p.id, name=p.name, organization_id=p.organization_id,
                        admin=p.is_super or p.is_admin, via=p.via)


def _account_key(login: str, realm: str) -> str:
    try:
        return f"{realm}:{to_e164(login)}"
    except NumberError:
        return f"{realm}:{normalize_username(login)}"


def client_address(request: web.Request) -> str:
    return request.remote or "unknown"


@api.route("POST", "/auth/login", summary="Log in with number or username and password", tags="auth",
           auth="public", body=LoginIn, response=SessionOut, errors=(401, 429))
async def login(ctx: Ctx):
    """Sets an HttpOnly, SameSite=Lax session cookie. With ``remember`` the cookie lives
    ``remember_days``; otherwise it is a browser-session cookie and the server ends the session
    after ``session_hours``. Failed logins are throttled per account and per address (429)."""
    body: LoginIn = ctx.body
    throttle = ctx.request.app[THROTTLE]
    address = client_address(ctx.request)
    account = _account_key(body.login, body.realm)
    wait = throttle.retry_after(account, address)
    if wait is not None:
        raise Problem(429, "too many failed logins; try again later", headers={"Retry-After": str(wait)})
    if body.realm == "staff":
        owner = (await ctx.db.execute(select(SuperAdmin).where(
            SuperAdmin.username == normalize_username(body.login)))).scalar_one_or_none()
    else:
        owner = await find_user_by_login(ctx.db, body.login)
        if owner is not None and owner.removed_at is not None:
            owner = None
    stored = owner.password_hash if owner is not None else None
    ok = await asyncio.to_thread(verify_password, stored, body.password)
    if not ok:
        throttle.failed(account, address)
        raise Problem(401, "wrong number, username or password")
    throttle.succeeded(account)
    if needs_rehash(stored):
        owner.password_hash = await asyncio.to_thread(hash_password, body.password)
    settings = ctx.server.settings
    lifetime = timedelta(days=settings.remember_days) if body.remember else timedelta(hours=settings.session_hours)
    secret = new_secret()
    row = LoginSession(token_hash=secret_digest(secret), persistent=body.remember, created_at=ctx.now,
                       expires_at=ctx.now + lifetime, client_ip=address[:45],
                       **({"super_admin_id": owner.id} if isinstance(owner, SuperAdmin) else {"user_id": owner.id}))
    ctx.db.add(row)
    await ctx.db.flush()
    principal = principal_for(owner, "session", row.id)
    record(ctx.db, principal.actor(), now=ctx.now, action="login", entity=principal.kind, entity_id=owner.id,
           organization_id=principal.organization_id, after={"persistent": body.remember, "address": address})
    out = SessionOut(principal=principal_out(principal), persistent=body.remember, expires_at=row.expires_at)
    response = web.Response(status=200, body=out.model_dump_json().encode(), content_type="application/json")
    response.set_cookie(COOKIE, secret, httponly=True, samesite="Lax", path="/", secure=settings.cookie_secure,
                        max_age=int(lifetime.total_seconds()) if body.remember else None)
    return response


@api.route("POST", "/auth/logout", summary="Log out (end this session)", tags="auth")
async def logout(ctx: Ctx):
    """Ends the cookie session and clears the cookie. A token stays valid (revoke it instead)."""
    me = ctx.me
    if me.via == "session":
        await ctx.db.execute(delete(LoginSession).where(LoginSession.id == me.credential_id))
        record(ctx.db, me.actor(), now=ctx.now, action="logout", entity=me.kind, entity_id=me.id,
               organization_id=me.organization_id)
    await ctx.db.commit()
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/")
    return response


@api.route("GET", "/auth/session", summary="Who am I", tags="auth", response=PrincipalOut)
async def whoami(ctx: Ctx):
    return principal_out(ctx.me)


@api.route("POST", "/auth/password", summary="Change my password (current and new)", tags="auth",
           body=PasswordChangeIn, errors=(403,))
async def change_password(ctx: Ctx):
    """U2. The current password must be right (403 otherwise); every other session of the
    account ends, this one stays."""
    me = ctx.me
    body: PasswordChangeIn = ctx.body
    owner = await ctx.db.get(SuperAdmin if me.is_super else User, me.id)
    if not await asyncio.to_thread(verify_password, owner.password_hash, body.current_password):
        raise Problem(403, "the current password is wrong")
    try:
        check_policy(body.new_password)
    except WeakPassword as exc:
        raise field_problem(["body", "new_password"], str(exc)) from None
    owner.password_hash = await asyncio.to_thread(hash_password, body.new_password)
    column = LoginSession.super_admin_id if me.is_super else LoginSession.user_id
    keep = me.credential_id if me.via == "session" else -1
    await ctx.db.execute(delete(LoginSession).where(column == me.id, LoginSession.id != keep))
    record(ctx.db, me.actor(), now=ctx.now, action="password_change", entity=me.kind, entity_id=me.id,
           organization_id=me.organization_id)
    return None


def _token_owner(me: Principal):
    return (ApiToken.super_admin_id == me.id) if me.is_super else (ApiToken.user_id == me.id)


def _token_out(t: ApiToken) -> TokenOut:
    return TokenOut(id=t.id, name=t.name, prefix=t.prefix, created_at=t.created_at, expires_at=t.expires_at,
                    last_used_at=t.last_used_at)


@api.route("GET", "/tokens", summary="My API tokens", tags="auth", response=TokenPage)
async def list_tokens(ctx: Ctx):
    rows = (await ctx.db.execute(select(ApiToken).where(_token_owner(ctx.me)).order_by(ApiToken.id))).scalars()
    return TokenPage(items=[_token_out(t) for t in rows])


@api.route("POST", "/tokens", summary="Create an API token (shown once)", tags="auth", body=TokenIn,
           response=TokenCreated, status=201)
async def create_token(ctx: Ctx):
    """For integrations: send it as ``Authorization: Bearer <token>``. It acts as its creator
    and is stored only as a hash, so it cannot be shown again."""
    me = ctx.me
    if ctx.body.expires_at is not None and ctx.body.expires_at <= ctx.now:
        raise field_problem(["body", "expires_at"], "must lie in the future")
    secret = new_secret(TOKEN_PREFIX)
    token = ApiToken(name=ctx.body.name, token_hash=secret_digest(secret), prefix=secret[:10],
                     created_at=ctx.now, expires_at=ctx.body.expires_at,
                     **({"super_admin_id": me.id} if me.is_super else {"user_id": me.id}))
    ctx.db.add(token)
    await ctx.db.flush()
    record(ctx.db, me.actor(), now=ctx.now, action="create", entity="api_token", entity_id=token.id,
           organization_id=me.organization_id, after={"name": token.name, "prefix": token.prefix})
    return TokenCreated(**_token_out(token).model_dump(), token=secret)


@api.route("DELETE", "/tokens/{token_id}", summary="Revoke one of my API tokens", tags="auth")
async def revoke_token(ctx: Ctx):
    me = ctx.me
    token = await ctx.db.get(ApiToken, ctx.path["token_id"])
    if token is None or token.id is None or not (
            (me.is_super and token.super_admin_id == me.id) or (not me.is_super and token.user_id == me.id)):
        raise not_found("token")
    await ctx.db.delete(token)
    record(ctx.db, me.actor(), now=ctx.now, action="delete", entity="api_token", entity_id=token.id,
           organization_id=me.organization_id, before={"name": token.name, "prefix": token.prefix})
    return None
