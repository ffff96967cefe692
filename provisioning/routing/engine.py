"""The routing engine: plays the hosted PBX for calls on a virtual clock and writes what happens to a trace.

An inbound call (caller, dialled number, time) walks the routing model
(:mod:`provisioning.routing.model`): number -> the main number's calendar ->
the target's calendar (Closed: play the entry's message, then hang up or route
where the entry says) -> menu (the caller's keys) -> group (distribution plan
from :mod:`~provisioning.routing.strategies`, queue with announcements, each
member's legs) -> user (diversion, forwarding, call waiting, voicemail flags) ->
endpoints.  Every timer (ring times, the 45-second transfer return, queue
waits, inter-digit timeouts) is a :class:`~provisioning.routing.clock.VirtualClock`
event, so a scenario runs instantly and in an exact order.

Endpoints (desk-phone and Mex simulators, scripted parties, the PBX's own
voicemail and announcements) are reached only through
:mod:`~provisioning.routing.endpoints`: the engine offers legs to whatever is
registered at an address (several endpoints at one address fork, like SIP
registrations: desk phone plus softphone).

Rules decided here (seed text in MISSION.md)
--------------------------------------------
* Members' legs: the fixed number (desk phones, softphone) unless diverted;
  each ringing mobile unless diverted with "diversion affects mobile".  A busy
  member's fixed leg is offered only with call waiting on the fixed number,
  the mobile leg only with call waiting on the mobile.  Group calls ignore the
  member's own call forwarding.
* Direct calls to a user ring the same legs for the user's ring time, then
  voicemail; busy goes to voicemail at once; without voicemail ("EX-Ej lämna
  meddelande") the caller hears :data:`UNAVAILABLE_MESSAGE` and the call ends.
  A diversion that leaves the mobile ringing applies when nobody answers.
* C1: group calls present ``national(caller) + group id``; a callback of a
  presented string is translated back (:mod:`~provisioning.routing.presentation`).
* C2/C3 (DTMF on the answered user's leg, interpreted by the engine): ``##``
  holds the caller and gives dial tone; digits then ``#`` dial at once, or
  after :attr:`Engine.inter_digit_timeout`; an extension is internal, anything
  else needs the area code and the external-calls add-on; ``#`` while the
  attempt rings, failed, or as the first key retrieves the caller; ``##2``
  toggles, ``##1`` ends the active call and continues the other; a single
  ``#`` while talking to the colleague abandons the consultation; hanging up
  transfers (blind while it rings, attended once answered).  Hanging up while
  dialling gives the held caller straight back (a recall).
* C4: only calls that came in through the service (to one of its numbers) can
  be transferred: ``##`` on any other call (outgoing calls, calls delivered to
  a number outside the service) is refused and passed on as plain DTMF.
* C5: a blind transfer nobody answers returns to the transferrer after exactly
  :attr:`Engine.recall_after` (45 s); if they are busy then, the caller hears
  busy tone; if they do not answer the return within
  :attr:`Engine.recall_ring_time`, the call goes to their voicemail (or ends).
* C6 is not special-cased: a member's mobile leg answered by the operator's
  voicemail *is* an answer, exactly as in the real network, and the trace shows
  ``answered_by``; :func:`~provisioning.routing.mex_lint.mobile_warnings` flags
  it in the trace (``lint.mex``) when the group offers the member.

Trace event kinds (``where`` in brackets)
----------------------------------------
``call.start`` [dialled], ``call.outgoing`` [phone], ``number.translated``
[dialled], ``call.unobtainable`` [dialled], ``call.connected`` [answering
address], ``call.end`` [dialled]; ``caller.dtmf``, ``caller.hangup``,
``tone`` (``what``: ringback, hold, busy-tone, dial-tone,
number-unobtainable, disconnected), ``play`` / ``play.interrupted`` [who
hears]; ``schedule`` [owner]; ``menu.start``, ``menu.key``,
``menu.invalid``, ``menu.timeout``, ``menu.route``, ``menu.hangup`` [menu];
``group.plan``, ``group.skip``, ``group.offer``, ``group.offer-end``,
``group.answered``, ``group.no-answer`` [group]; ``queue.join``,
``queue.refused``, ``queue.announcement``, ``queue.head``, ``queue.timeout``
[group]; ``lint.mex`` [mobile]; ``user.call``, ``user.forwarded``,
``user.diverted``, ``user.busy``, ``user.no-answer`` [user];
``voicemail.disabled``, ``voicemail.operator`` [user], ``voicemail.greeting``,
``voicemail.recording`` [box]; ``feature.consult``, ``feature.dial``,
``feature.consult-answered``, ``feature.consult-failed``,
``feature.consult-ended``, ``feature.retrieve``, ``feature.toggle``,
``feature.end-active``, ``feature.refused`` [user's phone]; ``dtmf.passed``;
``transfer.blind``, ``transfer.attended``, ``transfer.completed``,
``transfer.failed``, ``transfer.recall``, ``transfer.recall-busy``,
``transfer.returned``, ``transfer.recall-unanswered`` [transferrer];
``endpoint.missing`` [address]; plus the legs' own ``leg.offered``,
``leg.ringing``, ``leg.forwarded``, ``leg.answered``, ``leg.rejected``,
``leg.cancelled``, ``leg.ended``, ``leg.dtmf`` and the simulators' events
(``mobile.*``, ``network.*``, ``voicemail.answered`` of the operator's
voicemail, ``phone.*``).  Engine events carry ``call`` (the call id).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provisioning.routing.clock import CancelledError, ClockFuture, TimerHandle, Trace, VirtualClock
from provisioning.routing.endpoints import CallLeg, CallOffer, EndpointProtocol, LegEvent, LegState
from provisioning.routing.menus import Destination, DestinationKind, Hangup, MenuRun, Play, Route, WaitForDigit
from provisioning.routing.mex_lint import MobileLint, group_call_outcome, lint_mobiles, mobile_warnings
from provisioning.routing.model import Calendar, Diversion, Group, Organisation, RoutedMenu, User, VoiceMessage
from provisioning.routing.pbx_endpoints import Announcement, PbxVoicemail
from provisioning.routing.presentation import PresentationLog, dialled_to_e164, national, present
from provisioning.routing.strategies import Member, OfferingPlan, QueueState, RoundRobinMemory, plan, remember

__all__ = ["CallerScript", "Connected", "Engine", "ServiceCall", "UNAVAILABLE_MESSAGE"]

#: System prompt when a user cannot take the call and has no voicemail.
UNAVAILABLE_MESSAGE = VoiceMessage("system:unavailable", "Personen du söker kan inte ta emot samtal just nu.", 4.0)
#: System prompt for a number that does not exist or lacks its area code.
UNOBTAINABLE_MESSAGE = VoiceMessage("system:unobtainable", "Numret du har slagit saknas.", 3.0)
_MAX_DEPTH = 12


@dataclass(frozen=True)
class CallerScript:
    """What an outside caller does: timed keys, menu answers, and when they hang up.

    ``dtmf``: ``(seconds after the call starts, keys)``.  ``menu_keys``: one
    answer per menu prompt, pressed ``key_delay`` s after the prompt ends
    (``"timeout"`` = press nothing).  ``hangup_after``: seconds after the call
    starts (``None``: only when the other side ends the call).
    """

    dtmf: tuple[tuple[float, str], ...] = ()
    menu_keys: tuple[str, ...] = ()
    key_delay: float = 1.0
    hangup_after: float | None = None


@dataclass
class Connected:
    """Routing reached a party that answered: its leg, and the service user it belongs to (if any)."""

    leg: CallLeg
    user: User | None
    group: Group | None = None


class ServiceCall:
    """One call through the engine, from start to end: a handle for tests and the scenario runner."""

    def __init__(self, call_id: str, caller: str, dialled: str, script: CallerScript, *, via_service: bool):
        self.call_id = call_id
        self.caller = caller
        self.dialled = dialled
        self.script = script
        self.via_service = via_service
        self.state = "waiting"  # waiting | routing | connected | ended
        self.outcome: str | None = None
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.answered_by: list[str] = []  # every party that answered the caller, in order
        self.origin: _Origin = _ScriptedOrigin()
        self.task: Any = None
        self.bridge: _Bridge | None = None
        self.sink: Callable[[str], None] | None = None
        self._menu_keys = list(script.menu_keys)
        self._timers: list[TimerHandle] = []

    @property
    def ended(self) -> bool:
        return self.state == "ended"

    def offer(self, called: str, presented: str | None, group: str | None = None) -> CallOffer:
        return CallOffer(self.call_id, self.caller, called, presented=presented, group=group)

    def __repr__(self) -> str:
        return f"<ServiceCall {self.call_id} {self.caller}->{self.dialled} {self.state} {self.outcome or ''}>"


# -- the calling side ------------------------------------------------------------------------------------


class _Origin:
    """The party that placed the call, as the engine talks to it."""

    def hear(self, what: str, **detail: Any) -> None:
        """In-band indication to the caller (what they hear now)."""

    def release(self, reason: str) -> None:
        """The PBX ends the call toward the caller."""


class _ScriptedOrigin(_Origin):
    """An outside caller driven by a :class:`CallerScript`: hears through the trace only."""


class _LegOrigin(_Origin):
    """A service user's own phone placing a call: its off-hook leg carries what it hears."""

    def __init__(self, leg: CallLeg):
        self.leg = leg

    def hear(self, what: str, **detail: Any) -> None:
        self.leg.indicate(what, **detail)

    def release(self, reason: str) -> None:
        if self.leg.state == LegState.ANSWERED:
            self.leg.hangup(reason)


# -- ringing a set of addresses ------------------------------------------------------------------------


class _Ring:
    """Legs for one call toward several addresses: the first answer wins, the others are withdrawn.

    ``result`` resolves with ``("answered", leg)``, or, when
    ``settle_on_rejection`` and every leg has been refused, ``("rejected", reason)``
    (``busy`` when all said busy; ``unreachable`` when nothing is registered there).
    """

    def __init__(self, engine: Engine, call: ServiceCall, offer: CallOffer, addresses: Iterable[str] = (),
                 *, settle_on_rejection: bool = True):
        self.engine = engine
        self.call = call
        self.offer = offer
        self.settle_on_rejection = settle_on_rejection
        self.legs: list[CallLeg] = []
        self.member_of: dict[int, str] = {}
        self.winner: CallLeg | None = None
        self.result: ClockFuture = engine.clock.create_future()
        self.add(addresses)
        if settle_on_rejection and not self.legs:
            self.result.set_result(("rejected", "unreachable"))

    def add(self, addresses: Iterable[str], member: str | None = None) -> list[CallLeg]:
        new: list[CallLeg] = []
        for address in addresses:
            for leg in self.engine._offer(self.call, address, self.offer, self._event):
                self.legs.append(leg)
                new.append(leg)
                if member is not None:
                    self.member_of[id(leg)] = member
        return new

    @property
    def winner_member(self) -> str | None:
        return None if self.winner is None else self.member_of.get(id(self.winner))

    def _event(self, leg: CallLeg, event: LegEvent) -> None:
        if self.result.done():
            if event.state == LegState.ANSWERED and leg is not self.winner and leg.state == LegState.ANSWERED:
                leg.hangup("answered-elsewhere")
            return
        if event.state == LegState.ANSWERED:
            self.winner = leg
            self.result.set_result(("answered", leg))
            self.withdraw("answered-elsewhere")
        elif self.settle_on_rejection and all(l.is_done for l in self.legs):
            reasons = {l.reason for l in self.legs}
            self.result.set_result(("rejected", "busy" if reasons == {"busy"} else next(iter(sorted(reasons)))))

    def withdraw(self, reason: str) -> None:
        """Cancel every leg but the winner (hang up ones that answered too late)."""
        for leg in self.legs:
            if leg is self.winner:
                continue
            if leg.is_alerting:
                leg.cancel(reason)
            elif leg.state == LegState.ANSWERED:
                leg.hangup(reason)


# -- the engine ---------------------------------------------------------------------------------------------


class Engine:
    """The hosted PBX for one organisation.

    ``register`` endpoints, place inbound calls with :meth:`call`, let desk
    phones dial with :meth:`originate`, then :meth:`run`.  ``trace`` is shared
    with the simulators (pass it to them) so one timeline tells the whole story.
    """

    def __init__(
        self,
        org: Organisation,
        *,
        clock: VirtualClock | None = None,
        start: datetime | None = None,
        trace: Trace | None = None,
        seed: int = 0,
        inter_digit_timeout: float = 4.0,
        feature_timeout: float = 1.5,
        recall_after: float = 45.0,
        recall_ring_time: float = 30.0,
        voicemail_max: float = 120.0,
    ):
        self.org = org
        self.clock = clock or VirtualClock(start)
        self.trace = trace or Trace(self.clock)
        self.rng = random.Random(seed)
        self.inter_digit_timeout = inter_digit_timeout
        self.feature_timeout = feature_timeout
        self.recall_after = recall_after
        self.recall_ring_time = recall_ring_time
        self.voicemail = PbxVoicemail(self.clock, trace=self.trace, max_message=voicemail_max)
        self.presentations = PresentationLog()
        self.calls: list[ServiceCall] = []
        self.rr_memory: dict[str, RoundRobinMemory] = {}
        self.member_stats: dict[tuple[str, str], tuple[datetime | None, int]] = {}
        self.queues: dict[str, QueueState] = {}
        self._queue_waiters: dict[str, dict[str, ClockFuture]] = {}
        self._endpoints: dict[str, list[EndpointProtocol]] = {}
        self._engaged: dict[str, set[int]] = {}
        self._seq = 0
        self._leg_seq = 0
        self.register(self.voicemail)

    # -- endpoints ----------------------------------------------------------------------------------

    def register(self, endpoint: EndpointProtocol, address: str | None = None) -> None:
        """Make ``endpoint`` reachable at ``address`` (default: its own); several at one address fork."""
        self._endpoints.setdefault(address or endpoint.address, []).append(endpoint)

    def endpoints_at(self, address: str) -> list[EndpointProtocol]:
        return list(self._endpoints.get(address, ()))

    def busy(self, user_number: str) -> bool:
        """Whether the user is in a call through the service (an answered leg of theirs is up)."""
        return bool(self._engaged.get(user_number))

    def _owner(self, address: str) -> User | None:
        return self.org.user(address) if address.startswith("+") else None

    def _engage(self, leg: CallLeg, user: User) -> None:
        legs = self._engaged.setdefault(user.number, set())
        legs.add(id(leg))
        leg.add_done_callback(lambda l: legs.discard(id(l)))

    def _offer(self, call: ServiceCall, address: str, offer: CallOffer,
               listener: Callable[[CallLeg, LegEvent], Any] | None = None) -> list[CallLeg]:
        endpoints = self.endpoints_at(address)
        if not endpoints:
            self._rec("endpoint.missing", address, call)
            return []
        legs = []
        owner = self._owner(address)
        for endpoint in endpoints:
            self._leg_seq += 1
            leg = CallLeg(self.clock, offer, address, leg_id=f"{call.call_id}.{self._leg_seq}>{address}",
                          trace=self.trace, listener=listener)
            if owner is not None:
                leg.add_listener(lambda l, e, u=owner: self._engage(l, u) if e.state == LegState.ANSWERED else None)
            endpoint.offer(leg)
            legs.append(leg)
        return legs

    # -- trace helpers ------------------------------------------------------------------------------

    def _rec(self, kind: str, where: str, call: ServiceCall | None, **detail: Any) -> None:
        if call is not None:
            detail = {"call": call.call_id, **detail}
        self.trace.record(kind, where, **detail)

    def _tone(self, call: ServiceCall, what: str) -> None:
        self._rec("tone", call.caller, call, what=what)
        call.origin.hear(what)

    # -- placing calls ------------------------------------------------------------------------------

    def _next_id(self) -> str:
        self._seq += 1
        return f"c{self._seq}"

    def call(self, caller: str, to: str, *, at: datetime | None = None, script: CallerScript | None = None,
             **script_fields: Any) -> ServiceCall:
        """An outside caller calls ``to`` at ``at`` (default now); returns the call's handle at once."""
        dialled = self._normalise(to)
        call = ServiceCall(self._next_id(), caller, dialled, script or CallerScript(**script_fields),
                           via_service=dialled in self.org.numbers)
        self.calls.append(call)
        when = at or self.clock.now
        self.clock.call_at(when, self._start_inbound, call)
        return call

    def _normalise(self, number: str) -> str:
        if number in self.org.numbers or number.startswith("+"):
            return number
        return dialled_to_e164(number, self.org.region) or number

    def _start_inbound(self, call: ServiceCall) -> None:
        call.started_at = self.clock.now
        call.state = "routing"
        local = self.clock.now.astimezone(self.org.tz)
        self._rec("call.start", call.dialled, call, caller=call.caller, local_time=local.strftime("%a %Y-%m-%d %H:%M:%S"))
        for offset, keys in call.script.dtmf:
            call._timers.append(self.clock.call_later(offset, self._caller_keys, call, keys))
        if call.script.hangup_after is not None:
            call._timers.append(self.clock.call_later(call.script.hangup_after, self._origin_hangup, call))
        call.task = self.clock.spawn(self._inbound(call), name=f"route {call.call_id}")

    def originate(self, endpoint: EndpointProtocol, digits: str) -> CallLeg:
        """A registered phone dials ``digits``: returns its own off-hook leg, on which it hears and presses keys."""
        user = self._owner(endpoint.address)
        call = ServiceCall(self._next_id(), endpoint.address, digits, CallerScript(), via_service=False)
        self.calls.append(call)
        call.started_at = self.clock.now
        call.state = "routing"
        self._leg_seq += 1
        leg = CallLeg(self.clock, CallOffer(call.call_id, endpoint.address, digits), endpoint.address,
                      leg_id=f"{call.call_id}.{self._leg_seq}<{endpoint.address}")
        leg.answered()  # off hook: the phone's own leg starts answered, and ``call.outgoing`` says so
        leg.trace = self.trace
        if user is not None:
            self._engage(leg, user)
        call.origin = _LegOrigin(leg)
        leg.add_dtmf_listener(lambda _leg, keys: self._caller_keys(call, keys))
        leg.add_done_callback(lambda _leg: self._origin_hangup(call) if not call.ended else None)
        self._rec("call.outgoing", endpoint.address, call, digits=digits)
        call.task = self.clock.spawn(self._outgoing(call, digits), name=f"dial {call.call_id}")
        return leg

    # -- running ------------------------------------------------------------------------------------

    def run(self, seconds: float | None = None) -> None:
        """Run ``seconds`` of virtual time, or until nothing is left to happen."""
        if seconds is None:
            self.clock.run_until_idle()
        else:
            self.clock.advance(seconds)

    def lint(self) -> list[MobileLint]:
        """The Mex lint of every group member's mobile whose endpoint reports its settings."""
        return lint_mobiles(self.org.mobile_ring_times(), self._mobile_settings)

    def _mobile_settings(self, number: str) -> Any:
        for endpoint in self.endpoints_at(number):
            settings = getattr(endpoint, "settings", None)
            if callable(settings):
                return settings()
        return None

    # -- the caller's side --------------------------------------------------------------------------

    def _caller_keys(self, call: ServiceCall, keys: str) -> None:
        if call.ended:
            return
        if isinstance(call.origin, _ScriptedOrigin):
            self._rec("caller.dtmf", call.caller, call, keys=keys)
        for key in keys:
            if call.sink is not None:
                call.sink(key)
            elif call.bridge is not None:
                call.bridge.origin_key(key)
            else:
                self._rec("dtmf.passed", call.caller, call, keys=key, to=None)

    def _origin_hangup(self, call: ServiceCall) -> None:
        if call.ended:
            return
        self._rec("caller.hangup", call.caller, call)
        if call.bridge is not None:
            call.bridge.origin_gone()
        else:
            if call.task is not None and not call.task.done():
                call.task.cancel()
            self._finish(call, "caller-hung-up")

    def _finish(self, call: ServiceCall, reason: str) -> None:
        """The call is over for the caller (legs are the caller's of this method to clean up)."""
        if call.ended:
            return
        call.state = "ended"
        call.outcome = reason
        call.ended_at = self.clock.now
        call.sink = None
        for timer in call._timers:
            timer.cancel()
        self._rec("call.end", call.dialled, call, reason=reason)
        call.origin.release(reason)

    # -- waiting helpers ----------------------------------------------------------------------------

    def _first(self, *futures: ClockFuture, timeout: float | None = None) -> ClockFuture:
        """A future resolved with whichever of ``futures`` finishes first, or ``None`` after ``timeout``."""
        out = self.clock.create_future()

        def done(future: ClockFuture) -> None:
            if not out.done():
                out.set_result(future)

        for future in futures:
            future.add_done_callback(done)
        if timeout is not None:
            handle = self.clock.call_later(max(0.0, timeout), lambda: out.done() or out.set_result(None))
            out.add_done_callback(lambda _f: handle.cancel())
        return out

    def _leg_done(self, leg: CallLeg) -> ClockFuture:
        future = self.clock.create_future()
        leg.add_done_callback(lambda l: future.done() or future.set_result(l))
        return future

    async def _next_key(self, call: ServiceCall, timeout: float) -> str | None:
        key = self.clock.create_future()
        call.sink = lambda k: key.done() or key.set_result(k)
        try:
            first = await self._first(key, timeout=timeout)
        finally:
            call.sink = None
        return key.result() if first is key else None

    async def _play(self, call: ServiceCall, message: str | VoiceMessage, reason: str, *,
                    interruptible: bool = False) -> str | None:
        """Play a message to the caller through an announcement leg; returns a key that interrupted it."""
        msg = message if isinstance(message, VoiceMessage) else self.org.message(message)
        self._rec("play", call.caller, call, message=msg.name, reason=reason, seconds=msg.duration)
        call.origin.hear("message", message=msg.name)
        player = Announcement(self.clock, msg.name, msg.duration)
        leg = CallLeg(self.clock, call.offer(player.address, None), player.address,
                      leg_id=f"{call.call_id}.play>{msg.name}")
        player.offer(leg)
        ended = self._leg_done(leg)
        key = self.clock.create_future()
        if interruptible:
            call.sink = lambda k: key.done() or key.set_result(k)
        try:
            first = await self._first(ended, key)
        finally:
            if interruptible:
                call.sink = None
            if leg.state == LegState.ANSWERED:
                leg.hangup("interrupted")
        if first is key:
            self._rec("play.interrupted", call.caller, call, message=msg.name, key=key.result())
            return key.result()
        return None

    def _announce(self, call: ServiceCall, message: str | None) -> None:
        """A message played over the waiting (queue announcements): does not hold up routing."""
        if message is None:
            return
        msg = self.org.message(message)
        player = Announcement(self.clock, msg.name, msg.duration)
        player.offer(CallLeg(self.clock, call.offer(player.address, None), player.address,
                             leg_id=f"{call.call_id}.announce>{msg.name}"))
        call.origin.hear("message", message=msg.name)

    # -- routing --------------------------------------------------------------------------------------

    async def _inbound(self, call: ServiceCall) -> None:
        dest = self.org.numbers.get(call.dialled)
        if dest is None:
            result = await self._direct(call)
        else:
            result = None
            if call.dialled == self.org.main_number and self.org.main_calendar is not None:
                closed = await self._closed(call, self.org.main_calendar, "main number")
                if closed is not None:
                    return self._settle(call, await self._after_closed(call, closed, 1))
            result = await self._route(call, dest, 0)
        self._settle(call, result)

    async def _outgoing(self, call: ServiceCall, digits: str) -> None:
        user = self.org.user(digits) if digits.isdigit() and not digits.startswith("0") else None
        if user is not None:
            dest: Destination | None = Destination(DestinationKind.USER, user.number)
        else:
            number = self.presentations.resolve(digits, self.org.group_ids(), self.org.region)
            if number is None:
                self._rec("call.unobtainable", digits, call, reason="not a number (external numbers need the area code)")
                await self._unobtainable(call)
                return
            if national(number, self.org.region) != digits and number != digits:
                self._rec("number.translated", digits, call, to=number)
            call.dialled = number
            call.via_service = False
            dest = self.org.numbers.get(number) or Destination(DestinationKind.EXTERNAL, number)
        self._settle(call, await self._route(call, dest, 0))

    def _settle(self, call: ServiceCall, result: Connected | None) -> None:
        if isinstance(result, Connected):
            self._connect(call, result)
        elif not call.ended:
            self._finish(call, "routed")

    async def _direct(self, call: ServiceCall) -> Connected | None:
        """A number outside the service: delivered as is if something answers there (not via the service)."""
        if not self.endpoints_at(call.dialled):
            self._rec("call.unobtainable", call.dialled, call, reason="not a number of the service")
            await self._unobtainable(call)
            return None
        return await self._external(call, call.dialled)

    async def _unobtainable(self, call: ServiceCall) -> None:
        self._tone(call, "number-unobtainable")
        await self._play(call, UNOBTAINABLE_MESSAGE, "unobtainable")
        self._finish(call, "unobtainable")

    async def _route(self, call: ServiceCall, dest: Destination | None, depth: int) -> Connected | None:
        if dest is None or dest.kind is DestinationKind.HANGUP:
            self._finish(call, "hangup")
            return None
        if depth > _MAX_DEPTH:
            self._rec("call.end", call.dialled, call, reason="routing loop")
            self._finish(call, "routing-loop")
            return None
        kind, target = dest.kind, dest.target or ""
        if kind is DestinationKind.USER:
            return await self._user_call(call, self.org.user(target), depth, dialled=target)  # type: ignore[arg-type]
        if kind is DestinationKind.GROUP:
            return await self._group_call(call, self.org.group(target), depth)  # type: ignore[arg-type]
        if kind is DestinationKind.MENU:
            return await self._menu(call, self.org.menu(target), depth)  # type: ignore[arg-type]
        if kind is DestinationKind.VOICEMAIL:
            return await self._voicemail(call, self.org.user(target), depth, "destination")  # type: ignore[arg-type]
        if kind is DestinationKind.EXTERNAL:
            number = self._normalise(target)
            internal = self.org.numbers.get(number)
            if internal is not None:
                return await self._route(call, internal, depth + 1)
            return await self._external(call, number)
        if kind is DestinationKind.MESSAGE:
            await self._play(call, target, "message")
            self._finish(call, "message")
            return None
        raise AssertionError(f"cannot route to {dest}")

    async def _after_closed(self, call: ServiceCall, dest: Destination, depth: int) -> Connected | None:
        if dest.kind is DestinationKind.HANGUP:
            self._finish(call, "closed")
            return None
        return await self._route(call, dest, depth)

    async def _closed(self, call: ServiceCall, calendar: Calendar, owner: str) -> Destination | None:
        """Evaluate a calendar: ``None`` when open, else play the message and return where to go next."""
        decision = calendar.schedule.evaluate(self.clock.now)
        self._rec("schedule", owner, call, action=decision.action.value, entry=decision.entry_name,
                  message=decision.message, source=decision.source)
        if decision.is_open:
            return None
        if decision.message:
            await self._play(call, decision.message, f"closed: {decision.entry_name}")
        return calendar.after(decision.entry_name if decision.source != "override" else "override")

    # -- external -----------------------------------------------------------------------------------

    async def _external(self, call: ServiceCall, number: str) -> Connected | None:
        ring = _Ring(self, call, call.offer(number, present(call.caller, None, self.org.region)), [number])
        try:
            kind, leg = await ring.result
        except CancelledError:
            ring.withdraw("caller-gone")
            raise
        if kind == "answered":
            return Connected(leg, self._owner(number))
        if kind == "rejected" and leg == "busy":
            self._tone(call, "busy-tone")
            self._finish(call, "busy")
        else:
            await self._unobtainable(call)
        return None

    # -- menus --------------------------------------------------------------------------------------

    async def _menu(self, call: ServiceCall, routed: RoutedMenu, depth: int) -> Connected | None:
        where = f"menu {routed.menu.name}"
        if routed.calendar is not None:
            closed = await self._closed(call, routed.calendar, where)
            if closed is not None:
                return await self._after_closed(call, closed, depth + 1)
        run = MenuRun(routed.menu)
        self._rec("menu.start", where, call)
        actions = run.start()
        while True:
            key: str | None = None
            for action in actions:
                if isinstance(action, Play):
                    key = await self._play(call, action.message, f"menu {action.reason}", interruptible=True)
                    if key is not None:
                        break
                elif isinstance(action, WaitForDigit):
                    self._script_menu_key(call)
                    key = await self._next_key(call, action.timeout)
                elif isinstance(action, Route):
                    self._rec("menu.route", where, call, to=str(action.destination), reason=action.reason)
                    return await self._route(call, action.destination, depth + 1)
                elif isinstance(action, Hangup):
                    self._rec("menu.hangup", where, call, reason=action.reason)
                    self._finish(call, f"menu-{action.reason}")
                    return None
            if key is None:
                self._rec("menu.timeout", where, call, failures=run.failures + 1)
                actions = run.timeout()
            else:
                valid = key in routed.menu.options
                self._rec("menu.key" if valid else "menu.invalid", where, call, key=key)
                actions = run.digit(key)

    def _script_menu_key(self, call: ServiceCall) -> None:
        """The caller's next scripted menu answer, pressed shortly after the prompt."""
        if not call._menu_keys:
            return
        key = call._menu_keys.pop(0)
        if key != "timeout":
            call._timers.append(self.clock.call_later(call.script.key_delay, self._caller_keys, call, key))

    # -- users ----------------------------------------------------------------------------------------

    def _addresses(self, user: User, *, fixed: bool = True, mobile: bool = True) -> list[str]:
        """Where a call to ``user`` rings now: diversion closes the fixed number (and the mobiles with
        "diversion affects mobile"); while busy, only legs with call waiting are offered."""
        flags = user.flags
        diverted = user.diverted(self.clock.now) is not None
        busy = self.busy(user.number)
        out = []
        if fixed and not diverted and (not busy or flags.call_waiting_fixed):
            out.append(user.number)
        if mobile:
            for m in user.ringing_mobiles:
                if diverted and flags.diversion_affects_mobile:
                    continue
                if busy and not flags.call_waiting_mobile:
                    continue
                out.append(m.number)
        return out

    async def _user_call(self, call: ServiceCall, user: User, depth: int, *, dialled: str | None = None
                         ) -> Connected | None:
        via_mobile = dialled is not None and dialled != user.number and any(m.number == dialled for m in user.mobiles)
        diversion = user.diverted(self.clock.now)
        self._rec("user.call", user.number, call, name=user.name, via="mobile" if via_mobile else "fixed")
        if user.forward_to and diversion is None and (not via_mobile or user.flags.forwarding_affects_mobile):
            self._rec("user.forwarded", user.number, call, to=user.forward_to)
            return await self._route(call, self._number_destination(user.forward_to), depth + 1)
        addresses = self._addresses(user, fixed=not via_mobile)
        if diversion is not None:
            self._rec("user.diverted", user.number, call, reason=diversion.reason, target=diversion.target,
                      until=None if diversion.ends_at is None else diversion.ends_at.isoformat(),
                      mobile_rings=bool(addresses))
            if not addresses:
                return await self._divert(call, user, diversion, depth)
        if not addresses:
            self._rec("user.busy", user.number, call)
            return await self._when_busy(call, user, depth)
        offer = call.offer(user.number, present(call.caller, None, self.org.region))
        self.presentations.issued(offer.presented, call.caller)
        started = self.clock.now
        ring = _Ring(self, call, offer, addresses)
        answered = False
        try:
            first = await self._first(ring.result, timeout=user.ring_time)
            if first is ring.result:
                kind, detail = ring.result.result()
                if kind == "answered":
                    answered = True
                    return Connected(detail, user)
                if kind == "rejected" and detail == "busy":
                    self._rec("user.busy", user.number, call)
                    ring.withdraw("busy")
                    return await self._when_busy(call, user, depth)
        finally:
            if not answered:
                ring.withdraw("no-answer")
        self._rec("user.no-answer", user.number, call, after=(self.clock.now - started).total_seconds())
        if diversion is not None:
            return await self._divert(call, user, diversion, depth)
        return await self._voicemail(call, user, depth, "no-answer")

    def _number_destination(self, number: str) -> Destination:
        return self.org.numbers.get(number) or Destination(DestinationKind.EXTERNAL, number)

    async def _when_busy(self, call: ServiceCall, user: User, depth: int) -> Connected | None:
        if user.flags.voicemail:
            return await self._voicemail(call, user, depth, "busy")
        self._tone(call, "busy-tone")
        self._finish(call, "busy")
        return None

    async def _divert(self, call: ServiceCall, user: User, diversion: Diversion, depth: int) -> Connected | None:
        if diversion.target == "colleague":
            colleague = self.org.user(diversion.target_number or "")
            if colleague is not None:
                return await self._user_call(call, colleague, depth + 1)
            return await self._route(call, self._number_destination(diversion.target_number or ""), depth + 1)
        if diversion.target == "switchboard":
            return await self._route(call, self.org.operator_destination(), depth + 1)
        if diversion.target == "message" and diversion.message:
            await self._play(call, VoiceMessage(f"diversion:{user.number}", diversion.message), "diversion")
        return await self._voicemail(call, user, depth, "diversion")

    async def _voicemail(self, call: ServiceCall, user: User, depth: int, reason: str) -> Connected | None:
        if not user.flags.voicemail:
            self._rec("voicemail.disabled", user.number, call, reason=reason,
                      why="EX-Ej lämna meddelande i röstbrevlåda: callers cannot leave a message")
            await self._play(call, UNAVAILABLE_MESSAGE, "no-voicemail")
            self._finish(call, "no-voicemail")
            return None
        option = user.flags.voicemail_operator_option
        self.voicemail.configure(user.number, operator_option=option)
        ring = _Ring(self, call, call.offer(user.number, present(call.caller, None, self.org.region)),
                     [self.voicemail.address])
        try:
            kind, leg = await ring.result
        except CancelledError:
            ring.withdraw("caller-gone")
            raise
        if kind != "answered":
            self._finish(call, "voicemail-unavailable")
            return None
        call.answered_by.append(leg.answered_by or leg.address)
        ended = self._leg_done(leg)
        operator = self.clock.create_future()
        if option:
            call.sink = lambda k: operator.done() or (k == "0" and operator.set_result(k))
        try:
            first = await self._first(ended, operator)
        finally:
            call.sink = None
            if leg.state == LegState.ANSWERED and (call.ended or not ended.done()):
                leg.hangup("caller-gone" if call.ended else "operator")
        if first is operator:
            dest = self.org.operator_destination()
            self._rec("voicemail.operator", user.number, call, to=None if dest is None else str(dest))
            return await self._route(call, dest, depth + 1)
        self._finish(call, "voicemail")
        return None

    # -- groups ---------------------------------------------------------------------------------------

    def _member(self, group: Group, gm: Any) -> Member:
        user = self.org.users[gm.user]
        diverted = user.diverted(self.clock.now) is not None
        mobiles_open = bool(user.ringing_mobiles) and not (diverted and user.flags.diversion_affects_mobile)
        last, calls = self.member_stats.get((group.name, user.number), (None, 0))
        return Member(
            user.number,
            order=gm.order,
            ring_time=gm.ring_time,
            logged_in=gm.logged_in,
            diverted=diverted and not mobiles_open,
            busy=self.busy(user.number),
            call_waiting=user.flags.call_waiting_fixed or (user.flags.call_waiting_mobile and mobiles_open),
            last_call_at=last,
            calls=calls,
        )

    async def _group_call(self, call: ServiceCall, group: Group, depth: int) -> Connected | None:
        where = f"group {group.name}"
        if group.calendar is not None:
            closed = await self._closed(call, group.calendar, where)
            if closed is not None:
                return await self._after_closed(call, closed, depth + 1)
        presented = present(call.caller, group.group_id, self.org.region)
        self.presentations.issued(presented, call.caller)
        offer = call.offer(group.numbers[0] if group.numbers else call.dialled, presented, group.group_id)
        deadline: float | None = None
        joined = self.clock.now
        try:
            if group.queue is not None:
                admitted = await self._queue(call, group, where)
                if admitted is None:
                    return None
                if admitted is False:
                    self._leave_queue(call, group)
                    return await self._route(call, group.no_answer, depth + 1)
                if group.queue.max_wait is not None:
                    deadline = group.queue.max_wait - (self.clock.now - joined).total_seconds()
            members = [self._member(group, m) for m in group.members]
            offering = plan(members, group.settings, memory=self.rr_memory.get(group.name), rng=self.rng)
            self._rec("group.plan", where, call, strategy=offering.strategy.value, order=list(offering.order()),
                      gives_up_at=offering.gives_up_at, presented=presented)
            for skip in offering.skipped:
                self._rec("group.skip", where, call, member=skip.member_id, reason=skip.reason)
            self._lint_offered(call, group, offering)
            started = self.clock.now
            ring, stopped = await self._run_plan(call, group, offering, offer, deadline)
            answered = ring.winner_member
            memory = remember(offering, stopped_at=stopped, answered_by=answered, previous=self.rr_memory.get(group.name))
            if memory is not None:
                self.rr_memory[group.name] = memory
        finally:
            self._leave_queue(call, group)
        if answered is not None:
            leg = ring.winner
            assert leg is not None
            last, calls = self.member_stats.get((group.name, answered), (None, 0))
            self.member_stats[(group.name, answered)] = (last, calls + 1)
            leg.add_done_callback(lambda _l: self._member_call_ended(group.name, answered))
            self._rec("group.answered", where, call, member=answered, answered_by=leg.answered_by,
                      after=(self.clock.now - started).total_seconds())
            return Connected(leg, self.org.users[answered], group)
        if deadline is not None and stopped >= deadline - 1e-9:
            self._rec("queue.timeout", where, call, waited=(self.clock.now - joined).total_seconds())
        self._rec("group.no-answer", where, call, to=str(group.no_answer))
        return await self._route(call, group.no_answer, depth + 1)

    def _member_call_ended(self, group: str, member: str) -> None:
        _, calls = self.member_stats.get((group, member), (None, 0))
        self.member_stats[(group, member)] = (self.clock.now, calls)

    async def _run_plan(self, call: ServiceCall, group: Group, offering: OfferingPlan, offer: CallOffer,
                        deadline: float | None) -> tuple[_Ring, float]:
        """Walk the offering plan on the clock; returns the ring (winner set if answered) and when it stopped."""
        where = f"group {group.name}"
        ring = _Ring(self, call, offer, settle_on_rejection=False)
        handles: list[TimerHandle] = []
        started = self.clock.now

        def start(o: Any) -> None:
            if ring.result.done():
                return
            user = self.org.users[o.member_id]
            addresses = self._addresses(user)
            self._rec("group.offer", where, call, member=o.member_id, round=o.round, ring_time=o.duration,
                      legs=addresses, waiting=o.call_waiting)
            legs = ring.add(addresses, member=o.member_id)
            handles.append(self.clock.call_later(o.duration, stop, o, legs))

        def stop(o: Any, legs: list[CallLeg]) -> None:
            if ring.result.done():
                return
            if any(l.is_alerting for l in legs):
                self._rec("group.offer-end", where, call, member=o.member_id)
            for leg in legs:
                leg.cancel("ring-time")

        for o in offering.offers:
            handles.append(self.clock.call_later(o.start, start, o))
        limit = offering.gives_up_at if deadline is None else max(0.0, min(offering.gives_up_at, deadline))
        answered = False
        try:
            first = await self._first(ring.result, timeout=limit)
            answered = first is ring.result
        finally:
            for handle in handles:
                handle.cancel()
            if not answered:
                ring.withdraw("no-answer" if not call.ended else "caller-gone")
        return ring, (self.clock.now - started).total_seconds()

    def _lint_offered(self, call: ServiceCall, group: Group, offering: OfferingPlan) -> None:
        offered = set(offering.order())
        for g, user, mobile, ring_time in self.org.mobile_ring_times():
            if g.name != group.name or user.number not in offered:
                continue
            settings = self._mobile_settings(mobile.number)
            if settings is None:
                continue
            warnings = mobile_warnings(settings, ring_time)
            if warnings:
                self._rec("lint.mex", mobile.number, call, group=group.name, member=user.number, ring_time=ring_time,
                          warnings=warnings, outcome=group_call_outcome(settings, ring_time))

    # -- queue --------------------------------------------------------------------------------------

    async def _queue(self, call: ServiceCall, group: Group, where: str) -> bool | None:
        """Admit the caller and wait to be first in line: ``True`` (go on), ``False`` (no-answer
        destination), ``None`` (the call ended here)."""
        settings = group.queue
        assert settings is not None
        available = sum(1 for m in group.members if self._member(group, m).skip_reason() is None)
        state = self.queues.get(group.name) or QueueState(settings)
        state, admission = state.admit(call.call_id, self.clock.now, available_members=available)
        if not admission.admitted:
            self._rec("queue.refused", where, call, reason=admission.reason)
            if admission.reason == "full":
                self._tone(call, "busy-tone")
                self._finish(call, "queue-full")
                return None
            return False
        self.queues[group.name] = state
        self._rec("queue.join", where, call, position=admission.position)
        self._tone(call, "ringback")
        self._schedule_announcement(call, group, where, self.clock.now)
        if state.head == call.call_id:
            return True
        head = self.clock.create_future()
        self._queue_waiters.setdefault(group.name, {})[call.call_id] = head
        deadline = state.deadline(call.call_id)
        timeout = None if deadline is None else (deadline - self.clock.now).total_seconds()
        first = await self._first(head, timeout=timeout)
        if first is None:
            self._rec("queue.timeout", where, call, waited=timeout)
            self._leave_queue(call, group)
            return False
        self._rec("queue.head", where, call)
        return True

    def _schedule_announcement(self, call: ServiceCall, group: Group, where: str, after: datetime) -> None:
        state = self.queues.get(group.name)
        if state is None or call.call_id not in state:
            return
        at = state.next_announcement(call.call_id, after)
        if at is not None:
            call._timers.append(self.clock.call_at(at, self._announcement, call, group, where))

    def _announcement(self, call: ServiceCall, group: Group, where: str) -> None:
        state = self.queues.get(group.name)
        if state is None or call.call_id not in state or call.ended:
            return
        announcement = state.announcement(call.call_id, self.clock.now)
        self._rec("queue.announcement", where, call, message=announcement.message, position=announcement.position)
        self._announce(call, announcement.message)
        self._schedule_announcement(call, group, where, self.clock.now)

    def _leave_queue(self, call: ServiceCall, group: Group) -> None:
        state = self.queues.get(group.name)
        if state is None or call.call_id not in state:
            return
        state = state.leave(call.call_id)
        self.queues[group.name] = state
        self._queue_waiters.get(group.name, {}).pop(call.call_id, None)
        head = state.head
        waiter = self._queue_waiters.get(group.name, {}).pop(head, None) if head else None
        if waiter is not None and not waiter.done():
            waiter.set_result(head)

    # -- after the answer ---------------------------------------------------------------------------

    def _connect(self, call: ServiceCall, result: Connected) -> None:
        leg = result.leg
        call.state = "connected"
        call.answered_by.append(leg.answered_by or leg.address)
        self._rec("call.connected", leg.address, call, user=None if result.user is None else result.user.number,
                  answered_by=leg.answered_by, presented=leg.call.presented)
        call.origin.hear("connected", party=leg.answered_by or leg.address)
        call.bridge = _Bridge(self, call, _Party(leg, result.user))

    def _continue(self, call: ServiceCall, dest: Destination) -> None:
        """Route a connected call on (a return nobody answered goes to voicemail)."""
        call.bridge = None
        call.state = "routing"

        async def go() -> None:
            self._settle(call, await self._route(call, dest, 1))

        call.task = self.clock.spawn(go(), name=f"continue {call.call_id}")


# -- the in-call service: consultation, toggling, transfer, return ----------------------------------------


@dataclass
class _Party:
    leg: CallLeg
    user: User | None

    @property
    def address(self) -> str:
        return self.leg.address


@dataclass
class _Consult:
    by: _Party
    state: str = "dialing"  # dialing | ringing | talking | failed
    digits: str = ""
    target: str | None = None
    target_user: User | None = None
    ring: _Ring | None = None
    consultee: _Party | None = None
    active: str = "consultee"  # consultee | caller
    timer: TimerHandle | None = None


@dataclass
class _Transfer:
    by: User
    ring: _Ring
    target: str | None
    started: datetime
    timer: TimerHandle | None = None


@dataclass
class _Recall:
    to: User
    ring: _Ring
    reason: str
    timer: TimerHandle | None = None


class _Bridge:
    """A connected service call: the caller and the user holding it, plus any consultation,
    transfer in progress or return.  Driven by leg callbacks, not a coroutine, because every
    party can act at any moment."""

    def __init__(self, engine: Engine, call: ServiceCall, holder: _Party):
        self.e = engine
        self.call = call
        self.holder: _Party | None = None
        self.consult: _Consult | None = None
        self.transfer: _Transfer | None = None
        self.recall: _Recall | None = None
        self.caller_gone = False
        self._prefix = ""
        self._prefix_timer: TimerHandle | None = None
        self._origin_prefix = ""
        self._origin_timer: TimerHandle | None = None
        self._attach(holder)

    # -- plumbing -----------------------------------------------------------------------------

    def _rec(self, kind: str, where: str, **detail: Any) -> None:
        self.e._rec(kind, where, self.call, **detail)

    def _attach(self, party: _Party) -> None:
        if self.holder is not None or self.call.answered_by:  # a transfer or return: someone new has the caller
            if self.call.answered_by[-1:] != [party.leg.answered_by or party.address]:
                self.call.answered_by.append(party.leg.answered_by or party.address)
        self.holder = party
        party.leg.add_dtmf_listener(self._holder_keys)
        party.leg.add_done_callback(self._holder_gone)

    def _hear(self, to: _Party | None, what: str, **detail: Any) -> None:
        if to is not None:
            to.leg.indicate(what, **detail)
            if what in ("dial-tone", "ringback", "busy-tone", "disconnected", "hold"):
                self._rec("tone", to.address, what=what)

    def _caller_hears(self, what: str) -> None:
        if not self.caller_gone and not self.call.ended:
            self.e._tone(self.call, what)

    def _teardown(self, reason: str) -> None:
        if self._prefix_timer is not None:
            self._prefix_timer.cancel()
        for leg in self._all_legs():
            if leg.is_alerting:
                leg.cancel(reason)
            elif leg.state == LegState.ANSWERED:
                leg.hangup(reason)
        for holder in (self.consult, self.transfer, self.recall):
            timer = getattr(holder, "timer", None)
            if timer is not None:
                timer.cancel()

    def _all_legs(self) -> list[CallLeg]:
        legs = []
        if self.holder is not None:
            legs.append(self.holder.leg)
        if self.consult is not None:
            if self.consult.ring is not None:
                legs += self.consult.ring.legs
            if self.consult.consultee is not None:
                legs.append(self.consult.consultee.leg)
        if self.transfer is not None:
            legs += self.transfer.ring.legs
        if self.recall is not None:
            legs += self.recall.ring.legs
        return legs

    # -- the caller ---------------------------------------------------------------------------

    def origin_key(self, key: str) -> None:
        """A key from the calling side: a service user's own phone may not start features on it (C4)."""
        if isinstance(self.call.origin, _LegOrigin):
            if self._origin_timer is not None:
                self._origin_timer.cancel()
                self._origin_timer = None
            if key == "#" and self._origin_prefix == "#":
                self._origin_prefix = ""
                self._rec("feature.refused", self.call.caller, keys="##",
                          reason="only calls that came in through the service can be transferred")
                return
            if key == "#":
                self._origin_prefix = "#"
                self._origin_timer = self.e.clock.call_later(self.e.feature_timeout, self._origin_prefix_expired)
                return
            key, self._origin_prefix = self._origin_prefix + key, ""
        self._rec("dtmf.passed", self.call.caller, keys=key,
                  to=None if self.holder is None else self.holder.address)

    def _origin_prefix_expired(self) -> None:
        self._origin_timer = None
        if self._origin_prefix:
            keys, self._origin_prefix = self._origin_prefix, ""
            self._rec("dtmf.passed", self.call.caller, keys=keys,
                      to=None if self.holder is None else self.holder.address)

    def origin_gone(self) -> None:
        c = self.consult
        if c is not None and c.state == "talking" and c.consultee is not None:
            self.caller_gone = True
            c.active = "consultee"
            self._hear(self.holder, "connected", party=c.consultee.address)
            self._hear(c.consultee, "connected", party=self.holder.address if self.holder else None)
            self.e._finish(self.call, "caller-hung-up")
            return
        self._teardown("caller-hung-up")
        self.e._finish(self.call, "caller-hung-up")

    # -- the holder's keys --------------------------------------------------------------------

    def _holder_keys(self, leg: CallLeg, keys: str) -> None:
        if self.holder is None or leg is not self.holder.leg:
            return
        for key in keys:
            self._key(key)

    def _key(self, k: str) -> None:
        c = self.consult
        if c is not None and c.state == "dialing":
            return self._dialing_key(k)
        if c is not None and c.state in ("ringing", "failed"):
            if k == "#":
                self._retrieve("abandoned")
            return
        if self._prefix == "##":
            self._clear_prefix()
            if c is not None and c.state == "talking" and k == "2":
                return self._toggle()
            if c is not None and c.state == "talking" and k == "1":
                return self._end_active()
            return self._pass("##" + k)
        if k == "#":
            if self._prefix == "#":
                self._clear_prefix()
                self._prefix = "##"
                if c is None:
                    self._prefix = ""
                    return self._start_consult()
                self._prefix_timer = self.e.clock.call_later(self.e.feature_timeout, self._prefix_expired)
                return
            self._prefix = "#"
            self._prefix_timer = self.e.clock.call_later(self.e.feature_timeout, self._prefix_expired)
            return
        if self._prefix == "#":
            self._clear_prefix()
            return self._pass("#" + k)
        self._pass(k)

    def _clear_prefix(self) -> None:
        self._prefix = ""
        if self._prefix_timer is not None:
            self._prefix_timer.cancel()
            self._prefix_timer = None

    def _prefix_expired(self) -> None:
        prefix, c = self._prefix, self.consult
        self._prefix, self._prefix_timer = "", None
        if prefix == "#" and c is not None and c.state == "talking" and c.active == "consultee":
            self._retrieve("abandoned")
        elif prefix == "#":
            self._pass("#")

    def _pass(self, keys: str) -> None:
        if self.holder is not None:
            self._rec("dtmf.passed", self.holder.address, keys=keys, to=self.call.caller)

    # -- consultation ---------------------------------------------------------------------------

    def _refuse(self, reason: str) -> None:
        assert self.holder is not None
        self._rec("feature.refused", self.holder.address, keys="##", reason=reason)

    def _start_consult(self) -> None:
        holder = self.holder
        assert holder is not None
        if not self.call.via_service:
            return self._refuse("only calls that came in through the service can be transferred")
        if holder.user is None:
            return self._refuse("the answering party is not a user of the service")
        if self.caller_gone:
            return self._refuse("there is no call to transfer")
        self.consult = _Consult(by=holder)
        self._rec("feature.consult", holder.address, user=holder.user.number, held=self.call.caller)
        self._caller_hears("hold")
        self._hear(holder, "dial-tone")

    def _dialing_key(self, k: str) -> None:
        c = self.consult
        assert c is not None
        if c.timer is not None:
            c.timer.cancel()
            c.timer = None
        if k == "#":
            return self._retrieve("retrieved") if not c.digits else self._dial()
        if k == "*":
            return
        c.digits += k
        c.timer = self.e.clock.call_later(self.e.inter_digit_timeout, self._dial)

    def _dial(self) -> None:
        c, holder = self.consult, self.holder
        if c is None or holder is None or holder.user is None or c.state != "dialing":
            return
        if c.timer is not None:
            c.timer.cancel()
            c.timer = None
        digits = c.digits
        org = self.e.org
        target_user: User | None = None
        number: str | None = None
        problem: str | None = None
        if digits.isdigit() and not digits.startswith("0"):
            target_user = next((u for u in org.users.values() if u.extension == digits), None)
            if target_user is None:
                problem = "no such extension (external numbers need the area code)"
        else:
            number = dialled_to_e164(digits, org.region)
            if number is None:
                problem = "not a number (external numbers need the area code)"
            else:
                target_user = org.user(number)
                if target_user is None and not holder.user.external_calls:
                    problem = "calls to external numbers are an add-on this user does not have"
        self._rec("feature.dial", holder.address, digits=digits,
                  target=target_user.number if target_user else number, problem=problem)
        if problem is not None:
            return self._consult_failed("number-unobtainable", problem)
        if target_user is not None:
            c.target, c.target_user = target_user.number, target_user
            addresses = self.e._addresses(target_user)
            shown = holder.user.extension or national(holder.user.number, org.region)
        else:
            c.target = number
            addresses = [number]  # type: ignore[list-item]
            shown = present(holder.user.number, None, org.region)
        if not addresses:
            return self._consult_failed("busy-tone", "busy" if self.e.busy(target_user.number) else "diverted")  # type: ignore[union-attr]
        offer = CallOffer(f"{self.call.call_id}-consult", holder.user.number, c.target or digits, presented=shown)
        c.ring = _Ring(self.e, self.call, offer, addresses)
        c.state = "ringing"
        self._hear(holder, "ringback")
        c.ring.result.add_done_callback(self._consult_settled)

    def _consult_failed(self, tone: str, reason: str) -> None:
        c = self.consult
        assert c is not None
        c.state = "failed"
        self._rec("feature.consult-failed", c.by.address, reason=reason)
        self._hear(self.holder, tone)

    def _consult_settled(self, future: ClockFuture) -> None:
        if self.transfer is not None and self.transfer.ring.result is future:
            return self._transfer_settled(future)
        c = self.consult
        if c is None or c.ring is None or c.ring.result is not future or future.cancelled():
            return
        kind, detail = future.result()
        if kind == "answered":
            c.state = "talking"
            c.active = "consultee"
            c.consultee = _Party(detail, c.target_user)
            detail.add_done_callback(self._consultee_gone)
            detail.add_dtmf_listener(self._other_keys)
            self._rec("feature.consult-answered", c.by.address, consultee=detail.answered_by or detail.address)
            self._hear(self.holder, "connected", party=detail.address)
        else:
            self._consult_failed("busy-tone" if detail == "busy" else "disconnected", str(detail))

    def _other_keys(self, leg: CallLeg, keys: str) -> None:
        if self.holder is not None and leg is self.holder.leg:
            return
        self._rec("dtmf.passed", leg.address, keys=keys, to=None if self.holder is None else self.holder.address)

    def _consultee_gone(self, leg: CallLeg) -> None:
        c = self.consult
        if c is None or c.consultee is None or leg is not c.consultee.leg:
            return
        if self.caller_gone:
            self._rec("call.end", c.consultee.address, reason="consultee hung up")
            if self.holder is not None and self.holder.leg.state == LegState.ANSWERED:
                self.holder.leg.hangup("other-party-hung-up")
            return
        self._rec("feature.consult-ended", c.by.address, by=leg.address)
        if c.active == "caller":
            self.consult = None
            return
        c.consultee = None
        c.state = "failed"
        self._hear(self.holder, "disconnected")

    def _retrieve(self, why: str) -> None:
        c = self.consult
        assert c is not None
        self.consult = None
        if c.timer is not None:
            c.timer.cancel()
        if c.ring is not None:
            c.ring.withdraw("retrieved")
        if c.consultee is not None and c.consultee.leg.state == LegState.ANSWERED:
            c.consultee.leg.hangup("retrieved")
        self._rec("feature.retrieve", c.by.address, reason=why)
        self._caller_hears("connected")
        self._hear(self.holder, "connected", party=self.call.caller)

    def _toggle(self) -> None:
        c = self.consult
        assert c is not None and c.consultee is not None
        if self.caller_gone:
            return self._pass("##2")
        c.active = "caller" if c.active == "consultee" else "consultee"
        self._rec("feature.toggle", c.by.address, active=self.call.caller if c.active == "caller" else c.consultee.address)
        if c.active == "caller":
            self._hear(c.consultee, "hold")
            self._caller_hears("connected")
            self._hear(self.holder, "connected", party=self.call.caller)
        else:
            self._caller_hears("hold")
            self._hear(c.consultee, "connected", party=c.by.address)
            self._hear(self.holder, "connected", party=c.consultee.address)

    def _end_active(self) -> None:
        c = self.consult
        assert c is not None and c.consultee is not None
        if c.active == "consultee":
            self._rec("feature.end-active", c.by.address, ended=c.consultee.address, continues=self.call.caller)
            consultee = c.consultee
            self.consult = None
            if consultee.leg.state == LegState.ANSWERED:
                consultee.leg.hangup("ended-by-user")
            self._caller_hears("connected")
            self._hear(self.holder, "connected", party=self.call.caller)
            return
        if self.caller_gone:
            return self._pass("##1")
        self._rec("feature.end-active", c.by.address, ended=self.call.caller, continues=c.consultee.address)
        self.caller_gone = True
        c.active = "consultee"
        self.e._finish(self.call, "ended-by-user")
        self._hear(self.holder, "connected", party=c.consultee.address)
        self._hear(c.consultee, "connected", party=c.by.address)

    # -- hang-ups: transfer ---------------------------------------------------------------------

    def _holder_gone(self, leg: CallLeg) -> None:
        holder = self.holder
        if holder is None or leg is not holder.leg:
            return
        self._clear_prefix()
        c = self.consult
        if self.caller_gone:
            if c is not None and c.consultee is not None and c.consultee.leg.state == LegState.ANSWERED:
                c.consultee.leg.hangup("other-party-hung-up")
            return
        if leg.ended_by == "engine":
            return
        if c is None:
            self._caller_hears("disconnected")
            self.e._finish(self.call, "callee-hung-up")
            return
        user = holder.user
        assert user is not None
        self.holder = None
        self.consult = None
        if c.timer is not None:
            c.timer.cancel()
        if c.state == "talking" and c.consultee is not None:
            consultee = c.consultee
            self._rec("transfer.attended", holder.address, to=consultee.address)
            self._attach(consultee)
            self._caller_hears("connected")
            self._hear(consultee, "connected", party=self.call.caller)
            return
        if c.state == "ringing" and c.ring is not None:
            self._rec("transfer.blind", holder.address, to=c.target, recall_after=self.e.recall_after)
            self.transfer = _Transfer(user, c.ring, c.target, self.e.clock.now)
            self.transfer.timer = self.e.clock.call_later(self.e.recall_after, self._recall_due)
            self._caller_hears("ringback")
            return
        if c.ring is not None:
            c.ring.withdraw("transferrer-hung-up")
        self._recall_to(user, "held")

    def _transfer_settled(self, future: ClockFuture) -> None:
        t = self.transfer
        if t is None or t.ring.result is not future:
            return
        kind, detail = future.result()
        if kind == "answered":
            if t.timer is not None:
                t.timer.cancel()
            self.transfer = None
            self._rec("transfer.completed", t.by.number, to=detail.answered_by or detail.address,
                      after=(self.e.clock.now - t.started).total_seconds())
            self._attach(_Party(detail, self.e.org.user(detail.address) if detail.address.startswith("+") else None))
            self._caller_hears("connected")
            self._hear(self.holder, "connected", party=self.call.caller)
            return
        if t.timer is not None:
            t.timer.cancel()
        self.transfer = None
        self._rec("transfer.failed", t.by.number, to=t.target, reason=detail)
        self._recall_to(t.by, str(detail))

    def _recall_due(self) -> None:
        t = self.transfer
        if t is None:
            return
        self.transfer = None
        t.ring.withdraw("recall")
        self._recall_to(t.by, "no-answer", since=t.started)

    def _recall_to(self, user: User, reason: str, since: datetime | None = None) -> None:
        """The call comes back to the transferrer; busy tone for the caller if they are busy now (C5)."""
        self._rec("transfer.recall", user.number, reason=reason,
                  after=None if since is None else (self.e.clock.now - since).total_seconds())
        addresses = self.e._addresses(user, mobile=False)
        if not addresses:
            return self._recall_busy(user)
        offer = self.call.offer(user.number, present(self.call.caller, None, self.e.org.region))
        ring = _Ring(self.e, self.call, offer, addresses)
        self.recall = _Recall(user, ring, reason)
        self.recall.timer = self.e.clock.call_later(self.e.recall_ring_time, self._recall_unanswered)
        ring.result.add_done_callback(self._recall_settled)

    def _recall_busy(self, user: User) -> None:
        self.recall = None
        self._rec("transfer.recall-busy", user.number)
        self._caller_hears("busy-tone")
        self._teardown("busy")
        self.e._finish(self.call, "busy")

    def _recall_settled(self, future: ClockFuture) -> None:
        r = self.recall
        if r is None or r.ring.result is not future:
            return
        kind, detail = future.result()
        if kind == "answered":
            if r.timer is not None:
                r.timer.cancel()
            self.recall = None
            self._rec("transfer.returned", r.to.number, answered_by=detail.address)
            self._attach(_Party(detail, r.to))
            self._caller_hears("connected")
            self._hear(self.holder, "connected", party=self.call.caller)
        elif detail == "busy":
            if r.timer is not None:
                r.timer.cancel()
            self._recall_busy(r.to)
        else:
            self._recall_unanswered()

    def _recall_unanswered(self) -> None:
        r = self.recall
        if r is None:
            return
        self.recall = None
        if r.timer is not None:
            r.timer.cancel()
        r.ring.withdraw("no-answer")
        self._rec("transfer.recall-unanswered", r.to.number)
        self.e._continue(self.call, Destination(DestinationKind.VOICEMAIL, r.to.number))
