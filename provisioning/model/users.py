"""Users of an organisation: the people desk phones are bound to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from provisioning.model.base import Base, Timestamped

if TYPE_CHECKING:
    from provisioning.model.devices import Line
    from provisioning.model.numbers import Number
    from provisioning.model.tenancy import Organization


class User(Timestamped, Base):
    __tablename__ = "user"
    __table_args__ = (UniqueConstraint("organization_id", "extension", name="uq_user_org_extension"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    extension: Mapped[str | None] = mapped_column(String(16), default=None)

    organization: Mapped["Organization"] = relationship(back_populates="users", lazy="raise")
    numbers: Mapped[list["Number"]] = relationship(back_populates="user", lazy="raise")
    lines: Mapped[list["Line"]] = relationship(back_populates="user", lazy="raise")
