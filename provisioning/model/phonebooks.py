"""External contacts: shared phonebooks of an organisation, granted to users by membership.

A desk phone shows, as its vendor's remote phonebook, the contacts of every phonebook granted
to one of the users on its lines (seed 004, "Externa kontakter").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from provisioning.model.base import Base, Timestamped, Versioned

if TYPE_CHECKING:
    from provisioning.model.users import User


class Phonebook(Versioned, Timestamped, Base):
    __tablename__ = "phonebook"
    __table_args__ = (UniqueConstraint("organization_id", "name", name="uq_phonebook_org_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))

    contacts: Mapped[list["Contact"]] = relationship(
        back_populates="phonebook", lazy="raise", cascade="all, delete-orphan", order_by="Contact.name"
    )
    members: Mapped[list["PhonebookMember"]] = relationship(
        back_populates="phonebook", lazy="raise", cascade="all, delete-orphan"
    )


class Contact(Versioned, Timestamped, Base):
    __tablename__ = "contact"

    id: Mapped[int] = mapped_column(primary_key=True)
    phonebook_id: Mapped[int] = mapped_column(ForeignKey("phonebook.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    number: Mapped[str] = mapped_column(String(32))
    mobile: Mapped[str | None] = mapped_column(String(32), default=None)
    company: Mapped[str | None] = mapped_column(String(200), default=None)

    phonebook: Mapped["Phonebook"] = relationship(back_populates="contacts", lazy="raise")


class PhonebookMember(Base):
    """Grants a phonebook to a user (the seed's "Gruppmedlemskap")."""

    __tablename__ = "phonebook_member"

    phonebook_id: Mapped[int] = mapped_column(ForeignKey("phonebook.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, index=True)

    phonebook: Mapped["Phonebook"] = relationship(back_populates="members", lazy="raise")
    user: Mapped["User"] = relationship(lazy="raise")
