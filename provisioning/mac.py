"""MAC addresses: one canonical spelling (12 lowercase hex digits) and the vendor spellings."""

from __future__ import annotations

import re

_SEPARATED = re.compile(r"^[0-9A-Fa-f]{2}([:\-.]?)[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}$")
_CISCO_DOTTED = re.compile(r"^[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}$")
_SEPARATOR = re.compile(r"[^0-9a-f]")


class MacError(ValueError):
    """Not a MAC address."""


def normalize_mac(value: str) -> str:
    """``80:5E:C0:AA:BB:01``, ``80-5e-c0-aa-bb-01``, ``805e.c0aa.bb01``, ``805EC0AABB01`` -> ``805ec0aabb01``.

    Broadcast, all-zero and multicast (group bit set) addresses are refused: no phone has one.
    """
    text = value.strip() if isinstance(value, str) else ""
    if not (_SEPARATED.match(text) or _CISCO_DOTTED.match(text)):
        raise MacError(f"not a MAC address: {value!r} (expected six hex octets, e.g. 80:5E:C0:AA:BB:01)")
    mac = text.lower()
    if len(mac) != 12:  # separated: drop the separators (most calls have none: spared a regex)
        mac = _SEPARATOR.sub("", mac)
    if mac in ("000000000000", "ffffffffffff") or int(mac[1], 16) & 1:
        raise MacError(f"not a device MAC address: {value!r} (zero, broadcast or multicast)")
    return mac


def is_mac(value: str) -> bool:
    try:
        normalize_mac(value)
    except MacError:
        return False
    return True


def oui(mac: str) -> str:
    """The first three octets, lowercase hex, of a canonical MAC."""
    return mac[:6]


def colon_mac(mac: str, upper: bool = False) -> str:
    text = ":".join(mac[i : i + 2] for i in range(0, 12, 2))
    return text.upper() if upper else text
