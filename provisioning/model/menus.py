"""IVR menus (A12): a greeting, where each key goes, silence and wrong-key handling.

Destinations (a key's, the no-choice and the final one) are stored as ``kind`` plus ``target``:
the id of a user, group, menu or voice message (``voicemail``: the user whose box answers) as
text, an E.164 number for ``external``, nothing for ``repeat`` and ``hangup`` — the shape of
:class:`provisioning.routing.menus.Destination` with database ids as references.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from provisioning.model.base import Base, Timestamped, Versioned

if TYPE_CHECKING:
    from provisioning.model.numbers import Number


class Menu(Versioned, Timestamped, Base):
    __tablename__ = "menu"
    __table_args__ = (UniqueConstraint("organization_id", "name", name="uq_menu_org_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    #: The greeting (RESTRICT: a message in use cannot be deleted).
    message_id: Mapped[int] = mapped_column(ForeignKey("voice_message.id", ondelete="RESTRICT"), index=True)
    #: Seconds to wait for a key after the greeting.
    timeout: Mapped[float] = mapped_column(Float, default=5.0)
    #: Wrong keys and silences allowed before the final destination.
    retries: Mapped[int] = mapped_column(Integer, default=2)
    invalid_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("voice_message.id", ondelete="RESTRICT"), index=True, default=None)
    #: After the last silence (None: the final destination).
    timeout_kind: Mapped[str | None] = mapped_column(String(16), default=None)
    timeout_target: Mapped[str | None] = mapped_column(String(32), default=None)
    #: After the last failure: hangup unless set.
    final_kind: Mapped[str] = mapped_column(String(16), default="hangup")
    final_target: Mapped[str | None] = mapped_column(String(32), default=None)

    options: Mapped[list["MenuOption"]] = relationship(
        back_populates="menu", lazy="raise", cascade="all, delete-orphan", order_by="MenuOption.key")
    numbers: Mapped[list["Number"]] = relationship(back_populates="menu", lazy="raise")


class MenuOption(Base):
    __tablename__ = "menu_option"

    menu_id: Mapped[int] = mapped_column(ForeignKey("menu.id", ondelete="CASCADE"), primary_key=True)
    #: 0-9, * or #
    key: Mapped[str] = mapped_column(String(1), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str | None] = mapped_column(String(32), default=None)

    menu: Mapped["Menu"] = relationship(back_populates="options", lazy="raise")
