"""A Mex mobile phone on a simulated GSM network, driven by a virtual clock.

Why it exists: the operator's network, not the PBX, decides what happens to a
call the PBX sends to a member's mobile.  GSM call forwarding (3GPP TS 22.082)
and call waiting (TS 22.083) can make the operator's voicemail *answer* a
group call (MISSION C6), so end-to-end routing tests need a network that
applies them the way the real one does, configured with real MMI strings
(TS 22.030): ``**61*+46701740600**25#``, ``#43#``, ``##002#``...

Independence: nothing here imports ``provisioning``.  The simulator meets the
routing engine structurally: :class:`MexMobile` and :class:`OperatorVoicemail`
have ``address`` and ``offer(leg)``, and they drive the leg only through the
calls listed in :class:`LegLike`.  The clock is any object with ``now``,
``call_later(seconds, fn, *args)`` (returning something with ``cancel()``) and
``call_soon(fn, *args)``.

Network behaviour when a call arrives (:meth:`MexMobile.offer`):

1. CFU active -> forwarded at once ("unconditional");
2. switched off or out of coverage -> CFNRc if active ("not-reachable"), else rejected "unreachable";
3. busy -> with call waiting on and no call already waiting, the call rings as a
   waiting call (and CFNRy still applies); otherwise CFB if active ("busy"), else rejected "busy";
4. idle -> rings; the user answers after ``answer_after`` s, or rejects (GSM
   "user determined user busy": CFB if active, else "busy"), or never answers;
   CFNRy takes the call after the no-reply timer.  A user answer due at the same
   instant as the no-reply timer wins.  Without CFNRy an unanswered call is
   released "no-answer" after the network's ``no_answer_release`` (``None``: rings
   until the caller gives up).

A forwarded call stays one leg for the engine: the leg hears ``forwarded(to,
reason)`` and then the forwarded-to party's outcome.  The operator's voicemail
answers at once, which is the C6 problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

__all__ = [
    "BASIC_SERVICE_GROUPS",
    "DEFAULT_VOICEMAIL_NUMBER",
    "GsmNetwork",
    "LegLike",
    "MexMobile",
    "MmiRequest",
    "MmiResult",
    "MmiSyntaxError",
    "MobileSettings",
    "OperatorVoicemail",
    "VoicemailMessage",
    "parse_mmi",
]

#: A made-up operator voicemail number for tests; pass the real one to :class:`GsmNetwork`.
DEFAULT_VOICEMAIL_NUMBER = "+46701740600"

# -- the interfaces we rely on, by shape only ----------------------------------


class LegLike(Protocol):
    """The leg-facing calls the simulator makes; the routing engine's leg has the same names."""

    call: Any  # has .caller, .called, .call_id
    state: str

    def ringing(self) -> None: ...
    def forwarded(self, to: str, reason: str) -> None: ...
    def answered(self, by: str | None = None) -> None: ...
    def rejected(self, reason: str) -> None: ...
    def ended(self, reason: str = "normal") -> None: ...
    def add_done_callback(self, callback: Callable[[Any], Any]) -> None: ...


class EndpointLike(Protocol):
    address: str

    def offer(self, leg: Any) -> None: ...


_ALERTING = ("offered", "ringing", "forwarded")
_TERMINAL = ("rejected", "cancelled", "ended")

# -- MMI (3GPP TS 22.030) -------------------------------------------------------

#: Service codes handled here (TS 22.030 Annex B).
_CF_NAMES = {
    "21": "Call forwarding unconditional",
    "67": "Call forwarding on busy",
    "61": "Call forwarding on no reply",
    "62": "Call forwarding on not reachable",
    "002": "All call forwarding",
    "004": "All conditional call forwarding",
}
_CF_GROUPS = {"002": ("21", "67", "61", "62"), "004": ("67", "61", "62")}
_CW = "43"
_SERVICE_NAMES = {**_CF_NAMES, _CW: "Call waiting"}
#: Recognised supplementary services this simulator does not model (CLIP, CLIR, barring...).
_UNMODELLED = {"30", "31", "33", "35", "76", "77", "330", "331", "332", "333", "351", "353"}

#: Basic service group codes (TS 22.030 Annex C).  Only telephony is modelled, so only
#: groups that contain it are accepted; the rest are refused with their name.
BASIC_SERVICE_GROUPS = {
    "10": "all teleservices",
    "11": "telephony",
    "12": "all data teleservices",
    "13": "facsimile services",
    "16": "short message services",
    "17": "voice group call service",
    "18": "voice broadcast service",
    "19": "all teleservices except SMS",
    "20": "all bearer services",
    "21": "all asynchronous services",
    "22": "all synchronous services",
    "24": "all data circuit synchronous",
    "25": "all data circuit asynchronous",
    "26": "all dedicated packet access",
    "27": "all dedicated PAD access",
}
_TELEPHONY_GROUPS = {"10", "11", "19"}
_NO_REPLY_TIMERS = (5, 10, 15, 20, 25, 30)

_MMI = re.compile(r"^(\*\*|\*#|##|\*|#)(\d{2,3})((?:\*[0-9+]*)*)#$")
_NUMBER = re.compile(r"^\+?\d{2,20}$")
_PROCEDURES = {"*": "activation", "**": "registration", "#": "deactivation", "##": "erasure", "*#": "interrogation"}


class MmiSyntaxError(ValueError):
    """Not an MMI string the network understands."""


@dataclass(frozen=True)
class MmiRequest:
    """A parsed MMI string: ``procedure`` (activation, registration, ...), service code, SI fields."""

    procedure: str
    code: str
    fields: tuple[str, ...]

    def field(self, index: int) -> str:
        return self.fields[index] if index < len(self.fields) else ""


def parse_mmi(text: str) -> MmiRequest:
    """Split ``**61*+46701740600**25#`` into procedure, service code and SI fields."""
    match = _MMI.match(text.strip().replace(" ", ""))
    if not match:
        raise MmiSyntaxError(f"not an MMI code: {text!r}")
    prefix, code, rest = match.groups()
    fields = tuple(rest[1:].split("*")) if rest else ()
    return MmiRequest(_PROCEDURES[prefix], code, fields)


@dataclass(frozen=True)
class MmiResult:
    """What the handset shows after sending an MMI string.

    ``error`` names the network's error (TS 24.080 style) when ``ok`` is false:
    ``invalid-mmi``, ``illegal-ss-operation``, ``unexpected-data-value``,
    ``basic-service-not-provided``, ``ss-error-status`` (nothing registered to activate),
    ``not-supported`` or ``no-network``.
    """

    ok: bool
    text: str
    code: str | None = None
    procedure: str | None = None
    error: str | None = None


class _Refused(Exception):
    def __init__(self, error: str, text: str):
        super().__init__(text)
        self.error, self.text = error, text


# -- settings ---------------------------------------------------------------------


@dataclass
class _Forwarding:
    number: str | None = None  # registered forwarded-to number
    active: bool = False

    @property
    def target(self) -> str | None:
        return self.number if self.active and self.number else None


@dataclass(frozen=True)
class MobileSettings:
    """The mobile's supplementary-service settings as plain values (for lint and tests).

    Forwarding targets are ``None`` unless active.  ``no_reply_timer``,
    ``forward_on_busy`` and ``forward_unconditional`` use the names the server's
    Mex lint reads, so a snapshot can be linted as it is.
    """

    call_waiting: bool
    cfu: str | None
    cfb: str | None
    cfnry: str | None
    cfnry_timer: int
    cfnrc: str | None

    @property
    def no_reply_timer(self) -> int | None:
        return self.cfnry_timer if self.cfnry else None

    @property
    def forward_on_busy(self) -> bool:
        return self.cfb is not None

    @property
    def forward_unconditional(self) -> bool:
        return self.cfu is not None


# -- voicemail ----------------------------------------------------------------------


@dataclass
class VoicemailMessage:
    """A message left in the operator's voicemail (C6: it should never hold a group call)."""

    mailbox: str
    caller: str
    call_id: str
    started_at: datetime
    reason: str | None = None  # why the call was forwarded here
    group: str | None = None  # the answer group the call came through, if any
    ended_at: datetime | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds()


class OperatorVoicemail:
    """The operator's voicemail platform: answers every call at once and records a message.

    The mailbox is the subscriber the call was forwarded from (or the number the
    caller dialled when offered directly).
    """

    def __init__(self, clock: Any, address: str = DEFAULT_VOICEMAIL_NUMBER, *, trace: Any = None):
        self.clock = clock
        self.address = address
        self.trace = trace
        self.messages: list[VoicemailMessage] = []

    def offer(self, leg: Any) -> None:
        call = leg.call
        message = VoicemailMessage(
            mailbox=getattr(leg, "diverted_from", None) or call.called,
            caller=call.caller,
            call_id=call.call_id,
            started_at=self.clock.now,
            reason=getattr(leg, "diversion_reason", None),
            group=getattr(call, "group", None),
        )
        leg.answered(self.address)
        self.messages.append(message)
        _record(self.trace, "voicemail.answered", self.address, mailbox=message.mailbox, caller=message.caller)
        leg.add_done_callback(lambda _leg: setattr(message, "ended_at", self.clock.now))

    def messages_for(self, mailbox: str) -> list[VoicemailMessage]:
        return [m for m in self.messages if m.mailbox == mailbox]


# -- the network ----------------------------------------------------------------------


class GsmNetwork:
    """The operator network: its voicemail, its subscribers, and where forwarded calls go.

    ``external(number)`` resolves numbers outside this network (the PBX, a desk
    phone) to endpoints; unknown forwarded-to numbers are rejected "unreachable".
    ``default_no_reply_timer`` applies when a CFNRy registration gives no timer
    (Telia's 30 s by default).  ``max_forwardings`` stops forwarding loops.
    """

    def __init__(
        self,
        clock: Any,
        *,
        voicemail_number: str = DEFAULT_VOICEMAIL_NUMBER,
        default_no_reply_timer: int = 30,
        no_answer_release: float | None = None,
        max_forwardings: int = 5,
        external: Callable[[str], EndpointLike | None] | None = None,
        trace: Any = None,
    ):
        if default_no_reply_timer not in _NO_REPLY_TIMERS:
            raise ValueError(f"no-reply timer must be one of {_NO_REPLY_TIMERS}")
        self.clock = clock
        self.trace = trace
        self.voicemail = OperatorVoicemail(clock, voicemail_number, trace=trace)
        self.default_no_reply_timer = default_no_reply_timer
        self.no_answer_release = no_answer_release
        self.max_forwardings = max_forwardings
        self.external = external
        self.mobiles: dict[str, MexMobile] = {}

    def add_mobile(self, number: str, **options: Any) -> MexMobile:
        return MexMobile(self, number, **options)

    def endpoint_for(self, number: str) -> EndpointLike | None:
        if number == self.voicemail.address:
            return self.voicemail
        if number in self.mobiles:
            return self.mobiles[number]
        return self.external(number) if self.external is not None else None

    def forward(self, from_number: str, leg: Any, to: str, reason: str) -> None:
        """Divert ``leg`` to ``to`` inside the network; the leg continues with the target's outcome."""
        depth = getattr(leg, "forward_depth", 0)
        _record(self.trace, "network.forward", from_number, to=to, reason=reason)
        leg.forwarded(to, reason)
        if depth >= self.max_forwardings:
            _record(self.trace, "network.forward-limit", from_number, to=to, limit=self.max_forwardings)
            leg.rejected("unreachable")
            return
        target = self.endpoint_for(to)
        if target is None:
            leg.rejected("unreachable")
            return
        target.offer(_NetworkLeg(self, leg, to, from_number, reason, depth + 1))


class _NetworkLeg:
    """The network's own leg to a forwarded-to party, mirroring its outcome onto the leg it came from."""

    _ALLOWED = {
        "offered": {"ringing", "forwarded", "answered", "rejected", "cancelled"},
        "ringing": {"ringing", "forwarded", "answered", "rejected", "cancelled"},
        "forwarded": {"ringing", "forwarded", "answered", "rejected", "cancelled"},
        "answered": {"ended"},
        "rejected": set(),
        "cancelled": set(),
        "ended": set(),
    }

    def __init__(self, network: GsmNetwork, upstream: Any, address: str, diverted_from: str, reason: str, depth: int):
        self.network = network
        self.upstream = upstream
        self.call = upstream.call
        self.address = address
        self.diverted_from = diverted_from
        self.diversion_reason = reason
        self.forward_depth = depth
        self.state = "offered"
        self._done: list[Callable[[Any], Any]] = []
        upstream.add_done_callback(self._upstream_done)

    def add_done_callback(self, callback: Callable[[Any], Any]) -> None:
        if self.state in _TERMINAL:
            self.network.clock.call_soon(callback, self)
        else:
            self._done.append(callback)

    def ringing(self) -> None:
        self._move("ringing")
        self.upstream.ringing()

    def forwarded(self, to: str, reason: str) -> None:
        self._move("forwarded")
        self.upstream.forwarded(to, reason)

    def answered(self, by: str | None = None) -> None:
        self._move("answered")
        self.upstream.answered(by or self.address)

    def rejected(self, reason: str) -> None:
        self._move("rejected")
        self.upstream.rejected(reason)

    def ended(self, reason: str = "normal") -> None:
        self._move("ended")
        self.upstream.ended(reason)

    def _move(self, state: str) -> None:
        self._sync()
        if state not in self._ALLOWED[self.state]:
            raise RuntimeError(f"forwarded leg to {self.address}: {self.state} -> {state} is not allowed")
        self.state = state
        if state in _TERMINAL:
            self._fire()

    def _sync(self) -> None:
        """Adopt the upstream leg's end if its done callback has not reached us yet."""
        if self.state not in _TERMINAL and self.upstream.state in _TERMINAL:
            self._upstream_done(self.upstream)

    def _upstream_done(self, upstream: Any) -> None:
        if self.state in _TERMINAL:
            return
        self.state = "ended" if self.state == "answered" else "cancelled"
        self._fire()

    def _fire(self) -> None:
        callbacks, self._done = self._done, []
        for callback in callbacks:
            self.network.clock.call_soon(callback, self)


# -- the mobile -------------------------------------------------------------------------


class MexMobile:
    """A Mex subscriber's handset and its network-side subscription.

    Behaviour knobs: ``answer_after`` (seconds, ``None`` = never answers),
    ``rejects`` (presses reject after ``reject_after`` s), ``answers_waiting_after``
    (picks up a waiting call, ``None`` = never).  ``voicemail_forwarding`` starts
    with CFB, CFNRy and CFNRc registered and active to the operator's voicemail,
    the way operators commonly provision a subscription.
    """

    def __init__(
        self,
        network: GsmNetwork,
        number: str,
        *,
        answer_after: float | None = None,
        rejects: bool = False,
        reject_after: float = 3.0,
        answers_waiting_after: float | None = None,
        switched_on: bool = True,
        reachable: bool = True,
        call_waiting: bool = False,
        voicemail_forwarding: bool = False,
    ):
        if number in network.mobiles:
            raise ValueError(f"{number} is already on the network")
        self.network = network
        self.clock = network.clock
        self.address = number
        self.answer_after = answer_after
        self.rejects = rejects
        self.reject_after = reject_after
        self.answers_waiting_after = answers_waiting_after
        self.switched_on = switched_on
        self.reachable = reachable
        self.call_waiting = call_waiting
        self.forwarding: dict[str, _Forwarding] = {code: _Forwarding() for code in ("21", "67", "61", "62")}
        self.no_reply_timer = network.default_no_reply_timer
        self.offered: list[Any] = []  # every leg ever offered, in order
        self.alerting: list[Any] = []  # legs ringing here now (a waiting call included)
        self.calls: list[Any] = []  # answered legs still in progress
        self.waiting: Any = None  # the one leg ringing as a waiting call
        self._engaged = False
        self._timers: dict[int, list[Any]] = {}
        network.mobiles[number] = self
        if voicemail_forwarding:
            for code in ("67", "61", "62"):
                self.forwarding[code] = _Forwarding(network.voicemail.address, True)

    # -- state ----------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """On a call: one answered here, or one outside the simulation (``busy = True``)."""
        return self._engaged or bool(self.calls)

    @busy.setter
    def busy(self, value: bool) -> None:
        self._engaged = bool(value)

    @property
    def reachable_now(self) -> bool:
        return self.switched_on and self.reachable

    def settings(self) -> MobileSettings:
        f = self.forwarding
        return MobileSettings(
            call_waiting=self.call_waiting,
            cfu=f["21"].target,
            cfb=f["67"].target,
            cfnry=f["61"].target,
            cfnry_timer=self.no_reply_timer,
            cfnrc=f["62"].target,
        )

    def switch_off(self) -> None:
        """Power off: calls in progress end, calls ringing here get the not-reachable treatment."""
        self.switched_on = False
        for leg in list(self.calls):
            leg.ended("switched-off")
        for leg in list(self.alerting):
            self._stop_alerting(leg)
            self._not_reachable(leg)

    def switch_on(self) -> None:
        self.switched_on = True

    def hang_up(self) -> None:
        """The user ends the oldest call in progress."""
        if not self.calls:
            raise RuntimeError(f"{self.address} has no call to hang up")
        self.calls[0].ended()

    # -- MMI ------------------------------------------------------------------

    def dial(self, mmi: str) -> MmiResult:
        """Send an MMI string to the network; returns what the handset would display."""
        try:
            request = parse_mmi(mmi)
        except MmiSyntaxError:
            result = MmiResult(False, "Invalid MMI code", error="invalid-mmi")
        else:
            try:
                if not self.reachable_now:
                    raise _Refused("no-network", "No network: the phone must be on and in coverage")
                text = self._apply(request)
                result = MmiResult(True, text, request.code, request.procedure)
            except _Refused as refused:
                result = MmiResult(False, refused.text, request.code, request.procedure, refused.error)
        _record(self.network.trace, "mobile.mmi", self.address, mmi=mmi, ok=result.ok, text=result.text)
        return result

    def _apply(self, request: MmiRequest) -> str:
        code = request.code
        if code in _CF_NAMES:
            return self._apply_forwarding(request)
        if code == _CW:
            return self._apply_call_waiting(request)
        if code in _UNMODELLED:
            raise _Refused("not-supported", f"Service {code} is not supported by this simulator")
        raise _Refused("invalid-mmi", "Invalid MMI code")

    def _basic_service(self, value: str) -> None:
        if value == "" or value in _TELEPHONY_GROUPS:
            return
        if value in BASIC_SERVICE_GROUPS:
            raise _Refused(
                "basic-service-not-provided",
                f"Basic service group {value} ({BASIC_SERVICE_GROUPS[value]}) is not provided: only telephony "
                f"(11, or 10/19 which include it) is modelled",
            )
        raise _Refused("invalid-mmi", f"Invalid MMI code: unknown basic service group {value}")

    def _apply_call_waiting(self, request: MmiRequest) -> str:
        if len(request.fields) > 1:
            raise _Refused("invalid-mmi", "Invalid MMI code: call waiting takes only a basic service group")
        self._basic_service(request.field(0))
        if request.procedure == "activation":
            self.call_waiting = True
            return "Call waiting activated for voice calls"
        if request.procedure == "deactivation":
            self.call_waiting = False
            return "Call waiting deactivated"
        if request.procedure == "interrogation":
            return self._cw_status()
        raise _Refused("illegal-ss-operation", f"Call waiting cannot be the object of {request.procedure}")

    def _cw_status(self) -> str:
        return "Call waiting: active for voice calls" if self.call_waiting else "Call waiting: not active"

    def _apply_forwarding(self, request: MmiRequest) -> str:
        code, procedure = request.code, request.procedure
        if len(request.fields) > 3:
            raise _Refused("invalid-mmi", "Invalid MMI code: too many fields")
        number, service, timer_text = request.field(0), request.field(1), request.field(2)
        self._basic_service(service)
        members = _CF_GROUPS.get(code, (code,))
        name = _CF_NAMES[code]

        timer: int | None = None
        if timer_text:
            if "61" not in members:
                raise _Refused("unexpected-data-value", f"{name} takes no no-reply timer")
            if not timer_text.isdigit() or int(timer_text) not in _NO_REPLY_TIMERS:
                raise _Refused(
                    "unexpected-data-value",
                    f"Setting failed: the no-reply timer must be 5 to 30 seconds in steps of 5, not {timer_text}",
                )
            timer = int(timer_text)

        if number and procedure in ("activation", "registration"):
            procedure = "registration"  # *SC*number# registers, like **SC*number#
        if procedure == "registration":
            if not number:
                raise _Refused("illegal-ss-operation", f"{name}: registration needs a forwarded-to number")
            if not _NUMBER.match(number):
                raise _Refused("unexpected-data-value", f"Invalid forwarded-to number {number!r}")
            if number == self.address:
                raise _Refused("illegal-ss-operation", f"{name}: cannot forward a number to itself")
            for member in members:
                self.forwarding[member] = _Forwarding(number, True)
            if "61" in members:
                self.no_reply_timer = timer if timer is not None else self.network.default_no_reply_timer
            return "Registration successful\n" + self._cf_status(code)
        if number:
            raise _Refused("invalid-mmi", f"Invalid MMI code: {procedure} takes no number")
        if timer is not None:
            raise _Refused("invalid-mmi", f"Invalid MMI code: {procedure} takes no no-reply timer")

        if procedure == "activation":
            registered = [m for m in members if self.forwarding[m].number]
            if not registered:
                raise _Refused("ss-error-status", f"{name}: no forwarded-to number registered, nothing to activate")
            for member in registered:
                self.forwarding[member].active = True
            return "Service activated\n" + self._cf_status(code)
        if procedure == "deactivation":
            for member in members:
                self.forwarding[member].active = False
            return "Service deactivated\n" + self._cf_status(code)
        if procedure == "erasure":
            for member in members:
                self.forwarding[member] = _Forwarding()
            if "61" in members:
                self.no_reply_timer = self.network.default_no_reply_timer
            return "Erasure successful\n" + self._cf_status(code)
        return self._cf_status(code)  # interrogation

    def _cf_status(self, code: str) -> str:
        return "\n".join(self._cf_line(member) for member in _CF_GROUPS.get(code, (code,)))

    def _cf_line(self, code: str) -> str:
        entry, name = self.forwarding[code], _CF_NAMES[code]
        after = f" after {self.no_reply_timer} s" if code == "61" else ""
        if entry.active and entry.number:
            return f"{name}: active for voice calls to {entry.number}{after}"
        if entry.number:
            return f"{name}: not active (registered to {entry.number}{after})"
        return f"{name}: not active"

    # -- calls ------------------------------------------------------------------

    def offer(self, leg: Any) -> None:
        """A call for this subscriber reaches the network (see the module docstring for the rules)."""
        self.offered.append(leg)
        _record(self.network.trace, "mobile.offered", self.address, caller=leg.call.caller)
        cfu = self.forwarding["21"].target
        if cfu:
            self.network.forward(self.address, leg, cfu, "unconditional")
        elif not self.reachable_now:
            self._not_reachable(leg)
        elif self.busy:
            if self.call_waiting and self.waiting is None:
                self._alert(leg, waiting=True)
            else:
                self._user_busy(leg)
        else:
            self._alert(leg, waiting=False)

    def _not_reachable(self, leg: Any) -> None:
        target = self.forwarding["62"].target
        if target:
            self.network.forward(self.address, leg, target, "not-reachable")
        else:
            leg.rejected("unreachable")

    def _user_busy(self, leg: Any) -> None:
        """Network- or user-determined busy: CFB if active, else busy."""
        target = self.forwarding["67"].target
        if target:
            self.network.forward(self.address, leg, target, "busy")
        else:
            leg.rejected("busy")

    def _alert(self, leg: Any, *, waiting: bool) -> None:
        leg.ringing()
        self.alerting.append(leg)
        if waiting:
            self.waiting = leg
        _record(self.network.trace, "mobile.alerting", self.address, waiting=waiting)
        timers: list[Any] = []
        self._timers[id(leg)] = timers
        answer_after = self.answers_waiting_after if waiting else self.answer_after
        if self.rejects:
            timers.append(self.clock.call_later(self.reject_after, self._user_rejects, leg))
        elif answer_after is not None:
            timers.append(self.clock.call_later(answer_after, self._user_answers, leg))
        if self.forwarding["61"].target:  # scheduled after the user's answer: an answer wins a tie
            timers.append(self.clock.call_later(self.no_reply_timer, self._no_reply, leg))
        elif self.network.no_answer_release is not None:
            timers.append(self.clock.call_later(self.network.no_answer_release, self._release, leg))
        leg.add_done_callback(self._stop_alerting)

    def _stop_alerting(self, leg: Any) -> None:
        for timer in self._timers.pop(id(leg), ()):
            timer.cancel()
        if leg in self.alerting:
            self.alerting.remove(leg)
        if self.waiting is leg:
            self.waiting = None

    def _user_answers(self, leg: Any) -> None:
        self._stop_alerting(leg)
        leg.answered()
        self.calls.append(leg)
        leg.add_done_callback(self._call_over)

    def _call_over(self, leg: Any) -> None:
        if leg in self.calls:
            self.calls.remove(leg)

    def _user_rejects(self, leg: Any) -> None:
        self._stop_alerting(leg)
        _record(self.network.trace, "mobile.user-rejected", self.address)
        self._user_busy(leg)

    def _no_reply(self, leg: Any) -> None:
        self._stop_alerting(leg)
        _record(self.network.trace, "mobile.no-reply", self.address, after=self.no_reply_timer)
        self.network.forward(self.address, leg, self.forwarding["61"].number, "no-reply")

    def _release(self, leg: Any) -> None:
        self._stop_alerting(leg)
        leg.rejected("no-answer")

    def __repr__(self) -> str:
        return f"<MexMobile {self.address}>"


def _record(trace: Any, kind: str, where: str, **detail: Any) -> None:
    if trace is not None:
        trace.record(kind, where, **detail)
