"""Voice messages (A14): upload, generate from text, list, listen, replace, delete when unused.

Uploads (WAV, MP3 or OGG) are decoded in full and normalised to 8 kHz mono WAV by
:mod:`provisioning.media` before they are stored under the data directory; listening always
returns that WAV. A message still used by a calendar, menu or queue cannot be deleted: the 409
names every place.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import select

from api.access import can_admin_org, creation_org, visible_org_ids
from api.framework import Ctx, Reply, api, check_if_match, etag_of
from api.pagination import Page, PageQuery, paginate
from api.problems import Problem, field_problem, not_found
from api.types import Id, Text, Timestamp
from provisioning.audit import record
from provisioning.media import MediaError, MediaLimits, espeak_binary, normalise
from provisioning.model import VoiceMessage
from provisioning.model.media import MessageStore, apply_audio, generate, message_usage

#: The largest upload and the longest recording accepted.
LIMITS = MediaLimits(max_bytes=8 * 1024 * 1024, max_seconds=300.0)
#: What an upload may be sent as; the content decides (it is decoded in full whatever the label).
AUDIO_TYPES = ("audio/wav", "audio/x-wav", "audio/wave", "audio/mpeg", "audio/mp3", "audio/ogg",
               "application/ogg", "application/octet-stream")
_NAME = Text(100, 1)


class MessageOut(BaseModel):
    id: int
    organization_id: int
    name: str
    text: str | None
    voice: str | None
    status: str = Field(description="ready, or pending: text waiting for text-to-speech")
    origin: str = Field(description="uploaded | generated")
    duration: float | None = Field(description="seconds")
    size: int | None = Field(description="bytes of the stored WAV")
    source_format: str | None = Field(description="what was uploaded: WAV, MP3 or OGG")
    filename: str | None
    audio_url: str | None
    used_by: list[str] = Field(description="where the message is used (calendar entries, menus, queues)")
    updated_at: Timestamp
    version: int


class MessagePage(Page[MessageOut]):
    pass


class MessageQuery(PageQuery):
    organization_id: Id | None = None


class MessageCreate(BaseModel):
    organization_id: Id | None = None
    name: _NAME
    text: Text(5000, 1, multiline=True) = Field(description="spoken with espeak-ng")
    voice: Text(32, 1, pattern=r"^[A-Za-z0-9_+-]+$") = "sv"


class MessagePatch(BaseModel):
    name: _NAME | None = None
    text: Text(5000, 1, multiline=True) | None = Field(None, description="a new text: the message is generated again")
    voice: Text(32, 1, pattern=r"^[A-Za-z0-9_+-]+$") | None = None


class UploadQuery(BaseModel):
    organization_id: Id | None = None
    name: _NAME
    filename: Text(200, 1) | None = None


class ReplaceQuery(BaseModel):
    filename: Text(200, 1) | None = None


def store(ctx: Ctx) -> MessageStore:
    return MessageStore(ctx.server.settings.data_dir / "messages")


def message_out(m: VoiceMessage, used_by: list[str]) -> MessageOut:
    return MessageOut(id=m.id, organization_id=m.organization_id, name=m.name, text=m.text, voice=m.voice,
                      status=m.status, origin=m.origin, duration=m.duration, size=m.size,
                      source_format=m.source_format, filename=m.filename,
                      audio_url=f"/api/v1/messages/{m.id}/audio" if m.sha256 else None, used_by=used_by,
                      updated_at=m.updated_at, version=m.version)


async def one_out(ctx: Ctx, m: VoiceMessage) -> MessageOut:
    usage = await message_usage(ctx.db, m.organization_id, [m.id])
    return message_out(m, usage.get(m.id, []))


async def get_message(ctx: Ctx, message_id: int) -> VoiceMessage:
    m = await ctx.db.get(VoiceMessage, message_id, populate_existing=True)
    if m is None or not can_admin_org(ctx, m.organization_id):
        raise not_found("voice message")
    return m


async def org_message_id(ctx: Ctx, organization_id: int, message_id: int | None, loc: list) -> int | None:
    """Check that a referenced message belongs to the organisation (422 naming the field)."""
    if message_id is None:
        return None
    m = await ctx.db.get(VoiceMessage, message_id)
    if m is None or m.organization_id != organization_id:
        raise field_problem(loc, f"no voice message {message_id} in this organisation")
    return m.id


async def _name_free(ctx: Ctx, org_id: int, name: str, but: int | None = None) -> None:
    other = (await ctx.db.execute(select(VoiceMessage.id).where(
        VoiceMessage.organization_id == org_id, VoiceMessage.name == name))).scalar_one_or_none()
    if other is not None and other != but:
        raise Problem(409, f"a voice message named {name!r} exists",
                      errors=[{"loc": ["body", "name"], "msg": "already in use", "type": "conflict"}])


def _media_problem(exc: MediaError) -> Problem:
    if exc.code == "tts_unavailable":
        return Problem(503, str(exc), title="Text-to-speech unavailable")
    status = {"too_large": 413, "unsupported_format": 415, "not_audio": 415}.get(exc.code, 422)
    loc = ["body", "text"] if exc.code in ("bad_text", "bad_voice", "tts_failed") else ["body"]
    return Problem(status, str(exc), errors=[{"loc": loc, "msg": str(exc), "type": exc.code}])


async def _speak(ctx: Ctx, m: VoiceMessage) -> None:
    if espeak_binary() is None:
        raise _media_problem(MediaError("tts_unavailable", "Text-to-speech needs espeak-ng, which is not installed "
                                        "on this server; upload a recording instead."))
    try:
        if not await generate(m, store(ctx)):
            raise _media_problem(MediaError("tts_unavailable", "espeak-ng could not be started on this server"))
    except MediaError as exc:
        raise _media_problem(exc) from None


async def _read_audio(ctx: Ctx) -> bytes:
    media = ctx.request.content_type
    if media not in AUDIO_TYPES:
        raise Problem(415, f"send the recording as one of {', '.join(AUDIO_TYPES)} (WAV, MP3 or OGG)")
    limit = LIMITS.max_bytes
    if ctx.request.content_length is not None and ctx.request.content_length > limit:
        raise Problem(413, f"the recording is larger than {limit} bytes")
    data = await ctx.request.content.read(limit + 1)
    if len(data) > limit:
        raise Problem(413, f"the recording is larger than {limit} bytes")
    return data


async def _store_upload(ctx: Ctx, m: VoiceMessage, data: bytes, filename: str | None) -> None:
    try:
        audio = await asyncio.to_thread(normalise, data, limits=LIMITS)
    except MediaError as exc:
        raise _media_problem(exc) from None
    sha = await asyncio.to_thread(store(ctx).save, m.organization_id, audio.data)
    apply_audio(m, sha, audio, origin="uploaded", filename=filename)
    m.text = None if m.origin == "uploaded" else m.text


@api.route("GET", "/messages", summary="List voice messages", tags="messages", auth="admin", query=MessageQuery,
           response=MessagePage)
async def list_messages(ctx: Ctx):
    q: MessageQuery = ctx.query
    stmt = select(VoiceMessage)
    org = visible_org_ids(ctx, q.organization_id)
    if org is not None:
        stmt = stmt.where(VoiceMessage.organization_id == org)
    rows, cursor = await paginate(ctx.db, stmt, VoiceMessage.id, q)
    usage: dict[int, list[str]] = {}
    for org_id in {m.organization_id for m in rows}:
        usage.update(await message_usage(ctx.db, org_id, [m.id for m in rows if m.organization_id == org_id]))
    return MessagePage(items=[message_out(m, usage.get(m.id, [])) for m in rows], next_cursor=cursor)


@api.route("POST", "/messages", summary="Create a voice message from text (espeak-ng)", tags="messages",
           auth="admin", body=MessageCreate, response=MessageOut, status=201, etag=True, errors=(409, 503))
async def create_message(ctx: Ctx):
    """503 when espeak-ng is not installed on the server: upload a recording instead."""
    body: MessageCreate = ctx.body
    org_id = creation_org(ctx, body.organization_id)
    await _name_free(ctx, org_id, body.name)
    m = VoiceMessage(organization_id=org_id, name=body.name, text=body.text, voice=body.voice, origin="generated",
                     status="pending")
    await _speak(ctx, m)
    ctx.db.add(m)
    await ctx.db.flush()
    out = await one_out(ctx, m)
    record(ctx.db, ctx.actor(), now=ctx.now, action="create", entity="voice_message", entity_id=m.id,
           organization_id=org_id, after=out.model_dump(mode="json"))
    return Reply(out, etag=etag_of(m.version))


@api.route("POST", "/messages/recordings", summary="Upload a recording as a new voice message", tags="messages",
           auth="admin", query=UploadQuery, body_media=AUDIO_TYPES, response=MessageOut, status=201, etag=True,
           errors=(409, 413, 415))
async def upload_message(ctx: Ctx):
    """WAV, MP3 or OGG, decoded in full (at most 8 MB and 300 s), stored as 8 kHz mono WAV."""
    q: UploadQuery = ctx.query
    org_id = creation_org(ctx, q.organization_id)
    await _name_free(ctx, org_id, q.name)
    data = await _read_audio(ctx)
    m = VoiceMessage(organization_id=org_id, name=q.name, origin="uploaded")
    await _store_upload(ctx, m, data, q.filename)
    ctx.db.add(m)
    await ctx.db.flush()
    out = await one_out(ctx, m)
    record(ctx.db, ctx.actor(), now=ctx.now, action="create", entity="voice_message", entity_id=m.id,
           organization_id=org_id, after=out.model_dump(mode="json"))
    return Reply(out, etag=etag_of(m.version))


@api.route("GET", "/messages/{message_id}", summary="One voice message, with where it is used", tags="messages",
           auth="admin", response=MessageOut, etag=True)
async def get_message_route(ctx: Ctx):
    m = await get_message(ctx, ctx.path["message_id"])
    return Reply(await one_out(ctx, m), etag=etag_of(m.version))


@api.route("GET", "/messages/{message_id}/audio", summary="Listen to a voice message (8 kHz mono WAV)",
           tags="messages", auth="admin", response_media=("audio/wav",))
async def get_message_audio(ctx: Ctx):
    m = await get_message(ctx, ctx.path["message_id"])
    if m.status == "pending" and m.text and espeak_binary() is not None:
        try:
            await generate(m, store(ctx))  # espeak-ng was missing when it was created
        except MediaError:
            pass
    if not m.sha256:
        raise Problem(404, "the message has no audio yet (its text waits for text-to-speech)")
    try:
        data = await asyncio.to_thread(store(ctx).read, m.organization_id, m.sha256)
    except FileNotFoundError:
        raise Problem(404, "the message's audio file is missing") from None
    etag = f'"{m.sha256[:32]}"'
    if ctx.request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(body=data, content_type="audio/wav", headers={"ETag": etag, "Cache-Control": "private"})


@api.route("PUT", "/messages/{message_id}/audio", summary="Replace (re-record) a voice message", tags="messages",
           auth="admin", query=ReplaceQuery, body_media=AUDIO_TYPES, response=MessageOut, etag=True, if_match=True,
           errors=(413, 415))
async def replace_message_audio(ctx: Ctx):
    """Everything using the message plays the new recording at once."""
    m = await get_message(ctx, ctx.path["message_id"])
    check_if_match(ctx, m.version)
    data = await _read_audio(ctx)
    before = {"sha256": m.sha256, "duration": m.duration}
    m.origin = "uploaded"
    await _store_upload(ctx, m, data, ctx.query.filename)
    m.updated_at = ctx.now
    await ctx.db.flush()
    record(ctx.db, ctx.actor(), now=ctx.now, action="update", entity="voice_message", entity_id=m.id,
           organization_id=m.organization_id, before=before, after={"sha256": m.sha256, "duration": m.duration})
    return Reply(await one_out(ctx, m), etag=etag_of(m.version))


@api.route("PATCH", "/messages/{message_id}", summary="Rename a voice message or speak a new text",
           tags="messages", auth="admin", body=MessagePatch, response=MessageOut, etag=True, if_match=True,
           errors=(409, 503))
async def update_message(ctx: Ctx):
    m = await get_message(ctx, ctx.path["message_id"])
    check_if_match(ctx, m.version)
    body: MessagePatch = ctx.body
    given = body.model_fields_set
    before = {"name": m.name, "text": m.text, "voice": m.voice, "sha256": m.sha256}
    for name in ("name", "text", "voice"):
        if name in given and getattr(body, name) is None:
            raise field_problem(["body", name], "may not be null")
    if "name" in given and body.name != m.name:
        await _name_free(ctx, m.organization_id, body.name, m.id)
        m.name = body.name
    if ("text" in given and body.text != m.text) or ("voice" in given and body.voice != m.voice):
        if m.origin == "uploaded" and "text" not in given:
            raise field_problem(["body", "voice"], "a recorded message has no text to speak; give text as well")
        m.text = body.text if "text" in given else m.text
        m.voice = body.voice if "voice" in given else (m.voice or "sv")
        m.origin = "generated"
        await _speak(ctx, m)
    after = {"name": m.name, "text": m.text, "voice": m.voice, "sha256": m.sha256}
    if after != before:
        m.updated_at = ctx.now
        await ctx.db.flush()
        record(ctx.db, ctx.actor(), now=ctx.now, action="update", entity="voice_message", entity_id=m.id,
               organization_id=m.organization_id, before=before, after=after)
    return Reply(await one_out(ctx, m), etag=etag_of(m.version))


@api.route("DELETE", "/messages/{message_id}", summary="Delete a voice message nothing uses", tags="messages",
           auth="admin", if_match=True, errors=(409,))
async def delete_message(ctx: Ctx):
    """409 naming every calendar entry, menu and queue that still uses it."""
    m = await get_message(ctx, ctx.path["message_id"])
    check_if_match(ctx, m.version)
    used = (await message_usage(ctx.db, m.organization_id, [m.id])).get(m.id, [])
    if used:
        raise Problem(409, f"voice message {m.name!r} is in use: {'; '.join(used)}",
                      errors=[{"loc": ["path", "message_id"], "msg": where, "type": "in_use"} for where in used])
    sha, org_id = m.sha256, m.organization_id
    record(ctx.db, ctx.actor(), now=ctx.now, action="delete", entity="voice_message", entity_id=m.id,
           organization_id=org_id, before={"name": m.name, "sha256": sha})
    await ctx.db.delete(m)
    await ctx.db.flush()
    if sha and not (await ctx.db.execute(select(VoiceMessage.id).where(
            VoiceMessage.organization_id == org_id, VoiceMessage.sha256 == sha))).first():
        await ctx.db.commit()
        await asyncio.to_thread(store(ctx).discard, org_id, sha)
    return None
