"""Self-service ("Mina sidor", U1-U6): my page, outgoing caller ID, picture.

Diversions and groups have their own /me operations in their modules; the password is
changed through /auth/password.
"""

from __future__ import annotations

from pydantic import BaseModel

from api.access import get_self
from api.framework import Ctx, Reply, api, etag_of
from api.resources.users import (
    PICTURE_TYPES, PictureQuery, UserOut, UserPatch, delete_picture, get_picture, patch_user, put_picture, user_out,
)
from api.problems import field_problem
from provisioning.model import CallerId


class MePatch(BaseModel):
    caller_id: CallerId | None = None


@api.route("GET", "/me", summary="My page", tags="self-service", response=UserOut, etag=True)
async def get_me(ctx: Ctx):
    user = await get_self(ctx)
    return Reply(user_out(user), etag=etag_of(user.version))


@api.route("PATCH", "/me", summary="Choose the number shown on my outgoing calls (U3)", tags="self-service",
           body=MePatch, response=UserOut, etag=True, if_match=True)
async def update_me(ctx: Ctx):
    user = await get_self(ctx)
    if "caller_id" in ctx.body.model_fields_set and ctx.body.caller_id is None:
        raise field_problem(["body", "caller_id"], "may not be null")
    patch = UserPatch(caller_id=ctx.body.caller_id) if "caller_id" in ctx.body.model_fields_set else UserPatch()
    return await patch_user(ctx, user, patch, patch.model_fields_set)


@api.route("PUT", "/me/picture", summary="Change my profile picture (U6)", tags="self-service",
           body_media=PICTURE_TYPES, response=UserOut, etag=True, if_match=True, errors=(413, 415))
async def put_my_picture(ctx: Ctx):
    return await put_picture(ctx, await get_self(ctx))


@api.route("GET", "/me/picture", summary="My profile picture", tags="self-service", query=PictureQuery,
           response_media=("image/png", "image/jpeg", "image/gif", "image/webp"))
async def get_my_picture(ctx: Ctx):
    return await get_picture(ctx, await get_self(ctx))


@api.route("DELETE", "/me/picture", summary="Remove my profile picture", tags="self-service", if_match=True)
async def delete_my_picture(ctx: Ctx):
    await delete_picture(ctx, await get_self(ctx))
