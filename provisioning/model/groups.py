"""Answer groups (svarsgrupper, A10): several users answer one number or one menu choice.

The columns follow :mod:`provisioning.routing.strategies` ("Database mapping"): the distribution
strategy and times, the no-answer destination (a ``kind``/``target`` pair as in
:mod:`provisioning.model.menus`), and the queue in front of the group with its "kösvar"
announcement. Members are ordered (``position``), may ring shorter or longer than the group's
ring time, and log in and out themselves (U5). Whether a member is on a call is live state the
database does not know; whether they are diverted follows their active diversion.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint, false, true
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
    #: The "group id" appended to the presented caller number (C1), 1-6 digits; None: by position.
    group_code: Mapped[str | None] = mapped_column(String(6), default=None)
    #: A strategies.Strategy value: ring_all | linear | round_robin | longest_idle | fewest_calls | random
    strategy: Mapped[str] = mapped_column(String(16), default="ring_all", server_default="ring_all")
    #: Seconds each member rings by default.
    ring_time: Mapped[int] = mapped_column(Integer, default=20, server_default="20")
    #: Seconds after which an unanswered call leaves the group for the no-answer destination.
    no_answer_time: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    #: Start another round while the no-answer time lasts.
    repeat: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    retry_delay: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    no_answer_kind: Mapped[str] = mapped_column(String(16), default="hangup", server_default="hangup")
    no_answer_target: Mapped[str | None] = mapped_column(String(32), default=None)
    #: Queue ("kösvar"): callers wait for a free member, hearing the announcement.
    queue_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    queue_max_callers: Mapped[int | None] = mapped_column(Integer, default=None)
    queue_max_wait: Mapped[int | None] = mapped_column(Integer, default=None)
    queue_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("voice_message.id", ondelete="RESTRICT"), index=True, default=None)
    queue_first_announcement: Mapped[int | None] = mapped_column(Integer, default=None)
    queue_announce_interval: Mapped[int | None] = mapped_column(Integer, default=None)
    queue_announce_position: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    queue_join_empty: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    members: Mapped[list["GroupMember"]] = relationship(
        back_populates="group", lazy="raise", cascade="all, delete-orphan",
        order_by="(GroupMember.position, GroupMember.user_id)")
    numbers: Mapped[list["Number"]] = relationship(back_populates="group", lazy="raise")


class GroupMember(Base):
    __tablename__ = "group_member"

    group_id: Mapped[int] = mapped_column(ForeignKey("answer_group.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, index=True)
    #: The member order (linear/round robin and ties), 0-based.
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Seconds this member rings; None: the group's ring time.
    ring_time: Mapped[int | None] = mapped_column(Integer, default=None)
    #: Whether the member currently takes the group's calls (IN/UT-loggning).
    logged_in: Mapped[bool] = mapped_column(Boolean, default=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    group: Mapped["AnswerGroup"] = relationship(back_populates="members", lazy="raise")
    user: Mapped["User"] = relationship(lazy="raise")
