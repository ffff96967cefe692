"""Users of an organisation: the people desk phones are bound to, and who log in to "Mina sidor".

A user is never hard-deleted by the deactivation date: ``removed_at`` is set, the phones are
unbound and memberships ended, and the row (with its numbers and audit history) stays.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, Boolean, Date, DateTime, Enum, ForeignKey, String, UniqueConstraint, false, text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from provisioning.model.base import Base, Timestamped, Versioned

if TYPE_CHECKING:
    from provisioning.model.devices import Line
    from provisioning.model.numbers import Number
    from provisioning.model.tenancy import Organization


class CallerId(enum.StrEnum):
    """Which number outgoing calls show (U3)."""

    fixed = "fixed"      # the user's primary fixed number
    mobile = "mobile"    # the user's (first) mobile number
    main = "main"        # the organisation's main number
    hidden = "hidden"    # no number shown


class User(Versioned, Timestamped, Base):
    __tablename__ = "user"
    __table_args__ = (UniqueConstraint("organization_id", "extension", name="uq_user_org_extension"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    extension: Mapped[str | None] = mapped_column(String(16), default=None)
    #: Custom login name, lowercase, unique on the platform; None means "the primary number".
    username: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    #: argon2 hash of the web password ("Mina sidor"); None: the user cannot log in yet.
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    softphone_licence: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    caller_id: Mapped[CallerId] = mapped_column(Enum(CallerId, native_enum=False, length=16),
                                                default=CallerId.fixed, server_default="fixed")
    #: Search keywords colleagues and the switchboard find the user by (A5), a JSON list.
    keywords: Mapped[list] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    #: casefolded name, username, e-mail and keywords: one portable column to search in.
    search_text: Mapped[str] = mapped_column(String(2000), default="", server_default="")
    #: The date on which the user is removed (A6), in the organisation's time zone.
    deactivation_date: Mapped[date | None] = mapped_column(Date, default=None)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None, index=True)
    #: Profile picture (U6): content hash naming the stored file, and its media type.
    picture_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    picture_type: Mapped[str | None] = mapped_column(String(32), default=None)

    # Feature flags (A8), see provisioning.features for the group mapping.
    voicemail: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    voicemail_operator_option: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    call_waiting_fixed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    call_waiting_mobile: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    diversion_affects_mobile: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    forwarding_affects_mobile: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    show_mobile_outside_hours: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    organization: Mapped["Organization"] = relationship(back_populates="users", lazy="raise")
    numbers: Mapped[list["Number"]] = relationship(back_populates="user", lazy="raise")
    lines: Mapped[list["Line"]] = relationship(back_populates="user", lazy="raise")

    def refresh_search_text(self) -> None:
        parts = [self.name, self.username or "", self.email or "", *("kw:" + k for k in self.keywords or [])]
        text = " ".join(p.casefold() for p in parts if p)[:2000]
        if text != self.search_text:
            self.search_text = text
