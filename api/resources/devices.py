"""Desk phones, DECT bases and ATAs (A13): register by MAC and model, bind users, program keys.

Keys are stored vendor-neutral and checked against the model's catalogue by its vendor plugin
(``validate_keys``); a key the model cannot have is refused with a 422 naming it. Every change
here reaches the phones through the render cache: exactly the affected devices' files drop.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from api.access import creation_org, get_device, visible_org_ids
from api.framework import Ctx, Reply, api, check_if_match, etag_of
from api.pagination import Page, PageQuery, paginate
from api.problems import Problem, field_problem
from api.types import Id, Text, Timestamp
from provisioning.audit import record
from provisioning.device_auth import open_first_contact, rotate_credentials
from provisioning.mac import MacError, normalize_mac
from provisioning.model import NUMBER_TARGET_KEYS, Device, Key, KeyType, Line, Number, Organization, User
from provisioning.numbers import NumberError, to_e164
from provisioning.orgfile import new_credentials, resolve_model
from provisioning.vendors import BY_NAME, PLUGINS, vendor_for_mac
from provisioning.vendors.base import PhoneModel, VendorPlugin

_DIALABLE = re.compile(r"^[0-9*#+]{1,32}$")


class ExpansionOut(BaseModel):
    name: str
    keys: int
    max_modules: int


class PhoneModelOut(BaseModel):
    vendor: str
    model: str
    display_name: str
    kind: str
    lines: int
    line_keys: int
    expansion: ExpansionOut | None
    key_types: list[str]


class PhoneModels(BaseModel):
    items: list[PhoneModelOut]


class LineOut(BaseModel):
    index: int
    user_id: int
    user_name: str
    sip_username: str


class KeyIn(BaseModel):
    module: int = Field(0, ge=0, le=16, description="0: the phone itself; N: expansion module N")
    slot: int = Field(ge=1, le=999)
    type: KeyType
    target: Text(64, 1) | None = Field(None, description="number or colleague's extension (blf, speed_dial), "
                                                         "digits (park, dtmf)")
    label: Text(64) | None = None
    line: int = Field(1, ge=1, le=64)


class KeyOut(BaseModel):
    module: int
    slot: int
    type: KeyType
    target: str | None
    label: str | None
    line: int


class KeysIn(BaseModel):
    keys: list[KeyIn] = Field(max_length=500)


class KeysOut(BaseModel):
    device_id: int
    keys: list[KeyOut]
    version: int


class DeviceOut(BaseModel):
    id: int
    organization_id: int | None
    mac: str
    vendor: str | None
    model: str | None
    kind: str | None
    firmware: str | None
    last_seen_at: Timestamp | None
    lines: list[LineOut]
    keys: list[KeyOut]
    version: int


class DevicePage(Page[DeviceOut]):
    pass


class DeviceCreate(BaseModel):
    organization_id: Id | None = None
    mac: Text(32, 1) = Field(description="any common spelling, e.g. 80:5E:C0:AA:BB:01")
    model: Text(80, 1) | None = Field(None, description="'Vendor Model', e.g. 'Yealink T46S'; without it the "
                                                        "model is learnt from the phone's first request")


class DevicePatch(BaseModel):
    model: Text(80, 1) | None = None


class DeviceQuery(PageQuery):
    organization_id: Id | None = None
    mac: Text(32) | None = None
    user_id: Id | None = Field(None, description="devices with a line for this user")
    unbound: bool | None = Field(None, description="true: devices without any line")


class BindIn(BaseModel):
    user_id: Id


def _mac_text(mac: str) -> str:
    return ":".join(mac[i:i + 2] for i in range(0, 12, 2)).upper()


def _catalogue(device: Device) -> tuple[VendorPlugin | None, PhoneModel | None]:
    plugin = BY_NAME.get(device.vendor or "") or vendor_for_mac(device.mac)
    if plugin is None:
        return None, None
    return plugin, plugin.find_model(device.model) or plugin.generic_model()


def device_out(d: Device) -> DeviceOut:
    _, model = _catalogue(d)
    return DeviceOut(
        id=d.id, organization_id=d.organization_id, mac=_mac_text(d.mac), vendor=d.vendor, model=d.model,
        kind=model.kind if model else None, firmware=d.firmware, last_seen_at=d.last_seen_at,
        lines=[LineOut(index=l.index, user_id=l.user_id, user_name=l.user.name, sip_username=l.auth_username)
               for l in sorted(d.lines, key=lambda l: l.index)],
        keys=[KeyOut(module=k.module, slot=k.slot, type=k.type, target=k.target, label=k.label, line=k.line_index)
              for k in sorted(d.keys, key=lambda k: (k.module, k.slot))],
        version=d.version)


async def _load(ctx: Ctx, device_id: int) -> Device:
    return (await ctx.db.execute(select(Device).where(Device.id == device_id).options(
        selectinload(Device.lines).selectinload(Line.user), selectinload(Device.keys))
        .execution_options(populate_existing=True))).scalar_one()


@api.route("GET", "/phone-models", summary="The phone model catalogue (keys, lines, expansion modules)",
           tags="devices", response=PhoneModels)
async def list_phone_models(ctx: Ctx):
    items = []
    for plugin in PLUGINS:
        for model in plugin.models.values():
            exp = model.expansion
            items.append(PhoneModelOut(
                vendor=plugin.name, model=model.name, display_name=f"{plugin.display_name} {model.name}",
                kind=model.kind, lines=model.lines, line_keys=model.line_keys,
                expansion=ExpansionOut(name=exp.name, keys=exp.keys, max_modules=exp.max_modules) if exp else None,
                key_types=sorted(plugin.key_codes)))
    return PhoneModels(items=items)


@api.route("GET", "/devices", summary="List devices", tags="devices", auth="admin", query=DeviceQuery,
           response=DevicePage)
async def list_devices(ctx: Ctx):
    q: DeviceQuery = ctx.query
    stmt = select(Device).options(selectinload(Device.lines).selectinload(Line.user), selectinload(Device.keys))
    org = visible_org_ids(ctx, q.organization_id)
    if org is not None:
        stmt = stmt.where(Device.organization_id == org)
    if q.mac:
        try:
            stmt = stmt.where(Device.mac == normalize_mac(q.mac))
        except MacError as exc:
            raise field_problem(["query", "mac"], str(exc)) from None
    if q.user_id is not None:
        stmt = stmt.where(Device.lines.any(Line.user_id == q.user_id))
    if q.unbound is not None:
        stmt = stmt.where(~Device.lines.any() if q.unbound else Device.lines.any())
    rows, cursor = await paginate(ctx.db, stmt, Device.id, q)
    return DevicePage(items=[device_out(d) for d in rows], next_cursor=cursor)


def _resolve(text: str, loc: list) -> tuple[str, str]:
    try:
        plugin, model, name = resolve_model(text)
    except ValueError as exc:
        raise field_problem(loc, str(exc)) from None
    return plugin.name, model.name if model else name


@api.route("POST", "/devices", summary="Register a device by MAC and model", tags="devices", auth="admin",
           body=DeviceCreate, response=DeviceOut, status=201, etag=True, errors=(409,))
async def create_device(ctx: Ctx):
    body: DeviceCreate = ctx.body
    org_id = creation_org(ctx, body.organization_id)
    try:
        mac = normalize_mac(body.mac)
    except MacError as exc:
        raise field_problem(["body", "mac"], str(exc)) from None
    if (await ctx.db.execute(select(Device.id).where(Device.mac == mac))).first():
        raise Problem(409, f"a device with MAC {_mac_text(mac)} is already registered",
                      errors=[{"loc": ["body", "mac"], "msg": "already registered", "type": "conflict"}])
    vendor = model = None
    if body.model:
        vendor, model = _resolve(body.model, ["body", "model"])
    elif (plugin := vendor_for_mac(mac)) is not None:
        vendor = plugin.name
    device = Device(mac=mac, organization_id=org_id, vendor=vendor, model=model, lines=[], keys=[])
    ctx.db.add(device)
    await ctx.db.flush()
    device = await _load(ctx, device.id)
    out = device_out(device)
    record(ctx.db, ctx.actor(), now=ctx.now, action="create", entity="device", entity_id=device.id,
           organization_id=org_id, after=out.model_dump(mode="json"))
    return Reply(out, etag=etag_of(device.version))


@api.route("GET", "/devices/{device_id}", summary="One device", tags="devices", auth="admin",
           response=DeviceOut, etag=True)
async def get_device_route(ctx: Ctx):
    device = await get_device(ctx, ctx.path["device_id"])
    return Reply(device_out(device), etag=etag_of(device.version))


def _validate_keys(device: Device, keys: list[KeyIn] | list[Key], loc_prefix: list) -> None:
    plugin, model = _catalogue(device)
    if plugin is None:
        raise field_problem(loc_prefix, "the device's vendor is unknown: set its model first")
    line_count = model.lines
    for i, key in enumerate(keys):
        kind = key.type.value if isinstance(key.type, KeyType) else str(key.type)
        problems = plugin.validate_keys(model, [(key.module, key.slot, kind)])
        line = key.line if isinstance(key, KeyIn) else key.line_index
        if line > line_count:
            problems.append(f"key {key.slot}: {plugin.display_name} {model.name} has lines 1-{line_count}")
        if problems:
            raise Problem(422, "; ".join(problems), errors=[
                {"loc": [*loc_prefix, i], "msg": p, "type": "key_not_supported"} for p in problems])


@api.route("PATCH", "/devices/{device_id}", summary="Change a device's model", tags="devices", auth="admin",
           body=DevicePatch, response=DeviceOut, etag=True, if_match=True)
async def update_device(ctx: Ctx):
    """The programmed keys must fit the new model (422 naming the first that does not)."""
    device = await get_device(ctx, ctx.path["device_id"])
    check_if_match(ctx, device.version)
    before = device_out(device).model_dump(mode="json")
    if "model" in ctx.body.model_fields_set and ctx.body.model:
        device.vendor, device.model = _resolve(ctx.body.model, ["body", "model"])
        _validate_keys(device, list(device.keys), ["body", "model"])
    await ctx.db.flush()
    device = await _load(ctx, device.id)
    after = device_out(device).model_dump(mode="json")
    if after != before:
        record(ctx.db, ctx.actor(), now=ctx.now, action="update", entity="device", entity_id=device.id,
               organization_id=device.organization_id, before=before, after=after)
    return Reply(device_out(device), etag=etag_of(device.version))


@api.route("DELETE", "/devices/{device_id}", summary="Delete a device", tags="devices", auth="admin",
           if_match=True)
async def delete_device(ctx: Ctx):
    device = await get_device(ctx, ctx.path["device_id"])
    check_if_match(ctx, device.version)
    before = device_out(device).model_dump(mode="json")
    await ctx.db.delete(device)
    record(ctx.db, ctx.actor(), now=ctx.now, action="delete", entity="device", entity_id=device.id,
           organization_id=device.organization_id, before=before)
    return None


@api.route("PUT", "/devices/{device_id}/lines/{index}", summary="Bind a user to a line (ATA port, handset)",
           tags="devices", auth="admin", body=BindIn, response=DeviceOut, etag=True, if_match=True)
async def bind_line(ctx: Ctx):
    """Line 1 of a desk phone is its owner. A new owner gets new SIP credentials: the previous
    owner's secret never carries over."""
    device = await get_device(ctx, ctx.path["device_id"])
    check_if_match(ctx, device.version)
    index = ctx.path["index"]
    _, model = _catalogue(device)
    if model is not None and index > model.lines:
        raise Problem(404, f"{device.vendor} {model.name} has lines 1-{model.lines}")
    user = await ctx.db.get(User, ctx.body.user_id)
    if user is None or user.organization_id != device.organization_id or user.removed_at is not None:
        raise field_problem(["body", "user_id"], "no such user in the device's organisation")
    line = next((l for l in device.lines if l.index == index), None)
    before = device_out(device).model_dump(mode="json")
    if line is None:
        username, password = new_credentials()
        device.lines.append(Line(index=index, user_id=user.id, auth_username=username, password=password))
    elif line.user_id != user.id:
        line.user_id = user.id
        line.auth_username, line.password = new_credentials()
    else:
        return Reply(device_out(device), etag=etag_of(device.version))
    minutes = await ctx.db.scalar(select(Organization.first_contact_minutes)
                                  .where(Organization.id == device.organization_id))
    open_first_contact(device, minutes, ctx.now)
    device.updated_at = ctx.now
    await ctx.db.flush()
    device = await _load(ctx, device.id)
    after = device_out(device).model_dump(mode="json")
    record(ctx.db, ctx.actor(), now=ctx.now, action="bind", entity="device", entity_id=device.id,
           organization_id=device.organization_id, before={"lines": before["lines"]}, after={"lines": after["lines"]})
    return Reply(device_out(device), etag=etag_of(device.version))


@api.route("DELETE", "/devices/{device_id}/lines/{index}", summary="Unbind a line", tags="devices",
           auth="admin", if_match=True)
async def unbind_line(ctx: Ctx):
    device = await get_device(ctx, ctx.path["device_id"])
    check_if_match(ctx, device.version)
    line = next((l for l in device.lines if l.index == ctx.path["index"]), None)
    if line is None:
        raise Problem(404, "no user is bound to that line")
    before = device_out(device).model_dump(mode="json")
    device.lines.remove(line)
    device.updated_at = ctx.now
    await ctx.db.flush()
    device = await _load(ctx, device.id)
    record(ctx.db, ctx.actor(), now=ctx.now, action="unbind", entity="device", entity_id=device.id,
           organization_id=device.organization_id, before={"lines": before["lines"]},
           after={"lines": device_out(device).model_dump(mode="json")["lines"]})
    return None


class CredentialsRotation(BaseModel):
    device_id: int
    issued_at: Timestamp
    first_contact_until: Timestamp | None = Field(
        description="until when the device may fetch its new config without valid credentials (it still "
                    "holds the old ones); it is told to fetch at once")


@api.route("POST", "/devices/{device_id}/credentials", summary="New provisioning credentials for a device",
           tags="devices", auth="admin", response=CredentialsRotation, errors=(409,))
async def rotate_device_credentials(ctx: Ctx):
    """The device's HTTP digest password is replaced (never shown: it leaves deskprov only inside the
    device's own config); the device is sent a resync and its next fetch carries the new password.
    Also the way to let a reset or replaced phone boot again: it opens a first-contact window."""
    device = await get_device(ctx, ctx.path["device_id"])
    if not device.lines:
        raise Problem(409, "the device is not bound to a user: it is served no files to authenticate for")
    rotate_credentials(device, ctx.now)
    device.updated_at = ctx.now
    await ctx.db.flush()
    record(ctx.db, ctx.actor(), now=ctx.now, action="rotate_device_credentials", entity="device",
           entity_id=device.id, organization_id=device.organization_id,
           after={"first_contact_until": device.first_contact_until.isoformat()})
    return CredentialsRotation(device_id=device.id, issued_at=ctx.now, first_contact_until=device.first_contact_until)


def keys_out(device: Device) -> KeysOut:
    return KeysOut(device_id=device.id, keys=device_out(device).keys, version=device.version)


@api.route("GET", "/devices/{device_id}/keys", summary="A device's programmed keys", tags="devices",
           auth="admin", response=KeysOut, etag=True)
async def get_keys(ctx: Ctx):
    device = await get_device(ctx, ctx.path["device_id"])
    return Reply(keys_out(device), etag=etag_of(device.version))


async def _key_target(ctx: Ctx, device: Device, key: KeyIn, i: int) -> str | None:
    loc = ["body", "keys", i, "target"]
    if key.type in NUMBER_TARGET_KEYS:
        if not key.target:
            raise field_problem(loc, f"a {key.type.value} key needs a target number")
        colleague = (await ctx.db.execute(
            select(Number.e164).join(User, User.id == Number.user_id).where(
                User.organization_id == device.organization_id, User.extension == key.target,
                Number.role == "primary"))).scalar_one_or_none()
        if colleague:
            return colleague
        try:
            return to_e164(key.target)
        except NumberError:
            if _DIALABLE.match(key.target):
                return key.target
            raise field_problem(loc, f"{key.target!r} is neither a number nor a colleague's extension") from None
    if key.type in (KeyType.park, KeyType.dtmf):
        if not (key.target and _DIALABLE.match(key.target)):
            raise field_problem(loc, f"a {key.type.value} key needs target digits")
        return key.target
    if key.target and not _DIALABLE.match(key.target):
        raise field_problem(loc, "a key target is digits, * or #")
    return key.target


@api.route("PUT", "/devices/{device_id}/keys", summary="Program the device's keys (replaces them all)",
           tags="devices", auth="admin", body=KeysIn, response=KeysOut, etag=True, if_match=True)
async def put_keys(ctx: Ctx):
    """Each key is checked against the model's catalogue (slots, expansion modules, the key
    types the vendor has); the first key that does not fit is named in a 422. Only the phones
    whose files change get new configs."""
    device = await get_device(ctx, ctx.path["device_id"])
    check_if_match(ctx, device.version)
    keys: list[KeyIn] = ctx.body.keys
    seen: set[tuple[int, int]] = set()
    for i, key in enumerate(keys):
        if (key.module, key.slot) in seen:
            raise field_problem(["body", "keys", i, "slot"], f"key {key.slot} is programmed twice")
        seen.add((key.module, key.slot))
    _validate_keys(device, keys, ["body", "keys"])
    targets = [await _key_target(ctx, device, key, i) for i, key in enumerate(keys)]
    before = keys_out(device).model_dump(mode="json")["keys"]
    current = {(k.module, k.slot): k for k in device.keys}
    wanted = {(k.module, k.slot): (k, t) for k, t in zip(keys, targets)}
    changed = False
    for where, key in current.items():
        if where not in wanted:
            device.keys.remove(key)
            changed = True
    for where, (spec, target) in wanted.items():
        values = dict(type=spec.type, target=target, label=spec.label or None, line_index=spec.line)
        key = current.get(where)
        if key is None:
            device.keys.append(Key(module=spec.module, slot=spec.slot, **values))
            changed = True
        else:
            for name, value in values.items():
                if getattr(key, name) != value:
                    setattr(key, name, value)
                    changed = True
    if changed:
        device.updated_at = ctx.now
    await ctx.db.flush()
    device = await _load(ctx, device.id)
    out = keys_out(device)
    if changed:
        record(ctx.db, ctx.actor(), now=ctx.now, action="update", entity="device_keys", entity_id=device.id,
               organization_id=device.organization_id, before=before, after=out.model_dump(mode="json")["keys"])
    return Reply(out, etag=etag_of(device.version))
