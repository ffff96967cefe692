"""Organisations (tenants): the customer companies of the hosted PBX."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from provisioning.model.base import Base, Timestamped, Versioned
from provisioning.secretbox import EncryptedText

if TYPE_CHECKING:
    from provisioning.model.devices import Device
    from provisioning.model.numbers import Number
    from provisioning.model.users import User


class Organization(Versioned, Timestamped, Base):
    __tablename__ = "organization"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    #: The SIP domain phones register to (registrar and, unless set, outbound proxy).
    sip_domain: Mapped[str] = mapped_column(String(253))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Stockholm")
    language: Mapped[str] = mapped_column(String(8), default="sv")
    outbound_proxy: Mapped[str | None] = mapped_column(String(253), default=None)
    sip_port: Mapped[int] = mapped_column(default=5060)
    #: udp | tcp | tls
    sip_transport: Mapped[str] = mapped_column(String(8), default="udp")
    voicemail_number: Mapped[str] = mapped_column(String(32), default="*97")
    #: Prefix dialled by a BLF key to pick up the watched colleague's ringing call.
    pickup_code: Mapped[str] = mapped_column(String(16), default="*8")
    #: Feature code a "group log in/out" key dials to toggle the user's answer-group membership.
    group_toggle_code: Mapped[str] = mapped_column(String(16), default="*45")
    #: NTP server for this organisation's devices; empty means the platform default.
    ntp_server: Mapped[str | None] = mapped_column(String(253), default=None)
    #: Voice VLAN the devices tag their traffic with; None leaves VLAN off.
    vlan: Mapped[int | None] = mapped_column(default=None)
    #: Password of the devices' own admin web page / menu (a secret, like the SIP passwords).
    device_admin_password: Mapped[str] = mapped_column(EncryptedText, default="")
    #: Networks (comma-separated CIDRs) devices of this organisation may fetch their files from;
    #: empty: anywhere (they still authenticate).
    allowed_networks: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: Networks where TFTP (which has no authentication) may deliver files with SIP secrets;
    #: empty: TFTP never carries a secret for this organisation.
    tftp_secret_networks: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: Minutes a freshly bound device may fetch its files once without credentials; None: the
    #: server's setting.
    first_contact_minutes: Mapped[int | None] = mapped_column(default=None)
    #: Encrypt the devices' config files where the vendor supports it (provisioning/config_crypto.py).
    encrypt_configs: Mapped[bool] = mapped_column(default=False, server_default=false())

    users: Mapped[list["User"]] = relationship(back_populates="organization", lazy="raise")
    numbers: Mapped[list["Number"]] = relationship(back_populates="organization", lazy="raise")
    devices: Mapped[list["Device"]] = relationship(back_populates="organization", lazy="raise")
