"""Injectable time (DESIGN principle 6): code that decides by the clock takes a ``Clock``.

Diversion end times, deactivation dates, session expiry and login throttling all ask a clock
passed in, never ``datetime.now()`` directly, so tests move time instead of waiting for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class ManualClock:
    """A clock that only moves when told to: for tests (and for replaying a day in a demo)."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime.now(timezone.utc)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._now += delta if delta is not None else timedelta(**kwargs)
        return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("ManualClock needs timezone-aware times")
        self._now = when


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes even for timezone=True columns; they are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)
