"""Telephone numbers, always stored in E.164 and unique on the platform."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from sqlalchemy import Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from provisioning.model.base import Base, Timestamped

if TYPE_CHECKING:
    from provisioning.model.tenancy import Organization
    from provisioning.model.users import User


class NumberRole(enum.StrEnum):
    main = "main"          # the organisation's main (switchboard) number
    primary = "primary"    # a user's fixed primary number
    mobile = "mobile"      # a user's mobile number


class Number(Timestamped, Base):
    __tablename__ = "number"

    id: Mapped[int] = mapped_column(primary_key=True)
    e164: Mapped[str] = mapped_column(String(16), unique=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    role: Mapped[NumberRole] = mapped_column(Enum(NumberRole, native_enum=False, length=16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True, default=None)

    organization: Mapped["Organization"] = relationship(back_populates="numbers", lazy="raise")
    user: Mapped["User | None"] = relationship(back_populates="numbers", lazy="raise")
