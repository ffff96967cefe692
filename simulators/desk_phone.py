"""A desk phone in a call: rings, answers, is busy, and uses the service's DTMF functions.

Why it exists: the service's switchboard functions (seed 000, "Växelfunktioner")
are key presses *inside* a call: ``##`` parks the caller and gives dial tone,
the colleague's extension (or an external number with its area code) follows,
``#`` after the number rings sooner, ``#`` takes the caller back, ``##2``
toggles, ``##1`` ends the active call, hanging up transfers.  The phone only
sends keys and hangs up; the hosted PBX (the routing engine) acts.  So this
simulator is a user with a handset and a script, nothing more.

Identity comes from what the phone really fetched: :meth:`DeskPhone.from_state`
reads a :class:`~simulators.phone.PhoneState` (from
:class:`~simulators.phone.Phone` booting against a running server): the
account's user name is the user's number (``46854689901`` -> ``+46854689901``),
its label the extension, and the BLF/speed-dial keys are what :meth:`key` presses.

Independence: nothing here imports ``provisioning``.  The phone meets the
engine structurally: it has ``address`` and ``offer(leg)``, drives legs only
through the calls listed in :class:`LegLike` (the engine's leg has the same
names), and places calls through any ``pbx`` with ``register(endpoint)`` and
``originate(endpoint, digits) -> leg``.  The clock is any object with ``now``,
``call_later``, ``call_soon``, ``spawn``, ``sleep`` and ``create_future``.

Script (a list of steps run in order by one actor; every step may have ``until``
and/or ``after``, then at most one action)::

    - until: answered          # wait for an event: ringing, answered, ended, idle, or
                               # what the PBX indicates: dial-tone, ringback, connected,
                               # busy-tone, hold, disconnected, number-unobtainable
    - {after: 5, press: "##"}  # wait 5 s, then send keys on the current call
    - {until: dial-tone, key: 2}   # press programmable key 2 (BLF: its extension)
    - {until: ringback, after: 2, hangup: true}
    - {after: 3, dial: "0812345678"}   # a new call (when idle)
    - {callback: 1}            # dial the newest entry of "recent calls"
    - {answer: true}           # pick up the ringing call (when answer_after is None)
    - {wait: 10}               # just wait
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["DeskPhone", "LegLike", "PhoneKey", "SCRIPT_ACTIONS"]

SCRIPT_ACTIONS = ("press", "key", "hangup", "dial", "callback", "answer", "wait")
_ALERTING = ("offered", "ringing", "forwarded")


class LegLike(Protocol):
    """The leg-facing calls the phone makes; the routing engine's leg has the same names."""

    call: Any  # has .caller, .called, .presented
    state: str

    def ringing(self) -> None: ...
    def answered(self, by: str | None = None) -> None: ...
    def rejected(self, reason: str) -> None: ...
    def ended(self, reason: str = "normal") -> None: ...
    def pressed(self, keys: str) -> None: ...
    def add_done_callback(self, callback: Callable[[Any], Any]) -> None: ...
    def add_indication_listener(self, listener: Callable[[Any, str, dict[str, Any]], Any]) -> None: ...


@dataclass(frozen=True)
class PhoneKey:
    """A programmable key as the phone got it: ``type`` blf/speed_dial/..., ``value`` what it dials."""

    slot: int
    type: str
    value: str
    label: str = ""


class DeskPhone:
    """One desk phone and its user's behaviour.

    ``answer_after``: seconds until the user picks up (``None``: only a script's
    ``answer``).  ``busy``: every call is refused busy (the phone is in use
    outside the simulation, or do-not-disturb).  A call offered while the phone
    is in a call rings as a waiting call and is not picked up automatically.
    """

    def __init__(
        self,
        clock: Any,
        *,
        number: str,
        extension: str | None = None,
        display_name: str = "",
        keys: Iterable[PhoneKey] = (),
        answer_after: float | None = None,
        busy: bool = False,
        script: Iterable[Mapping[str, Any]] = (),
        trace: Any = None,
        mac: str | None = None,
    ):
        self.clock = clock
        self.address = number
        self.number = number
        self.extension = extension
        self.display_name = display_name
        self.keys = {k.slot: k for k in keys}
        self.answer_after = answer_after
        self.busy = busy
        self.script = [dict(step) for step in script]
        self.trace = trace
        self.mac = mac
        self.pbx: Any = None
        self.offered: list[Any] = []  # every incoming leg, oldest first
        self.recent: list[str] = []  # "recent calls": what the display showed, newest first
        self.ringing_legs: list[Any] = []
        self.calls: list[Any] = []  # answered or dialled legs still up
        self.current: Any = None  # the call the handset is on
        self.heard: list[tuple[float, str, dict[str, Any]]] = []
        self.events: list[str] = []
        self.task: Any = None
        self._waiters: list[tuple[str, int, Any]] = []
        self._timers: dict[int, list[Any]] = {}
        for step in self.script:
            _check_step(step)

    # -- identity from the fetched configuration --------------------------------------------

    @classmethod
    def from_state(cls, clock: Any, state: Any, *, account: int = 1, **behaviour: Any) -> DeskPhone:
        """The phone a booted :class:`~simulators.phone.PhoneState` describes (its account ``account``)."""
        acc = state.accounts.get(account)
        if acc is None or not acc.registered:
            raise ValueError(f"{state.vendor} {state.model} {state.mac}: account {account} is not configured "
                             f"to register, so the phone cannot take calls ({state.errors or 'no errors'})")
        user = acc.user_name
        number = "+" + user if user.isdigit() and len(user) >= 8 else user
        extension = acc.label if acc.label.isdigit() else None
        keys = [PhoneKey(k.slot, k.type, k.value, k.label) for k in state.keys.values()
                if k.module == 0 and k.type in ("blf", "speed_dial") and k.value]
        return cls(clock, number=number, extension=extension, display_name=acc.display_name, keys=keys,
                   mac=state.mac, **behaviour)

    @classmethod
    async def boot(cls, clock: Any, profile: Any, base_url: str, *, account: int = 1, session: Any = None,
                   **behaviour: Any) -> DeskPhone:
        """Boot a vendor profile against a provisioning server over HTTP, then build the phone from what it got."""
        from simulators.phone import Phone

        state = await Phone(profile, session=session).boot_http(base_url)
        if state.errors:
            raise RuntimeError(f"phone {profile.mac} did not boot cleanly: {state.errors}")
        return cls.from_state(clock, state, account=account, **behaviour)

    def connect(self, pbx: Any) -> DeskPhone:
        """Register with the PBX (it rings ``address``) and start the script."""
        self.pbx = pbx
        pbx.register(self)
        if self.script and self.task is None:
            self.task = self.clock.spawn(self._run_script(), name=f"phone {self.number}")
        return self

    # -- incoming calls --------------------------------------------------------------------------

    def offer(self, leg: Any) -> None:
        self.offered.append(leg)
        shown = getattr(leg.call, "presented", None) or leg.call.caller
        self.recent.insert(0, shown)
        if self.busy:
            leg.rejected("busy")
            return
        leg.ringing()
        self.ringing_legs.append(leg)
        self._event("ringing")
        timers: list[Any] = []
        self._timers[id(leg)] = timers
        if self.answer_after is not None and self.current is None:
            timers.append(self.clock.call_later(self.answer_after, self._pick_up, leg))
        leg.add_done_callback(self._leg_done)

    def answer(self) -> None:
        """Pick up the oldest ringing call (also a waiting one, while in another call)."""
        if not self.ringing_legs:
            raise RuntimeError(f"{self.number}: nothing is ringing")
        self._pick_up(self.ringing_legs[0], auto=False)

    def _pick_up(self, leg: Any, auto: bool = True) -> None:
        if leg.state not in _ALERTING or (auto and self.current is not None):
            return  # the user took another call meanwhile: this one keeps ringing
        for timer in self._timers.pop(id(leg), ()):
            timer.cancel()
        if leg in self.ringing_legs:
            self.ringing_legs.remove(leg)
        leg.answered()
        self._in_call(leg)
        self._event("answered")

    def _in_call(self, leg: Any) -> None:
        self.calls.append(leg)
        self.current = leg
        leg.add_indication_listener(self._indication)

    def _leg_done(self, leg: Any) -> None:
        for timer in self._timers.pop(id(leg), ()):
            timer.cancel()
        if leg in self.ringing_legs:
            self.ringing_legs.remove(leg)
        if leg in self.calls:
            self.calls.remove(leg)
            if leg is self.current:
                self.current = self.calls[-1] if self.calls else None
            self._event("ended")
            if not self.calls:
                self._event("idle")

    def _indication(self, leg: Any, what: str, detail: dict[str, Any]) -> None:
        if leg is not self.current:
            return
        self.heard.append((self._offset(), what, detail))
        self._event(what)

    # -- what the user does -------------------------------------------------------------------------

    def press(self, keys: str) -> None:
        """Send DTMF on the current call (``##``, ``202#``, ``##2``...)."""
        if self.current is None:
            raise RuntimeError(f"{self.number}: no call to send {keys!r} on")
        self.current.pressed(keys)

    def hangup(self) -> None:
        """Put the handset down: ends the current call (a transfer, when the PBX has one set up)."""
        if self.current is not None:
            self.current.ended("normal")
        elif self.ringing_legs:
            self.ringing_legs[0].rejected("declined")
        else:
            raise RuntimeError(f"{self.number}: hang up what? the phone is idle")

    def dial(self, number: str) -> Any:
        """Lift the handset and dial ``number`` through the PBX."""
        if self.pbx is None:
            raise RuntimeError(f"{self.number}: not connected to a PBX")
        leg = self.pbx.originate(self, number)
        self._in_call(leg)
        leg.add_done_callback(self._leg_done)
        self._event("dialled")
        return leg

    def callback(self, index: int = 1) -> Any:
        """Call back entry ``index`` of "recent calls" (1 = newest), exactly as it was shown."""
        shown = self.recent[index - 1]
        self._record("phone.callback", shown=shown)
        return self.dial(shown)

    def key(self, slot: int) -> None:
        """Press programmable key ``slot``: in a call its number goes in as keys, when idle it is dialled."""
        key = self.keys.get(slot)
        if key is None:
            raise KeyError(f"{self.number}: key {slot} is not a BLF or speed-dial key on this phone")
        self._record("phone.key", slot=slot, type=key.type, value=key.value, label=key.label)
        if self.current is not None:
            self.press(key.value)
        else:
            self.dial(key.value)

    # -- the script -------------------------------------------------------------------------------

    def _event(self, name: str) -> None:
        self.events.append(name)
        index = len(self.events) - 1
        for waiter in list(self._waiters):
            wanted, cursor, future = waiter
            if wanted == name and index >= cursor and not future.done():
                future.set_result(name)
                self._waiters.remove(waiter)

    def until(self, name: str, cursor: int | None = None) -> Any:
        """A future resolved at the next ``name`` event (at or after index ``cursor``)."""
        cursor = len(self.events) if cursor is None else cursor
        future = self.clock.create_future()
        if name in self.events[cursor:]:
            future.set_result(name)
        else:
            self._waiters.append((name, cursor, future))
        return future

    async def _run_script(self) -> None:
        cursor = 0
        for step in self.script:
            if "until" in step:
                await self.until(step["until"], cursor)
            if step.get("after"):
                await self.clock.sleep(float(step["after"]))
            if step.get("wait"):
                await self.clock.sleep(float(step["wait"]))
            if "press" in step:
                self.press(str(step["press"]))
            elif "key" in step:
                self.key(int(step["key"]))
            elif step.get("hangup"):
                self.hangup()
            elif "dial" in step:
                self.dial(str(step["dial"]))
            elif "callback" in step:
                self.callback(int(step["callback"]))
            elif step.get("answer"):
                self.answer()
            cursor = len(self.events)

    # -- helpers ----------------------------------------------------------------------------------------

    def _offset(self) -> float:
        start = getattr(self.clock, "start", None)
        return (self.clock.now - start).total_seconds() if start is not None else 0.0

    def _record(self, kind: str, **detail: Any) -> None:
        if self.trace is not None:
            self.trace.record(kind, self.number, **detail)

    def __repr__(self) -> str:
        ext = f" ext {self.extension}" if self.extension else ""
        return f"<DeskPhone {self.number}{ext}>"


def _check_step(step: Mapping[str, Any]) -> None:
    known = {"until", "after", *SCRIPT_ACTIONS}
    unknown = set(step) - known
    if unknown:
        raise ValueError(f"unknown script step field(s) {sorted(unknown)}; known: {sorted(known)}")
    actions = [a for a in ("press", "key", "hangup", "dial", "callback", "answer") if a in step]
    if len(actions) > 1:
        raise ValueError(f"one action per script step, not {actions}")
