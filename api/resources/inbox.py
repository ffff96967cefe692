"""The technician's side: the device inbox, binding a device in seconds, resync and reboot."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.access import get_device
from api.framework import Ctx, Reply, api
from api.problems import Problem, field_problem
from api.types import Text, Timestamp
from provisioning.audit import record
from provisioning.discovery.inbox import BindError, Inbox, bind
from provisioning.mac import MacError


class InboxEntryOut(BaseModel):
    mac: str
    how: str = Field(description="how it was last seen: pnp, mdns, snmp, http, https or tftp")
    ip: str | None
    vendor: str | None
    model: str | None
    firmware: str | None
    first_seen_at: Timestamp
    last_seen_at: Timestamp
    times_seen: int
    organization_id: int | None = Field(description="registered (unbound) in this organisation, or none yet")


class InboxOut(BaseModel):
    items: list[InboxEntryOut]


@api.route("GET", "/inbox", summary="Devices seen but not bound to a user", tags="inbox", auth="admin",
           response=InboxOut)
async def list_inbox(ctx: Ctx):
    """Newest first. Organisation admins see devices registered nowhere yet and their own
    organisation's unbound ones; provider staff see all."""
    me = ctx.me
    entries = await Inbox.unbound(ctx.db, None if me.is_super else me.organization_id)
    return InboxOut(items=[InboxEntryOut(**vars(e)) for e in entries])


class InboxBindIn(BaseModel):
    mac: Text(32) = Field(description="any common MAC spelling")
    user: Text(64) = Field(description="the user's number (any spelling), extension or username")
    model: Text(64) | None = Field(None, description="e.g. 'Yealink T46S'; default: what the device said")


class InboxBoundOut(BaseModel):
    device_id: int
    mac: str
    vendor: str | None
    model: str | None
    organization_id: int


@api.route("POST", "/inbox/bind", summary="Bind a seen device to a user (its line 1)", tags="inbox",
           auth="admin", body=InboxBindIn, response=InboxBoundOut)
async def bind_device(ctx: Ctx):
    me = ctx.me
    try:
        device = await bind(ctx.db, ctx.body.mac, ctx.body.user, model=ctx.body.model,
                            organization_id=None if me.is_super else me.organization_id)
    except MacError as exc:
        raise field_problem(["body", "mac"], str(exc)) from None
    except BindError as exc:
        raise Problem(409 if "another organisation" in str(exc) else 422, str(exc)) from None
    record(ctx.db, ctx.actor(), now=ctx.now, action="bind", entity="device", entity_id=device.id,
           organization_id=device.organization_id, after={"mac": device.mac, "user": ctx.body.user})
    return InboxBoundOut(device_id=device.id, mac=device.mac, vendor=device.vendor, model=device.model,
                    organization_id=device.organization_id)


class DeviceSyncOut(BaseModel):
    mac: str
    state: Text(16) | None = Field(description="pending, notified, in_sync, unreachable; none if nothing sent yet")
    address: str | None = Field(description="where the device was last seen")
    detail: str | None = None


def _sync_out(ctx: Ctx, mac: str) -> DeviceSyncOut:
    sync = ctx.server.sync
    status, address = sync.status(mac), sync.address(mac)
    return DeviceSyncOut(mac=mac, state=str(status.state) if status else None,
                   address=address.ip if address else None,
                   detail=status.last_result if status else None)


@api.route("GET", "/devices/{device_id}/sync", summary="Whether the device has its newest files",
           tags="inbox", auth="admin", response=DeviceSyncOut)
async def device_sync(ctx: Ctx):
    device = await get_device(ctx, ctx.path["device_id"])
    return _sync_out(ctx, device.mac)


async def _push(ctx: Ctx, reboot: bool):
    device = await get_device(ctx, ctx.path["device_id"])
    try:
        ctx.server.sync.request(device.mac, reboot=reboot)
    except LookupError:
        raise Problem(409, "the device has not contacted deskprov yet: no address to notify") from None
    record(ctx.db, ctx.actor(), now=ctx.now, action="reboot" if reboot else "resync", entity="device",
           entity_id=device.id, organization_id=device.organization_id)
    return Reply(_sync_out(ctx, device.mac), status=202)


@api.route("POST", "/devices/{device_id}/resync", summary="Send the device its vendor's check-sync NOTIFY",
           tags="inbox", auth="admin", response=DeviceSyncOut, status=202)
async def resync_device(ctx: Ctx):
    return await _push(ctx, reboot=False)


@api.route("POST", "/devices/{device_id}/reboot", summary="Ask the device to reboot (and fetch its files)",
           tags="inbox", auth="admin", response=DeviceSyncOut, status=202)
async def reboot_device(ctx: Ctx):
    return await _push(ctx, reboot=True)

