"""Diversions (hänvisning, U4/A3): a user is away for a reason until an end time.

A diversion is active while ``starts_at <= now < ends_at`` (no end: until ended) and it has not
been ended early; it expires by itself, evaluated against the clock the caller passes.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import DateTime, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from provisioning.clock import aware
from provisioning.model.base import Base, Timestamped, Versioned


class DiversionReason(enum.StrEnum):
    lunch = "lunch"
    meeting = "meeting"
    away = "away"
    vacation = "vacation"
    sick = "sick"
    other = "other"


class DiversionTarget(enum.StrEnum):
    voicemail = "voicemail"
    colleague = "colleague"
    switchboard = "switchboard"
    message = "message"


class Diversion(Versioned, Timestamped, Base):
    __tablename__ = "diversion"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    reason: Mapped[DiversionReason] = mapped_column(Enum(DiversionReason, native_enum=False, length=16))
    target: Mapped[DiversionTarget] = mapped_column(Enum(DiversionTarget, native_enum=False, length=16))
    #: E.164 of the colleague (target=colleague).
    target_number: Mapped[str | None] = mapped_column(String(16), default=None)
    #: What callers are told (target=message), e.g. "Tillbaka måndag".
    message: Mapped[str | None] = mapped_column(String(200), default=None)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    #: "user" (self-service) or "admin" (an organisation admin or provider staff), and who.
    set_by: Mapped[str] = mapped_column(String(8))
    set_by_name: Mapped[str] = mapped_column(String(200))

    def is_active(self, now: datetime) -> bool:
        if self.ended_at is not None and aware(self.ended_at) <= now:
            return False
        if aware(self.starts_at) > now:
            return False
        return self.ends_at is None or now < aware(self.ends_at)

    def state(self, now: datetime) -> str:
        """scheduled | active | expired | ended"""
        if self.ended_at is not None and aware(self.ended_at) <= now:
            return "ended"
        if aware(self.starts_at) > now:
            return "scheduled"
        if self.ends_at is not None and now >= aware(self.ends_at):
            return "expired"
        return "active"
