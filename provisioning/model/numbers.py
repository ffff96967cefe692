"""Telephone numbers, always stored in E.164, unique on the platform, with exactly one owner.

The owner is a user (primary fixed number or a mobile), an answer group, a menu, or the
organisation itself (its main number); a check constraint keeps the role and the owner columns
consistent. The main number may be *answered by* one group or menu (``group_id``/``menu_id`` on
the main number's row): the switchboard group or the main menu takes its calls.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from provisioning.model.base import Base, Timestamped

if TYPE_CHECKING:
    from provisioning.model.groups import AnswerGroup
    from provisioning.model.menus import Menu
    from provisioning.model.tenancy import Organization
    from provisioning.model.users import User


class NumberRole(enum.StrEnum):
    main = "main"          # the organisation's main (switchboard) number
    primary = "primary"    # a user's fixed primary number
    mobile = "mobile"      # a user's mobile number
    group = "group"        # an answer group's number
    menu = "menu"          # a menu's (IVR's) number


class MobileProfile(enum.StrEnum):
    """A4: Mex = mobile subscription integrated with the PBX (then also the secondary number)."""

    mex = "mex"
    non_mex = "non_mex"


#: Exactly one owner matching the role; the main number may be answered by a group or a menu.
ONE_OWNER = (
    "(role IN ('primary', 'mobile') AND user_id IS NOT NULL AND group_id IS NULL AND menu_id IS NULL)"
    " OR (role = 'group' AND group_id IS NOT NULL AND user_id IS NULL AND menu_id IS NULL)"
    " OR (role = 'menu' AND menu_id IS NOT NULL AND user_id IS NULL AND group_id IS NULL)"
    " OR (role = 'main' AND user_id IS NULL AND (group_id IS NULL OR menu_id IS NULL))"
)


class Number(Timestamped, Base):
    __tablename__ = "number"
    __table_args__ = (
        CheckConstraint(
            ONE_OWNER,
            name="one_owner",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    e164: Mapped[str] = mapped_column(String(16), unique=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    role: Mapped[NumberRole] = mapped_column(Enum(NumberRole, native_enum=False, length=16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True, default=None)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("answer_group.id", ondelete="CASCADE"), index=True,
                                                 default=None)
    menu_id: Mapped[int | None] = mapped_column(ForeignKey("menu.id", ondelete="CASCADE"), index=True, default=None)
    #: Only for role=mobile.
    mobile_profile: Mapped[MobileProfile | None] = mapped_column(
        Enum(MobileProfile, native_enum=False, length=16), default=None)

    organization: Mapped["Organization"] = relationship(back_populates="numbers", lazy="raise")
    user: Mapped["User | None"] = relationship(back_populates="numbers", lazy="raise")
    group: Mapped["AnswerGroup | None"] = relationship(back_populates="numbers", lazy="raise")
    menu: Mapped["Menu | None"] = relationship(back_populates="numbers", lazy="raise")
