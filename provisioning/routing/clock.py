"""Virtual time for the routing engine: a deterministic discrete-event scheduler.

Why not asyncio with a fake clock: routing tests must run a 45-second transfer
recall or a 30-second no-reply timer in microseconds and give the same answer
every time.  :class:`VirtualClock` owns time outright: nothing happens between
events, ``now`` jumps from one event to the next, and events due at the same
instant run in the order they were scheduled.

Two queues, like an event loop:

* **timed events** (:meth:`VirtualClock.call_at`, :meth:`~VirtualClock.call_later`)
  in a heap ordered by ``(when, scheduling sequence)``;
* **soon callbacks** (:meth:`VirtualClock.call_soon`), a FIFO drained completely
  after every timed event, at the same instant, before the next timed event.
  Future completions and actor steps go there, so a component that reports an
  outcome is never re-entered by whoever listens to it, and an actor that
  slept until ``t`` resumes before any other event due at ``t`` that was
  scheduled after its sleep.

Coroutine actors: :meth:`VirtualClock.spawn` steps an ``async def`` on the
clock; inside it ``await clock.sleep(s)`` and ``await`` any
:class:`ClockFuture` work, while asyncio primitives do not (there is no asyncio
loop; awaiting one raises ``TypeError`` in the actor).

:class:`Trace` is the timeline the components append to and the CLI prints.
"""

from __future__ import annotations

import heapq
import json
from asyncio import CancelledError
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "CancelledError",
    "ClockFuture",
    "ClockTask",
    "DEFAULT_START",
    "EventLimitExceeded",
    "TimerHandle",
    "Trace",
    "TraceEvent",
    "VirtualClock",
]

#: Where a clock starts when nobody says: a fixed instant, so traces are reproducible.
DEFAULT_START = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)  # a Monday, 09:00 in Stockholm

#: Default guard per run call; a routing scenario needs hundreds of events, not a hundred thousand.
DEFAULT_MAX_EVENTS = 100_000


class EventLimitExceeded(RuntimeError):
    """A run call executed more events than its limit: almost surely a loop in the model."""


class TimerHandle:
    """A scheduled callback; :meth:`cancel` it to make the clock skip it."""

    __slots__ = ("when", "callback", "args", "_cancelled", "_ran")

    def __init__(self, when: datetime, callback: Callable[..., Any], args: tuple[Any, ...]):
        self.when = when
        self.callback = callback
        self.args = args
        self._cancelled = False
        self._ran = False

    def cancel(self) -> bool:
        """Cancel if it has not run yet; returns whether this call cancelled it."""
        if self._cancelled or self._ran:
            return False
        self._cancelled = True
        return True

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def done(self) -> bool:
        """Ran or cancelled: either way it will not run again."""
        return self._ran or self._cancelled

    def __repr__(self) -> str:
        state = "cancelled" if self._cancelled else "ran" if self._ran else "pending"
        name = getattr(self.callback, "__qualname__", repr(self.callback))
        return f"<TimerHandle {name} at {self.when.isoformat()} {state}>"


class ClockFuture:
    """A result that arrives later in virtual time; awaitable inside clock actors.

    Done callbacks are delivered through :meth:`VirtualClock.call_soon`, never
    re-entrantly from :meth:`set_result`, so the completing component finishes
    its own bookkeeping before anyone reacts.
    """

    def __init__(self, clock: VirtualClock):
        self._clock = clock
        self._state = "pending"  # pending | finished | cancelled
        self._result: Any = None
        self._exception: BaseException | None = None
        self._callbacks: list[Callable[[ClockFuture], Any]] = []

    @property
    def clock(self) -> VirtualClock:
        return self._clock

    def done(self) -> bool:
        return self._state != "pending"

    def cancelled(self) -> bool:
        return self._state == "cancelled"

    def result(self) -> Any:
        if self._state == "cancelled":
            raise CancelledError()
        if self._state == "pending":
            raise RuntimeError("result is not ready yet")
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self) -> BaseException | None:
        if self._state == "cancelled":
            raise CancelledError()
        if self._state == "pending":
            raise RuntimeError("result is not ready yet")
        return self._exception

    def set_result(self, value: Any) -> None:
        self._finish("finished", value, None)

    def set_exception(self, exc: BaseException) -> None:
        if isinstance(exc, type):
            exc = exc()
        self._finish("finished", None, exc)

    def cancel(self) -> bool:
        if self.done():
            return False
        self._finish("cancelled", None, None)
        return True

    def add_done_callback(self, callback: Callable[[ClockFuture], Any]) -> None:
        """``callback(future)`` once done (soon, if already done)."""
        if self.done():
            self._clock.call_soon(callback, self)
        else:
            self._callbacks.append(callback)

    def remove_done_callback(self, callback: Callable[[ClockFuture], Any]) -> int:
        before = len(self._callbacks)
        self._callbacks = [cb for cb in self._callbacks if cb != callback]
        return before - len(self._callbacks)

    def _finish(self, state: str, result: Any, exc: BaseException | None) -> None:
        if self.done():
            raise RuntimeError(f"future already {self._state}")
        self._state, self._result, self._exception = state, result, exc
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            self._clock.call_soon(callback, self)

    def __await__(self):
        if not self.done():
            yield self
        if not self.done():
            raise RuntimeError("actor resumed before the future it awaited was done")
        return self.result()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._state}>"


class ClockTask(ClockFuture):
    """A coroutine actor stepped by the clock; its result is the coroutine's return value.

    An actor that fails while nobody awaits it or has a done callback on it makes
    the clock's run call raise the exception: simulation bugs must not pass silently.
    """

    def __init__(self, clock: VirtualClock, coro: Coroutine[Any, Any, Any], name: str | None = None):
        super().__init__(clock)
        self._coro = coro
        self.name = name or getattr(coro, "__qualname__", "actor")
        self._waiting: ClockFuture | None = None
        self._must_cancel = False
        clock.call_soon(self._step)

    def cancel(self) -> bool:
        """Throw :class:`CancelledError` into the actor at its current ``await``."""
        if self.done():
            return False
        if self._waiting is not None and not self._waiting.done():
            self._waiting.cancel()  # wakes the actor, whose await then raises CancelledError
        else:
            self._must_cancel = True
        return True

    def _wakeup(self, _future: ClockFuture) -> None:
        self._waiting = None
        self._step()

    def _step(self, exc: BaseException | None = None) -> None:
        if self.done():
            return
        if self._must_cancel:
            self._must_cancel = False
            exc = CancelledError()
        try:
            yielded = self._coro.send(None) if exc is None else self._coro.throw(exc)
        except StopIteration as stop:
            self.set_result(stop.value)
        except CancelledError:
            super().cancel()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # noqa: BLE001 - stored for awaiters, raised when nobody listens
            unobserved = not self._callbacks
            self.set_exception(error)
            if unobserved:
                raise
        else:
            if isinstance(yielded, ClockFuture) and yielded.clock is self._clock:
                self._waiting = yielded
                yielded.add_done_callback(self._wakeup)
            else:
                problem = TypeError(
                    f"actor {self.name} awaited {yielded!r}; only this clock's futures "
                    "(clock.sleep, ClockFuture, ClockTask) can be awaited on a VirtualClock"
                )
                self._clock.call_soon(self._step, problem)

    def __repr__(self) -> str:
        return f"<ClockTask {self.name} {self._state}>"


class VirtualClock:
    """Discrete-event scheduler with virtual, timezone-aware time.

    ``now`` only moves inside the run calls (:meth:`run_until`, :meth:`advance`,
    :meth:`run_until_idle`, :meth:`run_until_complete`); each returns how many
    events it executed and raises :class:`EventLimitExceeded` past its limit.
    Exceptions from callbacks propagate out of the run call; the clock stays
    usable (the failing event is consumed).
    """

    def __init__(self, start: datetime | None = None, *, max_events: int = DEFAULT_MAX_EVENTS):
        start = DEFAULT_START if start is None else start
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("VirtualClock needs a timezone-aware start instant")
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        self._start = start
        self._now = start
        self.max_events = max_events
        self._heap: list[tuple[datetime, int, TimerHandle]] = []
        self._ready: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._seq = 0
        self._running = False

    # -- time ---------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self._now

    @property
    def start(self) -> datetime:
        return self._start

    @property
    def offset(self) -> float:
        """Seconds since the clock started: the time axis of traces."""
        return (self._now - self._start).total_seconds()

    # -- scheduling ---------------------------------------------------------

    def call_at(self, when: datetime, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` at ``when`` (not before anything already scheduled for ``when``)."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("call_at needs a timezone-aware datetime")
        if when < self._now:
            raise ValueError(f"cannot schedule in the past: {when.isoformat()} < now {self._now.isoformat()}")
        handle = TimerHandle(when, callback, args)
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, handle))
        return handle

    def call_later(self, seconds: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` ``seconds`` from now (microsecond resolution)."""
        if seconds < 0:
            raise ValueError(f"delay must not be negative: {seconds}")
        return self.call_at(self._now + timedelta(seconds=seconds), callback, *args)

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` right after the current event, at the same instant."""
        self._ready.append((callback, args))

    def create_future(self) -> ClockFuture:
        return ClockFuture(self)

    def sleep(self, seconds: float, result: Any = None) -> ClockFuture:
        """``await clock.sleep(s)`` in an actor: resumes ``s`` virtual seconds later."""
        future = ClockFuture(self)
        handle = self.call_later(seconds, _resolve_unless_done, future, result)
        future.add_done_callback(lambda f: handle.cancel() if f.cancelled() else None)
        return future

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> ClockTask:
        """Start a coroutine actor; its first step runs soon (at the current instant)."""
        return ClockTask(self, coro, name)

    # -- running ------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Events still to run (timed, not cancelled, plus soon callbacks)."""
        return len(self._ready) + sum(1 for _, _, h in self._heap if not h.cancelled)

    def next_event_at(self) -> datetime | None:
        self._drop_cancelled()
        if self._ready:
            return self._now
        return self._heap[0][0] if self._heap else None

    def run_until(self, when: datetime, *, limit: int | None = None) -> int:
        """Run every event due at or before ``when``, then set ``now`` to ``when``."""
        if when < self._now:
            raise ValueError(f"cannot run back in time to {when.isoformat()}")
        count = self._run(until=when, stop=None, limit=limit)
        self._now = when
        return count

    def advance(self, seconds: float, *, limit: int | None = None) -> int:
        """Let ``seconds`` of virtual time pass, running what falls due."""
        if seconds < 0:
            raise ValueError(f"cannot advance by a negative time: {seconds}")
        return self.run_until(self._now + timedelta(seconds=seconds), limit=limit)

    def run_until_idle(self, limit: int | None = None) -> int:
        """Run until nothing is scheduled; ``now`` stays at the last event's time."""
        return self._run(until=None, stop=None, limit=limit)

    def run_until_complete(self, awaitable: Awaitable[Any] | ClockFuture, *, limit: int | None = None) -> Any:
        """Spawn (if a coroutine) and run until it is done; return its result or raise its error."""
        if isinstance(awaitable, ClockFuture):
            future = awaitable
        else:
            future = self.spawn(awaitable)  # type: ignore[arg-type]
        future.add_done_callback(_ignore)  # we observe it: a failure is returned below, not raised mid-run
        self._run(until=None, stop=future.done, limit=limit)
        if not future.done():
            raise RuntimeError(f"{future!r} is waiting but nothing else is scheduled: deadlock")
        return future.result()

    def _run(self, *, until: datetime | None, stop: Callable[[], bool] | None, limit: int | None) -> int:
        if self._running:
            raise RuntimeError("the clock is already running (run calls cannot nest)")
        limit = self.max_events if limit is None else limit
        count = 0
        self._running = True
        try:
            while True:
                while self._ready:
                    if stop is not None and stop():
                        return count
                    count = self._check_limit(count, limit)
                    callback, args = self._ready.popleft()
                    callback(*args)
                if stop is not None and stop():
                    return count
                self._drop_cancelled()
                if not self._heap:
                    return count
                when, _, handle = self._heap[0]
                if until is not None and when > until:
                    return count
                count = self._check_limit(count, limit)
                heapq.heappop(self._heap)
                self._now = when
                handle._ran = True
                handle.callback(*handle.args)
        finally:
            self._running = False

    def _check_limit(self, count: int, limit: int) -> int:
        if count >= limit:
            raise EventLimitExceeded(
                f"more than {limit} events in one run (virtual time {self.offset:g} s): "
                "something keeps rescheduling itself"
            )
        return count + 1

    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)

    def __repr__(self) -> str:
        return f"<VirtualClock now={self._now.isoformat()} (+{self.offset:g} s) pending={self.pending}>"


def _resolve_unless_done(future: ClockFuture, value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _ignore(_future: ClockFuture) -> None:
    return None


# -- trace ---------------------------------------------------------------------

_RESERVED = frozenset({"t", "kind", "where"})


@dataclass(frozen=True)
class TraceEvent:
    """One thing that happened: when (seconds from the trace's origin), what, where, details."""

    offset_seconds: float
    kind: str
    where: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Flat object: ``{"t": 15.0, "kind": ..., "where": ..., **detail}``."""
        return {"t": self.offset_seconds, "kind": self.kind, "where": self.where, **self.detail}


class Trace:
    """Append-only timeline shared by the engine, endpoints and simulators.

    Offsets are virtual seconds since ``origin`` (default: the clock's ``now``
    when the trace was made), so a scenario's trace reads from ``t=0``.
    Detail keys are flattened into each JSON object, hence ``t``, ``kind`` and
    ``where`` are reserved.
    """

    def __init__(self, clock: VirtualClock, *, origin: datetime | None = None):
        self.clock = clock
        self.origin = clock.now if origin is None else origin
        self.events: list[TraceEvent] = []

    def record(self, kind: str, where: str, **detail: Any) -> TraceEvent:
        clash = _RESERVED & detail.keys()
        if clash:
            raise ValueError(f"trace detail keys {sorted(clash)} are reserved")
        event = TraceEvent((self.clock.now - self.origin).total_seconds(), kind, where, dict(detail))
        self.events.append(event)
        return event

    def of_kind(self, *kinds: str) -> list[TraceEvent]:
        return [e for e in self.events if e.kind in kinds]

    def at(self, where: str) -> list[TraceEvent]:
        return [e for e in self.events if e.where == where]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.events]

    def to_json(self, *, indent: int | None = None) -> str:
        """A JSON array, one object per event, in the order they happened."""
        return json.dumps(self.to_dicts(), indent=indent, ensure_ascii=False, default=str)

    def to_jsonl(self) -> str:
        """JSON Lines: one event per line, for streaming output."""
        return "".join(json.dumps(e.to_dict(), ensure_ascii=False, default=str) + "\n" for e in self.events)

    def __iter__(self) -> Iterator[TraceEvent]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, index: int) -> TraceEvent:
        return self.events[index]
