"""Who is calling: a session cookie or an API token resolved to a principal.

Principals are organisation users (``is_admin`` makes them the organisation's admins) or
super admins (provider staff, no organisation). Both a cookie session and a bearer token may
identify either kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from provisioning.audit import Actor
from provisioning.clock import aware
from provisioning.model import ApiToken, LoginSession, SuperAdmin, User
from provisioning.passwords import secret_digest

COOKIE = "deskprov_session"
TOKEN_PREFIX = "dpt_"


@dataclass(frozen=True)
class Principal:
    kind: str                   # "user" | "super_admin"
    id: int
    name: str
    organization_id: int | None
    is_admin: bool
    via: str                    # "session" | "token"
    credential_id: int

    @property
    def is_super(self) -> bool:
        return self.kind == "super_admin"

    @property
    def is_org_admin(self) -> bool:
        return self.kind == "user" and self.is_admin

    def actor(self) -> Actor:
        return Actor(self.kind, self.id, self.name, self.organization_id)


def principal_for(owner: User | SuperAdmin, via: str, credential_id: int) -> Principal:
    if isinstance(owner, SuperAdmin):
        return Principal("super_admin", owner.id, owner.name or owner.username, None, True, via, credential_id)
    return Principal("user", owner.id, owner.name, owner.organization_id, owner.is_admin, via, credential_id)


def presented_credentials(request: web.Request) -> tuple[str | None, str | None]:
    """(bearer token, session cookie) as presented; either may be None."""
    header = request.headers.get("Authorization", "")
    token = None
    if header[:7].lower() == "bearer ":
        token = header[7:].strip() or None
    return token, request.cookies.get(COOKIE) or None


async def _owner(session: AsyncSession, user_id: int | None, super_admin_id: int | None):
    if user_id is not None:
        user = await session.get(User, user_id)
        return user if user is not None and user.removed_at is None else None
    if super_admin_id is not None:
        return await session.get(SuperAdmin, super_admin_id)
    return None


async def resolve(session: AsyncSession, request: web.Request, now: datetime) -> Principal | None:
    token, cookie = presented_credentials(request)
    if token is not None:
        row = (await session.execute(
            select(ApiToken).where(ApiToken.token_hash == secret_digest(token)))).scalar_one_or_none()
        if row is None or (row.expires_at is not None and aware(row.expires_at) <= now):
            return None
        owner = await _owner(session, row.user_id, row.super_admin_id)
        if owner is None:
            return None
        last = aware(row.last_used_at)
        if last is None or (now - last).total_seconds() > 60:  # do not write on every request
            row.last_used_at = now
        return principal_for(owner, "token", row.id)
    if cookie is not None:
        row = (await session.execute(
            select(LoginSession).where(LoginSession.token_hash == secret_digest(cookie)))).scalar_one_or_none()
        if row is None or aware(row.expires_at) <= now:
            return None
        owner = await _owner(session, row.user_id, row.super_admin_id)
        if owner is None:
            return None
        return principal_for(owner, "session", row.id)
    return None
