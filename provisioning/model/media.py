"""Voice messages (A14): recorded or generated audio an organisation's calendars, menus and queues play.

The audio itself is a file under the data directory (``messages/<org>/<sha256>.wav``, 8 kHz mono
WAV as :func:`provisioning.media.normalise` makes it); the row holds its hash and description.
A message created from text keeps the text: when espeak-ng is missing at the time, the row is
``pending`` (no audio yet) and is generated as soon as it can be.

Schedules, menus and queues refer to messages with foreign keys that RESTRICT deletion, so a
message in use cannot disappear under them; the API names the users before refusing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path

from sqlalchemy import Float, ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from provisioning.model.base import Base, Timestamped, Versioned


class VoiceMessage(Versioned, Timestamped, Base):
    __tablename__ = "voice_message"
    __table_args__ = (UniqueConstraint("organization_id", "name", name="uq_voice_message_org_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    #: The text spoken (generated messages) or a transcript; None for a plain recording.
    text: Mapped[str | None] = mapped_column(String(5000), default=None)
    #: espeak-ng voice used for generated messages.
    voice: Mapped[str | None] = mapped_column(String(32), default=None)
    #: ready (audio stored) | pending (text waiting for text-to-speech)
    status: Mapped[str] = mapped_column(String(8), default="ready")
    #: uploaded | generated
    origin: Mapped[str] = mapped_column(String(16), default="uploaded")
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    duration: Mapped[float | None] = mapped_column(Float, default=None)
    size: Mapped[int | None] = mapped_column(Integer, default=None)
    #: What was uploaded: WAV, MP3 or OGG (generated: WAV), and the original file name if given.
    source_format: Mapped[str | None] = mapped_column(String(8), default=None)
    filename: Mapped[str | None] = mapped_column(String(200), default=None)


# -- storage and use -------------------------------------------------------------------------------


class MessageStore:
    """Normalised message audio under ``<data_dir>/messages/<organization>/<sha256>.wav``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, organization_id: int, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError("bad message name")
        return self.root / str(int(organization_id)) / f"{sha256}.wav"

    def save(self, organization_id: int, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(organization_id, sha)
        if target.exists():
            return sha
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".msg-", dir=target.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
        return sha

    def read(self, organization_id: int, sha256: str) -> bytes:
        return self.path(organization_id, sha256).read_bytes()

    def discard(self, organization_id: int, sha256: str) -> None:
        self.path(organization_id, sha256).unlink(missing_ok=True)


def apply_audio(message: VoiceMessage, sha: str, audio, *, origin: str, filename: str | None = None) -> None:
    """Point ``message`` at stored audio (a ``provisioning.media.NormalisedAudio``)."""
    message.sha256, message.status, message.origin = sha, "ready", origin
    message.duration = round(audio.duration, 3)
    message.size = len(audio.data)
    message.source_format = audio.source.format
    message.filename = filename


async def generate(message: VoiceMessage, store: MessageStore | None) -> bool:
    """Speak ``message.text`` with espeak-ng and store it; without espeak-ng (or without a store)
    the message stays ``pending`` and False is returned. Other TTS failures raise MediaError."""
    from provisioning.media import TTSUnavailable, espeak_binary, text_to_speech

    if store is None or espeak_binary() is None:
        message.status, message.origin = "pending", "generated"
        return False
    try:
        audio = await asyncio.to_thread(text_to_speech, message.text or "", voice=message.voice or "sv")
    except TTSUnavailable:
        message.status, message.origin = "pending", "generated"
        return False
    sha = await asyncio.to_thread(store.save, message.organization_id, audio.data)
    apply_audio(message, sha, audio, origin="generated")
    return True


async def message_usage(session, organization_id: int, message_ids: list[int] | None = None) -> dict[int, list[str]]:
    """Where each voice message is used, in words an admin understands ("menu 'Huvudmeny': greeting")."""
    from provisioning.model.groups import AnswerGroup
    from provisioning.model.menus import Menu, MenuOption
    from provisioning.model.schedules import Schedule, ScheduleEntry

    out: dict[int, list[str]] = {}

    def add(message_id: int | None, where: str) -> None:
        if message_id is not None and (message_ids is None or message_id in message_ids):
            out.setdefault(message_id, []).append(where)

    groups = dict((await session.execute(select(AnswerGroup.id, AnswerGroup.name).where(
        AnswerGroup.organization_id == organization_id))).all())
    menus = dict((await session.execute(select(Menu.id, Menu.name).where(
        Menu.organization_id == organization_id))).all())

    schedules = (await session.execute(select(Schedule).where(Schedule.organization_id == organization_id))).scalars()
    owners: dict[int, str] = {}
    for s in schedules:
        owner = ("the main number's calendar" if s.owner == "main" else
                 f"calendar of group '{groups.get(s.group_id)}'" if s.owner == "group" else
                 f"calendar of menu '{menus.get(s.menu_id)}'")
        owners[s.id] = owner
        add(s.override_message_id, f"{owner}: manual override")
        add(s.holidays_message_id, f"{owner}: public holidays")
    if owners:
        for e in (await session.execute(select(ScheduleEntry).where(
                ScheduleEntry.schedule_id.in_(list(owners))).order_by(ScheduleEntry.position))).scalars():
            add(e.message_id, f"{owners[e.schedule_id]}: entry '{e.name}'")
            if e.then_kind == "message" and (e.then_target or "").isdigit():
                add(int(e.then_target), f"{owners[e.schedule_id]}: after entry '{e.name}'")
    for g in (await session.execute(select(AnswerGroup).where(AnswerGroup.organization_id == organization_id))).scalars():
        add(g.queue_message_id, f"queue of group '{g.name}'")
        if g.no_answer_kind == "message" and (g.no_answer_target or "").isdigit():
            add(int(g.no_answer_target), f"group '{g.name}': no answer")
    for m in (await session.execute(select(Menu).where(Menu.organization_id == organization_id))).scalars():
        add(m.message_id, f"menu '{m.name}': greeting")
        add(m.invalid_message_id, f"menu '{m.name}': invalid entry")
        for label, kind, target in (("no choice", m.timeout_kind, m.timeout_target),
                                    ("final", m.final_kind, m.final_target)):
            if kind == "message" and (target or "").isdigit():
                add(int(target), f"menu '{m.name}': {label}")
    if menus:
        for o in (await session.execute(select(MenuOption).where(
                MenuOption.menu_id.in_(list(menus)), MenuOption.kind == "message"))).scalars():
            if (o.target or "").isdigit():
                add(int(o.target), f"menu '{menus[o.menu_id]}': key {o.key}")
    return out
