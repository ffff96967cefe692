"""Answer groups (svarsgrupper): several users answer one number; each member logs in or out (U5).

Only what the self-service log in/out and the number ownership need lives here; distribution,
schedules and queue announcements belong to the routing model.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from provisioning.model.base import Base, Timestamped, Versioned, utcnow

if TYPE_CHECKING:
    from provisioning.model.numbers import Number
    from provisioning.model.users import User


class AnswerGroup(Versioned, Timestamped, Base):
    __tablename__ = "answer_group"
    __table_args__ = (UniqueConstraint("organization_id", "name", name="uq_answer_group_org_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))

    members: Mapped[list["GroupMember"]] = relationship(
        back_populates="group", lazy="raise", cascade="all, delete-orphan", order_by="GroupMember.user_id")
    numbers: Mapped[list["Number"]] = relationship(back_populates="group", lazy="raise")


class GroupMember(Base):
    __tablename__ = "group_member"

    group_id: Mapped[int] = mapped_column(ForeignKey("answer_group.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, index=True)
    #: Whether the member currently takes the group's calls (IN/UT-loggning).
    logged_in: Mapped[bool] = mapped_column(Boolean, default=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    group: Mapped["AnswerGroup"] = relationship(back_populates="members", lazy="raise")
    user: Mapped["User"] = relationship(lazy="raise")
