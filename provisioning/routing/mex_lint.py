"""Lint a Mex mobile's operator-side settings against the answer groups it rings in (MISSION C6).

The operator network, not the PBX, owns GSM call forwarding and call waiting.
When the mobile's no-reply forwarding fires before the group stops ringing it,
or busy forwarding catches a second call, the operator's voicemail *answers*
the PBX's leg: the group call counts as answered, the other members stop
ringing and the caller lands in a private mailbox.  The service therefore
asks for a no-reply timer of at least 25 s, call waiting off (``#43#``) and
forwarding on busy off (``#67#``).

Lint takes plain values (what the handset or the operator reports), so the
server, the CLI and the Mex simulator can all feed it without sharing types.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "MIN_NO_REPLY_TIMER",
    "MexSettings",
    "MobileLint",
    "SupportsMexSettings",
    "group_call_outcome",
    "lint_mobiles",
    "mobile_warnings",
    "suggested_no_reply_timer",
]

#: The service's minimum for the mobile's no-reply timer (seed: "at least 25 seconds").
MIN_NO_REPLY_TIMER = 25
#: GSM allows 5..30 s in steps of 5 (3GPP TS 22.082); Telia's default is 30 s.
_TIMER_STEPS = (5, 10, 15, 20, 25, 30)


class SupportsMexSettings(Protocol):
    """Anything with these attributes, e.g. the Mex simulator's settings snapshot."""

    no_reply_timer: int | None
    call_waiting: bool
    forward_on_busy: bool


@dataclass(frozen=True)
class MexSettings:
    """A mobile's settings as plain values.

    ``no_reply_timer`` is the seconds after which *active* no-reply forwarding
    takes an unanswered call, ``None`` when no-reply forwarding is off.
    """

    no_reply_timer: int | None
    call_waiting: bool
    forward_on_busy: bool
    forward_unconditional: bool = False


def suggested_no_reply_timer(ring_time_seconds: float) -> int | None:
    """The shortest valid GSM timer that is >= 25 s and outlasts the ring time, or ``None``."""
    for step in _TIMER_STEPS:
        if step >= MIN_NO_REPLY_TIMER and step > ring_time_seconds:
            return step
    return None


def mobile_warnings(settings: MexSettings | SupportsMexSettings, ring_time_seconds: float) -> list[str]:
    """Warnings, each saying what will happen to a group call that rings this mobile.

    ``ring_time_seconds`` is how long the group rings this member.  No warnings
    means the operator's voicemail cannot take a group call away from the group.
    """
    if ring_time_seconds <= 0:
        raise ValueError(f"ring time must be positive, not {ring_time_seconds}")
    ring = f"{ring_time_seconds:g}"
    warnings: list[str] = []

    if getattr(settings, "forward_unconditional", False):
        warnings.append(
            "Unconditional forwarding is on: every group call to this mobile is diverted at once, "
            "normally to the operator's voicemail, which answers it; the other members stop ringing "
            "and the caller leaves a message in this member's private mailbox. Turn it off with #21#."
        )

    timer = settings.no_reply_timer
    if timer is not None:
        suggestion = suggested_no_reply_timer(ring_time_seconds)
        if suggestion is not None:
            fix = f"Set it to {suggestion} s with **61*<voicemail number>**{suggestion}# (Telia's default is 30 s)."
        else:
            fix = (
                f"No GSM timer (at most 30 s) outlasts a ring time of {ring} s: shorten the group's ring "
                "time for this member below 30 s or turn no-reply forwarding off with #61#."
            )
        if timer <= ring_time_seconds:
            warnings.append(
                f"No-reply forwarding after {timer} s is not longer than the group's ring time of {ring} s: "
                f"when nobody answers, the operator's voicemail answers the group call at {timer} s, the other "
                "members stop ringing and the caller ends up in this member's private mailbox. " + fix
            )
        elif timer < MIN_NO_REPLY_TIMER:
            warnings.append(
                f"No-reply forwarding after {timer} s is below the service's minimum of {MIN_NO_REPLY_TIMER} s: "
                f"it outlasts the ring time of {ring} s by only {timer - ring_time_seconds:g} s, so any longer "
                "ring time or ringing delay lets the operator's voicemail answer group calls. " + fix
            )

    if settings.call_waiting:
        warnings.append(
            "Call waiting is on: a group call reaching this member during another call rings as a waiting "
            "call instead of returning busy, so the group keeps ringing a member who cannot take it, and "
            "if no-reply forwarding fires before the group gives up, the operator's voicemail answers it. "
            "Turn it off with #43#."
        )

    if settings.forward_on_busy:
        warnings.append(
            "Forwarding on busy is on: a group call reaching this member during another call (or rejected "
            "on the handset) is answered at once by the operator's voicemail, ending the group call for "
            "everyone. Turn it off with #67#."
        )
    return warnings


def group_call_outcome(settings: MexSettings | SupportsMexSettings, ring_time_seconds: float) -> str:
    """One sentence: what happens to a group call that rings this mobile for ``ring_time_seconds``."""
    ring = f"{ring_time_seconds:g}"
    timer = settings.no_reply_timer
    if getattr(settings, "forward_unconditional", False):
        return "The operator's voicemail answers every group call at once: the group call ends there for everyone."
    if timer is not None and timer <= ring_time_seconds:
        return (f"Unanswered, the operator's voicemail answers the group call after {timer} s (the group rings "
                f"this mobile {ring} s): the group call ends in this member's private mailbox.")
    busy = settings.forward_on_busy or settings.call_waiting
    after = f"before the operator's no-reply forwarding at {timer} s" if timer is not None else (
        "and the operator has no no-reply forwarding")
    text = f"The group stops ringing this mobile after {ring} s, {after}: unanswered calls stay with the group"
    if busy:
        return text + ", except while the member is on another call (see the busy warnings)."
    return text + "."


@dataclass(frozen=True)
class MobileLint:
    """The lint of one group member's mobile: what the group does and what the operator will do."""

    group: str
    user: str
    mobile: str
    ring_time: float
    warnings: tuple[str, ...]
    outcome: str

    @property
    def ok(self) -> bool:
        return not self.warnings

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "user": self.user, "mobile": self.mobile, "ring_time": self.ring_time,
                "warnings": list(self.warnings), "outcome": self.outcome}


def lint_mobiles(
    ring_times: Iterable[tuple[Any, Any, Any, float]],
    settings_for: Callable[[str], MexSettings | SupportsMexSettings | None],
) -> list[MobileLint]:
    """Lint every (group, user, mobile, ring time) of ``Organisation.mobile_ring_times()``.

    ``settings_for(mobile_number)`` returns the mobile's operator-side settings
    (the Mex simulator's ``settings()``, or what the operator reports), or
    ``None`` when unknown: such mobiles are skipped, not guessed.
    """
    out = []
    for group, user, mobile, ring in ring_times:
        settings = settings_for(mobile.number)
        if settings is None:
            continue
        out.append(MobileLint(group.name, user.number, mobile.number, ring, tuple(mobile_warnings(settings, ring)),
                              group_call_outcome(settings, ring)))
    return out
