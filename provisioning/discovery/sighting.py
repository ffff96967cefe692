"""One observation of a device on the LAN, whatever the discovery source.

Every discovery module (SNMP scan, SIP plug-and-play, mDNS, HTTP/TFTP requests) reports what it
saw as a :class:`Sighting`, so the device inbox has a single shape to merge, de-duplicate (by MAC
when there is one, else by address) and show.  Keep this type small: anything source-specific goes
into ``details``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from provisioning.mac import normalize_mac

__all__ = ["HOWS", "Sighting"]

#: The discovery sources; ``how`` must be one of these so the inbox can filter and rank them.
HOWS = frozenset({"snmp", "pnp", "mdns", "http", "tftp"})


@dataclass(frozen=True)
class Sighting:
    """A device seen at ``ip`` by ``how``; ``None`` means "not told", never "empty".

    ``mac`` is stored canonical (12 lowercase hex digits); a value that is not a device MAC raises
    :class:`provisioning.mac.MacError`, so a caller holding an untrusted MAC should check it first.
    ``vendor`` uses the vendor plugin names (``"yealink"``, ``"grandstream"``, ``"cisco"`` ...).
    ``details`` is read-only and left out of the hash (it is a mapping), but compared for equality.
    """

    mac: str | None
    ip: str
    how: str
    vendor: str | None
    model: str | None
    firmware: str | None
    name: str | None = None
    port: int | None = None
    details: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.how not in HOWS:
            raise ValueError(f"unknown discovery source {self.how!r} (expected one of {sorted(HOWS)})")
        # Canonical spellings, so two sightings of one device compare equal whichever source saw it.
        object.__setattr__(self, "ip", str(ipaddress.ip_address(self.ip)))
        if self.mac is not None:
            object.__setattr__(self, "mac", normalize_mac(self.mac))
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"port out of range: {self.port}")
        object.__setattr__(self, "details", MappingProxyType({str(k): str(v) for k, v in self.details.items()}))
