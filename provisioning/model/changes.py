"""The change log: which model entities each committed transaction touched.

Written in the same transaction as the change itself, so every server node (and a server
running beside a ``deskprov import`` on the same SQLite file) learns of it by reading the log,
and a crash can never leave a committed change that the caches do not hear about.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from provisioning.model.base import Base, utcnow


class ChangeEvent(Base):
    __tablename__ = "change_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the process that made the change (it has already applied it to its own cache)
    node: Mapped[str] = mapped_column(String(32))
    #: JSON list of [kind, value] pairs, e.g. [["device", 7], ["number", "+4685..."]]
    deps: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
