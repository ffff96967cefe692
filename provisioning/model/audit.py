"""The audit log: every admin and self-service change, who made it, when, before and after.

No foreign keys on purpose: the history outlives the users, organisations and objects it
describes. ``before``/``after`` are the API representations (JSON), which never hold secrets.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from provisioning.model.base import Base


class AuditEntry(Base):
    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    #: user | super_admin | system | cli
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(default=None)
    actor_name: Mapped[str] = mapped_column(String(200))
    organization_id: Mapped[int | None] = mapped_column(default=None, index=True)
    #: create | update | delete | action names such as login, logout, password_change
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(64), default=None)
    before: Mapped[str | None] = mapped_column(Text, default=None)
    after: Mapped[str | None] = mapped_column(Text, default=None)
