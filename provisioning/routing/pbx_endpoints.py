"""Endpoints the PBX itself provides: the announcement machine and the users' voicemail boxes.

They plug into the engine through the same interface as phones and mobiles
(``address`` + ``offer(leg)``), so a played message or a voicemail greeting
is a leg like any other: it answers, takes virtual time, and ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from provisioning.routing.clock import TimerHandle, Trace, VirtualClock
from provisioning.routing.endpoints import CallLeg

__all__ = ["Announcement", "PbxVoicemail", "VoicemailRecord"]


class Announcement:
    """Plays one voice message of ``seconds`` and hangs up (``leg.ended("played")``)."""

    def __init__(self, clock: VirtualClock, message: str, seconds: float):
        self.clock = clock
        self.message = message
        self.seconds = seconds
        self.address = f"announcement:{message}"

    def offer(self, leg: CallLeg) -> None:
        leg.answered()
        timer = self.clock.call_later(self.seconds, _end_if_answered, leg, "played")
        leg.add_done_callback(lambda _leg: timer.cancel())


def _end_if_answered(leg: CallLeg, reason: str) -> None:
    if leg.state == "answered":
        leg.ended(reason)


@dataclass
class VoicemailRecord:
    """A message left in a user's PBX voicemail box."""

    mailbox: str
    caller: str
    call_id: str
    started_at: datetime
    ended_at: datetime | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds()


@dataclass
class _Mailbox:
    operator_option: bool = False
    greeting_seconds: float = 4.0


class PbxVoicemail:
    """The service's own voicemail (not the operator's): one endpoint serving every user's box.

    The box is the leg's ``call.called`` (the user's fixed number).  It answers at
    once, plays the greeting (longer when it offers "press 0 for the operator"),
    records until the caller hangs up, and ends the leg at ``max_message`` seconds.
    Pressing 0 is the engine's business: it hangs this leg up and routes on.
    """

    address = "voicemail"

    def __init__(self, clock: VirtualClock, *, trace: Trace | None = None, max_message: float = 120.0,
                 operator_prompt_seconds: float = 3.0):
        self.clock = clock
        self.trace = trace
        self.max_message = max_message
        self.operator_prompt_seconds = operator_prompt_seconds
        self.boxes: dict[str, _Mailbox] = {}
        self.messages: list[VoicemailRecord] = []

    def configure(self, mailbox: str, *, operator_option: bool) -> None:
        self.boxes[mailbox] = _Mailbox(operator_option=operator_option)

    def greeting_seconds(self, mailbox: str) -> float:
        box = self.boxes.get(mailbox, _Mailbox())
        return box.greeting_seconds + (self.operator_prompt_seconds if box.operator_option else 0.0)

    def offer(self, leg: CallLeg) -> None:
        mailbox = leg.call.called
        box = self.boxes.get(mailbox, _Mailbox())
        leg.answered(f"voicemail:{mailbox}")
        greeting = self.greeting_seconds(mailbox)
        if self.trace is not None:
            self.trace.record("voicemail.greeting", f"voicemail:{mailbox}", call=leg.call.call_id,
                              seconds=greeting, operator_option=box.operator_option)
        timers: list[TimerHandle] = [self.clock.call_later(greeting, self._record, leg, mailbox)]
        leg.add_done_callback(lambda _leg: [t.cancel() for t in timers])
        timers.append(self.clock.call_later(greeting + self.max_message, _end_if_answered, leg, "message-full"))

    def _record(self, leg: CallLeg, mailbox: str) -> None:
        record = VoicemailRecord(mailbox, leg.call.caller, leg.call.call_id, self.clock.now)
        self.messages.append(record)
        if self.trace is not None:
            self.trace.record("voicemail.recording", f"voicemail:{mailbox}", call=leg.call.call_id,
                              caller=leg.call.caller)
        leg.add_done_callback(lambda _leg: setattr(record, "ended_at", self.clock.now))

    def messages_for(self, mailbox: str) -> list[VoicemailRecord]:
        return [m for m in self.messages if m.mailbox == mailbox]

