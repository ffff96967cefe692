"""The fetch audit trail: every config request a device (or anyone) made, and what it got.

Answers "who fetched this phone's config, from where, and did they get the secrets?" after an
incident. Written in batches off the request path (provisioning/fetch_audit.py); never holds file
contents or credentials.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from provisioning.model.base import Base, utcnow


class ConfigFetch(Base):
    __tablename__ = "config_fetch"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    #: The device the request named (None: it named none, e.g. a probe for an unknown path).
    mac: Mapped[str | None] = mapped_column(String(12), index=True, default=None)
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE"), index=True, default=None)
    path: Mapped[str] = mapped_column(String(255))
    #: http | https | tftp
    transport: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512), default=None)
    #: The answer: an HTTP status (TFTP answers are mapped to the HTTP equivalent).
    status: Mapped[int] = mapped_column(Integer)
    #: Why it was refused, or which variant was served (e.g. "bootstrap without secrets").
    reason: Mapped[str] = mapped_column(String(200), default="")
    #: How the device proved who it is: digest | certificate | first-contact | network | none
    auth: Mapped[str] = mapped_column(String(16), default="none")
