"""Sightings: every device deskprov has seen on the network, bound or not.

One row per MAC, upserted by discovery (SIP plug-and-play, mDNS, SNMP) and by the phone-facing
listeners. The technician's inbox is the sightings whose MAC is not bound to a user. Kept apart
from ``device`` on purpose: a sighting changes nothing a phone is served, so it must never
invalidate a cached config or bump a device's version.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from provisioning.model.base import Base, utcnow


class Sighting(Base):
    __tablename__ = "sighting"

    mac: Mapped[str] = mapped_column(String(12), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    #: how it was last seen: pnp | mdns | snmp | http | https | tftp
    how: Mapped[str] = mapped_column(String(8))
    ip: Mapped[str | None] = mapped_column(String(45), default=None)
    #: the device's SIP port when it told us (PnP), for resync NOTIFYs
    sip_port: Mapped[int | None] = mapped_column(default=None)
    vendor: Mapped[str | None] = mapped_column(String(32), default=None)
    model: Mapped[str | None] = mapped_column(String(64), default=None)
    firmware: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(512), default=None)
    times_seen: Mapped[int] = mapped_column(default=1)
