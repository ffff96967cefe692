"""Rendering: reads the model, builds the vendor-neutral context, asks the vendor plugin for bytes.

This is the only place the phone-facing path touches the database, and only on a cache miss.
Each result carries the dependency keys it was built from, for exact cache invalidation.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from provisioning.cache import Dep
from provisioning.model import Contact, Device, Key, KeyType, Line, Number, NumberRole, PhonebookMember, User
from provisioning.model.tenancy import Organization
from provisioning.settings import Settings
from provisioning.vendors.base import (
    CommonContext,
    ContactContext,
    DeviceContext,
    KeyContext,
    LineContext,
    PhoneModel,
)


def common_context(settings: Settings) -> CommonContext:
    return CommonContext(
        provisioning_url=settings.provisioning_url,
        ntp_server=settings.ntp_server,
        timezone=settings.default_timezone,
        language=settings.default_language,
        resync_minutes=settings.resync_interval_minutes,
    )


async def load_device(session: AsyncSession, mac: str) -> Device | None:
    """The device with everything its files need, in a fixed number of queries."""
    return (await session.execute(
        select(Device)
        .where(Device.mac == mac)
        .options(
            selectinload(Device.organization),
            selectinload(Device.lines).selectinload(Line.user).selectinload(User.numbers),
            selectinload(Device.keys),
        )
    )).scalar_one_or_none()


def primary_number(user: User) -> str | None:
    for number in user.numbers:
        if number.role == NumberRole.primary:
            return number.e164
    return None


@dataclass(frozen=True)
class DeviceSnapshot:
    context: DeviceContext
    deps: frozenset[Dep]


async def build_device_context(session: AsyncSession, device: Device, model: PhoneModel,
                               settings: Settings) -> DeviceSnapshot:
    org = device.organization
    deps: set[Dep] = {("device", device.id), ("mac", device.mac), ("org", org.id)}
    lines = []
    for line in device.lines:
        user = line.user
        deps.add(("user", user.id))
        number = primary_number(user)
        lines.append(LineContext(
            index=line.index,
            label=user.extension or user.name,
            display_name=user.name,
            user_name=(number or user.extension or line.auth_username).lstrip("+"),
            auth_username=line.auth_username,
            password=line.password,
            registrar=org.sip_domain,
            port=org.sip_port,
            transport=org.sip_transport,
            outbound_proxy=org.outbound_proxy,
            voicemail_number=org.voicemail_number,
        ))

    targets = {k.target for k in device.keys if k.target and k.type in (KeyType.blf, KeyType.speed_dial)}
    users_by_number: dict[str, User] = {}
    if targets:
        rows = await session.execute(
            select(Number.e164, User).join(User, Number.user_id == User.id)
            .where(Number.e164.in_(targets), Number.organization_id == org.id)
        )
        users_by_number = {e164: user for e164, user in rows.all()}
    keys = tuple(_key_context(key, users_by_number, org, deps) for key in device.keys)
    contacts = await _contacts(session, [line.user_id for line in device.lines], deps)

    common = vars(common_context(settings)) | {"timezone": org.timezone, "language": org.language}
    if org.ntp_server:
        common["ntp_server"] = org.ntp_server
    context = DeviceContext(
        **common,
        mac=device.mac,
        model=model,
        organization=org.name,
        lines=tuple(lines),
        keys=keys,
        contacts=contacts,
        vlan=org.vlan,
        admin_password=org.device_admin_password,
        provisioning_username=device.http_username or "",
        provisioning_password=device.http_password or "",
    )
    return DeviceSnapshot(context, frozenset(deps))


async def _contacts(session: AsyncSession, user_ids: list[int], deps: set[Dep]) -> tuple[ContactContext, ...]:
    """Contacts of every phonebook granted to a user on the device, each person once, by name."""
    if not user_ids:
        return ()
    rows = (await session.execute(
        select(Contact, PhonebookMember.phonebook_id)
        .join(PhonebookMember, PhonebookMember.phonebook_id == Contact.phonebook_id)
        .where(PhonebookMember.user_id.in_(user_ids))
    )).all()
    seen: dict[tuple[str, str], ContactContext] = {}
    for contact, phonebook_id in rows:
        deps.add(("phonebook", phonebook_id))
        seen.setdefault((contact.name, contact.number),
                        ContactContext(contact.name, contact.number, contact.mobile, contact.company))
    return tuple(sorted(seen.values(), key=lambda c: (c.name.casefold(), c.number)))


def _key_context(key: Key, users_by_number: dict[str, User], org: Organization, deps: set[Dep]) -> KeyContext:
    value = key.target or ""
    label = key.label or ""
    if key.type in (KeyType.blf, KeyType.speed_dial) and key.target:
        deps.add(("number", key.target))
        colleague = users_by_number.get(key.target)
        if colleague is not None:
            deps.add(("user", colleague.id))
            # A colleague is dialled and watched by extension; anyone else by full number.
            value = colleague.extension or key.target
            label = label or colleague.name
        label = label or key.target
    elif key.type == KeyType.voicemail:
        value = value or org.voicemail_number
    elif key.type == KeyType.group_toggle:
        value = value or org.group_toggle_code
    return KeyContext(
        module=key.module, slot=key.slot, type=key.type.value, value=value, label=label,
        line_index=key.line_index, pickup_code=org.pickup_code if key.type == KeyType.blf else "",
    )
