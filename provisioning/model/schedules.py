"""Calendars (A11) on the main number, an answer group or a menu: ordered entries, first match wins.

Rows map 1:1 onto :mod:`provisioning.routing.schedule` (see its "Database mapping"): a
``schedule`` per owner with the manual override, and ``schedule_entry`` rows ordered by
``position`` (0-based; moving an entry rewrites the positions). Entries refer to their voice
message by id. Public holidays added for a year are ordinary dated entries marked ``holiday``;
the schedule remembers how they were asked for (country, action, message) so the organisation
file can write them back as one ``holidays:`` line.
"""

from __future__ import annotations

from datetime import date, datetime, time
from sqlalchemy import Boolean, CheckConstraint, Date, DateTime, ForeignKey, Integer, String, Time, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from provisioning.model.base import Base, Timestamped, Versioned


class ScheduleOwner:
    main = "main"
    group = "group"
    menu = "menu"


class Schedule(Versioned, Timestamped, Base):
    __tablename__ = "schedule"
    __table_args__ = (
        CheckConstraint(
            "(owner = 'main' AND group_id IS NULL AND menu_id IS NULL)"
            " OR (owner = 'group' AND group_id IS NOT NULL AND menu_id IS NULL)"
            " OR (owner = 'menu' AND menu_id IS NOT NULL AND group_id IS NULL)",
            name="one_owner",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    #: main | group | menu
    owner: Mapped[str] = mapped_column(String(8))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("answer_group.id", ondelete="CASCADE"), unique=True,
                                                 default=None)
    menu_id: Mapped[int | None] = mapped_column(ForeignKey("menu.id", ondelete="CASCADE"), unique=True, default=None)
    #: Manual override ("closed now until ..."): ignored once override_until has passed.
    override_action: Mapped[str | None] = mapped_column(String(8), default=None)
    override_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("voice_message.id", ondelete="RESTRICT"), index=True, default=None)
    override_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    #: How public holidays were last added (for the organisation file's ``holidays:``); None: never.
    holidays_country: Mapped[str | None] = mapped_column(String(2), default=None)
    holidays_action: Mapped[str | None] = mapped_column(String(8), default=None)
    holidays_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("voice_message.id", ondelete="RESTRICT"), index=True, default=None)

    entries: Mapped[list["ScheduleEntry"]] = relationship(
        back_populates="schedule", lazy="raise", cascade="all, delete-orphan",
        order_by="(ScheduleEntry.position, ScheduleEntry.id)")


class ScheduleEntry(Base):
    __tablename__ = "schedule_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedule.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(100))
    #: open | closed
    action: Mapped[str] = mapped_column(String(8))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("voice_message.id", ondelete="RESTRICT"), index=True,
                                                   default=None)
    date_first: Mapped[date | None] = mapped_column(Date, default=None)
    date_last: Mapped[date | None] = mapped_column(Date, default=None)
    #: "mon,tue,..." (empty: none)
    weekdays: Mapped[str] = mapped_column(String(32), default="", server_default="")
    time_from: Mapped[time | None] = mapped_column(Time, default=None)
    time_to: Mapped[time | None] = mapped_column(Time, default=None)
    #: Where a Closed entry's calls go after the message (None: hang up); a destination pair.
    then_kind: Mapped[str | None] = mapped_column(String(16), default=None)
    then_target: Mapped[str | None] = mapped_column(String(32), default=None)
    #: Added by "public holidays for a year".
    holiday: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    schedule: Mapped["Schedule"] = relationship(back_populates="entries", lazy="raise")
