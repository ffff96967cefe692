"""Answer-group distribution (MISSION A10): who rings when, and the queue in front of the group.

Pure planning, no clock: given the members' state *at the moment a call arrives*,
:func:`plan` returns the whole offering plan as offsets in seconds from that moment.
The routing engine (issue 6) walks the plan on its virtual clock, cancels the rest
when someone answers, and reports back (:func:`remember`) so round robin knows where
to continue.

Strategies (``peers-and-routing.md`` §4.1–4.3 for the peers' equivalents)
-------------------------------------------------------------------------
``ring_all``      everyone at once (Asterisk ``ringall``, FusionPBX ``simultaneous``).
``linear``        one at a time in member order, always from the top (``linear``/``hunt``).
``round_robin``   one at a time, starting after the member who was offered the group's
                  previous call *last* — the one who answered it, or, when nobody did,
                  the last one it reached before the caller gave up.  So an abandoned
                  call does not give the same member the first ring again (Asterisk
                  ``rrmemory``).  A remembered member who has left the group is found by
                  their old position: the next member after that position goes first.
``longest_idle``  one at a time, the member whose last group call ended longest ago
                  first; never-called members first of all (FreeSWITCH ``longest-idle-agent``).
``fewest_calls``  one at a time, fewest answered group calls first (``agent-with-fewest-calls``).
``random``        one at a time in a random order, reshuffled each round; pass a seed
                  or a ``random.Random`` to make it reproducible.

Ties always fall back to member order.  Sequential strategies ring each member for
their own ring time; ``ring_all`` rings each member for *their* ring time in parallel
(a Mex mobile can ring shorter than the desk phones: MISSION C6).  When a round is
over and the group's no-answer time has not run out, the next round starts after
``retry_delay`` (unless ``repeat`` is off); the last offer is cut at the no-answer
time.  Members logged out, diverted, or busy without call waiting are skipped and
listed with the reason; a busy member *with* call waiting is offered, flagged.

Queue ("kösvar")
----------------
:class:`QueueSettings` (max callers, max wait, announcement message, interval,
position announcements) and the immutable :class:`QueueState`: admit a caller, let
them leave, ask positions, deadlines and when each announcement is due.

Database mapping
----------------
``answer_group``: ``strategy`` (text, a :class:`Strategy` value), ``ring_time``
(default per-member seconds), ``no_answer_time``, ``repeat``, ``retry_delay``, the
no-answer destination, ``rr_last_member_id`` + ``rr_last_order`` (the
:class:`RoundRobinMemory`; NULL until the first call), the queue columns
``queue_max_callers``, ``queue_max_wait``, ``queue_message_id``,
``queue_announce_interval``, ``queue_first_announcement``,
``queue_announce_position``, ``queue_join_empty``.  ``group_member``: ``group_id``,
``user_id``, ``position`` (the order), ``ring_time`` (NULL = group default),
``logged_in``, ``last_call_at`` (when their last answered group call ended, UTC),
``calls_answered`` (counter; resetting it, e.g. nightly, is an operational choice).
``busy`` and ``diverted`` are derived at call time (active calls, diversions) and
never stored.  The waiting callers of a :class:`QueueState` live in the engine's
memory: they are calls in progress, not data.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

__all__ = [
    "Admission",
    "Announcement",
    "GroupSettings",
    "Member",
    "Offer",
    "OfferingPlan",
    "QueueSettings",
    "QueueState",
    "QueuedCaller",
    "RoundRobinMemory",
    "Skip",
    "Strategy",
    "plan",
    "remember",
]


class Strategy(enum.StrEnum):
    RING_ALL = "ring_all"
    LINEAR = "linear"
    ROUND_ROBIN = "round_robin"
    LONGEST_IDLE = "longest_idle"
    FEWEST_CALLS = "fewest_calls"
    RANDOM = "random"

    @classmethod
    def parse(cls, value: Strategy | str) -> Strategy:
        """A strategy value, or a peer's name for it (``ringall``, ``hunt``, ``rrmemory``, ...)."""
        if isinstance(value, Strategy):
            return value
        text = str(value).strip().lower().replace("-", "_")
        if text in _ALIASES:
            return _ALIASES[text]
        try:
            return cls(text)
        except ValueError:
            known = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown distribution strategy {value!r}; use one of {known}") from None

    @property
    def parallel(self) -> bool:
        return self is Strategy.RING_ALL


_ALIASES = {
    "ringall": Strategy.RING_ALL,
    "simultaneous": Strategy.RING_ALL,
    "hunt": Strategy.LINEAR,
    "ordered": Strategy.LINEAR,
    "sequential": Strategy.LINEAR,
    "sequence": Strategy.LINEAR,
    "rrmemory": Strategy.ROUND_ROBIN,
    "roundrobin": Strategy.ROUND_ROBIN,
    "leastrecent": Strategy.LONGEST_IDLE,
    "longest_idle_agent": Strategy.LONGEST_IDLE,
    "fewestcalls": Strategy.FEWEST_CALLS,
}


def _positive(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{what} must be a positive number of seconds, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class Member:
    """A group member as the call sees them.

    ``diverted`` means *all* the member's legs are closed by a diversion; when a
    diversion closes only the fixed number (no "diversion affects mobile"), the
    engine passes ``diverted=False`` and leaves the desk phone out of the legs.
    ``last_call_at`` is when their last answered group call ended; ``calls`` how many
    group calls they answered.
    """

    member_id: str
    order: int = 0
    ring_time: float | None = None
    logged_in: bool = True
    diverted: bool = False
    busy: bool = False
    call_waiting: bool = False
    last_call_at: datetime | None = None
    calls: int = 0

    def __post_init__(self) -> None:
        if not str(self.member_id).strip():
            raise ValueError("a member needs an id")
        if self.ring_time is not None:
            object.__setattr__(self, "ring_time", _positive(self.ring_time, f"ring time of {self.member_id}"))
        if self.calls < 0:
            raise ValueError(f"call count of {self.member_id} cannot be negative")
        if self.last_call_at is not None and self.last_call_at.utcoffset() is None:
            raise ValueError(f"last_call_at of {self.member_id} must be timezone-aware")

    def skip_reason(self) -> str | None:
        """Why the member is not offered the call: ``logged_out``, ``diverted``, ``busy`` or ``None``."""
        if not self.logged_in:
            return "logged_out"
        if self.diverted:
            return "diverted"
        if self.busy and not self.call_waiting:
            return "busy"
        return None


@dataclass(frozen=True)
class GroupSettings:
    """How a group distributes a call: strategy, default ring time, overall no-answer time."""

    strategy: Strategy = Strategy.RING_ALL
    ring_time: float = 20.0
    no_answer_time: float = 60.0
    repeat: bool = True
    retry_delay: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", Strategy.parse(self.strategy))
        object.__setattr__(self, "ring_time", _positive(self.ring_time, "group ring time"))
        object.__setattr__(self, "no_answer_time", _positive(self.no_answer_time, "no-answer time"))
        if self.retry_delay < 0:
            raise ValueError(f"retry delay cannot be negative: {self.retry_delay}")


@dataclass(frozen=True)
class RoundRobinMemory:
    """Where round robin stopped: the member offered the previous call last, and their order then."""

    member_id: str
    order: int


@dataclass(frozen=True)
class Offer:
    """Ring ``member_id`` from ``start`` for ``duration`` seconds (offsets from the call's arrival)."""

    member_id: str
    order: int
    start: float
    duration: float
    round: int
    call_waiting: bool = False

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True)
class Skip:
    member_id: str
    reason: str


@dataclass(frozen=True)
class OfferingPlan:
    """The offers in start order.  ``gives_up_at`` is when the group stops trying and the call
    goes to the no-answer destination (0 when nobody can be offered)."""

    strategy: Strategy
    offers: tuple[Offer, ...]
    skipped: tuple[Skip, ...]
    gives_up_at: float

    @property
    def parallel(self) -> bool:
        return self.strategy.parallel

    @property
    def empty(self) -> bool:
        return not self.offers

    def ringing_at(self, t: float) -> tuple[str, ...]:
        """Members ringing at offset ``t`` (a member whose offer ends at ``t`` has stopped)."""
        return tuple(o.member_id for o in self.offers if o.start <= t < o.end)

    def steps(self) -> tuple[tuple[float, tuple[Offer, ...]], ...]:
        """Offers grouped by start time: one step per start, parallel offers together."""
        out: dict[float, list[Offer]] = {}
        for offer in self.offers:
            out.setdefault(offer.start, []).append(offer)
        return tuple((start, tuple(group)) for start, group in out.items())

    def order(self) -> tuple[str, ...]:
        """Member ids in the order of their first offer."""
        seen: dict[str, None] = {}
        for offer in self.offers:
            seen.setdefault(offer.member_id, None)
        return tuple(seen)


def _sorted_by_order(members: Iterable[Member]) -> list[Member]:
    return sorted(members, key=lambda m: (m.order, m.member_id))


def _round_order(
    strategy: Strategy, eligible: list[Member], memory: RoundRobinMemory | None, rng: random.Random
) -> list[Member]:
    by_order = _sorted_by_order(eligible)
    if strategy in (Strategy.RING_ALL, Strategy.LINEAR):
        return by_order
    if strategy is Strategy.ROUND_ROBIN:
        if memory is None:
            return by_order
        mark = (memory.order, memory.member_id)
        cut = next((i for i, m in enumerate(by_order) if (m.order, m.member_id) > mark), len(by_order))
        return by_order[cut:] + by_order[:cut]
    if strategy is Strategy.LONGEST_IDLE:
        return sorted(
            by_order,
            key=lambda m: (m.last_call_at is not None, m.last_call_at.timestamp() if m.last_call_at else 0.0),
        )
    if strategy is Strategy.FEWEST_CALLS:
        return sorted(by_order, key=lambda m: m.calls)
    if strategy is Strategy.RANDOM:
        return rng.sample(by_order, len(by_order))
    raise AssertionError(strategy)


def plan(
    members: Sequence[Member],
    settings: GroupSettings,
    *,
    memory: RoundRobinMemory | None = None,
    rng: random.Random | int | None = None,
) -> OfferingPlan:
    """The offering plan for one call arriving now (see the module docstring for the rules)."""
    ids = [m.member_id for m in members]
    if len(set(ids)) != len(ids):
        raise ValueError("a member appears twice in the group")
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    skipped = tuple(Skip(m.member_id, r) for m in _sorted_by_order(members) if (r := m.skip_reason()) is not None)
    eligible = [m for m in members if m.skip_reason() is None]
    strategy = settings.strategy
    limit = settings.no_answer_time
    if not eligible:
        return OfferingPlan(strategy, (), skipped, 0.0)

    def ring(m: Member) -> float:
        return m.ring_time if m.ring_time is not None else settings.ring_time

    offers: list[Offer] = []
    t = 0.0
    round_no = 0
    while t < limit:
        round_no += 1
        order = _round_order(strategy, eligible, memory, rng)
        if strategy.parallel:
            for m in order:
                offers.append(Offer(m.member_id, m.order, t, min(ring(m), limit - t), round_no, m.busy))
            t += max(ring(m) for m in order)
        else:
            for m in order:
                if t >= limit:
                    break
                offers.append(Offer(m.member_id, m.order, t, min(ring(m), limit - t), round_no, m.busy))
                t += ring(m)
        if not settings.repeat:
            break
        t += settings.retry_delay
    gives_up_at = min(limit, max(o.end for o in offers))
    return OfferingPlan(strategy, tuple(offers), skipped, gives_up_at)


def remember(
    offering: OfferingPlan,
    *,
    stopped_at: float,
    answered_by: str | None = None,
    previous: RoundRobinMemory | None = None,
) -> RoundRobinMemory | None:
    """The round-robin memory after a call: who answered, else the last member offered by
    ``stopped_at`` (seconds into the plan when the call left the group).  Unchanged when
    nobody was offered anything."""
    if answered_by is not None:
        for offer in offering.offers:
            if offer.member_id == answered_by:
                return RoundRobinMemory(offer.member_id, offer.order)
        raise ValueError(f"{answered_by!r} was not offered this call")
    started = [o for o in offering.offers if o.start <= stopped_at]
    if not started:
        return previous
    last = started[-1]
    return RoundRobinMemory(last.member_id, last.order)


# -- queue ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueSettings:
    """The queue in front of a group.

    ``max_callers``: callers the group holds at once, ringing or waiting (``None`` =
    no limit); the next one is refused ("full").  ``max_wait``: seconds a caller may
    stay before leaving for the no-answer destination (``None`` = the group's
    no-answer time governs).  Announcements ("kösvar"): ``message`` (a voice-message
    reference) and/or the caller's position, first after ``first_announcement``
    seconds, then every ``announce_interval`` seconds, never at or after the
    deadline.  ``join_empty``: admit callers while no member can take calls.
    """

    max_callers: int | None = None
    max_wait: float | None = None
    message: str | None = None
    announce_interval: float | None = None
    first_announcement: float | None = None
    announce_position: bool = False
    join_empty: bool = False

    def __post_init__(self) -> None:
        if self.max_callers is not None and (isinstance(self.max_callers, bool) or self.max_callers < 1):
            raise ValueError(f"max callers must be at least 1 (or None for no limit), not {self.max_callers!r}")
        if self.max_wait is not None:
            object.__setattr__(self, "max_wait", _positive(self.max_wait, "max wait"))
        if self.announce_interval is not None:
            object.__setattr__(self, "announce_interval", _positive(self.announce_interval, "announcement interval"))
        if self.first_announcement is not None and self.first_announcement < 0:
            raise ValueError(f"first announcement delay cannot be negative: {self.first_announcement}")
        if (self.announce_interval is not None or self.first_announcement is not None) and not (
            self.message or self.announce_position
        ):
            raise ValueError("announcements need a voice message or position announcements")

    @property
    def announces(self) -> bool:
        return bool(self.message or self.announce_position) and (
            self.announce_interval is not None or self.first_announcement is not None
        )


@dataclass(frozen=True)
class QueuedCaller:
    call_id: str
    joined_at: datetime


@dataclass(frozen=True)
class Admission:
    """``admitted`` with the caller's position and deadline, or refused with ``reason``
    (``full`` or ``no_members``)."""

    admitted: bool
    reason: str | None = None
    position: int | None = None
    deadline: datetime | None = None


@dataclass(frozen=True)
class Announcement:
    at: datetime
    message: str | None
    position: int | None


@dataclass(frozen=True)
class QueueState:
    """The callers in a group's queue, first come first served; every change returns a new state."""

    settings: QueueSettings = field(default_factory=QueueSettings)
    callers: tuple[QueuedCaller, ...] = ()

    def __len__(self) -> int:
        return len(self.callers)

    def __contains__(self, call_id: object) -> bool:
        return any(c.call_id == call_id for c in self.callers)

    @property
    def head(self) -> str | None:
        """The caller to offer to the members next."""
        return self.callers[0].call_id if self.callers else None

    def _caller(self, call_id: str) -> QueuedCaller:
        for caller in self.callers:
            if caller.call_id == call_id:
                return caller
        raise KeyError(f"call {call_id!r} is not in the queue")

    def admit(self, call_id: str, now: datetime, *, available_members: int | None = None) -> tuple[QueueState, Admission]:
        """Let a caller in at the back, or refuse them; ``available_members`` = members who can take calls now."""
        if now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        if call_id in self:
            raise ValueError(f"call {call_id!r} is already in the queue")
        if available_members == 0 and not self.settings.join_empty:
            return self, Admission(False, "no_members")
        if self.settings.max_callers is not None and len(self.callers) >= self.settings.max_callers:
            return self, Admission(False, "full")
        state = replace(self, callers=self.callers + (QueuedCaller(call_id, now),))
        return state, Admission(True, None, len(state.callers), state.deadline(call_id))

    def leave(self, call_id: str) -> QueueState:
        """The caller was answered, hung up or timed out."""
        self._caller(call_id)
        return replace(self, callers=tuple(c for c in self.callers if c.call_id != call_id))

    def position(self, call_id: str) -> int:
        """1 = next in line."""
        for index, caller in enumerate(self.callers, start=1):
            if caller.call_id == call_id:
                return index
        raise KeyError(f"call {call_id!r} is not in the queue")

    def deadline(self, call_id: str) -> datetime | None:
        caller = self._caller(call_id)
        if self.settings.max_wait is None:
            return None
        return caller.joined_at + timedelta(seconds=self.settings.max_wait)

    def expired(self, now: datetime) -> tuple[str, ...]:
        """Callers whose max wait is over at ``now``."""
        return tuple(c.call_id for c in self.callers if (d := self.deadline(c.call_id)) is not None and d <= now)

    def announcement_times(self, call_id: str, until: datetime | None = None) -> tuple[datetime, ...]:
        """When the caller hears announcements, before their deadline and before ``until``.

        With neither a deadline nor ``until`` the schedule is endless; ``until`` is then required.
        """
        caller = self._caller(call_id)
        s = self.settings
        if not s.announces:
            return ()
        end = self.deadline(call_id)
        if until is not None:
            end = until if end is None else min(end, until)
        if end is None:
            raise ValueError("the queue has no max wait: give until")
        first = s.first_announcement if s.first_announcement is not None else s.announce_interval
        times: list[datetime] = []
        at = caller.joined_at + timedelta(seconds=first)  # type: ignore[arg-type]
        while at < end:
            times.append(at)
            if s.announce_interval is None:
                break
            at += timedelta(seconds=s.announce_interval)
        return tuple(times)

    def next_announcement(self, call_id: str, after: datetime) -> datetime | None:
        """The first announcement strictly after ``after`` (``None`` when there is none before the deadline)."""
        s = self.settings
        if not s.announces:
            return None
        caller = self._caller(call_id)
        first = s.first_announcement if s.first_announcement is not None else s.announce_interval
        at = caller.joined_at + timedelta(seconds=first)  # type: ignore[arg-type]
        if at <= after:
            if s.announce_interval is None:
                return None
            step = timedelta(seconds=s.announce_interval)
            at += step * ((after - at) // step + 1)
        deadline = self.deadline(call_id)
        return at if deadline is None or at < deadline else None

    def announcement(self, call_id: str, at: datetime) -> Announcement:
        """What to play to the caller at ``at``: the message and/or their current position."""
        position = self.position(call_id) if self.settings.announce_position else None
        return Announcement(at, self.settings.message, position)
