"""IVR menus (MISSION A12): a greeting, where each key goes, and what happens on silence or a wrong key.

:class:`Menu` is the configuration; :class:`MenuRun` is one caller's pass through
it, a pure state machine: the engine feeds it the caller's key presses and the
expiry of the wait, and gets back the actions to perform.  It knows nothing about
time or audio, so the engine can drive it on its virtual clock and tests can drive
it with a list of inputs (:func:`simulate`).

Behaviour (after FreeSWITCH's menu: greeting, timeout, max failures, exit action)
------------------------------------------------------------------------------------
* :meth:`MenuRun.start`: play the greeting, then wait ``timeout`` seconds for a key.
  A key pressed during the greeting interrupts it (the engine's business).
* A key with a destination routes there and the run is over.  ``repeat`` plays the
  greeting again; ``message`` plays that message and then the greeting again (an
  "opening hours" key).  Neither counts as a failure.
* A key without a destination is an *invalid entry*: play ``invalid_message`` if
  any, then the greeting again.  No key before the wait ends is a *timeout*: play
  the greeting again.  Both use up one of the ``retries`` (one shared count), so the
  greeting is heard at most ``retries + 1`` times.  The failure after that goes to
  ``timeout_destination`` when it was a timeout and one is set (typically the
  switchboard: "stay on the line"), otherwise to ``final_destination`` (hang up by
  default).  A ``message`` final destination plays the message and hangs up.

The menu's calendar (same rules as groups) is a :class:`~provisioning.routing.schedule.Schedule`
attached by the engine, not part of this module.

Database mapping
----------------
``menu``: ``name``, ``message_id`` (greeting), ``timeout``, ``retries``,
``invalid_message_id`` (NULL = none), the timeout and final destinations as
``(kind, target)`` column pairs.  ``menu_option``: ``menu_id``, ``key`` (one of
``0-9 * #``, unique per menu), ``kind`` (a :class:`DestinationKind` value) and
``target`` (user number, group, menu, E.164 number, voicemail box, message; NULL
for ``repeat``/``hangup``).  ``message`` targets are voice-message references (id
or name); :meth:`Menu.message_refs` lists them for "in use" checks.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Union

__all__ = [
    "Destination",
    "DestinationKind",
    "Hangup",
    "KEYS",
    "Menu",
    "MenuError",
    "MenuAction",
    "MenuRun",
    "Play",
    "Route",
    "WaitForDigit",
    "simulate",
]

#: The keys of a telephone keypad.
KEYS = frozenset("0123456789*#")
_EXTERNAL = re.compile(r"\+?[0-9]{2,20}")


class MenuError(ValueError):
    """An invalid menu or destination, or a run driven out of turn."""


class DestinationKind(enum.StrEnum):
    USER = "user"
    GROUP = "group"
    MENU = "menu"
    EXTERNAL = "external"
    VOICEMAIL = "voicemail"
    MESSAGE = "message"
    REPEAT = "repeat"
    HANGUP = "hangup"


_NEEDS_TARGET = frozenset(
    {
        DestinationKind.USER,
        DestinationKind.GROUP,
        DestinationKind.MENU,
        DestinationKind.EXTERNAL,
        DestinationKind.VOICEMAIL,
        DestinationKind.MESSAGE,
    }
)


@dataclass(frozen=True)
class Destination:
    """Where a key (or the end of the menu) leads: ``kind`` plus a ``target`` reference.

    Targets are references the model layer resolves: a user's number, a group's or
    menu's name or id, an external number (digits, optional leading ``+``), the user
    whose voicemail box answers, a voice message.  ``repeat`` and ``hangup`` have none.
    """

    kind: DestinationKind
    target: str | None = None

    def __post_init__(self) -> None:
        try:
            kind = DestinationKind(str(self.kind).strip().lower())
        except ValueError:
            known = ", ".join(k.value for k in DestinationKind)
            raise MenuError(f"unknown destination {self.kind!r}; use one of {known}") from None
        object.__setattr__(self, "kind", kind)
        target = None if self.target is None else (str(self.target).strip() or None)
        object.__setattr__(self, "target", target)
        if kind in _NEEDS_TARGET and target is None:
            raise MenuError(f"a {kind.value} destination needs a target")
        if kind not in _NEEDS_TARGET and target is not None:
            raise MenuError(f"a {kind.value} destination takes no target (got {target!r})")
        if kind is DestinationKind.EXTERNAL and not _EXTERNAL.fullmatch(target.replace(" ", "").replace("-", "")):  # type: ignore[union-attr]
            raise MenuError(f"{target!r} is not a phone number; external numbers need digits and the area code")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | str) -> Destination:
        """``{"user": "+4685..."}``, ``{"kind": "group", "target": "Växeln"}``, or ``"repeat"``/``"hangup"``."""
        if isinstance(data, str):
            return cls(data)  # type: ignore[arg-type]
        if "kind" in data:
            return cls(data["kind"], data.get("target"))
        if len(data) != 1:
            raise MenuError(f"a destination is one of kind: target, not {dict(data)!r}")
        ((kind, target),) = data.items()
        return cls(kind, target)

    def to_mapping(self) -> dict[str, Any] | str:
        return self.kind.value if self.target is None else {self.kind.value: self.target}

    def __str__(self) -> str:
        return self.kind.value if self.target is None else f"{self.kind.value} {self.target}"


HANGUP = Destination(DestinationKind.HANGUP)


@dataclass(frozen=True)
class Menu:
    """An IVR menu.  ``options`` maps keys (``0-9 * #``) to destinations."""

    name: str
    message: str
    options: Mapping[str, Destination] = field(default_factory=dict)
    timeout: float = 5.0
    retries: int = 2
    invalid_message: str | None = None
    timeout_destination: Destination | None = None
    final_destination: Destination = HANGUP

    def __post_init__(self) -> None:
        if not str(self.name).strip():
            raise MenuError("a menu needs a name")
        if not self.message or not str(self.message).strip():
            raise MenuError(f"menu {self.name!r} needs a voice message (its greeting)")
        options: dict[str, Destination] = {}
        for key, dest in dict(self.options).items():
            key = str(key).strip()
            if key not in KEYS:
                raise MenuError(f"menu {self.name!r}: {key!r} is not a key; use 0-9, * or #")
            if key in options:
                raise MenuError(f"menu {self.name!r}: key {key} is given twice")
            if not isinstance(dest, Destination):
                dest = Destination.from_mapping(dest)  # type: ignore[arg-type]
            if dest.kind is DestinationKind.MENU and dest.target == self.name:
                raise MenuError(f"menu {self.name!r}: key {key} leads to the menu itself; use repeat")
            options[key] = dest
        object.__setattr__(self, "options", MappingProxyType(options))
        if isinstance(self.timeout, bool) or not self.timeout > 0:
            raise MenuError(f"menu {self.name!r}: timeout must be a positive number of seconds")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise MenuError(f"menu {self.name!r}: retries must be a whole number, 0 or more")
        for attr in ("timeout_destination", "final_destination"):
            dest = getattr(self, attr)
            if dest is not None and not isinstance(dest, Destination):
                dest = Destination.from_mapping(dest)
                object.__setattr__(self, attr, dest)
            if dest is not None and dest.kind is DestinationKind.REPEAT:
                raise MenuError(f"menu {self.name!r}: the {attr.replace('_', ' ')} cannot be repeat (it would never end)")

    def message_refs(self) -> list[tuple[str, str]]:
        """``(where, message)``: the voice messages this menu uses, for "delete refused while in use"."""
        refs = [(f"menu {self.name}: greeting", self.message)]
        if self.invalid_message:
            refs.append((f"menu {self.name}: invalid entry", self.invalid_message))
        for key, dest in sorted(self.options.items()):
            if dest.kind is DestinationKind.MESSAGE:
                refs.append((f"menu {self.name}: key {key}", dest.target))  # type: ignore[arg-type]
        for label, dest in (("no choice", self.timeout_destination), ("final", self.final_destination)):
            if dest is not None and dest.kind is DestinationKind.MESSAGE:
                refs.append((f"menu {self.name}: {label}", dest.target))  # type: ignore[arg-type]
        return refs


# -- actions ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Play:
    """Play a voice message.  ``reason``: greeting, repeat, retry, invalid or message."""

    message: str
    reason: str


@dataclass(frozen=True)
class WaitForDigit:
    """Wait up to ``timeout`` seconds (after the playback) for a key."""

    timeout: float


@dataclass(frozen=True)
class Route:
    """Leave the menu for ``destination``.  ``reason``: key, timeout or invalid."""

    destination: Destination
    reason: str


@dataclass(frozen=True)
class Hangup:
    reason: str


MenuAction = Union[Play, WaitForDigit, Route, Hangup]


class MenuRun:
    """One caller in one menu.  Call :meth:`start`, then :meth:`digit` / :meth:`timeout` until :attr:`done`."""

    def __init__(self, menu: Menu):
        self.menu = menu
        self.failures = 0
        self.started = False
        self.done = False
        self.outcome: Route | Hangup | None = None

    def start(self) -> list[MenuAction]:
        if self.started:
            raise MenuError("the menu run has already started")
        self.started = True
        return self._prompt("greeting")

    def digit(self, key: str) -> list[MenuAction]:
        """The caller pressed ``key``."""
        self._check_running()
        key = str(key)
        if key not in KEYS:
            raise MenuError(f"{key!r} is not a telephone key")
        dest = self.menu.options.get(key)
        if dest is None:
            return self._failure("invalid")
        if dest.kind is DestinationKind.REPEAT:
            return self._prompt("repeat")
        if dest.kind is DestinationKind.MESSAGE:
            return [Play(dest.target, "message"), *self._prompt("repeat")]  # type: ignore[arg-type]
        return self._leave(dest, "key")

    def timeout(self) -> list[MenuAction]:
        """The wait for a key ran out."""
        self._check_running()
        return self._failure("timeout")

    def _check_running(self) -> None:
        if not self.started:
            raise MenuError("start the menu run first")
        if self.done:
            raise MenuError("the menu run is over")

    def _prompt(self, reason: str) -> list[MenuAction]:
        return [Play(self.menu.message, reason), WaitForDigit(self.menu.timeout)]

    def _failure(self, reason: str) -> list[MenuAction]:
        self.failures += 1
        actions: list[MenuAction] = []
        if reason == "invalid" and self.menu.invalid_message:
            actions.append(Play(self.menu.invalid_message, "invalid"))
        if self.failures <= self.menu.retries:
            return actions + self._prompt("retry")
        dest = self.menu.final_destination
        if reason == "timeout" and self.menu.timeout_destination is not None:
            dest = self.menu.timeout_destination
        return actions + self._leave(dest, reason)

    def _leave(self, dest: Destination, reason: str) -> list[MenuAction]:
        self.done = True
        if dest.kind is DestinationKind.HANGUP:
            self.outcome = Hangup(reason)
            return [self.outcome]
        if dest.kind is DestinationKind.MESSAGE:
            self.outcome = Hangup(reason)
            return [Play(dest.target, "message"), self.outcome]  # type: ignore[arg-type]
        self.outcome = Route(dest, reason)
        return [self.outcome]


def simulate(menu: Menu, inputs: Iterable[str]) -> list[MenuAction]:
    """Every action of a run fed ``inputs`` (keys, or ``"timeout"``), stopping when the run is over."""
    run = MenuRun(menu)
    actions = run.start()
    for item in inputs:
        if run.done:
            break
        actions += run.timeout() if item == "timeout" else run.digit(item)
    return actions
