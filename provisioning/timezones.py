"""Time zones as phones want them: a standard offset, or a POSIX TZ rule with the DST switch dates.

Phones have no tz database; most want either a fixed offset plus "automatic DST" for a named
zone, or a POSIX TZ string (``CET-1CEST,M3.5.0,M10.5.0/3``). The POSIX rule is read from the
footer of the zone's TZif file, which the tz database writes for exactly this purpose, so it is
right for every zone and changes when the rules do.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path


def _tzif_bytes(zone: str) -> bytes:
    for root in zoneinfo.TZPATH:
        candidate = Path(root) / zone
        if candidate.is_file():
            return candidate.read_bytes()
    return importlib.resources.files("tzdata.zoneinfo").joinpath(*zone.split("/")).read_bytes()


@functools.lru_cache(maxsize=64)
def posix_tz(zone: str) -> str:
    """The POSIX TZ rule of an IANA zone, e.g. ``Europe/Stockholm`` -> ``CET-1CEST,M3.5.0,M10.5.0/3``."""
    zoneinfo.ZoneInfo(zone)  # raises for unknown zones
    data = _tzif_bytes(zone)
    if not data.startswith(b"TZif") or data[4:5] < b"2":
        raise ValueError(f"no POSIX rule for {zone}: TZif version 1 file")
    footer = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return footer.decode("ascii")


def standard_offset(zone: str, year: int = 2026) -> timedelta:
    """UTC offset in winter (northern) / the zone's smallest offset of the year: its standard time."""
    tz = zoneinfo.ZoneInfo(zone)
    offsets = [datetime(year, month, 15, 12, tzinfo=tz).utcoffset() for month in (1, 7)]
    return min(o for o in offsets if o is not None)


def offset_hours(zone: str) -> str:
    """Standard offset written as most phone UIs do: ``+1``, ``+5.5``, ``-3.5``, ``0``."""
    hours = standard_offset(zone).total_seconds() / 3600
    return "0" if hours == 0 else f"{hours:+.2f}".rstrip("0").rstrip(".")


def observes_dst(zone: str, year: int = 2026) -> bool:
    tz = zoneinfo.ZoneInfo(zone)
    return any(datetime(year, m, 15, 12, tzinfo=tz).dst() for m in range(1, 13))


@dataclass(frozen=True)
class DstSwitch:
    """One DST change as phones describe it: the ``week``-th ``weekday`` of ``month`` at ``hour``
    local time; week 5 means the last one; weekday 0 is Sunday (POSIX ``Mm.w.d/h``)."""

    month: int
    week: int
    weekday: int
    hour: int

    @property
    def last_in_month(self) -> bool:
        return self.week == 5


_SWITCH = re.compile(r"^M(\d{1,2})\.([1-5])\.([0-6])(?:/(-?\d+)(?::\d+){0,2})?$")


def dst_switches(zone: str) -> tuple[DstSwitch, DstSwitch] | None:
    """(start, end) of DST in the zone's current POSIX rule; None without DST or for the rare
    day-of-year rule forms (``Jn``, ``n``) that no zone our customers use has."""
    if not observes_dst(zone):
        return None
    parts = posix_tz(zone).split(",")
    if len(parts) != 3:
        return None
    switches = []
    for text in parts[1:]:
        match = _SWITCH.match(text)
        if not match:
            return None
        hour = int(match[4]) if match[4] is not None else 2  # POSIX default: 02:00
        switches.append(DstSwitch(int(match[1]), int(match[2]), int(match[3]), hour))
    return switches[0], switches[1]
