"""Creating the first accounts from the command line, and finding who is logging in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisioning.audit import CLI, record
from provisioning.model import Number, NumberRole, Organization, SuperAdmin, User
from provisioning.numbers import NumberError, to_e164
from provisioning.passwords import check_policy, hash_password


class AccountError(ValueError):
    pass


def normalize_username(name: str) -> str:
    return name.strip().lower()


async def find_user_by_login(session: AsyncSession, login: str) -> User | None:
    """A user by primary number (any spelling: "+4685...", "08-...") or by custom username."""
    login = login.strip()
    user = None
    try:
        e164 = to_e164(login)
    except NumberError:
        e164 = None
    if e164 is not None:
        user = (await session.execute(
            select(User).join(Number, Number.user_id == User.id)
            .where(Number.e164 == e164, Number.role == NumberRole.primary)
        )).scalar_one_or_none()
    if user is None:
        user = (await session.execute(
            select(User).where(User.username == normalize_username(login)))).scalar_one_or_none()
    return user


async def create_superadmin(session: AsyncSession, username: str, password: str, now: datetime,
                            name: str = "") -> SuperAdmin:
    username = normalize_username(username)
    if not username or len(username) > 64:
        raise AccountError("a username has 1-64 characters")
    check_policy(password)
    if await session.scalar(select(func.count()).select_from(SuperAdmin).where(SuperAdmin.username == username)):
        raise AccountError(f"a super admin named {username!r} already exists")
    admin = SuperAdmin(username=username, name=name or username, password_hash=hash_password(password))
    session.add(admin)
    await session.flush()
    record(session, CLI, now=now, action="create", entity="super_admin", entity_id=admin.id,
           after={"username": username, "name": admin.name})
    await session.commit()
    return admin


async def create_org_admin(session: AsyncSession, organization: str, password: str, now: datetime, *,
                           number: str | None = None, username: str | None = None,
                           name: str | None = None) -> tuple[User, bool]:
    """Make (or promote) an organisation admin; returns (user, created)."""
    check_policy(password)
    org = (await session.execute(select(Organization).where(Organization.name == organization))).scalar_one_or_none()
    if org is None:
        raise AccountError(f"no organisation named {organization!r} (import its file first)")
    e164 = None
    if number:
        try:
            e164 = to_e164(number)
        except NumberError as exc:
            raise AccountError(str(exc)) from None
    user = await find_user_by_login(session, e164 or username or "")
    if user is not None and user.organization_id != org.id:
        raise AccountError("that number or username belongs to a user of another organisation")
    created = user is None
    if created:
        if e164 is not None:
            taken = (await session.execute(select(Number).where(Number.e164 == e164))).scalar_one_or_none()
            if taken is not None:
                raise AccountError(f"number {e164} is already in use")
        if not e164 and not username:
            raise AccountError("give --number or --username")
        user = User(organization_id=org.id, name=name or username or e164, keywords=[],
                    username=normalize_username(username) if username else None)
        session.add(user)
        await session.flush()
        if e164:
            session.add(Number(e164=e164, organization_id=org.id, role=NumberRole.primary, user_id=user.id))
    elif username and user.username != normalize_username(username):
        user.username = normalize_username(username)
    if name and not created:
        user.name = name
    user.is_admin = True
    user.password_hash = hash_password(password)
    user.refresh_search_text()
    await session.flush()
    record(session, CLI, now=now, action="create" if created else "update", entity="user", entity_id=user.id,
           organization_id=org.id, after={"name": user.name, "username": user.username, "admin": True})
    await session.commit()
    return user, created
