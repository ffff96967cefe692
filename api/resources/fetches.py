"""The fetch audit trail (``config_fetch``): who asked for which config file, from where, and what
they got. Tenant-scoped like everything else: an organisation admin sees the requests that named
its devices; provider staff see all, including requests for unknown MACs and probes naming none.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy import select

from api.access import get_device, visible_org_ids
from api.framework import Ctx, api
from api.pagination import Page, PageQuery, paginate
from api.problems import field_problem
from api.types import Id, Text, Timestamp
from provisioning.mac import MacError, normalize_mac
from provisioning.model import ConfigFetch


class FetchOut(BaseModel):
    id: int
    at: Timestamp
    mac: str | None = Field(description="the device the request named (null: none, e.g. a probe)")
    organization_id: int | None
    path: str
    transport: str = Field(description="http | https | tftp")
    source: str = Field(description="the requester's address")
    user_agent: str | None
    status: int = Field(description="the answer as an HTTP status (TFTP answers mapped to it); "
                                    "a row with path '*' summarises further refusals of one source")
    reason: str = Field(description="why it was refused, or which variant was served")
    auth: str = Field(description="how the device proved itself: digest | certificate | first-contact | "
                                  "network | none")


class FetchPage(Page[FetchOut]):
    pass


class FetchQuery(PageQuery):
    organization_id: Id | None = None
    mac: Text(32) | None = Field(None, description="only requests naming this device (any MAC spelling)")
    refused: bool | None = Field(None, description="true: only refusals; false: only files served")


def _mac_text(mac: str | None) -> str | None:
    return None if mac is None else ":".join(mac[i:i + 2] for i in range(0, 12, 2)).upper()


def fetch_out(f: ConfigFetch) -> FetchOut:
    return FetchOut(id=f.id, at=f.at, mac=_mac_text(f.mac), organization_id=f.organization_id, path=f.path,
                    transport=f.transport, source=f.source, user_agent=f.user_agent, status=f.status,
                    reason=f.reason, auth=f.auth)


def _filtered(stmt, q: FetchQuery):
    if q.mac:
        try:
            stmt = stmt.where(ConfigFetch.mac == normalize_mac(q.mac))
        except MacError as exc:
            raise field_problem(["query", "mac"], str(exc)) from None
    if q.refused is not None:
        stmt = stmt.where(ConfigFetch.status != 200 if q.refused else ConfigFetch.status == 200)
    return stmt


@api.route("GET", "/config-fetches", summary="The fetch audit trail, newest first", tags="devices",
           auth="admin", query=FetchQuery, response=FetchPage)
async def list_config_fetches(ctx: Ctx):
    """Every config request (HTTP, HTTPS, TFTP), refusals included. Provider staff see requests
    that named no known device too (scans, probes); an organisation admin only its devices'."""
    q: FetchQuery = ctx.query
    stmt = select(ConfigFetch)
    org = visible_org_ids(ctx, q.organization_id)
    if org is not None:
        stmt = stmt.where(ConfigFetch.organization_id == org)
    rows, cursor = await paginate(ctx.db, _filtered(stmt, q), ConfigFetch.id, q, newest_first=True)
    return FetchPage(items=[fetch_out(f) for f in rows], next_cursor=cursor)


class DeviceFetchQuery(PageQuery):
    refused: bool | None = Field(None, description="true: only refusals; false: only files served")


@api.route("GET", "/devices/{device_id}/fetches", summary="One device's config requests, newest first",
           tags="devices", auth="admin", query=DeviceFetchQuery, response=FetchPage)
async def list_device_fetches(ctx: Ctx):
    device = await get_device(ctx, ctx.path["device_id"])
    q: DeviceFetchQuery = ctx.query
    stmt = select(ConfigFetch).where(ConfigFetch.mac == device.mac)
    if not ctx.me.is_super:  # requests made while the MAC belonged to another tenant stay theirs
        stmt = stmt.where(ConfigFetch.organization_id == device.organization_id)
    if q.refused is not None:
        stmt = stmt.where(ConfigFetch.status != 200 if q.refused else ConfigFetch.status == 200)
    rows, cursor = await paginate(ctx.db, stmt, ConfigFetch.id, q, newest_first=True)
    return FetchPage(items=[fetch_out(f) for f in rows], next_cursor=cursor)
