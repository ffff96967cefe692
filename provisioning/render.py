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


_DEVICE_GRAPH = (
    selectinload(Device.organization),
    selectinload(Device.lines).selectinload(Line.user).selectinload(User.numbers),
    selectinload(Device.keys),
)


async def load_device(session: AsyncSession, mac: str) -> Device | None:
    """The device with everything its files need, in a fixed number of queries."""
    return (await session.execute(select(Device).where(Device.mac == mac).options(*_DEVICE_GRAPH))).scalar_one_or_none()


async def load_devices(session: AsyncSession, macs: list[str]) -> dict[str, Device]:
    """Many devices with everything their files need, in the same fixed number of queries as one."""
    rows = (await session.execute(select(Device).where(Device.mac.in_(macs)).options(*_DEVICE_GRAPH))).scalars()
    return {device.mac: device for device in rows}


@dataclass(frozen=True)
class Extras:
    """What a device's files need beyond its own rows: the colleagues its keys watch or dial
    (by number) and the contacts of its users' phonebooks (with the phonebook each came from)."""

    users_by_number: dict[str, User]
    contacts: list[tuple[Contact, int]]


async def load_extras(session: AsyncSession, devices: list[Device]) -> dict[int, Extras]:
    """Extras of many devices (bound ones: with an organisation), two queries in all."""
    targets = {(d.organization_id, k.target) for d in devices for k in d.keys
               if k.target and k.type in (KeyType.blf, KeyType.speed_dial)}
    colleagues: dict[tuple[int, str], User] = {}
    if targets:
        rows = await session.execute(
            select(Number.organization_id, Number.e164, User).join(User, Number.user_id == User.id)
            .where(Number.e164.in_({e164 for _, e164 in targets}),
                   Number.organization_id.in_({org for org, _ in targets})))
        colleagues = {(org, e164): user for org, e164, user in rows.all() if (org, e164) in targets}
    user_ids = {line.user_id for d in devices for line in d.lines}
    books: dict[int, list[tuple[Contact, int]]] = {}
    if user_ids:
        rows = await session.execute(
            select(Contact, PhonebookMember.phonebook_id, PhonebookMember.user_id)
            .join(PhonebookMember, PhonebookMember.phonebook_id == Contact.phonebook_id)
            .where(PhonebookMember.user_id.in_(user_ids)))
        for contact, phonebook_id, user_id in rows.all():
            books.setdefault(user_id, []).append((contact, phonebook_id))
    return {d.id: Extras(
        users_by_number={e164: user for (org, e164), user in colleagues.items() if org == d.organization_id},
        contacts=[row for line in d.lines for row in books.get(line.user_id, ())],
    ) for d in devices}


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
    extras = await load_extras(session, [device])
    return device_snapshot(device, model, settings, extras[device.id])


def device_snapshot(device: Device, model: PhoneModel, settings: Settings, extras: Extras) -> DeviceSnapshot:
    """The vendor-neutral context of a loaded, bound device (no database access)."""
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

    keys = tuple(_key_context(key, extras.users_by_number, org, deps) for key in device.keys)
    contacts = _contacts(extras.contacts, deps)

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


def _contacts(rows: list[tuple[Contact, int]], deps: set[Dep]) -> tuple[ContactContext, ...]:
    """Contacts of every phonebook granted to a user on the device, each person once, by name."""
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
