"""The one interface through which endpoints (phones, mobiles, voicemail, simulators) meet the engine.

The engine offers a call to an endpoint one *leg* at a time::

    leg = CallLeg(clock, offer, endpoint.address, trace=trace)
    endpoint.offer(leg)          # returns at once; the endpoint answers later, on the clock
    await leg.settled()          # in an engine actor: answered, rejected or cancelled

``offer`` is deliberately synchronous and returns nothing: the endpoint's
decision (ring and answer after N s, reject busy, never answer, be unreachable,
get forwarded by its network) takes virtual time, so the endpoint schedules it
on the clock and reports back through the leg.  Everything an endpoint says is
a past-tense call on the leg (``ringing``, ``forwarded``, ``answered``,
``rejected``, ``ended``); everything the engine says is an imperative
(``cancel``, ``hangup``).  Endpoints hear about the engine's side through
:meth:`CallLeg.add_done_callback`, which they must use to drop their pending
timers: reporting on a finished leg raises :class:`IllegalLegTransition`.

Forwarding done *by the PBX* (diversions, user forwarding) is the engine's
business and never goes through an endpoint.  ``leg.forwarded(to, reason)``
is for forwarding beyond the PBX, in the operator's network (GSM call
forwarding): informational, like SIP 181, and the leg carries on with the
forwarded-to party's outcome.  That is exactly why the operator's voicemail
can answer a group call (MISSION C6).

In-call signalling, once a leg is answered: the endpoint sends key presses with
``leg.pressed(keys)`` (the service's DTMF functions, ``##`` and friends, are
in-band, so they work from any phone), and the engine tells the endpoint what
it hears with ``leg.indicate(what, **detail)`` (dial tone, ringback, busy tone,
connected...).  Both are delivered soon, like state changes: engine listeners
through :meth:`CallLeg.add_dtmf_listener`, endpoints through
:meth:`CallLeg.add_indication_listener`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from provisioning.routing.clock import ClockFuture, TimerHandle, Trace, VirtualClock

__all__ = [
    "CallLeg",
    "CallOffer",
    "EndpointProtocol",
    "FORWARD_REASONS",
    "IllegalLegTransition",
    "LegEvent",
    "LegState",
    "REJECT_REASONS",
    "ScriptedEndpoint",
    "offer_call",
]

#: Why an endpoint refused a leg.  ``busy`` also covers a user pressing reject (GSM "UDUB").
REJECT_REASONS = frozenset({"busy", "no-answer", "unreachable", "declined", "not-found", "congestion"})
#: Keys of a telephone keypad, as DTMF.
_DTMF = frozenset("0123456789*#")
#: Why a network forwarded a leg; the GSM conditions of 3GPP TS 22.082.
FORWARD_REASONS = frozenset({"unconditional", "busy", "no-reply", "not-reachable"})


class IllegalLegTransition(RuntimeError):
    """A report or command that the leg's current state does not allow (a bug in the caller)."""


class LegState:
    """Leg states (plain strings, so simulators can compare without importing this module)."""

    OFFERED = "offered"
    RINGING = "ringing"
    FORWARDED = "forwarded"
    ANSWERED = "answered"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    ENDED = "ended"

    #: Setup is over: the engine's question "did they take it?" has an answer.
    SETTLED = frozenset({ANSWERED, REJECTED, CANCELLED, ENDED})
    #: Nothing more can happen to the leg.
    TERMINAL = frozenset({REJECTED, CANCELLED, ENDED})
    #: Still being set up: may ring, forward, answer, reject or be cancelled.
    ALERTING = frozenset({OFFERED, RINGING, FORWARDED})


_ALLOWED: dict[str, frozenset[str]] = {
    LegState.OFFERED: frozenset({"ringing", "forwarded", "answered", "rejected", "cancelled"}),
    LegState.RINGING: frozenset({"ringing", "forwarded", "answered", "rejected", "cancelled"}),
    LegState.FORWARDED: frozenset({"ringing", "forwarded", "answered", "rejected", "cancelled"}),
    LegState.ANSWERED: frozenset({"ended"}),
    LegState.REJECTED: frozenset(),
    LegState.CANCELLED: frozenset(),
    LegState.ENDED: frozenset(),
}


@dataclass(frozen=True)
class CallOffer:
    """The call as every leg sees it; one per call, shared by all its legs.

    ``presented`` is the caller id shown to the callee.  For group calls MISSION
    C1 wants the caller's number followed by the group id (``08546899140001``);
    the engine fills it in, endpoints just show it.  ``diversions`` lists the
    numbers the call was already diverted from, oldest first, for loop checks.
    """

    call_id: str
    caller: str
    called: str
    presented: str | None = None
    group: str | None = None
    diversions: tuple[str, ...] = ()

    @property
    def caller_display(self) -> str:
        return self.presented if self.presented is not None else self.caller


@dataclass(frozen=True)
class LegEvent:
    """One transition of a leg, kept in :attr:`CallLeg.history`."""

    at: datetime
    state: str
    detail: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class EndpointProtocol(Protocol):
    """Anything the engine can ring: a phone, a Mex mobile, a voicemail box, a test script.

    ``offer`` must not block and must not raise for ordinary outcomes: schedule
    the decision on the clock and report it on the leg.  An endpoint must stop
    its timers once the leg is done (``leg.add_done_callback``).
    """

    @property
    def address(self) -> str:
        """What the engine dials: normally an E.164 number such as ``+46701234567``."""
        ...

    def offer(self, leg: CallLeg) -> None:
        """Take a leg; report ``ringing``/``forwarded``/``answered``/``rejected`` on it later."""
        ...


class CallLeg:
    """One attempt to reach one endpoint, and the only channel between engine and endpoint.

    State machine (each row: what may happen next; ``*`` marks a harmless repeat)::

        state       endpoint reports                          engine commands
        offered     ringing, forwarded, answered, rejected    cancel
        ringing     ringing*, forwarded, answered, rejected   cancel
        forwarded   ringing, forwarded*, answered, rejected   cancel
        answered    ended                                     hangup
        rejected    -- terminal --
        cancelled   -- terminal --
        ended       -- terminal --

    * endpoint reports: ``ringing()``, ``forwarded(to, reason)``, ``answered(by)``,
      ``rejected(reason)``, and ``ended()`` once an answered call is hung up on its side;
    * engine commands: ``cancel(reason)`` before answer (caller hung up, another
      member answered, ring time over) and ``hangup(reason)`` after answer.

    A report the state does not allow raises :class:`IllegalLegTransition` (a
    cancelled leg cannot answer).  ``cancel`` on a leg that already settled
    returns ``False`` instead, like ``Future.cancel``, because an engine timer
    racing an answer is normal.  Listeners and done callbacks run through
    ``clock.call_soon``, never inside the call that changed the state.
    """

    def __init__(
        self,
        clock: VirtualClock,
        call: CallOffer,
        address: str,
        *,
        leg_id: str | None = None,
        trace: Trace | None = None,
        listener: Callable[[CallLeg, LegEvent], Any] | None = None,
    ):
        self.clock = clock
        self.call = call
        self.address = address
        self.leg_id = leg_id or f"{call.call_id}>{address}"
        self.trace = trace
        self.state = LegState.OFFERED
        self.reason: str | None = None  # why it was rejected, cancelled or ended
        self.answered_by: str | None = None  # who actually answered (a forward target, voicemail)
        self.answered_at: datetime | None = None
        self.ended_by: str | None = None  # "endpoint" | "engine"
        self.forwards: list[tuple[str, str]] = []  # (to, reason) in order
        self.offered_at = clock.now
        self.history: list[LegEvent] = [LegEvent(clock.now, LegState.OFFERED, {})]
        self._listeners: list[Callable[[CallLeg, LegEvent], Any]] = [listener] if listener else []
        self._done_callbacks: list[Callable[[CallLeg], Any]] = []
        self._dtmf_listeners: list[Callable[[CallLeg, str], Any]] = []
        self._indication_listeners: list[Callable[[CallLeg, str, dict[str, Any]], Any]] = []
        self._settled = ClockFuture(clock)
        self._record(LegState.OFFERED, caller=call.caller_display, called=call.called)

    # -- queries ------------------------------------------------------------

    @property
    def is_alerting(self) -> bool:
        return self.state in LegState.ALERTING

    @property
    def is_settled(self) -> bool:
        return self.state in LegState.SETTLED

    @property
    def is_done(self) -> bool:
        return self.state in LegState.TERMINAL

    def settled(self) -> ClockFuture:
        """Future resolved with the leg when setup is over (answered, rejected or cancelled)."""
        return self._settled

    def add_listener(self, listener: Callable[[CallLeg, LegEvent], Any]) -> None:
        """``listener(leg, event)`` soon after every transition, including repeated ``ringing``.

        Delivery is deferred, so read ``event.state``: ``leg.state`` may have moved on
        (a network forward and the voicemail's answer happen at the same instant).
        """
        self._listeners.append(listener)

    def add_done_callback(self, callback: Callable[[CallLeg], Any]) -> None:
        """``callback(leg)`` once the leg is terminal (rejected, cancelled or ended)."""
        if self.is_done:
            self.clock.call_soon(callback, self)
        else:
            self._done_callbacks.append(callback)

    def add_dtmf_listener(self, listener: Callable[[CallLeg, str], Any]) -> None:
        """``listener(leg, keys)`` soon after the endpoint presses keys on the answered leg."""
        self._dtmf_listeners.append(listener)

    def add_indication_listener(self, listener: Callable[[CallLeg, str, dict[str, Any]], Any]) -> None:
        """``listener(leg, what, detail)`` soon after the engine indicates something on the leg."""
        self._indication_listeners.append(listener)

    # -- endpoint reports ---------------------------------------------------

    def ringing(self) -> None:
        """The callee is being alerted (SIP 180).  Repeats are harmless."""
        self._move(LegState.RINGING)

    def forwarded(self, to: str, reason: str) -> None:
        """The callee's *network* diverted the leg to ``to`` (SIP 181); the leg goes on."""
        if reason not in FORWARD_REASONS:
            raise ValueError(f"unknown forwarding reason {reason!r}; expected one of {sorted(FORWARD_REASONS)}")
        self._check(LegState.FORWARDED)
        self.forwards.append((to, reason))
        self._move(LegState.FORWARDED, to=to, reason=reason)

    def answered(self, by: str | None = None) -> None:
        """Connected.  ``by`` names the party that really answered when it is not ``address``."""
        self._check(LegState.ANSWERED)
        self.answered_by = by or self.address
        self.answered_at = self.clock.now
        self._move(LegState.ANSWERED, by=self.answered_by)

    def rejected(self, reason: str) -> None:
        """The endpoint refused the leg: busy, unreachable, no-answer, declined..."""
        if reason not in REJECT_REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}; expected one of {sorted(REJECT_REASONS)}")
        self._check(LegState.REJECTED)
        self.reason = reason
        self._move(LegState.REJECTED, reason=reason)

    def ended(self, reason: str = "normal") -> None:
        """The endpoint hung up an answered call."""
        self._check(LegState.ENDED)
        self.reason, self.ended_by = reason, "endpoint"
        self._move(LegState.ENDED, reason=reason, by="endpoint")

    def pressed(self, keys: str) -> None:
        """The endpoint sent DTMF ``keys`` (``0-9 * #``) on the answered leg."""
        if self.state != LegState.ANSWERED:
            raise IllegalLegTransition(f"leg {self.leg_id}: keys pressed while {self.state}")
        if not keys or any(k not in _DTMF for k in keys):
            raise ValueError(f"not DTMF keys: {keys!r}")
        if self.trace is not None:
            self.trace.record("leg.dtmf", self.address, leg=self.leg_id, keys=keys)
        for listener in self._dtmf_listeners:
            self.clock.call_soon(listener, self, keys)

    # -- engine commands ----------------------------------------------------

    def indicate(self, what: str, **detail: Any) -> None:
        """Tell the answered endpoint what it hears now (``dial-tone``, ``ringback``, ``busy-tone``...).

        Not traced here: the engine records the richer event that caused it.
        Ignored on a leg that is no longer answered (the endpoint has gone).
        """
        if self.state != LegState.ANSWERED:
            return
        for listener in self._indication_listeners:
            self.clock.call_soon(listener, self, what, dict(detail))

    def cancel(self, reason: str = "cancelled") -> bool:
        """Withdraw an unanswered leg; ``False`` (and no change) if it already settled."""
        if not self.is_alerting:
            return False
        self.reason = reason
        self._move(LegState.CANCELLED, reason=reason)
        return True

    def hangup(self, reason: str = "normal") -> None:
        """End an answered call from the engine's side (the caller or the PBX hung up)."""
        self._check(LegState.ENDED)
        self.reason, self.ended_by = reason, "engine"
        self._move(LegState.ENDED, reason=reason, by="engine")

    # -- internals ----------------------------------------------------------

    def _check(self, new_state: str) -> None:
        if new_state not in _ALLOWED[self.state]:
            raise IllegalLegTransition(f"leg {self.leg_id}: {self.state} -> {new_state} is not allowed")

    def _move(self, new_state: str, **detail: Any) -> None:
        self._check(new_state)
        self.state = new_state
        event = LegEvent(self.clock.now, new_state, detail)
        self.history.append(event)
        self._record(new_state, **detail)
        for listener in self._listeners:
            self.clock.call_soon(listener, self, event)
        if new_state in LegState.SETTLED and not self._settled.done():
            self._settled.set_result(self)
        if new_state in LegState.TERMINAL:
            callbacks, self._done_callbacks = self._done_callbacks, []
            for callback in callbacks:
                self.clock.call_soon(callback, self)

    def _record(self, state: str, **detail: Any) -> None:
        if self.trace is not None:
            self.trace.record(f"leg.{state}", self.address, leg=self.leg_id, **detail)

    def __repr__(self) -> str:
        return f"<CallLeg {self.leg_id} {self.state}>"


def offer_call(
    clock: VirtualClock,
    endpoint: EndpointProtocol,
    call: CallOffer,
    *,
    trace: Trace | None = None,
    listener: Callable[[CallLeg, LegEvent], Any] | None = None,
    leg_id: str | None = None,
) -> CallLeg:
    """Create a leg to ``endpoint`` and offer it: the engine's one way of ringing anything."""
    leg = CallLeg(clock, call, endpoint.address, leg_id=leg_id, trace=trace, listener=listener)
    endpoint.offer(leg)
    return leg


class ScriptedEndpoint:
    """A fixed-behaviour endpoint for engine tests: a desk phone whose user always does the same.

    ``answer_after=None`` never answers; ``reject`` (a :data:`REJECT_REASONS`
    value) refuses after ``reject_after`` seconds instead.  Busy while an
    answered leg lasts when ``single_line`` (then new legs are rejected busy).
    """

    def __init__(
        self,
        clock: VirtualClock,
        address: str,
        *,
        answer_after: float | None = None,
        reject: str | None = None,
        reject_after: float = 0.0,
        ring: bool = True,
        single_line: bool = False,
    ):
        if reject is not None and reject not in REJECT_REASONS:
            raise ValueError(f"unknown rejection reason {reject!r}")
        self.clock = clock
        self.address = address
        self.answer_after = answer_after
        self.reject = reject
        self.reject_after = reject_after
        self.ring = ring
        self.single_line = single_line
        self.legs: list[CallLeg] = []
        self.active: list[CallLeg] = []

    def offer(self, leg: CallLeg) -> None:
        self.legs.append(leg)
        if self.single_line and self.active:
            leg.rejected("busy")
            return
        timers: list[TimerHandle] = []
        leg.add_done_callback(lambda _leg: [t.cancel() for t in timers])
        if self.reject is not None:
            if self.reject_after <= 0:
                leg.rejected(self.reject)
                return
            timers.append(self.clock.call_later(self.reject_after, leg.rejected, self.reject))
        if self.ring and self.reject != "unreachable":
            leg.ringing()
        if self.reject is None and self.answer_after is not None:
            timers.append(self.clock.call_later(self.answer_after, self._answer, leg))

    def _answer(self, leg: CallLeg) -> None:
        leg.answered()
        self.active.append(leg)
        leg.add_done_callback(self.active.remove)

    def __repr__(self) -> str:
        return f"<ScriptedEndpoint {self.address}>"
