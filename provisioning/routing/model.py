"""The routing view of one organisation: an immutable snapshot the engine walks for every call.

Why a snapshot of frozen dataclasses and not the ORM: the engine must run
without a database (tests, ``deskprov simulate scenario``), must not see rows
change under a call in progress, and must stay independent of SQLAlchemy.  Two
builders fill it: :func:`organisation_from_dict` from the YAML/dict shape below
(close to the organisation file), and, later, the database layer from its
tables (the field list it must supply is at the end of this docstring).

The dict shape (``tests/data/exempel.yaml`` plus issue 5's routing additions)::

    organization:
      name: Exempel AB
      main_number: "+46854689914"
      timezone: Europe/Stockholm          # schedules are evaluated in it
      country: SE                         # how numbers are presented (C1)
      operator: {group: Växeln}           # voicemail's "0 for the operator", diversions to the switchboard
      schedule: [...]                     # optional calendar on the main number itself
    messages:
      - {name: lunch, text: "Vi har lunchstängt ...", seconds: 4}   # seconds: else estimated from text
    users:
      - name: Anna Andersson
        number: "+46854689901"
        extension: "201"
        mobiles: [{number: "+46701234567", profile: mex}]         # profile mex | non_mex; rings: true
        feature_groups: ["EX-Ej lämna meddelande i röstbrevlåda"] # and/or features: {voicemail: false}
        softphone: true
        external_calls: true              # add-on: consultation to external numbers (seed 000 note 1)
        ring_time: 25                     # direct calls ring this long before voicemail
        diversion: {reason: lunch, target: voicemail, until: "2026-03-02T13:00"}
        forward_to: "+46812345678"        # call forwarding (vidarekoppling)
    groups:
      - name: Växeln
        number: "+46854689914"            # or numbers: [...]
        group_id: "0001"                  # appended to the presented caller number (C1)
        strategy: ring_all                # strategies.Strategy or a peer's name
        ring_time: 20
        no_answer_time: 60
        repeat: true
        retry_delay: 0
        members:
          - {user: "+46854689901", logged_in: true, ring_time: 15}
          - "+46854689902"                # the organisation file's short form
        queue: {max_callers: 5, max_wait: 120, message: kö, first_announcement: 10, announce_interval: 30,
                announce_position: true}
        schedule:
          - {name: Lunch, weekdays: [mon, tue, wed, thu, fri], from: "12:00", to: "13:00",
             action: closed, message: lunch, then: {voicemail: "+46854689901"}}   # then: default hang up
          - {name: default, action: closed, message: natt}
        holidays: {country: SE, action: closed, message: helg}
        no_answer: {voicemail: "+46854689901"}                       # menus.Destination shape
    menus:
      - name: Huvudmeny
        number: "+46854689900"
        message: meny
        options: {"1": {group: Växeln}, "2": {user: "201"}, "9": repeat}
        timeout: 5
        retries: 2
        invalid_message: fel
        timeout_destination: {group: Växeln}
        final_destination: hangup
    phones:                               # desk phones, listed on their user (informational here)
      - {mac: "80:5E:C0:AA:BB:01", model: Yealink T46S, user: "+46854689901"}

Destinations everywhere use :class:`~provisioning.routing.menus.Destination`
(``{user: number-or-extension}``, ``{group: name-or-id}``, ``{menu: name}``,
``{external: number}``, ``{voicemail: user}``, ``{message: name}``, ``hangup``).

What the database layer must supply (one snapshot per organisation)
------------------------------------------------------------------
* ``organization``: ``name``, ``timezone``, the ``main`` role number, country
  (``SE`` unless stored), the operator destination.
* per user: the ``primary`` number (E.164), ``name``, ``extension``, the
  ``mobile`` numbers with ``mobile_profile`` (mex/non_mex), the seven flag
  columns of ``provisioning.features.FLAGS`` as :class:`Flags`,
  ``softphone_licence``, the external-calls add-on, the active or next
  ``diversion`` row (``reason``, ``target``, ``target_number``, ``message``,
  ``starts_at``, ``ends_at``/``ended_at``) as :class:`Diversion`, call
  forwarding, direct-call ring time, and the user's desk phones (MAC, model).
* per answer group: ``name``, group id, its ``group`` role numbers, the
  strategy columns (:class:`~provisioning.routing.strategies.GroupSettings`),
  ``group_member`` rows (user, ``position``, ``ring_time``, ``logged_in``),
  queue columns (:class:`~provisioning.routing.strategies.QueueSettings`), its
  ``schedule`` (:class:`~provisioning.routing.schedule.Schedule` with entries,
  zone and override) and where closed entries lead, the no-answer destination.
  Round-robin memory and per-member statistics are live state: the engine keeps
  them (:class:`~provisioning.routing.engine.Engine` ``rr_memory``/``member_stats``)
  and the layer may seed and persist them.
* per menu: the ``menu``/``menu_option`` rows as
  :class:`~provisioning.routing.menus.Menu`, its numbers and schedule.
* voice messages: name and length in seconds (``media.AudioInfo.duration``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from provisioning.features import FLAGS, flags_from_groups
from provisioning.numbers import NumberError, to_e164
from provisioning.routing.menus import HANGUP, Destination, DestinationKind, Menu, MenuError
from provisioning.routing.schedule import (
    DEFAULT_TIMEZONE,
    Schedule,
    ScheduleEntry,
    ScheduleError,
    add_holidays,
    entry_from_mapping,
)
from provisioning.routing.strategies import GroupSettings, QueueSettings

__all__ = [
    "Calendar",
    "DeskPhoneRef",
    "Diversion",
    "DIVERSION_TARGETS",
    "Flags",
    "Group",
    "GroupMember",
    "Mobile",
    "Organisation",
    "RoutedMenu",
    "RoutingModelError",
    "User",
    "VoiceMessage",
    "merge_documents",
    "organisation_from_dict",
]

#: Where a diversion sends calls (the database's ``DiversionTarget``).
DIVERSION_TARGETS = frozenset({"voicemail", "colleague", "switchboard", "message"})
#: Speaking rate used to estimate a text message's length: about 2.5 words a second.
_WORDS_PER_SECOND = 2.5
_GROUP_ID = re.compile(r"^[0-9]{1,6}$")


class RoutingModelError(ValueError):
    """The organisation cannot be routed: every problem found, one per line."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# -- building blocks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoiceMessage:
    """A recorded or generated message; ``seconds`` is its length (estimated from ``text`` if unknown)."""

    name: str
    text: str | None = None
    seconds: float | None = None

    @property
    def duration(self) -> float:
        if self.seconds is not None:
            return float(self.seconds)
        words = len((self.text or "").split())
        return max(2.0, round(words / _WORDS_PER_SECOND, 1))


@dataclass(frozen=True)
class Diversion:
    """A hänvisning (U4/A3): the user is away for ``reason`` and calls go to ``target`` until ``ends_at``.

    ``target`` is ``voicemail``, ``colleague`` (``target_number``), ``switchboard``
    (the organisation's operator) or ``message`` (``message`` is read to the caller,
    then voicemail if the user has it).  Without "diversion affects mobile" only the
    fixed number is closed: the mobile still rings, and the target applies when
    nobody answers.
    """

    reason: str = "away"
    target: str = "voicemail"
    target_number: str | None = None
    message: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.target not in DIVERSION_TARGETS:
            raise ValueError(f"diversion target {self.target!r}: use one of {sorted(DIVERSION_TARGETS)}")
        if self.target == "colleague" and not self.target_number:
            raise ValueError("a diversion to a colleague needs the colleague's number")
        for moment in (self.starts_at, self.ends_at):
            if moment is not None and moment.utcoffset() is None:
                raise ValueError("diversion times must be timezone-aware")

    def active(self, now: datetime) -> bool:
        if self.starts_at is not None and now < self.starts_at:
            return False
        return self.ends_at is None or now < self.ends_at


@dataclass(frozen=True)
class Mobile:
    """A user's mobile number.  ``mex``: integrated with the PBX (A4).  ``rings``: rings with the
    fixed number and in groups (the operator network then decides what happens to the leg)."""

    number: str
    mex: bool = True
    rings: bool = True


@dataclass(frozen=True)
class Flags:
    """The feature-group flags (A8), named as ``provisioning.features.FLAGS`` and the user table."""

    voicemail: bool = True
    voicemail_operator_option: bool = False
    call_waiting_fixed: bool = False
    call_waiting_mobile: bool = False
    diversion_affects_mobile: bool = False
    forwarding_affects_mobile: bool = False
    show_mobile_outside_hours: bool = False

    @classmethod
    def from_mapping(cls, feature_groups: Iterable[str] = (), features: Mapping[str, bool] | None = None) -> Flags:
        values = flags_from_groups(feature_groups)
        for name, value in (features or {}).items():
            if name not in FLAGS:
                raise ValueError(f"unknown feature {name!r} (known: {', '.join(FLAGS)})")
            values[name] = bool(value)
        return cls(**{f.name: values[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class DeskPhoneRef:
    """A desk phone bound to the user (A13): the simulation rings whatever registers at the user's number."""

    mac: str
    model: str | None = None


@dataclass(frozen=True)
class User:
    number: str
    name: str = ""
    extension: str | None = None
    mobiles: tuple[Mobile, ...] = ()
    flags: Flags = field(default_factory=Flags)
    diversion: Diversion | None = None
    forward_to: str | None = None
    desk_phones: tuple[DeskPhoneRef, ...] = ()
    softphone: bool = False
    external_calls: bool = True
    ring_time: float = 25.0

    @property
    def ringing_mobiles(self) -> tuple[Mobile, ...]:
        return tuple(m for m in self.mobiles if m.rings)

    def diverted(self, now: datetime) -> Diversion | None:
        """The diversion in force at ``now``, if any."""
        return self.diversion if self.diversion is not None and self.diversion.active(now) else None


@dataclass(frozen=True)
class GroupMember:
    user: str
    logged_in: bool = True
    ring_time: float | None = None
    order: int = 0


@dataclass(frozen=True)
class Calendar:
    """A schedule on a main number, group or menu, and where each Closed entry's calls go after
    its message (``after_closed``: entry name -> destination; absent = hang up)."""

    schedule: Schedule
    after_closed: Mapping[str, Destination] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "after_closed", MappingProxyType(dict(self.after_closed)))

    def after(self, entry_name: str | None) -> Destination:
        return self.after_closed.get(entry_name or "", HANGUP)


@dataclass(frozen=True)
class Group:
    name: str
    group_id: str
    numbers: tuple[str, ...] = ()
    settings: GroupSettings = field(default_factory=GroupSettings)
    members: tuple[GroupMember, ...] = ()
    queue: QueueSettings | None = None
    calendar: Calendar | None = None
    no_answer: Destination = HANGUP

    def ring_time_of(self, member: GroupMember) -> float:
        """How long one offer rings this member (its own ring time, capped by the no-answer time)."""
        ring = member.ring_time if member.ring_time is not None else self.settings.ring_time
        return min(ring, self.settings.no_answer_time)


@dataclass(frozen=True)
class RoutedMenu:
    menu: Menu
    numbers: tuple[str, ...] = ()
    calendar: Calendar | None = None


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Organisation:
    """Everything routing needs, looked up by the keys the engine meets: numbers, extensions, names."""

    name: str
    main_number: str | None = None
    timezone: str = DEFAULT_TIMEZONE
    region: str = "SE"
    users: Mapping[str, User] = field(default_factory=dict)
    groups: Mapping[str, Group] = field(default_factory=dict)
    menus: Mapping[str, RoutedMenu] = field(default_factory=dict)
    messages: Mapping[str, VoiceMessage] = field(default_factory=dict)
    main_calendar: Calendar | None = None
    operator: Destination | None = None
    numbers: Mapping[str, Destination] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("users", "groups", "menus", "messages"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        numbers = dict(self._derived_numbers())
        numbers.update(self.numbers)
        object.__setattr__(self, "numbers", _frozen(numbers))
        problems = self.problems()
        if problems:
            raise RoutingModelError(problems)

    def _derived_numbers(self) -> Iterable[tuple[str, Destination]]:
        for user in self.users.values():
            yield user.number, Destination(DestinationKind.USER, user.number)
            for mobile in user.mobiles:
                if mobile.mex:  # a Mex mobile number is also the user's secondary number (A4)
                    yield mobile.number, Destination(DestinationKind.USER, mobile.number)
        for menu in self.menus.values():
            for number in menu.numbers:
                yield number, Destination(DestinationKind.MENU, menu.menu.name)
        for group in self.groups.values():
            for number in group.numbers:
                yield number, Destination(DestinationKind.GROUP, group.name)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    # -- lookups ------------------------------------------------------------------------------

    def user(self, ref: str) -> User | None:
        """A user by fixed number, Mex/non-Mex mobile number or extension."""
        if ref in self.users:
            return self.users[ref]
        for user in self.users.values():
            if user.extension == ref or any(m.number == ref for m in user.mobiles):
                return user
        return None

    def group(self, ref: str) -> Group | None:
        """A group by name or group id."""
        if ref in self.groups:
            return self.groups[ref]
        return next((g for g in self.groups.values() if g.group_id == ref), None)

    def menu(self, ref: str) -> RoutedMenu | None:
        return self.menus.get(ref)

    def message(self, name: str) -> VoiceMessage:
        """A message by name; an unknown name is a placeholder of the default length (system prompts)."""
        return self.messages.get(name) or VoiceMessage(name)

    def group_ids(self) -> tuple[str, ...]:
        return tuple(g.group_id for g in self.groups.values())

    def operator_destination(self) -> Destination | None:
        """Where "the operator" is: the configured destination, else the main number's."""
        if self.operator is not None:
            return self.operator
        if self.main_number is not None:
            return self.numbers.get(self.main_number)
        return None

    def mobile_ring_times(self) -> Iterable[tuple[Group, User, Mobile, float]]:
        """Each group member's ringing mobile and how long the group rings it (for the Mex lint)."""
        for group in self.groups.values():
            for member in group.members:
                user = self.users.get(member.user)
                if user is None:
                    continue
                for mobile in user.ringing_mobiles:
                    yield group, user, mobile, group.ring_time_of(member)

    # -- consistency --------------------------------------------------------------------------

    def _destination_problem(self, dest: Destination | None, where: str) -> str | None:
        if dest is None:
            return None
        kind, target = dest.kind, dest.target
        if kind in (DestinationKind.USER, DestinationKind.VOICEMAIL) and self.user(target) is None:  # type: ignore[arg-type]
            return f"{where}: no user {target!r}"
        if kind is DestinationKind.GROUP and self.group(target) is None:  # type: ignore[arg-type]
            return f"{where}: no group {target!r}"
        if kind is DestinationKind.MENU and target not in self.menus:
            return f"{where}: no menu {target!r}"
        if kind is DestinationKind.MESSAGE and target not in self.messages:
            return f"{where}: no voice message {target!r}"
        return None

    def _calendar_problems(self, calendar: Calendar | None, where: str) -> list[str]:
        if calendar is None:
            return []
        out = [f"{where}: the calendar uses the voice message {m!r}, which does not exist"
               for _, m in calendar.schedule.message_refs() if m not in self.messages]
        for entry, dest in calendar.after_closed.items():
            out.append(p) if (p := self._destination_problem(dest, f"{where}, entry {entry!r}")) else None
        return out

    def problems(self) -> list[str]:
        """Dangling references: unknown users, groups, menus and messages."""
        out: list[str] = []
        seen_ids: dict[str, str] = {}
        for group in self.groups.values():
            if group.group_id in seen_ids:
                out.append(f"group {group.name!r}: group id {group.group_id} is also {seen_ids[group.group_id]!r}'s")
            seen_ids[group.group_id] = group.name
            for member in group.members:
                if member.user not in self.users:
                    out.append(f"group {group.name!r}: member {member.user} is not a user")
            out += self._calendar_problems(group.calendar, f"group {group.name!r}")
            if group.queue is not None and group.queue.message and group.queue.message not in self.messages:
                out.append(f"group {group.name!r}: no voice message {group.queue.message!r} for the queue")
            if p := self._destination_problem(group.no_answer, f"group {group.name!r} no-answer"):
                out.append(p)
        for routed in self.menus.values():
            menu = routed.menu
            where = f"menu {menu.name!r}"
            for ref_where, message in menu.message_refs():
                if message not in self.messages:
                    out.append(f"{ref_where}: no voice message {message!r}")
            for key, dest in menu.options.items():
                if p := self._destination_problem(dest, f"{where} key {key}"):
                    out.append(p)
            for label, dest in (("no choice", menu.timeout_destination), ("final", menu.final_destination)):
                if p := self._destination_problem(dest, f"{where} {label}"):
                    out.append(p)
            out += self._calendar_problems(routed.calendar, where)
        for user in self.users.values():
            if user.diversion and user.diversion.target == "colleague" and self.user(user.diversion.target_number) is None:
                if not (user.diversion.target_number or "").startswith("+"):
                    out.append(f"user {user.number}: diversion to unknown colleague {user.diversion.target_number!r}")
        out += self._calendar_problems(self.main_calendar, "main number")
        if p := self._destination_problem(self.operator, "operator"):
            out.append(p)
        for number, dest in self.numbers.items():
            if p := self._destination_problem(dest, f"number {number}"):
                out.append(p)
        return out


# -- the dict/YAML builder ----------------------------------------------------------------------------


def _number(value: Any, where: str, problems: list[str]) -> str:
    try:
        return to_e164(str(value))
    except NumberError as exc:
        problems.append(f"{where}: {exc}")
        return str(value)


def _destination(value: Any, where: str, problems: list[str]) -> Destination | None:
    if value is None:
        return None
    try:
        return value if isinstance(value, Destination) else Destination.from_mapping(value)
    except MenuError as exc:
        problems.append(f"{where}: {exc}")
        return None


def _when(value: Any, tz: ZoneInfo, where: str, problems: list[str]) -> datetime | None:
    """An ISO date-time; without an offset it is local time in the organisation's zone."""
    if value is None:
        return None
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        problems.append(f"{where}: {value!r} is not a date and time (use 2026-03-02T13:00)")
        return None
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=tz)


def _calendar(
    entries: Any, holidays: Any, tz_name: str, years: Iterable[int], where: str, problems: list[str]
) -> Calendar | None:
    if not entries and not holidays:
        return None
    parsed: list[ScheduleEntry] = []
    after: dict[str, Destination] = {}
    for index, raw in enumerate(entries or []):
        raw = dict(raw)
        then = raw.pop("then", None)
        try:
            entry = entry_from_mapping(raw)
        except ScheduleError as exc:
            problems.append(f"{where} calendar entry {index + 1}: {exc.text()}")
            continue
        parsed.append(entry)
        if then is not None and (dest := _destination(then, f"{where} entry {entry.name!r}", problems)):
            after[entry.name] = dest
    if holidays:
        spec = dict(holidays)
        then = spec.pop("then", None)
        try:
            added = add_holidays(parsed, list(years), action=spec.get("action", "closed"),
                                 message=spec.get("message"), country=spec.get("country", "SE"),
                                 include_de_facto=spec.get("include_de_facto", True))
        except (ScheduleError, ValueError, NotImplementedError) as exc:
            problems.append(f"{where} holidays: {exc}")
            added = tuple(parsed)
        if then is not None and (dest := _destination(then, f"{where} holidays", problems)):
            for entry in added:
                if entry not in parsed:
                    after[entry.name] = dest
        parsed = list(added)
    try:
        return Calendar(Schedule(tuple(parsed), tz_name), after)
    except ScheduleError as exc:
        problems.append(f"{where}: {exc.text()}")
        return None


def _colleague(value: Any, where: str, problems: list[str]) -> str:
    """A diversion's colleague: an extension (short, no trunk prefix) as written, else a number."""
    text = str(value).strip()
    if text.isdigit() and not text.startswith("0") and len(text) <= 6:
        return text
    return _number(text, where, problems)


def _user_ref(value: Any) -> str:
    return str(value["user"] if isinstance(value, Mapping) else value)


def _settings(cls: type, data: Mapping[str, Any], names: Sequence[str], where: str, problems: list[str]) -> Any:
    kwargs = {n: data[n] for n in names if data.get(n) is not None}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        problems.append(f"{where}: {exc}")
        return cls()


def organisation_from_dict(doc: Mapping[str, Any], *, holiday_years: Iterable[int] = range(2024, 2031)) -> Organisation:
    """Build the routing model from the dict shape of the module docstring.

    Unknown top-level sections (``phonebooks``...) are ignored, so a whole
    organisation file can be passed.  All problems are reported together in one
    :class:`RoutingModelError`.
    """
    problems: list[str] = []
    org = dict(doc.get("organization") or {})
    tz_name = str(org.get("timezone") or DEFAULT_TIMEZONE)
    try:
        tz = ZoneInfo(tz_name)
    except Exception:  # noqa: BLE001 - zoneinfo raises several kinds
        raise RoutingModelError([f"organization: unknown time zone {tz_name!r}"]) from None
    years = list(holiday_years)

    messages = {}
    for index, raw in enumerate(doc.get("messages") or []):
        name = str(raw.get("name") or "").strip()
        if not name:
            problems.append(f"messages[{index}]: a message needs a name")
            continue
        messages[name] = VoiceMessage(name, raw.get("text"), raw.get("seconds"))

    phones_by_user: dict[str, list[DeskPhoneRef]] = {}
    for index, raw in enumerate(doc.get("phones") or []):
        if raw.get("user"):
            owner = _number(raw["user"], f"phones[{index}]", problems)
            phones_by_user.setdefault(owner, []).append(DeskPhoneRef(str(raw.get("mac", "")), raw.get("model")))

    users: dict[str, User] = {}
    for index, raw in enumerate(doc.get("users") or []):
        where = f"users[{index}]"
        number = _number(raw.get("number"), where, problems)
        mobiles = tuple(
            Mobile(_number(m["number"], f"{where} mobile", problems), mex=str(m.get("profile", "non_mex")) == "mex",
                   rings=bool(m.get("rings", True)))
            for m in raw.get("mobiles") or []
        )
        try:
            flags = Flags.from_mapping(raw.get("feature_groups") or (), raw.get("features"))
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            flags = Flags()
        diversion = None
        if raw.get("diversion"):
            d = dict(raw["diversion"])
            target_number = d.get("number") or d.get("target_number")
            try:
                diversion = Diversion(
                    reason=str(d.get("reason", "away")),
                    target=str(d.get("target", "voicemail")),
                    target_number=None if target_number is None else _colleague(target_number, where, problems),
                    message=d.get("message"),
                    starts_at=_when(d.get("from") or d.get("starts_at"), tz, where, problems),
                    ends_at=_when(d.get("until") or d.get("ends_at"), tz, where, problems),
                )
            except ValueError as exc:
                problems.append(f"{where} diversion: {exc}")
        users[number] = User(
            number=number,
            name=str(raw.get("name", "")),
            extension=None if raw.get("extension") is None else str(raw["extension"]),
            mobiles=mobiles,
            flags=flags,
            diversion=diversion,
            forward_to=_number(raw["forward_to"], where, problems) if raw.get("forward_to") else None,
            desk_phones=tuple(phones_by_user.get(number, ())),
            softphone=bool(raw.get("softphone", False)),
            external_calls=bool(raw.get("external_calls", True)),
            ring_time=float(raw.get("ring_time", 25.0)),
        )

    def user_number(ref: Any, where: str) -> str:
        ref = str(ref)
        by_ext = next((u.number for u in users.values() if u.extension == ref), None)
        return by_ext or _number(ref, where, problems)

    groups: dict[str, Group] = {}
    for index, raw in enumerate(doc.get("groups") or []):
        name = str(raw.get("name", "")).strip()
        where = f"group {name or index!r}"
        group_id = str(raw.get("group_id") or f"{index + 1:04d}")
        if not _GROUP_ID.match(group_id):
            problems.append(f"{where}: group id {group_id!r} must be 1-6 digits")
        numbers = [raw["number"]] if raw.get("number") else list(raw.get("numbers") or [])
        members = []
        for order, m in enumerate(raw.get("members") or [], start=1):
            spec = m if isinstance(m, Mapping) else {}
            members.append(GroupMember(
                user=user_number(_user_ref(m), f"{where} member {order}"),
                logged_in=bool(spec.get("logged_in", True)),
                ring_time=spec.get("ring_time"),
                order=int(spec.get("order", order)),
            ))
        settings = _settings(GroupSettings, raw, ("strategy", "ring_time", "no_answer_time", "repeat", "retry_delay"),
                             where, problems)
        queue = None
        if raw.get("queue"):
            queue = _settings(QueueSettings, raw["queue"], [f.name for f in fields(QueueSettings)], f"{where} queue",
                              problems)
        groups[name] = Group(
            name=name,
            group_id=group_id,
            numbers=tuple(_number(n, where, problems) for n in numbers),
            settings=settings,
            members=tuple(members),
            queue=queue,
            calendar=_calendar(raw.get("schedule"), raw.get("holidays"), tz_name, years, where, problems),
            no_answer=_destination(raw.get("no_answer"), f"{where} no_answer", problems) or HANGUP,
        )

    menus: dict[str, RoutedMenu] = {}
    menu_fields = ("timeout", "retries", "invalid_message", "timeout_destination", "final_destination")
    for index, raw in enumerate(doc.get("menus") or []):
        name = str(raw.get("name", "")).strip()
        where = f"menu {name or index!r}"
        numbers = [raw["number"]] if raw.get("number") else list(raw.get("numbers") or [])
        try:
            menu = Menu(name=name, message=raw.get("message"), options=dict(raw.get("options") or {}),
                        **{k: raw[k] for k in menu_fields if raw.get(k) is not None})
        except MenuError as exc:
            problems.append(f"{where}: {exc}")
            continue
        menus[name] = RoutedMenu(
            menu=menu,
            numbers=tuple(_number(n, where, problems) for n in numbers),
            calendar=_calendar(raw.get("schedule"), raw.get("holidays"), tz_name, years, where, problems),
        )

    main_number = _number(org["main_number"], "organization", problems) if org.get("main_number") else None
    operator = _destination(org.get("operator"), "organization operator", problems)
    main_calendar = _calendar(org.get("schedule"), org.get("holidays"), tz_name, years, "main number", problems)
    if problems:
        raise RoutingModelError(problems)
    return Organisation(
        name=str(org.get("name", "")),
        main_number=main_number,
        timezone=tz_name,
        region=str(org.get("country", "SE")),
        users=users,
        groups=groups,
        menus=menus,
        messages=messages,
        main_calendar=main_calendar,
        operator=operator,
    )


def merge_documents(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` on top of an organisation file: users matched by ``number`` are updated field by field,
    other list entries matched by ``name`` are replaced, new ones appended; ``organization`` is merged."""
    out = {key: value for key, value in base.items()}
    for key, value in overlay.items():
        if key == "organization":
            out[key] = {**(base.get(key) or {}), **value}
        elif isinstance(value, list) and isinstance(base.get(key), list):
            match = "number" if key == "users" else "name"
            merged = [dict(item) if isinstance(item, Mapping) else item for item in base[key]]
            for item in value:
                ident = item.get(match) if isinstance(item, Mapping) else None
                index = next((i for i, old in enumerate(merged)
                              if ident is not None and isinstance(old, Mapping) and _same(old.get(match), ident)), None)
                if index is None:
                    merged.append(item)
                elif key == "users":
                    merged[index] = {**merged[index], **item}
                else:
                    merged[index] = item
            out[key] = merged
        else:
            out[key] = value
    return out


def _same(a: Any, b: Any) -> bool:
    if a == b:
        return True
    try:
        return to_e164(str(a)) == to_e164(str(b))
    except NumberError:
        return False

