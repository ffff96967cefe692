"""Desk phones, DECT bases and ATAs; their lines (accounts) and programmed keys.

A device is bound to users through its lines: a desk phone's line 1 is its owner's account,
an ATA's port N or a DECT base's handset N is line N. Keys are stored vendor-neutral and
mapped to each vendor's codes by the vendor plugin when rendering.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import DateTime, Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from provisioning.model.base import Base, Timestamped, Versioned
from provisioning.secretbox import EncryptedText

if TYPE_CHECKING:
    from provisioning.model.tenancy import Organization
    from provisioning.model.users import User


class KeyType(enum.StrEnum):
    line = "line"
    blf = "blf"
    speed_dial = "speed_dial"
    park = "park"
    dtmf = "dtmf"
    voicemail = "voicemail"
    group_toggle = "group_toggle"


#: Key types whose target is a telephone number or extension.
NUMBER_TARGET_KEYS = frozenset({KeyType.blf, KeyType.speed_dial})


class Device(Versioned, Timestamped, Base):
    __tablename__ = "device"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: 12 lowercase hex digits, no separators: the one canonical spelling.
    mac: Mapped[str] = mapped_column(String(12), unique=True)
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organization.id", ondelete="CASCADE"), index=True, default=None
    )
    #: Vendor plugin name (``yealink``...) and catalogue model name; learnt from the first
    #: request when the device was registered by MAC alone.
    vendor: Mapped[str | None] = mapped_column(String(32), default=None)
    model: Mapped[str | None] = mapped_column(String(64), default=None)
    firmware: Mapped[str | None] = mapped_column(String(64), default=None)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    last_ip: Mapped[str | None] = mapped_column(String(45), default=None)
    last_user_agent: Mapped[str | None] = mapped_column(String(512), default=None)
    #: The device's own HTTP digest credentials for fetching its files (provisioning/device_auth.py),
    #: written into its config; the password is stored sealed.
    http_username: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    http_password: Mapped[str | None] = mapped_column(EncryptedText, default=None)
    credentials_issued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    #: Until when a freshly bound device may fetch its files once without credentials (None: no window).
    first_contact_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    #: The device's own key for vendor config encryption (provisioning/config_crypto.py), sealed.
    config_key: Mapped[str | None] = mapped_column(EncryptedText, default=None)
    #: When the device was served the plain file that carries its config key; from then on its
    #: secret-bearing files are served encrypted. None: not delivered yet (or a new key).
    config_key_delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    #: Encrypt this device's config files (where its vendor can): None follows the organisation.
    encrypt_configs: Mapped[bool | None] = mapped_column(default=None)

    organization: Mapped["Organization | None"] = relationship(back_populates="devices", lazy="raise")
    lines: Mapped[list["Line"]] = relationship(
        back_populates="device", lazy="raise", cascade="all, delete-orphan", order_by="Line.index"
    )
    keys: Mapped[list["Key"]] = relationship(
        back_populates="device", lazy="raise", cascade="all, delete-orphan", order_by="(Key.module, Key.slot)"
    )


class Line(Timestamped, Base):
    """One SIP account on a device, registered for one user."""

    __tablename__ = "line"
    __table_args__ = (UniqueConstraint("device_id", "index", name="uq_line_device_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(default=1)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    #: SIP digest credentials of this registration; generated unless given.
    auth_username: Mapped[str] = mapped_column(String(64), unique=True)
    password: Mapped[str] = mapped_column(EncryptedText)

    device: Mapped["Device"] = relationship(back_populates="lines", lazy="raise")
    user: Mapped["User"] = relationship(back_populates="lines", lazy="raise")


class Key(Timestamped, Base):
    """A programmed key: ``module`` 0 is the phone itself, 1.. its expansion modules."""

    __tablename__ = "key"
    __table_args__ = (UniqueConstraint("device_id", "module", "slot", name="uq_key_device_module_slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"), index=True)
    module: Mapped[int] = mapped_column(default=0)
    slot: Mapped[int]
    type: Mapped[KeyType] = mapped_column(Enum(KeyType, native_enum=False, length=16))
    #: Number (E.164) for blf/speed_dial, orbit for park, digits for dtmf; empty for line.
    target: Mapped[str | None] = mapped_column(String(64), default=None)
    label: Mapped[str | None] = mapped_column(String(64), default=None)
    #: Which of the device's lines the key uses.
    line_index: Mapped[int] = mapped_column(default=1)

    device: Mapped["Device"] = relationship(back_populates="keys", lazy="raise")
