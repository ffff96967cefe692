"""The organisation file: one organisation described in YAML, imported and exported by the CLI.

Import is all-or-nothing and idempotent: the whole file is parsed and checked first (every error
names its line), then applied in one transaction that changes only what differs, so importing
the same file twice changes nothing and touches no phone's cached config.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from provisioning.audit import CLI, record
from provisioning.device_auth import open_first_contact, parse_network_list
from provisioning.features import FLAGS, flags_from_groups, groups_from_flags
from provisioning.model.base import utcnow
from provisioning.mac import MacError, normalize_mac
from provisioning.model import (
    NUMBER_TARGET_KEYS, AnswerGroup, CallerId, Contact, Device, GroupMember, Key, KeyType, Line, Menu, MenuOption,
    MobileProfile, Number, NumberRole, Organization, Phonebook, PhonebookMember, Schedule, ScheduleEntry, User,
    VoiceMessage,
)
from provisioning.numbers import NumberError, to_e164
from provisioning.passwords import WeakPassword, check_policy, hash_password, verify_password
from provisioning.render import primary_number
from provisioning.routing.menus import KEYS, Destination, MenuError
from provisioning.routing.schedule import ScheduleEntry as RoutingEntry
from provisioning.routing.schedule import ScheduleError, add_holidays, entry_from_mapping
from provisioning.routing.snapshot import (
    OrgRefs, RefError, dest_from_routing, dest_to_yaml, entry_columns, entry_to_routing, load_schedules,
)
from provisioning.media import MediaError
from provisioning.model.media import MessageStore, generate
from provisioning.routing.strategies import Strategy
from provisioning.vendors import BY_NAME, PLUGINS
from provisioning.vendors.base import PhoneModel, VendorPlugin

MAX_FILE_BYTES = 10 * 1024 * 1024
_EXTENSION = re.compile(r"^[0-9]{2,8}$")
_DIALABLE = re.compile(r"^[0-9*#+]{1,32}$")


class OrgFileError(ValueError):
    """The file cannot be imported; ``problems`` are (line or None, message) pairs."""

    def __init__(self, problems: list[tuple[int | None, str]], source: str = "") -> None:
        self.problems = problems
        self.source = source
        super().__init__(self.format())

    def format(self) -> str:
        where = self.source or "<input>"
        return "\n".join(f"{where}:{line}: {msg}" if line else f"{where}: {msg}" for line, msg in self.problems)


# ---------------------------------------------------------------------------------------------
# The schema (pydantic): what may be written, with the field-level checks.


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _e164(value: str) -> str:
    try:
        return to_e164(value)
    except NumberError as exc:
        raise ValueError(str(exc)) from None


class OrganizationSpec(_Spec):
    name: str = Field(min_length=1, max_length=200)
    sip_domain: str = Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.-]+$")
    main_number: str | None = None
    timezone: str = "Europe/Stockholm"
    language: str = Field("sv", pattern=r"^[a-z]{2}$")
    outbound_proxy: str | None = Field(None, pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
    sip_port: int = Field(5060, ge=1, le=65535)
    sip_transport: Literal["udp", "tcp", "tls"] = "udp"
    voicemail_number: str = Field("*97", pattern=_DIALABLE.pattern)
    pickup_code: str = Field("*8", pattern=_DIALABLE.pattern)
    group_toggle_code: str = Field("*45", pattern=_DIALABLE.pattern)
    ntp_server: str | None = Field(None, pattern=r"^[A-Za-z0-9.:-]+$")
    vlan: int | None = Field(None, ge=1, le=4094)
    #: The devices' own admin password; generated (and kept) when not given.
    device_admin_password: str | None = Field(None, min_length=8, max_length=64, pattern=r"^[!-~]+$")
    #: Encrypt the phones' config files where the vendor can (Yealink, Cisco, Grandstream).
    encrypt_configs: bool = False
    #: Device authentication (provisioning/device_auth.py): the only networks its devices may
    #: fetch from (none: anywhere), the networks TFTP may serve secrets to (none: TFTP serves
    #: secret-free bootstrap files only), and the first-contact window after binding (minutes,
    #: 0: none; absent: 60).
    allowed_networks: list[str] = Field(default_factory=list, max_length=100)
    tftp_secret_networks: list[str] = Field(default_factory=list, max_length=100)
    first_contact_minutes: int | None = Field(None, ge=0, le=10080)
    #: The main number's own calendar (when a group or menu answers it, theirs applies too).
    schedule: list["EntrySpec"] | None = None
    holidays: "HolidaysSpec | None" = None

    _number = field_validator("main_number")(lambda v: _e164(v) if v else v)

    @field_validator("allowed_networks", "tftp_secret_networks", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> list[str]:
        if isinstance(value, str):  # "10.0.0.0/8, 192.168.1.0/24" as well as a list
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("a list of networks in CIDR notation, like [192.168.1.0/24]")
        return [str(n) for n in parse_network_list(",".join(value))]

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Stockholm)") from None
        return value


class MobileSpec(_Spec):
    number: str
    #: mex: integrated with the PBX (then also the secondary number); non_mex: another operator
    profile: MobileProfile = MobileProfile.non_mex

    _number = field_validator("number")(_e164)


class UserSpec(_Spec):
    """A user. The fields after ``extension`` are optional, and one left out is left as it is
    (a password the user chose, admin rights given with ``deskprov admin create``...)."""

    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    number: str
    extension: str | None = Field(None, pattern=_EXTENSION.pattern)
    username: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9._@+-]{1,64}$")
    #: the web password in clear (stored hashed), or an exported argon2 hash in password_hash
    password: str | None = Field(None, max_length=128)
    password_hash: str | None = Field(None, max_length=255, pattern=r"^\$argon2")
    admin: bool | None = None
    softphone: bool | None = None
    caller_id: CallerId | None = None
    mobiles: list[MobileSpec] | None = None
    keywords: list[str] | None = None
    feature_groups: list[str] | None = None
    features: dict[str, bool] | None = None
    deactivation_date: date | None = None

    _number = field_validator("number")(_e164)

    @field_validator("password")
    @classmethod
    def _policy(cls, value):
        if value is not None:
            try:
                check_policy(value)
            except WeakPassword as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value):
        if value is not None:
            if len(value) > 20:
                raise ValueError("at most 20 keywords")
            for word in value:
                if not 1 <= len(word.strip()) <= 64:
                    raise ValueError("a keyword has 1-64 characters")
            value = list(dict.fromkeys(w.strip() for w in value))
        return value

    @field_validator("features")
    @classmethod
    def _features(cls, value):
        for name in value or {}:
            if name not in FLAGS:
                raise ValueError(f"unknown feature {name!r} (known: {', '.join(FLAGS)})")
        return value

    @field_validator("deactivation_date")
    @classmethod
    def _date(cls, value):
        if value is not None and not 2000 <= value.year <= 2199:
            raise ValueError("dates must lie between the years 2000 and 2199")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "UserSpec":
        if self.password and self.password_hash:
            raise ValueError("give password or password_hash, not both")
        if self.feature_groups is not None:
            flags_from_groups(self.feature_groups)  # raises on unknown or contradicting groups
        if self.mobiles and sum(m.profile == MobileProfile.mex for m in self.mobiles) > 1:
            raise ValueError("at most one mobile number can be Mex")
        if self.caller_id == CallerId.mobile and self.mobiles == []:
            raise ValueError("caller_id mobile needs a mobile number")
        return self

    def flags(self) -> dict[str, bool] | None:
        """The feature flags the file sets (groups first, then explicit features), or None."""
        if self.feature_groups is None and self.features is None:
            return None
        flags = flags_from_groups(self.feature_groups or [])
        flags.update(self.features or {})
        return flags


def _destination(value: Any) -> Destination | None:
    """``{user: number-or-extension}``, ``{group: name}``, ``{menu: name}``, ``{external: number}``,
    ``{voicemail: user}``, ``{message: name}``, ``repeat`` or ``hangup``."""
    if value is None or isinstance(value, Destination):
        return value
    if not isinstance(value, (str, dict)):
        raise ValueError("a destination is one of {user|group|menu|external|voicemail|message: ...}, "
                         "repeat or hangup")
    try:
        return Destination.from_mapping(value)
    except MenuError as exc:
        raise ValueError(str(exc)) from None


class MessageSpec(_Spec):
    """A voice message: ``text`` is spoken with espeak-ng at import (pending when it is missing);
    without text the message must exist already (a recording uploaded through the API)."""

    name: str = Field(min_length=1, max_length=100)
    text: str | None = Field(None, min_length=1, max_length=5000)
    voice: str | None = Field(None, max_length=32, pattern=r"^[A-Za-z0-9_+-]+$")


class EntrySpec(_Spec):
    """A calendar entry: ``date`` (+ ``end_date``) or ``weekdays`` (or neither: ``default``), an
    optional ``from``/``to``, ``action`` open|closed, ``message`` (Closed), ``then`` (a destination)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True,
                              arbitrary_types_allowed=True)

    name: str = Field(min_length=1, max_length=100)
    date: str | None = None
    end_date: str | None = None
    weekdays: list[str] | None = None
    from_: str | None = Field(None, alias="from")
    to: str | None = None
    action: str
    message: str | None = Field(None, max_length=100)
    then: Any = None

    @field_validator("date", "end_date", "from_", "to", mode="before")
    @classmethod
    def _text(cls, value, info):
        if isinstance(value, int) and not isinstance(value, bool) and info.field_name in ("from_", "to"):
            return f"{value // 60:02d}:{value % 60:02d}"  # YAML 1.1 reads an unquoted 12:00 as 720
        return None if value is None else str(value)

    _then = field_validator("then")(_destination)

    def routing_entry(self) -> RoutingEntry:
        data = {"name": self.name, "date": self.date, "end_date": self.end_date, "weekdays": self.weekdays,
                "from": self.from_, "to": self.to, "action": self.action, "message": self.message}
        return entry_from_mapping({k: v for k, v in data.items() if v is not None})

    @model_validator(mode="after")
    def _valid(self) -> "EntrySpec":
        try:
            self.routing_entry()
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None
        return self


class HolidaysSpec(_Spec):
    """Public holidays of the current and the next year, added as dated entries."""

    country: str = Field("SE", pattern=r"^[A-Z]{2}$")
    action: Literal["open", "closed"] = "closed"
    message: str | None = Field(None, max_length=100)


class QueueSpec(_Spec):
    max_callers: int | None = Field(None, ge=1, le=1000)
    max_wait: int | None = Field(None, ge=1, le=86400)
    message: str | None = Field(None, max_length=100)
    first_announcement: int | None = Field(None, ge=0, le=3600)
    announce_interval: int | None = Field(None, ge=5, le=3600)
    announce_position: bool = False
    join_empty: bool = False


class MemberSpec(_Spec):
    user: str
    #: given: the member is logged in or out as written; left out: a new member starts logged in
    #: and an existing one keeps their state
    logged_in: bool | None = None
    ring_time: int | None = Field(None, ge=1, le=600)

    _user = field_validator("user")(_e164)


class GroupSpec(_Spec):
    """An answer group: its number, distribution, members (user numbers or {user, logged_in,
    ring_time}, in order), queue, no-answer destination and calendar."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, arbitrary_types_allowed=True)

    name: str = Field(min_length=1, max_length=100)
    number: str | None = None
    group_id: str | None = Field(None, pattern=r"^[0-9]{1,6}$")
    strategy: Strategy = Strategy.RING_ALL
    ring_time: int = Field(20, ge=1, le=600)
    no_answer_time: int = Field(60, ge=1, le=3600)
    repeat: bool = True
    retry_delay: int = Field(0, ge=0, le=600)
    members: list[MemberSpec] = []
    queue: QueueSpec | None = None
    no_answer: Any = None
    schedule: list[EntrySpec] | None = None
    holidays: HolidaysSpec | None = None

    _number = field_validator("number")(lambda v: _e164(v) if v else v)
    _no_answer = field_validator("no_answer")(_destination)

    @field_validator("group_id", mode="before")
    @classmethod
    def _code(cls, value):
        return None if value is None else str(value)

    @field_validator("strategy", mode="before")
    @classmethod
    def _strategy(cls, value):
        try:
            return Strategy.parse(value)
        except ValueError as exc:
            raise ValueError(f"unknown strategy {value!r}; use one of {', '.join(s.value for s in Strategy)}") \
                from exc

    @field_validator("members", mode="before")
    @classmethod
    def _members(cls, value):
        return [{"user": m} if isinstance(m, (str, int)) else m for m in value or []]


class MenuSpec(_Spec):
    """An IVR menu: greeting, per-key destinations, silence and wrong-key handling, calendar."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, arbitrary_types_allowed=True)

    name: str = Field(min_length=1, max_length=100)
    number: str | None = None
    message: str = Field(min_length=1, max_length=100)
    options: dict[str, Any] = {}
    timeout: float = Field(5.0, gt=0, le=120)
    retries: int = Field(2, ge=0, le=10)
    invalid_message: str | None = Field(None, max_length=100)
    timeout_destination: Any = None
    final_destination: Any = None
    schedule: list[EntrySpec] | None = None
    holidays: HolidaysSpec | None = None

    _number = field_validator("number")(lambda v: _e164(v) if v else v)
    _dest = field_validator("timeout_destination", "final_destination")(_destination)

    @field_validator("options", mode="before")
    @classmethod
    def _options(cls, value):
        if not isinstance(value, dict):
            raise ValueError("options map keys (0-9, * and #) to destinations")
        out = {}
        for key, dest in value.items():
            key = str(key).strip()
            if key not in KEYS:
                raise ValueError(f"{key!r} is not a key; use 0-9, * or #")
            out[key] = _destination(dest)
        return out


class KeySpec(_Spec):
    slot: int = Field(ge=1, le=999)
    module: int = Field(0, ge=0, le=16)
    type: KeyType
    target: str | None = None
    number: str | None = None
    label: str | None = Field(None, max_length=64)
    line: int = Field(1, ge=1, le=64)

    @model_validator(mode="after")
    def _target(self) -> "KeySpec":
        if self.target and self.number:
            raise ValueError("give either target or number, not both")
        self.target = self.target or self.number
        self.number = None
        if self.type in NUMBER_TARGET_KEYS and not self.target:
            raise ValueError(f"a {self.type.value} key needs a target number")
        if self.type in (KeyType.park, KeyType.dtmf) and not (self.target and _DIALABLE.match(self.target)):
            raise ValueError(f"a {self.type.value} key needs target digits")
        return self


class CredentialsSpec(_Spec):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    password: str = Field(min_length=8, max_length=128)


class LineSpec(_Spec):
    """An extra account: an ATA's FXS port or a DECT base's handset N, or a desk phone's line N."""

    index: int = Field(ge=1, le=64)
    user: str
    sip: CredentialsSpec | None = None

    _user = field_validator("user")(_e164)


class PhoneSpec(_Spec):
    mac: str
    model: str | None = None
    user: str | None = None
    sip: CredentialsSpec | None = None
    lines: list[LineSpec] = []
    keys: list[KeySpec] = []
    #: This phone's config encryption; left out: the organisation's.
    encrypt_configs: bool | None = None

    @field_validator("mac")
    @classmethod
    def _mac(cls, value: str) -> str:
        try:
            return normalize_mac(value)
        except MacError as exc:
            raise ValueError(str(exc)) from None

    _user = field_validator("user")(lambda v: _e164(v) if v else v)


class ContactSpec(_Spec):
    name: str = Field(min_length=1, max_length=200)
    number: str
    mobile: str | None = None
    company: str | None = Field(None, max_length=200)

    _number = field_validator("number", "mobile")(lambda v: _e164(v) if v else v)


class PhonebookSpec(_Spec):
    """A shared contact list, shown on the desk phones of the users it is granted to."""

    name: str = Field(min_length=1, max_length=100)
    #: user numbers, or "all" for every user of the organisation
    members: list[str] | Literal["all"] = []
    contacts: list[ContactSpec] = []

    @field_validator("members")
    @classmethod
    def _members(cls, value):
        return value if value == "all" else [_e164(v) for v in value]


OrganizationSpec.model_rebuild()


class OrgFileSpec(_Spec):
    organization: OrganizationSpec
    users: list[UserSpec] = []
    messages: list[MessageSpec] = []
    groups: list[GroupSpec] = []
    menus: list[MenuSpec] = []
    phonebooks: list[PhonebookSpec] = []
    phones: list[PhoneSpec] = []


# ---------------------------------------------------------------------------------------------
# YAML with line numbers


def _positions(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map every path in the document (keys and list indices) to its 1-based line."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = path + (str(key.value),)
            out[child] = key.start_mark.line + 1
            _positions(value, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _positions(item, path + (index,), out)
    return out


def _line(positions: dict[tuple, int], loc: tuple) -> int | None:
    loc = tuple(loc)
    while loc:
        if loc in positions:
            return positions[loc]
        loc = loc[:-1]
    return positions.get(())


@dataclass
class ParsedOrgFile:
    spec: OrgFileSpec
    positions: dict[tuple, int]
    models: dict[str, tuple[VendorPlugin, PhoneModel | None, str]] = field(default_factory=dict)


#: Deeper than any organisation file needs; PyYAML recurses once per level.
MAX_DEPTH = 32


class _OrgFileLoader(yaml.SafeLoader):
    """SafeLoader without aliases, with a nesting limit and without duplicate keys.

    An organisation file needs neither aliases nor deep nesting, and both are ways to make a small
    file cost exponential time or overflow the stack. A key given twice (PyYAML keeps the last one
    silently) is almost always a copy-paste slip, e.g. a second user pasted without its "- ".
    """

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} appears twice (first on line {first})", key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "anchors and aliases (*name) are not allowed here",
                                              event.start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse(text: str | bytes, source: str = "") -> ParsedOrgFile:
    """Parse and check the file's own content (not yet against the database)."""
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise OrgFileError([(None, f"file larger than {MAX_FILE_BYTES} bytes")], source)
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise OrgFileError([(None, f"not UTF-8 text: {exc}")], source) from None
    node = None
    try:
        loader = _OrgFileLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except (ValueError, RecursionError) as exc:  # e.g. 2001-02-30, a 5000-digit integer
        raise OrgFileError([(None, f"YAML value error: {exc}")], source) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(filter(None, [exc.context, exc.problem]))
        raise OrgFileError([(mark.line + 1 if mark else None, f"YAML syntax error: {message}")], source) from None
    except yaml.YAMLError as exc:
        raise OrgFileError([(None, f"YAML error: {exc}")], source) from None
    if not isinstance(data, dict):
        raise OrgFileError([(1, "expected a mapping with an 'organization' section")], source)
    positions = _positions(node)
    try:
        spec = OrgFileSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            field_name = ".".join(str(p) for p in loc) or "file"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown field"
            problems.append((_line(positions, loc), f"{field_name}: {message}"))
        raise OrgFileError(problems, source) from None
    parsed = ParsedOrgFile(spec, positions)
    _check(parsed, source)
    return parsed


def resolve_model(text: str) -> tuple[VendorPlugin, PhoneModel | None, str]:
    """``"Yealink T46S"`` or ``"T46S"`` -> (plugin, catalogue entry or None, model name)."""
    words = text.split(None, 1)
    plugin = next((p for p in PLUGINS if words[0].lower() in (p.name, p.display_name.lower())), None)
    if plugin is not None:
        name = words[1] if len(words) > 1 else ""
        return plugin, plugin.find_model(name), name
    for plugin in PLUGINS:
        model = plugin.find_model(text)
        if model is not None:
            return plugin, model, model.name
    raise ValueError(f"unknown phone model {text!r} (write it as 'Vendor Model', e.g. 'Yealink T46S'; "
                     f"known vendors: {', '.join(p.display_name for p in PLUGINS)})")


def _check(parsed: ParsedOrgFile, source: str) -> None:
    """Cross-references inside the file: duplicates, unknown users, keys the model cannot have."""
    spec, pos = parsed.spec, parsed.positions
    problems: list[tuple[int | None, str]] = []
    numbers: dict[str, tuple] = {}
    if spec.organization.main_number:
        numbers[spec.organization.main_number] = ("organization", "main_number")
    extensions: dict[str, int] = {}
    usernames: set[str] = set()
    for i, user in enumerate(spec.users):
        if user.number in numbers:
            problems.append((_line(pos, ("users", i, "number")), f"number {user.number} is used twice"))
        numbers[user.number] = ("users", i)
        for m, mobile in enumerate(user.mobiles or []):
            if mobile.number in numbers:
                problems.append((_line(pos, ("users", i, "mobiles", m, "number")),
                                 f"number {mobile.number} is used twice"))
            numbers[mobile.number] = ("users", i, "mobiles", m)
        if user.username:
            if user.username.lower() in usernames:
                problems.append((_line(pos, ("users", i, "username")), f"username {user.username} is used twice"))
            usernames.add(user.username.lower())
        if user.extension:
            if user.extension in extensions:
                problems.append((_line(pos, ("users", i, "extension")), f"extension {user.extension} is used twice"))
            extensions[user.extension] = i
    users = {u.number for u in spec.users}
    macs: set[str] = set()
    for i, phone in enumerate(spec.phones):
        if phone.mac in macs:
            problems.append((_line(pos, ("phones", i, "mac")), f"MAC {phone.mac} is listed twice"))
        macs.add(phone.mac)
        if phone.user and phone.user not in users:
            problems.append((_line(pos, ("phones", i, "user")), f"no user with number {phone.user} in this file"))
        indexes = {1} if phone.user else set()
        for n, line in enumerate(phone.lines):
            if line.user not in users:
                problems.append((_line(pos, ("phones", i, "lines", n, "user")),
                                 f"no user with number {line.user} in this file"))
            if line.index in indexes:
                problems.append((_line(pos, ("phones", i, "lines", n, "index")),
                                 f"line {line.index} is given twice (user: is line 1)"))
            indexes.add(line.index)
        if phone.model:
            try:
                parsed.models[phone.mac] = resolve_model(phone.model)
            except ValueError as exc:
                problems.append((_line(pos, ("phones", i, "model")), str(exc)))
        slots = set()
        for k, key in enumerate(phone.keys):
            where = ("phones", i, "keys", k)
            if (key.module, key.slot) in slots:
                problems.append((_line(pos, where), f"key {key.slot} is programmed twice"))
            slots.add((key.module, key.slot))
            if key.type in NUMBER_TARGET_KEYS:
                try:
                    key.target = _key_target(key.target, spec.users)
                except ValueError as exc:
                    problems.append((_line(pos, where), str(exc)))
        if phone.mac in parsed.models:
            plugin, model, _ = parsed.models[phone.mac]
            check_model = model or plugin.generic_model()
            for k, key in enumerate(phone.keys):
                for problem in plugin.validate_keys(check_model, [(key.module, key.slot, key.type.value)]):
                    problems.append((_line(pos, ("phones", i, "keys", k)), problem))
            for n, line in enumerate(phone.lines):
                if line.index > check_model.lines:
                    problems.append((_line(pos, ("phones", i, "lines", n, "index")),
                                     f"{plugin.display_name} {check_model.name} has lines 1-{check_model.lines}"))
    message_names = set()
    for i, message in enumerate(spec.messages):
        if message.name in message_names:
            problems.append((_line(pos, ("messages", i, "name")), f"message {message.name!r} is listed twice"))
        message_names.add(message.name)
    main = spec.organization.main_number
    answered_main = None
    for section in ("groups", "menus"):
        names_seen = set()
        for g, item in enumerate(getattr(spec, section)):
            what = section[:-1]
            if item.name in names_seen:
                problems.append((_line(pos, (section, g, "name")), f"{what} {item.name!r} is listed twice"))
            names_seen.add(item.name)
            if item.number and item.number == main:
                # The group or menu answers the organisation's main number.
                if answered_main is not None:
                    problems.append((_line(pos, (section, g, "number")),
                                     f"the main number {main} is already answered by {answered_main}"))
                answered_main = f"{what} {item.name!r}"
            elif item.number:
                if item.number in numbers:
                    problems.append((_line(pos, (section, g, "number")), f"number {item.number} is used twice"))
                numbers[item.number] = (section, g)
    for g, group in enumerate(spec.groups):
        for m, member in enumerate(group.members):
            if member.user not in users:
                problems.append((_line(pos, ("groups", g, "members", m)), f"no user with number {member.user}"))
    names = set()
    for b, book in enumerate(spec.phonebooks):
        if book.name in names:
            problems.append((_line(pos, ("phonebooks", b, "name")), f"phonebook {book.name!r} is listed twice"))
        names.add(book.name)
        for m, member in enumerate(book.members if book.members != "all" else []):
            if member not in users:
                problems.append((_line(pos, ("phonebooks", b, "members", m)), f"no user with number {member}"))
    if problems:
        raise OrgFileError(problems, source)


def _key_target(target: str, users: list[UserSpec]) -> str:
    """A BLF/speed-dial target as stored: a colleague's extension becomes their number."""
    for user in users:
        if target == user.extension:
            return user.number
    try:
        return to_e164(target)
    except NumberError:
        if _DIALABLE.match(target):
            return target  # service codes and short numbers (e.g. 112) as typed
        raise ValueError(f"key target {target!r} is neither a number nor a colleague's extension") from None


# ---------------------------------------------------------------------------------------------
# Applying


@dataclass
class ImportReport:
    organization: str
    created: dict[str, int] = field(default_factory=lambda: {"users": 0, "numbers": 0, "phones": 0, "keys": 0})
    updated: dict[str, int] = field(default_factory=lambda: {"users": 0, "phones": 0, "keys": 0})
    deleted: dict[str, int] = field(default_factory=lambda: {"keys": 0})

    def summary(self) -> str:
        def fmt(d):
            return ", ".join(f"{v} {k}" for k, v in d.items() if v) or "nothing"
        return (f"{self.organization}: created {fmt(self.created)}; updated {fmt(self.updated)}; "
                f"deleted {fmt(self.deleted)}")


def _count(bucket: dict | None, kind: str) -> None:
    if bucket is not None:
        bucket[kind] = bucket.get(kind, 0) + 1


def _assign(obj, bucket: dict | None, kind: str, **values) -> bool:
    """Set only the attributes that differ, so an unchanged import writes nothing."""
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    if changed:
        _count(bucket, kind)
    return changed


def new_credentials() -> tuple[str, str]:
    """A strong random SIP digest identity: nothing about it is guessable from the user."""
    return "dp" + secrets.token_hex(6), secrets.token_urlsafe(18)


async def apply(session: AsyncSession, parsed: ParsedOrgFile, source: str = "", *,
                media_dir: Path | None = None, now: datetime | None = None) -> ImportReport:
    """Apply a parsed file inside the caller's transaction; raises OrgFileError on conflicts."""
    spec, pos = parsed.spec, parsed.positions
    o = spec.organization
    report = ImportReport(o.name)
    problems: list[tuple[int | None, str]] = []

    org = (await session.execute(select(Organization).where(Organization.name == o.name))).scalar_one_or_none()
    if org is None:
        org = Organization(name=o.name)
        session.add(org)
    _assign(org, None, "organization", sip_domain=o.sip_domain, timezone=o.timezone, language=o.language,
            outbound_proxy=o.outbound_proxy, sip_port=o.sip_port, sip_transport=o.sip_transport,
            voicemail_number=o.voicemail_number, pickup_code=o.pickup_code,
            group_toggle_code=o.group_toggle_code, ntp_server=o.ntp_server, vlan=o.vlan,
            allowed_networks=",".join(o.allowed_networks), tftp_secret_networks=",".join(o.tftp_secret_networks),
            first_contact_minutes=o.first_contact_minutes)
    _assign(org, None, "organization", encrypt_configs=o.encrypt_configs)
    if o.device_admin_password:
        _assign(org, None, "organization", device_admin_password=o.device_admin_password)
    elif not org.device_admin_password:
        org.device_admin_password = secrets.token_urlsafe(12)
    await session.flush()

    number_locs: dict[str, tuple] = {}
    if o.main_number:
        number_locs[o.main_number] = ("organization", "main_number")
    for i, u in enumerate(spec.users):
        number_locs[u.number] = ("users", i, "number")
        for m, mobile in enumerate(u.mobiles or []):
            number_locs[mobile.number] = ("users", i, "mobiles", m, "number")
    for section in ("groups", "menus"):
        for g, item in enumerate(getattr(spec, section)):
            if item.number and item.number != o.main_number:
                number_locs[item.number] = (section, g, "number")
    existing_numbers = {
        n.e164: n for n in (await session.execute(select(Number).where(Number.e164.in_(list(number_locs))))).scalars()
    }
    for e164, number in existing_numbers.items():
        if number.organization_id != org.id:
            problems.append((_line(pos, number_locs[e164]), f"number {e164} belongs to another organisation"))

    if o.main_number and not problems:
        main = existing_numbers.get(o.main_number)
        if main is None:
            session.add(Number(e164=o.main_number, organization_id=org.id, role=NumberRole.main))
            report.created["numbers"] += 1
        else:
            _assign(main, None, "numbers", role=NumberRole.main, user_id=None, mobile_profile=None)

    users_by_number: dict[str, User] = {}
    for u in spec.users:
        if problems:
            break
        number = existing_numbers.get(u.number)
        user = None
        if number is not None and number.user_id is not None and number.role == NumberRole.primary:
            user = await session.get(User, number.user_id)
        if user is None:
            user = User(organization_id=org.id, name=u.name, email=u.email, extension=u.extension, keywords=[])
            session.add(user)
            report.created["users"] += 1
            await session.flush()
        else:
            _assign(user, report.updated, "users", name=u.name, email=u.email, extension=u.extension)
        if number is None:
            session.add(Number(e164=u.number, organization_id=org.id, role=NumberRole.primary, user_id=user.id))
            report.created["numbers"] += 1
        else:
            _assign(number, None, "numbers", role=NumberRole.primary, user_id=user.id, group_id=None,
                    mobile_profile=None)
        _apply_user_fields(user, u, report)
        users_by_number[u.number] = user
    await session.flush()
    for i, u in enumerate(spec.users):
        if problems:
            break
        await _sync_mobiles(session, org, users_by_number[u.number], u, existing_numbers, report)
        if u.username:
            other = (await session.execute(select(User.id).where(
                User.username == u.username.lower()))).scalar_one_or_none()
            if other is not None and other != users_by_number[u.number].id:
                problems.append((_line(pos, ("users", i, "username")), f"username {u.username} is taken"))
    await session.flush()
    removed = {n: user for n, user in users_by_number.items() if user.removed_at is not None}
    for where, n in _user_references(spec):
        if n in removed:
            problems.append((_line(pos, where), f"user {n} was removed (deactivation date "
                                                f"{removed[n].deactivation_date}); take them out of the file"))

    for i, p in enumerate(spec.phones):
        if problems:
            break
        device = (await session.execute(
            select(Device).where(Device.mac == p.mac).options(selectinload(Device.lines), selectinload(Device.keys))
        )).scalar_one_or_none()
        if device is not None and device.organization_id not in (None, org.id):
            problems.append((_line(pos, ("phones", i, "mac")), f"phone {p.mac} belongs to another organisation"))
            continue
        if device is None:
            device = Device(mac=p.mac, organization_id=org.id, lines=[], keys=[])
            session.add(device)
            report.created["phones"] += 1
        else:
            _assign(device, report.updated, "phones", organization_id=org.id)
        _assign(device, report.updated, "phones", encrypt_configs=p.encrypt_configs)
        if p.mac in parsed.models:
            plugin, model, name = parsed.models[p.mac]
            _assign(device, report.updated, "phones", vendor=plugin.name, model=model.name if model else name)
        wanted_lines = ({1: (users_by_number[p.user], p.sip)} if p.user else {}) | \
            {line.index: (users_by_number[line.user], line.sip) for line in p.lines}
        if _sync_lines(device, wanted_lines, report):
            open_first_contact(device, org.first_contact_minutes, now or utcnow())
        _sync_keys(device, p.keys, report)
        await session.flush()

    if not problems:
        await _sync_groups(session, org, spec.groups, users_by_number, existing_numbers, report)
        await _sync_phonebooks(session, org, spec.phonebooks, users_by_number)
    if not problems:
        await _sync_routing(session, org, parsed, existing_numbers, report, problems, media_dir=media_dir,
                            now=now or utcnow())

    if problems:
        raise OrgFileError(problems, source)
    return report


def _apply_user_fields(user: User, u: UserSpec, report: ImportReport) -> None:
    """The optional user fields: each one the file gives is made so; one it leaves out is kept."""
    given = u.model_fields_set
    values: dict[str, Any] = {}
    if "username" in given:
        values["username"] = u.username.lower() if u.username else None
    if u.admin is not None:
        values["is_admin"] = u.admin
    if u.softphone is not None:
        values["softphone_licence"] = u.softphone
    if u.caller_id is not None:
        values["caller_id"] = u.caller_id
    if u.keywords is not None:
        values["keywords"] = u.keywords
    if "deactivation_date" in given:
        values["deactivation_date"] = u.deactivation_date
    flags = u.flags()
    if flags is not None:
        values.update(flags)
    if u.password_hash is not None:
        values["password_hash"] = u.password_hash
    elif u.password is not None and not (user.password_hash and verify_password(user.password_hash, u.password)):
        values["password_hash"] = hash_password(u.password)
    _assign(user, report.updated, "users", **values)
    user.refresh_search_text()


async def _sync_mobiles(session: AsyncSession, org: Organization, user: User, u: UserSpec,
                        existing: dict[str, Number], report: ImportReport) -> None:
    if u.mobiles is None:
        return
    wanted = {m.number: m.profile for m in u.mobiles}
    current = (await session.execute(select(Number).where(
        Number.user_id == user.id, Number.role == NumberRole.mobile))).scalars().all()
    for number in current:
        if number.e164 not in wanted:
            await session.delete(number)
            _count(report.deleted, "numbers")
    await session.flush()
    for e164, profile in wanted.items():
        number = existing.get(e164) or next((n for n in current if n.e164 == e164), None)
        if number is None:
            session.add(Number(e164=e164, organization_id=org.id, role=NumberRole.mobile, user_id=user.id,
                               mobile_profile=profile))
            report.created["numbers"] += 1
        else:
            _assign(number, report.updated, "numbers", role=NumberRole.mobile, user_id=user.id, group_id=None,
                    mobile_profile=profile)


def _user_references(spec: OrgFileSpec):
    """(location, user number) of every place the file binds or adds a user."""
    for i, phone in enumerate(spec.phones):
        if phone.user:
            yield ("phones", i, "user"), phone.user
        for n, line in enumerate(phone.lines):
            yield ("phones", i, "lines", n, "user"), line.user
    for g, group in enumerate(spec.groups):
        for m, member in enumerate(group.members):
            yield ("groups", g, "members", m), member.user
    for b, book in enumerate(spec.phonebooks):
        for m, member in enumerate(book.members if book.members != "all" else []):
            yield ("phonebooks", b, "members", m), member


async def _sync_groups(session: AsyncSession, org: Organization, groups: list[GroupSpec],
                       users_by_number: dict[str, User], existing: dict[str, Number], report: ImportReport) -> None:
    """Groups named in the file get exactly the listed number, settings and members in the listed
    order (a member whose ``logged_in`` the file leaves out keeps their state; new ones start logged in)."""
    if not groups:
        return
    current = {g.name: g for g in (await session.execute(
        select(AnswerGroup).where(AnswerGroup.organization_id == org.id)
        .options(selectinload(AnswerGroup.members), selectinload(AnswerGroup.numbers))
    )).scalars()}
    for spec in groups:
        group = current.get(spec.name)
        if group is None:
            group = AnswerGroup(organization_id=org.id, name=spec.name, members=[], numbers=[])
            session.add(group)
            await session.flush()
            _count(report.created, "groups")
        changed = _assign(group, None, "groups", group_code=spec.group_id, strategy=spec.strategy.value,
                          ring_time=spec.ring_time, no_answer_time=spec.no_answer_time, repeat=spec.repeat,
                          retry_delay=spec.retry_delay)
        changed |= await _sync_owned_number(session, org, group, "group", spec.number, existing, report)
        wanted = [(users_by_number[m.user].id, m) for m in spec.members]
        wanted_ids = {uid for uid, _ in wanted}
        for member in list(group.members):
            if member.user_id not in wanted_ids:
                group.members.remove(member)
                changed = True
        have = {m.user_id: m for m in group.members}
        for position, (user_id, m) in enumerate(wanted):
            member = have.get(user_id)
            if member is None:
                member = GroupMember(user_id=user_id, logged_in=True if m.logged_in is None else m.logged_in,
                                     position=position, ring_time=m.ring_time)
                group.members.append(member)
                have[user_id] = member
                changed = True
                continue
            values = {"position": position, "ring_time": m.ring_time}
            if m.logged_in is not None:
                values["logged_in"] = m.logged_in
            changed |= _assign(member, None, "members", **values)
        if changed and spec.name in current:
            _count(report.updated, "groups")
    await session.flush()


async def _sync_owned_number(session: AsyncSession, org: Organization, owner, kind: str, e164: str | None,
                             existing: dict[str, Number], report: ImportReport) -> bool:
    """Give a group or menu exactly the number ``e164``. The main number is never taken over:
    its row only records that this group or menu answers it."""
    column = "group_id" if kind == "group" else "menu_id"
    changed = False
    for number in list(owner.numbers):
        if number.e164 != e164:
            if number.role == NumberRole.main:
                setattr(number, column, None)
            else:
                await session.delete(number)
            changed = True
    if e164 and all(n.e164 != e164 for n in owner.numbers):
        number = existing.get(e164)
        if number is None:
            number = (await session.execute(select(Number).where(Number.e164 == e164))).scalar_one_or_none()
        if number is None:
            session.add(Number(e164=e164, organization_id=org.id, role=NumberRole(kind), **{column: owner.id}))
            report.created["numbers"] += 1
        elif number.role == NumberRole.main:
            _assign(number, None, "numbers", group_id=owner.id if kind == "group" else None,
                    menu_id=owner.id if kind == "menu" else None)
        else:
            _assign(number, None, "numbers", role=NumberRole(kind), user_id=None, mobile_profile=None,
                    group_id=owner.id if kind == "group" else None, menu_id=owner.id if kind == "menu" else None)
        changed = True
    return changed


# -- the routing half: messages, menus, group no-answer and queues, calendars ------------------------


async def _sync_routing(session: AsyncSession, org: Organization, parsed: ParsedOrgFile,
                        existing: dict[str, Number], report: ImportReport, problems: list, *,
                        media_dir: Path | None, now: datetime) -> None:
    spec, pos = parsed.spec, parsed.positions
    if not (spec.messages or spec.menus or spec.organization.schedule is not None
            or spec.organization.holidays is not None
            or any(g.queue or g.no_answer or g.schedule is not None or g.holidays for g in spec.groups)):
        return
    store = MessageStore(media_dir) if media_dir is not None else None
    current = {m.name: m for m in (await session.execute(
        select(VoiceMessage).where(VoiceMessage.organization_id == org.id))).scalars()}
    for i, m in enumerate(spec.messages):
        message = current.get(m.name)
        if message is None:
            if m.text is None:
                problems.append((_line(pos, ("messages", i, "name")),
                                 f"message {m.name!r} does not exist yet: give its text, or upload the recording "
                                 "through the API first"))
                continue
            message = VoiceMessage(organization_id=org.id, name=m.name, text=m.text, voice=m.voice,
                                   origin="generated", status="pending")
            session.add(message)
            _count(report.created, "messages")
        elif m.text is not None and (message.text != m.text or message.voice != m.voice
                                     or message.origin != "generated"):
            message.text, message.voice, message.status = m.text, m.voice, "pending"
            _count(report.updated, "messages")
        if m.text is not None and message.status == "pending":
            try:
                await generate(message, store)
            except MediaError as exc:
                problems.append((_line(pos, ("messages", i, "text")), f"message {m.name!r}: {exc}"))
    await session.flush()
    if problems:
        return
    refs = await OrgRefs.load(session, org.id)

    def message_id(name: str | None, loc: tuple) -> int | None:
        if name is None:
            return None
        found = refs.id_by_name("message", name)
        if found is None:
            problems.append((_line(pos, loc), f"no voice message {name!r} (list it under messages:)"))
        return found

    def dest(value: Destination | None, loc: tuple) -> tuple[str | None, str | None]:
        if value is None:
            return None, None
        try:
            return dest_from_routing(value, refs)
        except RefError as exc:
            problems.append((_line(pos, loc), str(exc)))
            return None, None

    # Menus first exist (keys may lead to each other), then get their settings.
    menus = {m.name: m for m in (await session.execute(
        select(Menu).where(Menu.organization_id == org.id)
        .options(selectinload(Menu.options), selectinload(Menu.numbers)))).scalars()}
    existing_menus = set(menus)
    for k, ms in enumerate(spec.menus):
        greeting = message_id(ms.message, ("menus", k, "message"))
        if greeting is None:
            continue
        menu = menus.get(ms.name)
        if menu is None:
            menu = Menu(organization_id=org.id, name=ms.name, message_id=greeting, options=[], numbers=[])
            session.add(menu)
            await session.flush()
            menus[ms.name] = menu
            refs.menus[menu.id] = menu.name
            _count(report.created, "menus")
    if problems:
        return
    for k, ms in enumerate(spec.menus):
        menu = menus[ms.name]
        where = ("menus", k)
        t_kind, t_target = dest(ms.timeout_destination, (*where, "timeout_destination"))
        f_kind, f_target = dest(ms.final_destination, (*where, "final_destination"))
        changed = _assign(menu, None, "menus", message_id=message_id(ms.message, (*where, "message")),
                          timeout=float(ms.timeout), retries=ms.retries,
                          invalid_message_id=message_id(ms.invalid_message, (*where, "invalid_message")),
                          timeout_kind=t_kind, timeout_target=t_target, final_kind=f_kind or "hangup",
                          final_target=f_target)
        wanted = {key: dest(value, (*where, "options", key)) for key, value in ms.options.items()}
        for option in list(menu.options):
            if option.key not in wanted:
                menu.options.remove(option)
                changed = True
        have = {o.key: o for o in menu.options}
        for key, (kind, target) in wanted.items():
            if kind is None:
                continue
            if key in have:
                if (have[key].kind, have[key].target) != (kind, target):
                    have[key].kind, have[key].target = kind, target
                    changed = True
            else:
                menu.options.append(MenuOption(key=key, kind=kind, target=target))
                changed = True
        changed |= await _sync_owned_number(session, org, menu, "menu", ms.number, existing, report)
        if changed and ms.name in existing_menus:
            _count(report.updated, "menus")
    await session.flush()

    groups = {g.name: g for g in (await session.execute(
        select(AnswerGroup).where(AnswerGroup.organization_id == org.id))).scalars()}
    for g, gs in enumerate(spec.groups):
        group = groups[gs.name]
        where = ("groups", g)
        kind, target = dest(gs.no_answer, (*where, "no_answer"))
        values: dict[str, Any] = {"no_answer_kind": kind or "hangup", "no_answer_target": target,
                                  "queue_enabled": gs.queue is not None}
        q = gs.queue or QueueSpec()
        values.update(queue_max_callers=q.max_callers, queue_max_wait=q.max_wait,
                      queue_message_id=message_id(q.message, (*where, "queue", "message")),
                      queue_first_announcement=q.first_announcement, queue_announce_interval=q.announce_interval,
                      queue_announce_position=q.announce_position, queue_join_empty=q.join_empty)
        _assign(group, report.updated, "groups", **values)

    tz = ZoneInfo(org.timezone)
    years = [now.astimezone(tz).year, now.astimezone(tz).year + 1]
    owners: list[tuple[str, Any, Any, tuple]] = [("main", None, spec.organization, ("organization",))]
    owners += [("group", groups[gs.name], gs, ("groups", g)) for g, gs in enumerate(spec.groups)]
    owners += [("menu", menus[ms.name], ms, ("menus", k)) for k, ms in enumerate(spec.menus)]
    for owner_kind, owner, item, where in owners:
        if item.schedule is None and item.holidays is None:
            continue
        rows = _calendar_rows(item, where, years, message_id, dest, problems, pos)
        if rows is None:
            continue
        await _sync_calendar(session, org, owner_kind, owner, rows, item.holidays, message_id, where, report)
    await session.flush()


def _calendar_rows(item, where: tuple, years: list[int], message_id, dest, problems: list,
                   pos) -> list[dict] | None:
    """The calendar an owner's ``schedule:`` and ``holidays:`` describe, as row values in order."""
    entries: list[RoutingEntry] = []
    then: dict[str, tuple] = {}
    for e, spec in enumerate(item.schedule or []):
        entry = spec.routing_entry()
        entries.append(entry)
        if spec.then is not None:
            then[entry.name] = dest(spec.then, (*where, "schedule", e, "then"))
    own = list(entries)
    if item.holidays is not None:
        h = item.holidays
        try:
            entries = list(add_holidays(entries, years, action=h.action, message=h.message, country=h.country))
        except (ScheduleError, ValueError, NotImplementedError, KeyError) as exc:
            problems.append((_line(pos, (*where, "holidays")), f"holidays: {exc}"))
            return None
    rows = []
    for position, entry in enumerate(entries):
        loc = (*where, "schedule", own.index(entry)) if entry in own else (*where, "holidays")
        kind, target = then.get(entry.name, (None, None)) if entry in own else (None, None)
        rows.append({**entry_columns(entry), "position": position,
                     "message_id": message_id(entry.message, (*loc, "message")) if entry.message else None,
                     "then_kind": kind, "then_target": target, "holiday": entry not in own})
    return rows


_ENTRY_KEYS = ("position", "name", "action", "message_id", "date_first", "date_last", "weekdays", "time_from",
               "time_to", "then_kind", "then_target", "holiday")


async def _sync_calendar(session: AsyncSession, org: Organization, owner_kind: str, owner, rows: list[dict],
                         holidays, message_id, where: tuple, report: ImportReport) -> None:
    column = {"group": "group_id", "menu": "menu_id"}.get(owner_kind)
    stmt = select(Schedule).where(Schedule.organization_id == org.id, Schedule.owner == owner_kind)
    if column:
        stmt = stmt.where(getattr(Schedule, column) == owner.id)
    schedule = (await session.execute(stmt.options(selectinload(Schedule.entries)))).scalar_one_or_none()
    created = schedule is None
    if schedule is None:
        schedule = Schedule(organization_id=org.id, owner=owner_kind, entries=[],
                            **({column: owner.id} if column else {}))
        session.add(schedule)
        _count(report.created, "schedules")
    changed = _assign(schedule, None, "schedules",
                      holidays_country=holidays.country if holidays else None,
                      holidays_action=holidays.action if holidays else None,
                      holidays_message_id=message_id(holidays.message, (*where, "holidays", "message"))
                      if holidays else None)
    have = [tuple(getattr(e, k) for k in _ENTRY_KEYS) for e in schedule.entries]
    want = [tuple(r[k] for k in _ENTRY_KEYS) for r in rows]
    if have != want:
        schedule.entries.clear()
        await session.flush()
        for r in rows:
            schedule.entries.append(ScheduleEntry(**r))
        changed = True
    if changed and not created:
        _count(report.updated, "schedules")


async def _export_routing(session: AsyncSession, org: Organization, doc: dict) -> None:
    """The routing sections of the file: messages, group settings and calendars, menus."""
    refs = await OrgRefs.load(session, org.id)
    messages = (await session.execute(select(VoiceMessage).where(VoiceMessage.organization_id == org.id)
                                      .order_by(VoiceMessage.name))).scalars().all()
    if messages:
        doc["messages"] = [_drop_none({"name": m.name, "text": m.text, "voice": m.voice}) for m in messages]
    schedules = {(s.owner, s.group_id or s.menu_id): s for s in await load_schedules(session, org.id)}

    def calendar(owner: str, owner_id: int | None, into: dict) -> None:
        s = schedules.get((owner, owner_id))
        if s is None:
            return
        entries = []
        for e in s.entries:
            if e.holiday:
                continue
            item = entry_to_routing(e, refs).to_mapping()
            if e.then_kind:
                item["then"] = dest_to_yaml(e.then_kind, e.then_target, refs)
            entries.append(item)
        into["schedule"] = entries
        if s.holidays_country:
            into["holidays"] = _drop_none({"country": s.holidays_country, "action": s.holidays_action,
                                           "message": refs.messages.get(s.holidays_message_id)})

    calendar("main", None, doc["organization"])
    groups = {g["name"]: g for g in doc.get("groups", [])}
    for g in (await session.execute(select(AnswerGroup).where(AnswerGroup.organization_id == org.id)
                                    .options(selectinload(AnswerGroup.members)))).scalars():
        out = groups.get(g.name)
        if out is None:
            continue
        extra = {"group_id": g.group_code, "strategy": g.strategy if g.strategy != "ring_all" else None,
                 "ring_time": g.ring_time if g.ring_time != 20 else None,
                 "no_answer_time": g.no_answer_time if g.no_answer_time != 60 else None,
                 "repeat": False if not g.repeat else None, "retry_delay": g.retry_delay or None}
        number = out.pop("number", None)
        members = []
        for m in sorted(g.members, key=lambda m: (m.position, m.user_id)):
            primary = refs.users.get(m.user_id, (None,))[0]
            if primary is None:
                continue
            if m.logged_in and m.ring_time is None:
                members.append(primary)
            else:
                members.append(_drop_none({"user": primary, "logged_in": m.logged_in, "ring_time": m.ring_time}))
        rebuilt = {"name": g.name, "number": number, **_drop_none(extra), "members": members}
        if g.no_answer_kind != "hangup":
            rebuilt["no_answer"] = dest_to_yaml(g.no_answer_kind, g.no_answer_target, refs)
        if g.queue_enabled:
            rebuilt["queue"] = _drop_none({
                "max_callers": g.queue_max_callers, "max_wait": g.queue_max_wait,
                "message": refs.messages.get(g.queue_message_id),
                "first_announcement": g.queue_first_announcement, "announce_interval": g.queue_announce_interval,
                "announce_position": g.queue_announce_position or None, "join_empty": g.queue_join_empty or None})
        calendar("group", g.id, rebuilt)
        out.clear()
        out.update(_drop_none(rebuilt))
    menus = (await session.execute(select(Menu).where(Menu.organization_id == org.id).order_by(Menu.name)
                                   .options(selectinload(Menu.options), selectinload(Menu.numbers)))).scalars().all()
    if menus:
        doc["menus"] = []
        for m in menus:
            item = _drop_none({
                "name": m.name, "number": m.numbers[0].e164 if m.numbers else None,
                "message": refs.messages.get(m.message_id),
                "options": {o.key: dest_to_yaml(o.kind, o.target, refs) for o in m.options} or None,
                "timeout": m.timeout if m.timeout != 5.0 else None, "retries": m.retries if m.retries != 2 else None,
                "invalid_message": refs.messages.get(m.invalid_message_id) if m.invalid_message_id else None,
                "timeout_destination": dest_to_yaml(m.timeout_kind, m.timeout_target, refs) if m.timeout_kind else None,
                "final_destination": dest_to_yaml(m.final_kind, m.final_target, refs)
                if m.final_kind != "hangup" else None,
            })
            calendar("menu", m.id, item)
            doc["menus"].append(item)


def _sync_lines(device: Device, wanted: dict[int, tuple[User, CredentialsSpec | None]],
                report: ImportReport) -> bool:
    """One account per line index; a line without a user is removed (and no secret served).
    True when a line got a new user: the device is (re)bound and gets a first-contact window."""
    bound = False
    bucket = report.updated if device.id is not None else None
    for line in list(device.lines):
        if line.index not in wanted:
            device.lines.remove(line)
            _count(bucket, "phones")
    current = {line.index: line for line in device.lines}
    for index, (user, sip) in sorted(wanted.items()):
        line = current.get(index)
        if line is None:
            username, password = (sip.username, sip.password) if sip else new_credentials()
            device.lines.append(Line(index=index, user_id=user.id, auth_username=username, password=password))
            _count(bucket, "phones")
            bound = True
            continue
        if line.user_id != user.id and sip is None:
            # A new owner never inherits the previous owner's SIP secret.
            line.auth_username, line.password = new_credentials()
        bound |= line.user_id != user.id
        _assign(line, bucket, "phones", user_id=user.id)
        if sip is not None:
            _assign(line, bucket, "phones", auth_username=sip.username, password=sip.password)
    return bound


async def _sync_phonebooks(session: AsyncSession, org: Organization, books: list[PhonebookSpec],
                           users_by_number: dict[str, User]) -> None:
    """Phonebooks named in the file get exactly the listed contacts and members."""
    existing = {b.name: b for b in (await session.execute(
        select(Phonebook).where(Phonebook.organization_id == org.id)
        .options(selectinload(Phonebook.contacts), selectinload(Phonebook.members))
    )).scalars()}
    everyone = None
    for spec in books:
        book = existing.get(spec.name)
        if book is None:
            book = Phonebook(organization_id=org.id, name=spec.name, contacts=[], members=[])
            session.add(book)
        current = {(c.name, c.number): c for c in book.contacts}
        wanted = {(c.name, c.number): c for c in spec.contacts}
        for key, contact in current.items():
            if key not in wanted:
                book.contacts.remove(contact)
        for key, c in wanted.items():
            if key in current:
                _assign(current[key], None, "contacts", mobile=c.mobile, company=c.company)
            else:
                book.contacts.append(Contact(name=c.name, number=c.number, mobile=c.mobile, company=c.company))
        if spec.members == "all":
            if everyone is None:
                everyone = (await session.execute(select(User.id).where(User.organization_id == org.id))).scalars().all()
            member_ids = set(everyone)
        else:
            member_ids = {users_by_number[n].id for n in spec.members}
        for member in list(book.members):
            if member.user_id not in member_ids:
                book.members.remove(member)
        for user_id in member_ids - {m.user_id for m in book.members}:
            book.members.append(PhonebookMember(user_id=user_id))
    await session.flush()


def _sync_keys(device: Device, keys: list[KeySpec], report: ImportReport) -> None:
    current = {(k.module, k.slot): k for k in device.keys}
    wanted = {(k.module, k.slot): k for k in keys}
    for where, key in current.items():
        if where not in wanted:
            device.keys.remove(key)
            report.deleted["keys"] += 1
    for where, spec in wanted.items():
        values = dict(type=spec.type, target=spec.target, label=spec.label, line_index=spec.line)
        key = current.get(where)
        if key is None:
            device.keys.append(Key(module=spec.module, slot=spec.slot, **values))
            report.created["keys"] += 1
        else:
            _assign(key, report.updated, "keys", **values)


async def import_text(session: AsyncSession, text: str | bytes, source: str = "",
                      now: datetime | None = None, media_dir: Path | None = None) -> ImportReport:
    """Parse, check and apply in one transaction: all of it or nothing. A change is recorded in
    the audit log (as the command line's) with its summary; an import that changes nothing, nothing.

    ``media_dir`` is where voice messages are stored (``<data_dir>/messages``); without it,
    messages given as text are kept as text, pending generation. ``now`` (default: the wall
    clock) decides which years' public holidays ``holidays:`` adds: the current and the next."""
    parsed = parse(text, source)
    try:
        report = await apply(session, parsed, source, media_dir=media_dir, now=now or utcnow())
        if any(any(bucket.values()) for bucket in (report.created, report.updated, report.deleted)):
            org_id = (await session.execute(select(Organization.id).where(
                Organization.name == parsed.spec.organization.name))).scalar_one()
            record(session, CLI, now=now or utcnow(), action="import", entity="organization", entity_id=org_id,
                   organization_id=org_id, after={"source": source or None, "summary": report.summary(),
                                                  "created": report.created, "updated": report.updated,
                                                  "deleted": report.deleted})
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    return report


# ---------------------------------------------------------------------------------------------
# Exporting


async def export(session: AsyncSession, organization: str, with_secrets: bool = False) -> str:
    org = (await session.execute(
        select(Organization).where(Organization.name == organization)
        .options(selectinload(Organization.numbers))
    )).scalar_one_or_none()
    if org is None:
        raise LookupError(f"no organisation named {organization!r}")
    users = (await session.execute(
        select(User).where(User.organization_id == org.id).options(selectinload(User.numbers)).order_by(User.id)
    )).scalars().all()
    devices = (await session.execute(
        select(Device).where(Device.organization_id == org.id)
        .options(selectinload(Device.lines).selectinload(Line.user).selectinload(User.numbers),
                 selectinload(Device.keys))
        .order_by(Device.mac)
    )).scalars().all()
    main = next((n.e164 for n in org.numbers if n.role == NumberRole.main), None)
    doc: dict[str, Any] = {"organization": _drop_none({
        "name": org.name, "sip_domain": org.sip_domain, "main_number": main, "timezone": org.timezone,
        "language": org.language, "outbound_proxy": org.outbound_proxy, "sip_port": org.sip_port,
        "sip_transport": org.sip_transport, "voicemail_number": org.voicemail_number,
        "pickup_code": org.pickup_code, "group_toggle_code": org.group_toggle_code,
        "ntp_server": org.ntp_server, "vlan": org.vlan,
        "encrypt_configs": True if org.encrypt_configs else None,
        "allowed_networks": org.allowed_networks.split(",") if org.allowed_networks else None,
        "tftp_secret_networks": org.tftp_secret_networks.split(",") if org.tftp_secret_networks else None,
        "first_contact_minutes": org.first_contact_minutes,
        "device_admin_password": org.device_admin_password if with_secrets else None,
    })}
    doc["users"] = [_export_user(u, with_secrets) for u in users if primary_number(u)]
    groups = (await session.execute(
        select(AnswerGroup).where(AnswerGroup.organization_id == org.id).order_by(AnswerGroup.name)
        .options(selectinload(AnswerGroup.numbers),
                 selectinload(AnswerGroup.members).selectinload(GroupMember.user).selectinload(User.numbers))
    )).scalars().all()
    if groups:
        doc["groups"] = [_drop_none({
            "name": g.name, "number": g.numbers[0].e164 if g.numbers else None,
            "members": sorted(n for m in g.members if (n := primary_number(m.user))),
        }) for g in groups]
    await _export_routing(session, org, doc)
    books = (await session.execute(
        select(Phonebook).where(Phonebook.organization_id == org.id).order_by(Phonebook.name)
        .options(selectinload(Phonebook.contacts),
                 selectinload(Phonebook.members).selectinload(PhonebookMember.user).selectinload(User.numbers))
    )).scalars().all()
    if books:
        doc["phonebooks"] = [{
            "name": b.name,
            "members": sorted(n for m in b.members if (n := primary_number(m.user))),
            "contacts": [_drop_none({"name": c.name, "number": c.number, "mobile": c.mobile, "company": c.company})
                         for c in b.contacts],
        } for b in books]
    phones = []
    for d in devices:
        vendor = BY_NAME.get(d.vendor or "")
        phone = _drop_none({
            "mac": ":".join(d.mac[i:i + 2] for i in range(0, 12, 2)).upper(),
            "model": f"{vendor.display_name} {d.model}" if vendor and d.model else None,
            "encrypt_configs": d.encrypt_configs,
        })
        for line in d.lines:
            entry = {"index": line.index, "user": primary_number(line.user)}
            if with_secrets:
                entry["sip"] = {"username": line.auth_username, "password": line.password}
            if line.index == 1:
                phone.update({k: v for k, v in entry.items() if k != "index"})
            else:
                phone.setdefault("lines", []).append(entry)
        if d.keys:
            phone["keys"] = [_drop_none({
                "slot": k.slot, "module": k.module or None, "type": k.type.value, "target": k.target,
                "label": k.label, "line": k.line_index if k.line_index != 1 else None,
            }) for k in d.keys]
        phones.append(phone)
    doc["phones"] = phones
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False)


def _export_user(u: User, with_secrets: bool) -> dict:
    """A user as the file writes it: defaults left out, the password hash only with secrets."""
    flags = {name: getattr(u, name) for name in FLAGS}
    mobiles = sorted((n for n in u.numbers if n.role == NumberRole.mobile), key=lambda n: n.e164)
    entry = {
        "name": u.name, "email": u.email, "number": primary_number(u), "extension": u.extension,
        "username": u.username,
        "admin": True if u.is_admin else None,
        "softphone": True if u.softphone_licence else None,
        "caller_id": u.caller_id.value if u.caller_id != CallerId.fixed else None,
        "mobiles": [{"number": n.e164, "profile": (n.mobile_profile or MobileProfile.non_mex).value}
                    for n in mobiles] or None,
        "keywords": list(u.keywords) if u.keywords else None,
        "feature_groups": groups_from_flags(flags) or None,
        "deactivation_date": u.deactivation_date,
        "password_hash": u.password_hash if with_secrets else None,
    }
    return _drop_none(entry)


def _drop_none(values: dict) -> dict:
    return {k: v for k, v in values.items() if v is not None}
