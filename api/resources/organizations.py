"""Organisations (tenants): SIP domain, main number, time zone and the phones' shared settings."""

from __future__ import annotations

import secrets
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import delete, select
from sqlalchemy.orm import selectinload

from api.access import get_org, visible_org_ids
from api.framework import Ctx, Reply, api, check_if_match, etag_of
from api.pagination import Page, PageQuery, paginate
from api.problems import Problem, field_problem
from api.types import PhoneNumber, Text, Timestamp
from provisioning.audit import record
from provisioning.model import Device, Number, NumberRole, Organization

_HOST = r"^[A-Za-z0-9.-]+$"
_DIAL = r"^[0-9*#+]{1,32}$"


def _zone(value: str | None) -> str | None:
    if value is None:
        return value
    try:
        ZoneInfo(value)
    except Exception:
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Stockholm)") from None
    return value


class OrganizationFields(BaseModel):
    sip_domain: Text(253, 1, _HOST) | None = None
    main_number: PhoneNumber | None = None
    timezone: Text(64, 1) | None = None
    language: Text(8, 2, r"^[a-z]{2}$") | None = None
    outbound_proxy: Text(253, 1, r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$") | None = None
    sip_port: int | None = Field(None, ge=1, le=65535)
    sip_transport: Literal["udp", "tcp", "tls"] | None = None
    voicemail_number: Text(32, 1, _DIAL) | None = None
    pickup_code: Text(16, 1, _DIAL) | None = None
    group_toggle_code: Text(16, 1, _DIAL) | None = None
    ntp_server: Text(253, 1, r"^[A-Za-z0-9.:-]+$") | None = None
    vlan: int | None = Field(None, ge=1, le=4094)

    _tz = field_validator("timezone")(_zone)


class OrganizationCreate(OrganizationFields):
    name: Text(200, 1)
    sip_domain: Text(253, 1, _HOST)


class OrganizationPatch(OrganizationFields):
    name: Text(200, 1) | None = None


class OrganizationOut(BaseModel):
    id: int
    name: str
    sip_domain: str
    main_number: str | None
    timezone: str
    language: str
    outbound_proxy: str | None
    sip_port: int
    sip_transport: str
    voicemail_number: str
    pickup_code: str
    group_toggle_code: str
    ntp_server: str | None
    vlan: int | None
    version: int
    created_at: Timestamp
    updated_at: Timestamp


class OrganizationPage(Page[OrganizationOut]):
    pass


class OrganizationQuery(PageQuery):
    q: Text(200) | None = Field(None, description="part of the name")


def org_out(org: Organization) -> OrganizationOut:
    main = next((n.e164 for n in org.numbers if n.role == NumberRole.main), None)
    return OrganizationOut(
        id=org.id, name=org.name, sip_domain=org.sip_domain, main_number=main, timezone=org.timezone,
        language=org.language, outbound_proxy=org.outbound_proxy, sip_port=org.sip_port,
        sip_transport=org.sip_transport, voicemail_number=org.voicemail_number, pickup_code=org.pickup_code,
        group_toggle_code=org.group_toggle_code, ntp_server=org.ntp_server, vlan=org.vlan, version=org.version,
        created_at=org.created_at, updated_at=org.updated_at)


async def _load(ctx: Ctx, org_id: int) -> Organization:
    return (await ctx.db.execute(select(Organization).where(Organization.id == org_id)
                                 .options(selectinload(Organization.numbers)))).scalar_one()


async def _set_main_number(ctx: Ctx, org: Organization, e164: str | None) -> None:
    current = next((n for n in org.numbers if n.role == NumberRole.main), None)
    if current is not None and current.e164 == e164:
        return
    if e164 is not None:
        taken = (await ctx.db.execute(select(Number).where(Number.e164 == e164))).scalar_one_or_none()
        if taken is not None:
            raise Problem(409, f"number {e164} is already assigned",
                          errors=[{"loc": ["body", "main_number"], "msg": "already assigned", "type": "conflict"}])
    if current is not None:
        await ctx.db.delete(current)
        await ctx.db.flush()
    if e164 is not None:
        ctx.db.add(Number(e164=e164, organization_id=org.id, role=NumberRole.main))
    org.updated_at = ctx.now


async def _name_free(ctx: Ctx, name: str, but: int | None = None) -> None:
    other = (await ctx.db.execute(select(Organization.id).where(Organization.name == name))).scalar_one_or_none()
    if other is not None and other != but:
        raise Problem(409, f"an organisation named {name!r} exists",
                      errors=[{"loc": ["body", "name"], "msg": "already in use", "type": "conflict"}])


_FIELDS = ("sip_domain", "timezone", "language", "outbound_proxy", "sip_port", "sip_transport",
           "voicemail_number", "pickup_code", "group_toggle_code", "ntp_server", "vlan")
_REQUIRED = {"sip_domain", "timezone", "language", "sip_port", "sip_transport", "voicemail_number",
             "pickup_code", "group_toggle_code"}


@api.route("GET", "/organizations", summary="List organisations", tags="organizations",
           query=OrganizationQuery, response=OrganizationPage)
async def list_organizations(ctx: Ctx):
    """Super admins see every organisation; everyone else only their own."""
    q: OrganizationQuery = ctx.query
    stmt = select(Organization).options(selectinload(Organization.numbers))
    only = visible_org_ids(ctx, None)
    if only is not None:
        stmt = stmt.where(Organization.id == only)
    if q.q:
        stmt = stmt.where(Organization.name.contains(q.q, autoescape=True))
    rows, cursor = await paginate(ctx.db, stmt, Organization.id, q)
    return OrganizationPage(items=[org_out(o) for o in rows], next_cursor=cursor)


@api.route("POST", "/organizations", summary="Create an organisation", tags="organizations", auth="super",
           body=OrganizationCreate, response=OrganizationOut, status=201, errors=(409,), etag=True)
async def create_organization(ctx: Ctx):
    body: OrganizationCreate = ctx.body
    await _name_free(ctx, body.name)
    values = {k: getattr(body, k) for k in _FIELDS if getattr(body, k) is not None}
    org = Organization(name=body.name, device_admin_password=secrets.token_urlsafe(12), **values)
    ctx.db.add(org)
    await ctx.db.flush()
    org = await _load(ctx, org.id)
    if body.main_number:
        await _set_main_number(ctx, org, body.main_number)
    await ctx.db.flush()
    org = await _reload(ctx, org)
    out = org_out(org)
    record(ctx.db, ctx.actor(), now=ctx.now, action="create", entity="organization", entity_id=org.id,
           organization_id=org.id, after=out.model_dump(mode="json"))
    return Reply(out, etag=etag_of(org.version))


async def _reload(ctx: Ctx, org: Organization) -> Organization:
    await ctx.db.refresh(org, ["numbers"])
    return org


@api.route("GET", "/organizations/{org_id}", summary="One organisation", tags="organizations",
           response=OrganizationOut, etag=True)
async def get_organization(ctx: Ctx):
    org = await get_org(ctx, ctx.path["org_id"])
    org = await _load(ctx, org.id)
    return Reply(org_out(org), etag=etag_of(org.version))


@api.route("PATCH", "/organizations/{org_id}", summary="Change an organisation", tags="organizations",
           body=OrganizationPatch, response=OrganizationOut, etag=True, if_match=True, errors=(403, 409))
async def update_organization(ctx: Ctx):
    """Organisation admins may change their own organisation's settings, not its name."""
    org = await get_org(ctx, ctx.path["org_id"], admin=True)
    org = await _load(ctx, org.id)
    check_if_match(ctx, org.version)
    body: OrganizationPatch = ctx.body
    given = body.model_fields_set
    before = org_out(org).model_dump(mode="json")
    if "name" in given and body.name is not None and body.name != org.name:
        if not ctx.me.is_super:
            raise Problem(403, "only provider staff may rename an organisation")
        await _name_free(ctx, body.name, org.id)
        org.name = body.name
    for name in _FIELDS:
        if name in given:
            value = getattr(body, name)
            if value is None and name in _REQUIRED:
                raise field_problem(["body", name], "may not be null")
            if getattr(org, name) != value:
                setattr(org, name, value)
    if "main_number" in given:
        await _set_main_number(ctx, org, body.main_number)
    await ctx.db.flush()
    org = await _reload(ctx, org)
    out = org_out(org)
    if out.model_dump(mode="json") != before:
        record(ctx.db, ctx.actor(), now=ctx.now, action="update", entity="organization", entity_id=org.id,
               organization_id=org.id, before=before, after=out.model_dump(mode="json"))
    return Reply(out, etag=etag_of(org.version))


@api.route("DELETE", "/organizations/{org_id}", summary="Delete an organisation and everything in it",
           tags="organizations", auth="super", if_match=True)
async def delete_organization(ctx: Ctx):
    org = await get_org(ctx, ctx.path["org_id"])
    org = await _load(ctx, org.id)
    check_if_match(ctx, org.version)
    before = org_out(org).model_dump(mode="json")
    # Devices first, through the ORM, so their cached configs are dropped; the database cascades
    # the rest (users, numbers, groups...).
    for device in (await ctx.db.execute(select(Device).where(Device.organization_id == org.id).options(
            selectinload(Device.lines), selectinload(Device.keys)))).scalars():
        await ctx.db.delete(device)
    await ctx.db.flush()
    await ctx.db.execute(delete(Organization).where(Organization.id == org.id))
    record(ctx.db, ctx.actor(), now=ctx.now, action="delete", entity="organization", entity_id=org.id,
           organization_id=org.id, before=before)
    return None
