"""Schedules (the "calendar" of MISSION A11): ordered entries, first match wins, in the org's time zone.

An admin writes a schedule as a list read *uppifrån och ner*: specific dates at the
top, lunch above office hours, and the ``[default]`` entry (normally Closed with the
night message) last.  Evaluation walks the list top to bottom and the first entry
that covers the instant decides; a manual override ("closed now until 14:00")
beats every entry until it expires.  Everything here is pure: the instant to judge
is always passed in (DESIGN.md principle 6), never read from the wall clock.

Meaning of an entry
-------------------
* **When** it applies: a date or date span (inclusive, optionally narrowed to some
  weekdays, e.g. summer hours Mon–Fri 22 Jun–9 Aug), or a weekly recurrence on
  weekdays, or nothing at all for ``[default]``.
* **Time span** ``from``–``to`` in local wall-clock time; without one the entry
  covers the whole day.  ``to`` 00:00 (or "24:00") means midnight at the end of the
  day.  A span whose end is before its start (22:00–06:00) crosses midnight and
  belongs to the day it *starts* on: "Fri 22:00–06:00" covers Saturday 03:00.
* **Action** Open (no voice message, validated) or Closed (a voice message, validated).

Daylight saving time (decided, documented, tested with Europe/Stockholm 2026)
----------------------------------------------------------------------------
Each occurrence of an entry is turned into one interval of real instants
``[start, end)`` before comparing, so a span never flickers on and off:

* a boundary in the **spring-forward gap** (02:30 on 29 March 2026 does not exist)
  moves to the instant the clocks jump: an entry 02:30–04:00 starts at 03:00 CEST
  that night, and a span lying wholly inside the gap (02:00–02:45) does not occur;
* a boundary in the **repeated autumn hour** (02:30 happens twice on 25 October 2026)
  takes its *first* occurrence (summer time): 00:00–02:30 ends at 02:30 CEST and is
  not matched again when 02:30 comes round a second time in winter time.  A span
  covering the whole hour (22:00–06:00) simply lasts one hour longer that night.

Decisions carry ``until``, the next instant the answer changes, as a UTC datetime
(see :class:`Decision` for why not local time).

Database mapping (what the model layer stores)
----------------------------------------------
``schedule``: owner (main number, group or menu), ``timezone`` (the organisation's
IANA zone), override columns ``override_action``, ``override_message_id``,
``override_until`` (UTC, NULL when none).  ``schedule_entry``: ``schedule_id``,
``position`` (0-based, unique per schedule; :func:`move` rewrites it), ``name``,
``action`` (``open``/``closed``), ``message_id`` (NULL for open), ``date_first``,
``date_last`` (NULL for weekly/default), ``weekdays`` (bit mask or text such as
``mon,tue``; empty = none), ``time_from``, ``time_to`` (both NULL = whole day).
The default entry is the row named ``default`` without dates, weekdays or times.
Rows map 1:1 onto :class:`ScheduleEntry` (``message`` holds the message's id or
name as the layer prefers) and the schedule onto :class:`Schedule`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "Action",
    "DEFAULT_NAME",
    "DEFAULT_TIMEZONE",
    "DateSpan",
    "Decision",
    "LintWarning",
    "MESSAGES",
    "Override",
    "Schedule",
    "ScheduleEntry",
    "ScheduleError",
    "HORIZON_DAYS",
    "TimeSpan",
    "Weekday",
    "add_holidays",
    "describe_when",
    "entry_from_mapping",
    "evaluate",
    "holiday_entries",
    "lint",
    "move",
    "render_message",
]

DEFAULT_NAME = "default"
DEFAULT_TIMEZONE = "Europe/Stockholm"
#: How far ahead :func:`evaluate` looks for the next change before answering ``until=None``.
HORIZON_DAYS = 400
_DAY = 86_400
_WEEK = 7 * _DAY
_UTC = timezone.utc

T = TypeVar("T")


# -- bilingual messages ---------------------------------------------------------------------

#: Message key -> language -> template.  Parameters in braces; lists of names and "when"
#: descriptions are rendered per language by :func:`render_message`.
MESSAGES: dict[str, dict[str, str]] = {
    # lint warnings
    "default_not_last": {
        "en": "The [default] entry is at position {position} of {count}. It applies whenever nothing above "
        "it does, so the entries below it are never used: {below}. Move [default] to the bottom.",
        "sv": "Posten [default] ligger på plats {position} av {count}. Den gäller alltid när ingen post ovanför "
        "den gör det, så posterna under den används aldrig: {below}. Flytta [default] längst ned.",
    },
    "below_all_time": {
        "en": "'{entry}' (position {position}) is never used: {by} above it applies at all times. "
        "Move '{entry}' above it, or remove it.",
        "sv": "'{entry}' (plats {position}) används aldrig: {by} ovanför den gäller alltid. "
        "Flytta '{entry}' ovanför den eller ta bort den.",
    },
    "never_used": {
        "en": "'{entry}' ({when}) is never used: it is hidden by {by} above it ({by_when}). The calendar is "
        "read from the top and the first matching entry wins: move '{entry}' above {by}, or remove it.",
        "sv": "'{entry}' ({when}) används aldrig: den döljs av {by} ovanför ({by_when}). Kalendern läses "
        "uppifrån och ner och första träffen gäller: flytta '{entry}' ovanför {by} eller ta bort den.",
    },
    "date_never_used": {
        "en": "'{entry}' ({when}) is never used: it is hidden by {by} above it ({by_when}). Specific dates "
        "must stand above the weekly entries: move '{entry}' to the top.",
        "sv": "'{entry}' ({when}) används aldrig: den döljs av {by} ovanför ({by_when}). Specifika datum ska "
        "ligga överst, ovanför de veckovisa posterna: flytta '{entry}' högst upp.",
    },
    "date_partly_hidden": {
        "en": "'{entry}' ({when}) is overridden by {by} above it at these times: {by_when}. Specific dates "
        "must stand above the weekly entries: move '{entry}' to the top.",
        "sv": "'{entry}' ({when}) åsidosätts av {by} ovanför den under dessa tider: {by_when}. Specifika "
        "datum ska ligga överst, ovanför de veckovisa posterna: flytta '{entry}' högst upp.",
    },
    "duplicate_name": {
        "en": "{count} entries are called '{entry}' (positions {positions}). Give each entry its own name so "
        "they can be told apart.",
        "sv": "{count} poster heter '{entry}' (plats {positions}). Ge varje post ett eget namn så att de går "
        "att skilja åt.",
    },
    "no_default": {
        "en": "There is no [default] entry: when no entry applies, calls are let through as if open. Add a "
        "[default] entry at the bottom, normally Closed with the night message.",
        "sv": "Det finns ingen post [default]: när ingen post gäller släpps samtalen fram som om det vore "
        "öppet. Lägg till en post [default] längst ned, normalt Stängd med nattbeskedet.",
    },
    "never_occurs": {
        "en": "'{entry}' never applies: none of its dates ({when}) falls on one of its weekdays.",
        "sv": "'{entry}' gäller aldrig: inget av dess datum ({when}) infaller på någon av dess veckodagar.",
    },
    "expired": {
        "en": "'{entry}' ({when}) has passed and no longer applies; you can remove it.",
        "sv": "'{entry}' ({when}) har passerat och gäller inte längre; du kan ta bort den.",
    },
    # validation errors
    "empty_name": {
        "en": "Every calendar entry needs a name.",
        "sv": "Varje post i kalendern behöver ett namn.",
    },
    "bad_action": {
        "en": "'{value}' is not an action; use open or closed.",
        "sv": "'{value}' är ingen åtgärd; använd öppen (open) eller stängd (closed).",
    },
    "open_with_message": {
        "en": "'{entry}' is Open and must not have a voice message: open entries let calls through.",
        "sv": "'{entry}' är Öppen och ska inte ha något röstmeddelande: öppna poster släpper fram samtalen.",
    },
    "closed_without_message": {
        "en": "'{entry}' is Closed and needs a voice message to play to callers.",
        "sv": "'{entry}' är Stängd och behöver ett röstmeddelande som spelas upp för den som ringer.",
    },
    "needs_when": {
        "en": "'{entry}' needs a date, a date span or weekdays; only the [default] entry has none.",
        "sv": "'{entry}' behöver ett datum, en datumperiod eller veckodagar; bara posten [default] saknar det.",
    },
    "default_with_when": {
        "en": "The [default] entry applies whenever nothing above it does, so it cannot have dates, "
        "weekdays or a time span.",
        "sv": "Posten [default] gäller när ingen post ovanför den gör det och kan därför inte ha datum, "
        "veckodagar eller tidsintervall.",
    },
    "empty_span": {
        "en": "The time span {start}–{end} is empty; leave the time span out to cover the whole day.",
        "sv": "Tidsintervallet {start}–{end} är tomt; lämna tiden tom för att täcka hela dygnet.",
    },
    "bad_time": {
        "en": "'{value}' is not a time of day; write it as HH:MM, e.g. 08:00.",
        "sv": "'{value}' är inget klockslag; skriv det som TT:MM, t.ex. 08:00.",
    },
    "bad_date": {
        "en": "'{value}' is not a date; write it as YYYY-MM-DD, e.g. 2026-12-24.",
        "sv": "'{value}' är inget datum; skriv det som ÅÅÅÅ-MM-DD, t.ex. 2026-12-24.",
    },
    "bad_weekday": {
        "en": "'{value}' is not a weekday; use mon, tue, wed, thu, fri, sat or sun.",
        "sv": "'{value}' är ingen veckodag; använd mån, tis, ons, tor, fre, lör eller sön.",
    },
    "date_order": {
        "en": "The date span ends ({last}) before it starts ({first}).",
        "sv": "Datumperioden slutar ({last}) innan den börjar ({first}).",
    },
    "unknown_timezone": {
        "en": "Unknown time zone '{value}'; use an IANA name such as Europe/Stockholm.",
        "sv": "Okänd tidszon '{value}'; använd ett IANA-namn som Europe/Stockholm.",
    },
    "override_open_with_message": {
        "en": "An 'open until' override lets calls through and must not have a voice message.",
        "sv": "En manuell öppning släpper fram samtalen och ska inte ha något röstmeddelande.",
    },
    "override_closed_without_message": {
        "en": "A 'closed until' override needs a voice message to play to callers.",
        "sv": "En manuell stängning behöver ett röstmeddelande som spelas upp för den som ringer.",
    },
    "unknown_field": {
        "en": "Unknown field(s) {value} in a calendar entry.",
        "sv": "Okänt fält {value} i en post i kalendern.",
    },
}

_WEEKDAY_ABBR = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "sv": ("mån", "tis", "ons", "tor", "fre", "lör", "sön"),
}
_MONTH_ABBR = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "sv": ("jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec"),
}
_WORDS = {
    "en": {"and": "and", "every_day": "every day", "whole_day": "whole day", "other_times": "all other times"},
    "sv": {"and": "och", "every_day": "alla dagar", "whole_day": "hela dygnet", "other_times": "övrig tid"},
}


def _lang(lang: str) -> str:
    if lang not in _WORDS:
        raise ValueError(f"unsupported language {lang!r}; use 'en' or 'sv'")
    return lang


def _join(items: Sequence[str], lang: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {_WORDS[lang]['and']} " + items[-1]


def _fmt_date(day: date, lang: str) -> str:
    return f"{_WEEKDAY_ABBR[lang][day.weekday()]} {day.day} {_MONTH_ABBR[lang][day.month - 1]} {day.year}"


def _weekday_ranges(days: Iterable[int], lang: str) -> str:
    days = sorted(set(days))
    if len(days) == 7:
        return _WORDS[lang]["every_day"]
    names = _WEEKDAY_ABBR[lang]
    runs: list[list[int]] = []
    for d in days:
        if runs and runs[-1][-1] == d - 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    parts: list[str] = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{names[run[0]]}–{names[run[-1]]}")
        else:
            parts.extend(names[d] for d in run)
    return ", ".join(parts)


def describe_when(when: Mapping[str, Any], lang: str = "en") -> str:
    """Human wording of an entry's ``when`` (as made by :meth:`ScheduleEntry.when`), per language."""
    lang = _lang(lang)
    parts: list[str] = []
    dates = when.get("dates")
    if dates:
        first, last = date.fromisoformat(dates[0]), date.fromisoformat(dates[1])
        parts.append(_fmt_date(first, lang) if first == last else f"{_fmt_date(first, lang)} – {_fmt_date(last, lang)}")
    if when.get("weekdays"):
        parts.append(_weekday_ranges(when["weekdays"], lang))
    if when.get("from"):
        parts.append(f"{when['from']}–{when['to']}")
    elif not dates and not when.get("weekdays"):
        parts.append(_WORDS[lang]["other_times"])
    else:
        parts.append(_WORDS[lang]["whole_day"])
    return " ".join(parts)


def render_message(key: str, params: Mapping[str, Any], lang: str = "en") -> str:
    """The admin-facing text of a message key in ``en`` or ``sv``.

    Lists of names are quoted and joined ("'Lunch' and 'Kontorstid'"), ``when``
    mappings are described, lists of those joined with "; ".
    """
    lang = _lang(lang)
    rendered: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, Mapping):
            rendered[name] = describe_when(value, lang)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Mapping) for v in value):
            rendered[name] = "; ".join(describe_when(v, lang) for v in value)
        elif isinstance(value, (list, tuple)) and name in ("by", "below"):
            rendered[name] = _join([f"'{v}'" for v in value], lang)
        elif isinstance(value, (list, tuple)):
            rendered[name] = ", ".join(str(v) for v in value)
        else:
            rendered[name] = value
    return MESSAGES[key][lang].format(**rendered)


class ScheduleError(ValueError):
    """Invalid schedule input; ``key``/``params`` render in English (``str()``) or Swedish (:meth:`text`)."""

    def __init__(self, key: str, **params: Any):
        self.key = key
        self.params = params
        super().__init__(render_message(key, params, "en"))

    def text(self, lang: str = "en") -> str:
        return render_message(self.key, self.params, lang)


# -- values -------------------------------------------------------------------------------------


class Action(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"

    @classmethod
    def parse(cls, value: Action | str) -> Action:
        if isinstance(value, Action):
            return value
        text = str(value).strip().lower()
        aliases = {"open": cls.OPEN, "öppen": cls.OPEN, "oppen": cls.OPEN,
                   "closed": cls.CLOSED, "stängd": cls.CLOSED, "stangd": cls.CLOSED}
        if text not in aliases:
            raise ScheduleError("bad_action", value=value)
        return aliases[text]


class Weekday(enum.IntEnum):
    """Monday = 0, as :meth:`datetime.date.weekday`."""

    MON = 0
    TUE = 1
    WED = 2
    THU = 3
    FRI = 4
    SAT = 5
    SUN = 6

    @classmethod
    def parse(cls, value: Weekday | int | str) -> Weekday:
        """``Weekday``, an int 0–6 (Monday = 0), or an English or Swedish name or abbreviation."""
        if isinstance(value, bool):
            raise ScheduleError("bad_weekday", value=value)
        if isinstance(value, int):
            if 0 <= value <= 6:
                return cls(value)
            raise ScheduleError("bad_weekday", value=value)
        text = str(value).strip().lower().rstrip(".")
        if text not in _WEEKDAY_NAMES:
            raise ScheduleError("bad_weekday", value=value)
        return cls(_WEEKDAY_NAMES[text])


_WEEKDAY_NAMES: dict[str, int] = {}
for _i, _names in enumerate(
    (
        ("mon", "monday", "må", "mån", "måndag"),
        ("tue", "tues", "tuesday", "ti", "tis", "tisdag"),
        ("wed", "wednesday", "on", "ons", "onsdag"),
        ("thu", "thur", "thurs", "thursday", "to", "tor", "tors", "torsdag"),
        ("fri", "friday", "fr", "fre", "fredag"),
        ("sat", "saturday", "lö", "lör", "lördag"),
        ("sun", "sunday", "sö", "sön", "söndag"),
    )
):
    for _n in _names:
        _WEEKDAY_NAMES[_n] = _i


def _parse_time(value: time | str, *, end: bool = False) -> time:
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise ScheduleError("bad_time", value=value)
        return value
    text = str(value).strip()
    if end and text in ("24:00", "24:00:00"):
        return time(0)
    match = re.fullmatch(r"(\d{1,2})[:.](\d{2})(?::(\d{2}))?", text)
    if not match:
        raise ScheduleError("bad_time", value=value)
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ScheduleError("bad_time", value=value)
    return time(hour, minute, second)


def _parse_date(value: date | str) -> date:
    if isinstance(value, datetime):
        raise ScheduleError("bad_date", value=value)
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ScheduleError("bad_date", value=value) from None


def _hhmm(t: time, *, end: bool = False) -> str:
    if end and t == time(0):
        return "24:00"
    return t.strftime("%H:%M:%S" if t.second else "%H:%M")


@dataclass(frozen=True)
class TimeSpan:
    """Local wall-clock ``start``–``end``; ``end`` 00:00 is midnight at the day's end; end < start crosses midnight."""

    start: time
    end: time

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _parse_time(self.start))
        object.__setattr__(self, "end", _parse_time(self.end, end=True))
        if self.start.microsecond or self.end.microsecond:
            raise ScheduleError("bad_time", value=self.start if self.start.microsecond else self.end)
        if self.start == self.end:
            raise ScheduleError("empty_span", start=_hhmm(self.start), end=_hhmm(self.end, end=True))

    @property
    def crosses_midnight(self) -> bool:
        return self.end != time(0) and self.end < self.start

    def seconds(self) -> tuple[int, int]:
        """``(start, end)`` in seconds from the start day's midnight; ``end`` > 86400 when crossing midnight."""
        start = self.start.hour * 3600 + self.start.minute * 60 + self.start.second
        end = self.end.hour * 3600 + self.end.minute * 60 + self.end.second
        if end <= start:
            end += _DAY
        return start, end

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}–{_hhmm(self.end, end=True)}"


@dataclass(frozen=True)
class DateSpan:
    """Inclusive local dates ``first``..``last`` (one specific date when equal)."""

    first: date
    last: date | None = None

    def __post_init__(self) -> None:
        first = _parse_date(self.first)
        last = first if self.last is None else _parse_date(self.last)
        if last < first:
            raise ScheduleError("date_order", first=first.isoformat(), last=last.isoformat())
        object.__setattr__(self, "first", first)
        object.__setattr__(self, "last", last)

    @property
    def single(self) -> bool:
        return self.first == self.last

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last  # type: ignore[operator]

    def days(self) -> Iterable[date]:
        day = self.first
        while day <= self.last:  # type: ignore[operator]
            yield day
            day += timedelta(days=1)


def _normalise_name(name: str) -> str:
    text = str(name).strip()
    if text.lower() in ("default", "[default]"):
        return DEFAULT_NAME
    return text


def _check_message(action: Action, message: str | None, entry: str) -> None:
    if action is Action.OPEN and message is not None:
        raise ScheduleError("open_with_message", entry=entry)
    if action is Action.CLOSED and message is None:
        raise ScheduleError("closed_without_message", entry=entry)


@dataclass(frozen=True)
class ScheduleEntry:
    """One row of the calendar.  Exactly one kind: dated (``dates``, optionally narrowed by
    ``weekdays``), weekly (``weekdays`` only) or the default (neither, named ``default``).

    ``message`` is a reference to a voice message (its id or name): required for Closed,
    forbidden for Open.  Strings are accepted everywhere and normalised, so YAML and
    database rows can be passed straight in.
    """

    name: str
    action: Action
    message: str | None = None
    dates: DateSpan | None = None
    weekdays: frozenset[Weekday] = frozenset()
    span: TimeSpan | None = None

    def __post_init__(self) -> None:
        name = _normalise_name(self.name)
        if not name:
            raise ScheduleError("empty_name")
        object.__setattr__(self, "name", name)
        action = Action.parse(self.action)
        object.__setattr__(self, "action", action)
        message = self.message
        if message is not None:
            message = str(message).strip() or None
        object.__setattr__(self, "message", message)
        weekdays = self.weekdays
        if isinstance(weekdays, (str, int)):
            weekdays = [weekdays]
        object.__setattr__(self, "weekdays", frozenset(Weekday.parse(w) for w in weekdays))
        if self.dates is not None and not isinstance(self.dates, DateSpan):
            object.__setattr__(self, "dates", DateSpan(self.dates))  # type: ignore[arg-type]
        has_when = self.dates is not None or bool(self.weekdays)
        if name == DEFAULT_NAME:
            if has_when or self.span is not None:
                raise ScheduleError("default_with_when")
        elif not has_when:
            raise ScheduleError("needs_when", entry=name)
        _check_message(action, message, name)

    # -- constructors ---------------------------------------------------------

    @classmethod
    def on_date(
        cls,
        name: str,
        day: date | str,
        action: Action | str,
        message: str | None = None,
        *,
        last: date | str | None = None,
        start: time | str | None = None,
        end: time | str | None = None,
        weekdays: Iterable[Weekday | int | str] = (),
    ) -> ScheduleEntry:
        return cls(name, action, message, DateSpan(day, last), frozenset(weekdays), _span(start, end))  # type: ignore[arg-type]

    @classmethod
    def weekly(
        cls,
        name: str,
        weekdays: Iterable[Weekday | int | str],
        action: Action | str,
        message: str | None = None,
        *,
        start: time | str | None = None,
        end: time | str | None = None,
    ) -> ScheduleEntry:
        return cls(name, action, message, None, frozenset(weekdays), _span(start, end))  # type: ignore[arg-type]

    @classmethod
    def default(cls, action: Action | str = Action.CLOSED, message: str | None = None) -> ScheduleEntry:
        return cls(DEFAULT_NAME, action, message)  # type: ignore[arg-type]

    # -- queries --------------------------------------------------------------

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_NAME and self.dates is None and not self.weekdays

    @property
    def kind(self) -> str:
        """``date``, ``weekly`` or ``default``."""
        if self.dates is not None:
            return "date"
        return "weekly" if self.weekdays else "default"

    @property
    def covers_all_time(self) -> bool:
        """True for the default and for an every-day weekly entry without a time span."""
        return self.is_default or (self.kind == "weekly" and len(self.weekdays) == 7 and self.span is None)

    def applies_on(self, day: date) -> bool:
        """Whether an occurrence *starts* on local ``day`` (the default has no occurrences)."""
        if self.dates is not None:
            return day in self.dates and (not self.weekdays or Weekday(day.weekday()) in self.weekdays)
        return Weekday(day.weekday()) in self.weekdays

    def seconds(self) -> tuple[int, int]:
        """The entry's span in seconds of its start day (whole day: 0–86400)."""
        return (0, _DAY) if self.span is None else self.span.seconds()

    def when(self) -> dict[str, Any]:
        """JSON-safe description of when the entry applies (rendered by :func:`describe_when`)."""
        out: dict[str, Any] = {}
        if self.dates is not None:
            out["dates"] = [self.dates.first.isoformat(), self.dates.last.isoformat()]  # type: ignore[union-attr]
        if self.weekdays:
            out["weekdays"] = sorted(int(w) for w in self.weekdays)
        if self.span is not None:
            out["from"] = _hhmm(self.span.start)
            out["to"] = _hhmm(self.span.end, end=True)
        return out

    def to_mapping(self) -> dict[str, Any]:
        """The YAML/JSON shape accepted by :func:`entry_from_mapping`."""
        out: dict[str, Any] = {"name": self.name}
        if self.dates is not None:
            out["date"] = self.dates.first.isoformat()
            if not self.dates.single:
                out["end_date"] = self.dates.last.isoformat()  # type: ignore[union-attr]
        if self.weekdays:
            out["weekdays"] = [Weekday(w).name.lower() for w in sorted(self.weekdays)]
        if self.span is not None:
            out["from"] = _hhmm(self.span.start)
            out["to"] = _hhmm(self.span.end, end=True)
        out["action"] = self.action.value
        if self.message is not None:
            out["message"] = self.message
        return out


def _span(start: time | str | None, end: time | str | None) -> TimeSpan | None:
    if start is None and end is None:
        return None
    return TimeSpan(start if start is not None else time(0), end if end is not None else time(0))  # type: ignore[arg-type]


_ENTRY_FIELDS = {"name", "date", "end_date", "weekdays", "from", "to", "action", "message"}


def entry_from_mapping(data: Mapping[str, Any]) -> ScheduleEntry:
    """An entry from the org-file/API shape.

    ``{name, date?: "2026-12-24", end_date?: "2026-12-26", weekdays?: [mon, ...],
    from?: "12:00", to?: "13:00", action: open|closed, message?: ref}``.  A missing
    ``from`` is 00:00 and a missing ``to`` is midnight, so give neither for a whole day.
    """
    unknown = set(data) - _ENTRY_FIELDS
    if unknown:
        raise ScheduleError("unknown_field", value=", ".join(sorted(unknown)))
    dates = None
    if data.get("date") is not None:
        dates = DateSpan(data["date"], data.get("end_date"))
    elif data.get("end_date") is not None:
        raise ScheduleError("bad_date", value=data["end_date"])
    weekdays = data.get("weekdays") or ()
    return ScheduleEntry(
        name=data.get("name", ""),
        action=data.get("action", ""),  # type: ignore[arg-type]
        message=data.get("message"),
        dates=dates,
        weekdays=weekdays,  # type: ignore[arg-type]
        span=_span(data.get("from"), data.get("to")),
    )


@dataclass(frozen=True)
class Override:
    """A manual "closed now until …" (with a message) or "open until …": wins over every entry
    while ``now < until``, and is simply ignored afterwards (no clean-up job is needed)."""

    action: Action
    until: datetime
    message: str | None = None

    def __post_init__(self) -> None:
        action = Action.parse(self.action)
        object.__setattr__(self, "action", action)
        _require_aware(self.until, "override until")
        if action is Action.OPEN and self.message is not None:
            raise ScheduleError("override_open_with_message")
        if action is Action.CLOSED and not self.message:
            raise ScheduleError("override_closed_without_message")

    def active(self, now: datetime) -> bool:
        return now < self.until


def _require_aware(moment: datetime, what: str) -> None:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, not {moment!r}")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ScheduleError("unknown_timezone", value=name) from None


@dataclass(frozen=True)
class Schedule:
    """The ordered entries of one calendar (entries or their mappings), the organisation's IANA
    zone and any override."""

    entries: tuple[ScheduleEntry, ...] = ()
    timezone: str = DEFAULT_TIMEZONE
    override: Override | None = None

    def __post_init__(self) -> None:
        entries = tuple(e if isinstance(e, ScheduleEntry) else entry_from_mapping(e) for e in self.entries)
        object.__setattr__(self, "entries", entries)
        if self.override is not None and not isinstance(self.override, Override):
            raise TypeError(f"override must be an Override, not {type(self.override).__name__}")
        _zone(self.timezone)

    @property
    def tz(self) -> ZoneInfo:
        return _zone(self.timezone)

    def evaluate(self, now: datetime) -> Decision:
        return evaluate(self, now)

    def lint(self, *, today: date | None = None) -> list[LintWarning]:
        return lint(self.entries, today=today)

    def moved(self, index: int, delta: int) -> Schedule:
        return Schedule(move(self.entries, index, delta), self.timezone, self.override)

    def message_refs(self) -> list[tuple[str, str]]:
        """``(where, message)`` pairs: which entries (and the override) use which voice message."""
        refs = [(e.name, e.message) for e in self.entries if e.message is not None]
        if self.override is not None and self.override.message is not None:
            refs.append(("override", self.override.message))
        return refs


@dataclass(frozen=True)
class Decision:
    """What the schedule says at an instant.

    ``source`` is ``override``, ``entry``, ``default`` or ``none`` (no entry matched and
    there is no default: calls go through).  ``until`` is the next instant at which the
    decision changes (a different action, message or entry), or the override's expiry;
    ``None`` when nothing changes within :data:`HORIZON_DAYS`.  It is in **UTC** on
    purpose: Python compares and subtracts datetimes that share a ``ZoneInfo`` by wall
    clock, and never finds a repeated-hour time equal to another zone's, so a
    zone-local ``until`` would be wrong on exactly the DST nights.  Convert with
    ``until.astimezone(schedule.tz)`` for display.
    """

    action: Action
    message: str | None
    entry_name: str | None
    until: datetime | None
    source: str
    entry_index: int | None = None

    @property
    def is_open(self) -> bool:
        return self.action is Action.OPEN


# -- evaluation -----------------------------------------------------------------------------------


def _resolve(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a naive local wall time, with the DST rules of the module docstring."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(_UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(_UTC)
    if first <= second:
        return first  # ordinary, or the repeated autumn hour: its first occurrence
    # Spring-forward gap: the wall time does not exist; the clocks jump somewhere in (second, first].
    target = first.astimezone(tz).utcoffset()  # the offset after the jump
    lo, hi = int(second.timestamp()), int(first.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, _UTC).astimezone(tz).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, _UTC)


_Occurrence = tuple[datetime, datetime] | None


def _occurrence(entry: ScheduleEntry, day: date, tz: ZoneInfo) -> _Occurrence:
    """The real-time interval of ``entry``'s occurrence starting on ``day``, or ``None``."""
    if entry.is_default or not entry.applies_on(day):
        return None
    start_s, end_s = entry.seconds()
    midnight = datetime(day.year, day.month, day.day)
    start = _resolve(midnight + timedelta(seconds=start_s), tz)
    end = _resolve(midnight + timedelta(seconds=end_s), tz)
    return (start, end) if start < end else None


class _Evaluator:
    """Evaluation of one schedule's entries, caching occurrences per (entry, day)."""

    def __init__(self, entries: Sequence[ScheduleEntry], tz: ZoneInfo):
        self.entries = entries
        self.tz = tz
        self._cache: dict[tuple[int, date], _Occurrence] = {}

    def occurrence(self, index: int, day: date) -> _Occurrence:
        key = (index, day)
        if key not in self._cache:
            self._cache[key] = _occurrence(self.entries[index], day, self.tz)
        return self._cache[key]

    def match(self, instant: datetime) -> int | None:
        """Index of the first entry covering ``instant`` (UTC), or ``None``."""
        day = instant.astimezone(self.tz).date()
        for index, entry in enumerate(self.entries):
            if entry.is_default:
                return index
            for start_day in (day - timedelta(days=1), day):
                occ = self.occurrence(index, start_day)
                if occ is not None and occ[0] <= instant < occ[1]:
                    return index
        return None

    def key(self, index: int | None) -> tuple[Any, ...]:
        if index is None:
            return (None, Action.OPEN, None)
        entry = self.entries[index]
        return (index, entry.action, entry.message)

    def next_change(self, now: datetime, current: int | None, horizon_days: int) -> datetime | None:
        """First boundary after ``now`` where the matching entry (hence the decision) differs."""
        today = now.astimezone(self.tz).date()
        want = self.key(current)
        for offset in range(horizon_days + 1):
            day = today + timedelta(days=offset)
            points: set[datetime] = set()
            for index, entry in enumerate(self.entries):
                if entry.is_default:
                    break  # nothing below a default ever matches
                for start_day in (day - timedelta(days=1), day):
                    occ = self.occurrence(index, start_day)
                    if occ is None:
                        continue
                    for boundary in occ:
                        if boundary > now and boundary.astimezone(self.tz).date() == day:
                            points.add(boundary)
            for boundary in sorted(points):
                if self.key(self.match(boundary)) != want:
                    return boundary
        return None


def evaluate(schedule: Schedule, now: datetime, *, horizon_days: int = HORIZON_DAYS) -> Decision:
    """The decision at ``now`` (timezone-aware): the override if active, else the first matching entry."""
    _require_aware(now, "now")
    tz = schedule.tz
    instant = now.astimezone(_UTC)
    override = schedule.override
    if override is not None and override.active(instant):
        return Decision(override.action, override.message, None, override.until.astimezone(_UTC), "override")
    evaluator = _Evaluator(schedule.entries, tz)
    index = evaluator.match(instant)
    until = evaluator.next_change(instant, index, horizon_days)
    if index is None:
        return Decision(Action.OPEN, None, None, until, "none")
    entry = schedule.entries[index]
    return Decision(entry.action, entry.message, entry.name, until, "default" if entry.is_default else "entry", index)


# -- editing --------------------------------------------------------------------------------------


def move(entries: Sequence[T], index: int, delta: int) -> tuple[T, ...]:
    """A copy of ``entries`` with the item at ``index`` moved ``delta`` places (negative = up).

    The destination is clamped to the list, so "up" on the first entry is a no-op;
    an ``index`` outside the list raises :class:`IndexError`.  Works on any items
    (entries, database ids), so the API can reuse it for positions.
    """
    items = list(entries)
    if not 0 <= index < len(items):
        raise IndexError(f"no entry at position {index} (there are {len(items)})")
    target = max(0, min(len(items) - 1, index + delta))
    item = items.pop(index)
    items.insert(target, item)
    return tuple(items)


# -- lint ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LintWarning:
    """A message key with parameters, renderable in English and Swedish.

    ``position`` is the 1-based position of the entry concerned (``None`` for the
    schedule as a whole); ``severity`` is ``warning`` or ``info``.
    """

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)
    position: int | None = None
    severity: str = "warning"

    def text(self, lang: str = "en") -> str:
        return render_message(self.key, self.params, lang)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "severity": self.severity,
            "position": self.position,
            "params": dict(self.params),
            "text": {"en": self.text("en"), "sv": self.text("sv")},
        }


_Interval = tuple[int, int]


def _subtract(base: list[_Interval], cover: list[_Interval]) -> list[_Interval]:
    """Parts of ``base`` not covered by ``cover`` (half-open intervals of seconds)."""
    left = list(base)
    for c0, c1 in cover:
        nxt: list[_Interval] = []
        for b0, b1 in left:
            if c1 <= b0 or c0 >= b1:
                nxt.append((b0, b1))
                continue
            if b0 < c0:
                nxt.append((b0, c0))
            if c1 < b1:
                nxt.append((c1, b1))
        left = nxt
    return left


def _overlaps(a: list[_Interval], b: list[_Interval]) -> bool:
    return any(a0 < b1 and b0 < a1 for a0, a1 in a for b0, b1 in b)


def _week_intervals(entry: ScheduleEntry) -> list[_Interval]:
    """A weekly (or all-time) entry's coverage on a 7-day circular timeline, Monday 00:00 = 0."""
    if entry.covers_all_time:
        return [(0, _WEEK)]
    start, end = entry.seconds()
    out: list[_Interval] = []
    for weekday in entry.weekdays:
        s, e = weekday * _DAY + start, weekday * _DAY + end
        if e > _WEEK:
            out.extend([(s, _WEEK), (0, e - _WEEK)])
        else:
            out.append((s, e))
    return out


def _day_intervals(entry: ScheduleEntry, day: date) -> list[_Interval]:
    """Coverage in absolute local seconds (``ordinal * 86400``) of occurrences near ``day``."""
    if entry.covers_all_time:
        base = day.toordinal() * _DAY
        return [(base - _DAY, base + 2 * _DAY)]
    out: list[_Interval] = []
    start, end = entry.seconds()
    for d in (day - timedelta(days=1), day):
        if entry.applies_on(d):
            base = d.toordinal() * _DAY
            out.append((base + start, base + end))
    return out


def lint(entries: Sequence[ScheduleEntry] | Schedule, *, today: date | None = None) -> list[LintWarning]:
    """Warnings an admin understands, in entry order (see :data:`MESSAGES` for the wording).

    Checks, in wall-clock time: a ``[default]`` that is not last; entries hidden by
    the entries above them (below an all-time entry, lunch below office hours, a date
    below a weekly entry that covers it; or several entries together); dates that
    weekly entries above partly take over; duplicate names; no default; dated entries
    whose weekdays exclude all their dates; and, given ``today``, dates that passed.
    """
    if isinstance(entries, Schedule):
        entries = entries.entries
    entries = list(entries)
    warnings: list[LintWarning] = []

    names: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        names.setdefault(entry.name.casefold(), []).append(i)

    first_default = next((i for i, e in enumerate(entries) if e.is_default), None)
    if first_default is None:
        if entries:
            warnings.append(LintWarning("no_default", {}, None, "info"))
    elif first_default != len(entries) - 1:
        below = [e.name for e in entries[first_default + 1 :]]
        warnings.append(
            LintWarning(
                "default_not_last",
                {"position": first_default + 1, "count": len(entries), "below": below},
                first_default + 1,
            )
        )

    for j, entry in enumerate(entries):
        if first_default is not None and j > first_default:
            break  # reported as default_not_last
        position = j + 1
        above = entries[:j]
        if entry.dates is not None and not any(entry.applies_on(d) for d in entry.dates.days()):
            warnings.append(LintWarning("never_occurs", {"entry": entry.name, "when": entry.when()}, position))
            continue
        if today is not None and entry.dates is not None:
            last = entry.dates.last + timedelta(days=1 if entry.span and entry.span.crosses_midnight else 0)
            if last < today:  # type: ignore[operator]
                warnings.append(
                    LintWarning("expired", {"entry": entry.name, "when": entry.when()}, position, "info")
                )
                continue
        all_time = next((a for a in above if a.covers_all_time), None)
        if all_time is not None:
            warnings.append(
                LintWarning("below_all_time", {"entry": entry.name, "position": position, "by": [all_time.name]}, position)
            )
            continue
        if entry.is_default:
            continue  # entries above a default can cover all time legitimately (it is then unused, harmlessly)
        if entry.kind == "weekly":
            warning = _lint_weekly(entry, above, position)
        else:
            warning = _lint_dated(entry, above, position)
        if warning is not None:
            warnings.append(warning)

    for indices in names.values():
        if len(indices) > 1:
            first = entries[indices[0]]
            warnings.append(
                LintWarning(
                    "duplicate_name",
                    {"entry": first.name, "count": len(indices), "positions": [i + 1 for i in indices]},
                    indices[1] + 1,
                )
            )
    warnings.sort(key=lambda w: (w.position is None, w.position or 0))
    return warnings


def _lint_weekly(entry: ScheduleEntry, above: list[ScheduleEntry], position: int) -> LintWarning | None:
    mine = _week_intervals(entry)
    contributors = [a for a in above if a.kind == "weekly" and _overlaps(mine, _week_intervals(a))]
    cover = [iv for a in contributors for iv in _week_intervals(a)]
    if contributors and not _subtract(mine, cover):
        return LintWarning(
            "never_used",
            {
                "entry": entry.name,
                "when": entry.when(),
                "by": [a.name for a in contributors],
                "by_when": [a.when() for a in contributors],
            },
            position,
        )
    return None


def _lint_dated(entry: ScheduleEntry, above: list[ScheduleEntry], position: int) -> LintWarning | None:
    assert entry.dates is not None
    start, end = entry.seconds()
    leftover = False
    contributors: dict[int, ScheduleEntry] = {}
    for day in entry.dates.days():
        if not entry.applies_on(day):
            continue
        base = day.toordinal() * _DAY
        mine = [(base + start, base + end)]
        cover: list[_Interval] = []
        for k, a in enumerate(above):
            ivs = _day_intervals(a, day) + _day_intervals(a, day + timedelta(days=1))
            if _overlaps(mine, ivs):
                contributors[k] = a
                cover.extend(ivs)
        if _subtract(mine, cover):
            leftover = True
    if not contributors:
        return None
    weekly = [a for _, a in sorted(contributors.items()) if a.kind == "weekly"]
    every = [a for _, a in sorted(contributors.items())]
    if not leftover:
        key = "date_never_used" if weekly else "never_used"
        by = every
    elif weekly:
        key, by = "date_partly_hidden", weekly
    else:
        return None  # partly overridden by other dates above: that is what dates above are for
    return LintWarning(
        key,
        {"entry": entry.name, "when": entry.when(), "by": [a.name for a in by], "by_when": [a.when() for a in by]},
        position,
    )


# -- public holidays --------------------------------------------------------------------------------


def holiday_entries(
    years: int | Iterable[int],
    *,
    action: Action | str = Action.CLOSED,
    message: str | None = None,
    country: str = "SE",
    include_de_facto: bool = True,
    language: str | None = None,
) -> tuple[ScheduleEntry, ...]:
    """One whole-day dated entry per public holiday, in date order, named "<holiday> <year>".

    Uses the ``holidays`` package.  For Sweden its ``public`` category holds the
    *allmänna helgdagar* of lag 1989:253 (Nyårsdagen, Trettondedag jul, Långfredagen,
    Påskdagen, Annandag påsk, Första maj, Kristi himmelsfärdsdag, Pingstdagen,
    Nationaldagen, Midsommardagen, Alla helgons dag, Juldagen, Annandag jul); its
    ``de_facto`` category holds Midsommarafton, Julafton and Nyårsafton, which the
    Semesterlag (1977:480 § 7) treats like Sundays and on which Swedish switchboards
    close.  ``include_de_facto=True`` (the default) adds those three; the half days
    of the ``bank``/``optional`` categories (e.g. Skärtorsdagen from 14:00) are left
    to the admin.  ``language`` defaults to the country's own (Swedish names).
    """
    import holidays as holidays_lib  # imported here: only this function needs it

    year_list = [years] if isinstance(years, int) else sorted(set(years))
    categories = ("public", "de_facto") if include_de_facto else ("public",)
    reference = holidays_lib.country_holidays(country)
    categories = tuple(c for c in categories if c in reference.supported_categories)
    language = language or reference.default_language  # not the process locale: names must not vary by host
    calendar = holidays_lib.country_holidays(country, years=year_list, categories=categories, language=language)
    return tuple(
        ScheduleEntry.on_date(f"{name} {day.year}", day, action, message)
        for day, name in sorted(calendar.items())
    )


def add_holidays(
    entries: Sequence[ScheduleEntry],
    years: int | Iterable[int],
    *,
    action: Action | str = Action.CLOSED,
    message: str | None = None,
    country: str = "SE",
    include_de_facto: bool = True,
    language: str | None = None,
) -> tuple[ScheduleEntry, ...]:
    """``entries`` with the holidays of ``years`` inserted above the weekly entries.

    They go right after the leading block of single-date entries (the admin's own
    specific dates stay on top, date spans such as summer hours come after), and a
    holiday whose date already has a single-date entry is skipped: the admin's own
    entry for that day (say "Julafton" with its own message, or open 08–12) wins.
    Calling it twice adds nothing the second time.
    """
    entries = list(entries)
    taken = {e.dates.first for e in entries if e.dates is not None and e.dates.single}
    new = [
        h
        for h in holiday_entries(
            years, action=action, message=message, country=country, include_de_facto=include_de_facto, language=language
        )
        if h.dates.first not in taken  # type: ignore[union-attr]
    ]
    at = 0
    while at < len(entries) and entries[at].dates is not None and entries[at].dates.single:  # type: ignore[union-attr]
        at += 1
    return tuple(entries[:at] + new + entries[at:])
