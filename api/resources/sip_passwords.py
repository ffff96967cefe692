"""SIP password rotation (issue "Security"): new random passwords for a user's lines or one line.

The answer names the rotated accounts but never a password: secrets leave deskprov only inside the
phone's own config. The phones are pushed their new configs (provisioning/sip_passwords.py).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.access import get_device, get_user
from api.framework import Ctx, api
from api.problems import Problem
from api.types import Timestamp
from provisioning.audit import record
from provisioning.model import Line
from provisioning.sip_passwords import rotate


class RotatedLine(BaseModel):
    device_id: int
    mac: str
    index: int
    user_id: int
    sip_username: str


class Rotation(BaseModel):
    rotated_at: Timestamp
    lines: list[RotatedLine] = Field(description="the accounts with a new password; their phones are told "
                                                 "to fetch their configs again")


def _mac_text(mac: str) -> str:
    return ":".join(mac[i:i + 2] for i in range(0, 12, 2)).upper()


def _rotate(ctx: Ctx, lines: list[Line], macs: dict[int, str], entity: str, entity_id: int,
            organization_id: int | None) -> Rotation:
    rotated = rotate(lines, ctx.now)
    out = Rotation(rotated_at=ctx.now, lines=[
        RotatedLine(device_id=l.device_id, mac=_mac_text(macs[l.device_id]), index=l.index, user_id=l.user_id,
                    sip_username=l.auth_username) for l in rotated])
    record(ctx.db, ctx.actor(), now=ctx.now, action="rotate_sip_password", entity=entity, entity_id=entity_id,
           organization_id=organization_id, after={"lines": [
               {"device_id": l.device_id, "index": l.index, "sip_username": l.sip_username} for l in out.lines]})
    return out


@api.route("POST", "/users/{user_id}/sip-password", summary="New SIP passwords for all of a user's lines",
           tags="users", auth="admin", response=Rotation, errors=(409,))
async def rotate_user_sip_password(ctx: Ctx):
    """Every line bound to the user gets a new random password; each phone gets a resync NOTIFY
    and its next fetch has the new password. 409 if no phone line is bound to the user."""
    user = await get_user(ctx, ctx.path["user_id"])
    if not user.lines:
        raise Problem(409, "no phone line is bound to this user: there is no SIP password to rotate")
    return _rotate(ctx, list(user.lines), {l.device_id: l.device.mac for l in user.lines}, "user", user.id,
                   user.organization_id)


@api.route("POST", "/devices/{device_id}/lines/{index}/sip-password", summary="A new SIP password for one line",
           tags="devices", auth="admin", response=Rotation)
async def rotate_line_sip_password(ctx: Ctx):
    """The line gets a new random password; the phone gets a resync NOTIFY and its next fetch has it."""
    device = await get_device(ctx, ctx.path["device_id"])
    line = next((l for l in device.lines if l.index == ctx.path["index"]), None)
    if line is None:
        raise Problem(404, "no user is bound to that line")
    return _rotate(ctx, [line], {device.id: device.mac}, "device", device.id, device.organization_id)
