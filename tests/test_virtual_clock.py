"""The routing engine's discrete-event core: virtual clock, actors, trace, and the call-leg contract."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from provisioning.routing.clock import (
    CancelledError,
    ClockFuture,
    EventLimitExceeded,
    Trace,
    VirtualClock,
)
from provisioning.routing.endpoints import (
    CallLeg,
    CallOffer,
    EndpointProtocol,
    IllegalLegTransition,
    LegState,
    ScriptedEndpoint,
    offer_call,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


# -- scheduling ---------------------------------------------------------------


def test_starts_at_the_given_aware_instant(clock):
    assert clock.now == T0 and clock.start == T0 and clock.offset == 0
    assert VirtualClock().now.tzinfo is not None
    with pytest.raises(ValueError):
        VirtualClock(datetime(2025, 1, 1))


def test_events_run_in_time_order_and_now_follows(clock):
    seen = []
    for delay in (30, 5, 12.5, 0):
        clock.call_later(delay, lambda d=delay: seen.append((d, clock.offset)))
    assert clock.run_until_idle() == 4
    assert seen == [(0, 0), (5, 5), (12.5, 12.5), (30, 30)]
    assert clock.offset == 30


def test_same_instant_runs_in_scheduling_order_whatever_the_api(clock):
    seen = []
    at = T0 + timedelta(seconds=10)
    for i in range(50):
        if i % 2:
            clock.call_at(at, seen.append, i)
        else:
            clock.call_later(10, seen.append, i)
    clock.run_until_idle()
    assert seen == list(range(50))


def test_callbacks_may_schedule_more_events(clock):
    seen = []

    def step(n):
        seen.append((n, clock.offset))
        if n < 3:
            clock.call_later(1.5, step, n + 1)

    clock.call_later(0, step, 0)
    clock.call_later(2, seen.append, ("x", 2))
    clock.run_until_idle()
    assert seen == [(0, 0), (1, 1.5), ("x", 2), (2, 3.0), (3, 4.5)]


def test_new_event_at_the_current_instant_runs_after_those_already_due(clock):
    seen = []
    clock.call_later(5, lambda: (seen.append("a"), clock.call_later(0, seen.append, "c")))
    clock.call_later(5, seen.append, "b")
    clock.run_until_idle()
    assert seen == ["a", "b", "c"]


def test_call_soon_runs_before_the_next_timed_event_even_at_the_same_instant(clock):
    seen = []
    clock.call_later(1, lambda: (seen.append("a"), clock.call_soon(seen.append, "soon")))
    clock.call_later(1, seen.append, "b")
    clock.run_until_idle()
    assert seen == ["a", "soon", "b"]


def test_cancelled_events_do_not_run(clock):
    seen = []
    keep = clock.call_later(1, seen.append, "keep")
    drop = clock.call_later(1, seen.append, "drop")
    assert drop.cancel() is True
    assert drop.cancel() is False
    assert clock.pending == 1
    assert clock.run_until_idle() == 1
    assert seen == ["keep"]
    assert keep.done and not keep.cancelled and keep.cancel() is False


def test_a_callback_can_cancel_a_later_event_at_the_same_instant(clock):
    seen = []
    later = None

    def first():
        seen.append("first")
        later.cancel()

    clock.call_later(3, first)
    later = clock.call_later(3, seen.append, "never")
    clock.run_until_idle()
    assert seen == ["first"]


def test_run_until_and_advance_stop_at_the_horizon(clock):
    seen = []
    for delay in (1, 2, 3):
        clock.call_later(delay, seen.append, delay)
    assert clock.run_until(T0 + timedelta(seconds=2)) == 2
    assert seen == [1, 2] and clock.offset == 2
    assert clock.advance(0.5) == 0 and clock.offset == 2.5
    clock.advance(10)
    assert seen == [1, 2, 3] and clock.offset == 12.5
    with pytest.raises(ValueError):
        clock.run_until(T0)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_no_scheduling_in_the_past_or_with_naive_times(clock):
    clock.advance(10)
    with pytest.raises(ValueError):
        clock.call_at(T0, print)
    with pytest.raises(ValueError):
        clock.call_at(datetime(2030, 1, 1), print)
    with pytest.raises(ValueError):
        clock.call_later(-0.1, print)


def test_45_second_timer_runs_instantly(clock):
    fired = []
    clock.call_later(45, lambda: fired.append(clock.now))
    started = time.perf_counter()
    clock.run_until_idle()
    assert time.perf_counter() - started < 0.05
    assert fired == [T0 + timedelta(seconds=45)]


def test_infinite_loop_guard(clock):
    def again():
        clock.call_later(0, again)

    clock.call_later(0, again)
    with pytest.raises(EventLimitExceeded):
        clock.run_until_idle(limit=1000)

    periodic = VirtualClock(T0, max_events=500)

    def tick():
        periodic.call_later(1, tick)

    periodic.call_later(1, tick)
    with pytest.raises(EventLimitExceeded):
        periodic.run_until_idle()
    assert periodic.offset == 500
    # A horizon keeps a periodic timer usable.
    assert periodic.advance(10) == 10


def test_exceptions_propagate_and_the_clock_stays_usable(clock):
    seen = []

    def boom():
        raise ValueError("boom")

    clock.call_later(1, boom)
    clock.call_later(2, seen.append, "after")
    with pytest.raises(ValueError):
        clock.run_until_idle()
    clock.run_until_idle()
    assert seen == ["after"]


def test_run_calls_cannot_nest(clock):
    clock.call_later(1, lambda: clock.advance(1))
    with pytest.raises(RuntimeError, match="already running"):
        clock.run_until_idle()


# -- coroutine actors ----------------------------------------------------------------


def test_sleeping_actors_interleave_deterministically(clock):
    log = []

    async def actor(name, period, times):
        for _ in range(times):
            await clock.sleep(period)
            log.append((clock.offset, name))
        return name

    a = clock.spawn(actor("a", 10, 3))
    b = clock.spawn(actor("b", 15, 2))
    clock.run_until_idle()
    # At 30 both are due: b went to sleep at 15, before a did at 20, so b goes first.
    assert log == [(10, "a"), (15, "b"), (20, "a"), (30, "b"), (30, "a")]
    assert a.result() == "a" and b.result() == "b"


def test_actor_resumes_before_events_scheduled_after_its_sleep(clock):
    log = []

    async def actor():
        await clock.sleep(15)
        log.append("actor")

    clock.spawn(actor())
    clock.advance(0)  # first step: the actor is now sleeping
    clock.call_later(15, log.append, "timer")
    clock.run_until_idle()
    assert log == ["actor", "timer"]


def test_actors_await_futures_and_each_other(clock):
    ready = clock.create_future()

    async def producer():
        await clock.sleep(45)
        ready.set_result("recall")
        return 1

    async def consumer():
        value = await ready
        child = clock.spawn(producer_done())
        return value, clock.offset, await child

    async def producer_done():
        await clock.sleep(1)
        return "child"

    clock.spawn(producer())
    assert clock.run_until_complete(consumer()) == ("recall", 45, "child")
    assert clock.offset == 46


def test_actor_cancellation_interrupts_its_sleep(clock):
    log = []

    async def ringer():
        try:
            await clock.sleep(30)
            log.append("answered")
        except CancelledError:
            log.append(("cancelled", clock.offset))
            raise

    task = clock.spawn(ringer())
    clock.call_later(20, task.cancel)
    clock.run_until_idle()
    assert log == [("cancelled", 20)]
    assert task.cancelled()
    assert clock.pending == 0  # the 30-second sleep timer went away with it


def test_cancelling_an_actor_before_it_starts(clock):
    async def never():
        raise AssertionError("must not run")

    task = clock.spawn(never())
    assert task.cancel() is True
    clock.run_until_idle()
    assert task.cancelled() and task.cancel() is False


def test_awaiting_asyncio_primitives_is_refused(clock):
    async def wrong():
        await asyncio.sleep(0)  # would need an asyncio loop

    with pytest.raises(TypeError, match="only this clock's futures"):
        clock.run_until_complete(wrong())


def test_unobserved_actor_failure_stops_the_run(clock):
    async def broken():
        await clock.sleep(5)
        raise KeyError("bug")

    task = clock.spawn(broken())
    with pytest.raises(KeyError):
        clock.run_until_idle()
    assert isinstance(task.exception(), KeyError)


def test_observed_actor_failure_reaches_its_awaiter(clock):
    async def broken():
        await clock.sleep(1)
        raise KeyError("bug")

    async def parent():
        try:
            await clock.spawn(broken())
        except KeyError:
            return "handled"

    assert clock.run_until_complete(parent()) == "handled"


def test_deadlock_is_reported(clock):
    async def waits_forever():
        await clock.create_future()

    with pytest.raises(RuntimeError, match="deadlock"):
        clock.run_until_complete(waits_forever())


def test_futures_deliver_callbacks_soon_not_reentrantly(clock):
    future = ClockFuture(clock)
    log = []
    future.add_done_callback(lambda f: log.append(("cb", f.result())))
    future.set_result(7)
    log.append("after set_result")
    clock.run_until_idle()
    assert log == ["after set_result", ("cb", 7)]
    with pytest.raises(RuntimeError):
        future.set_result(8)


# -- trace ----------------------------------------------------------------------


def test_trace_offsets_and_json(clock):
    clock.advance(100)
    trace = Trace(clock)  # origin: now
    trace.record("call.start", "+4686001000", caller="+46701234567")
    clock.advance(15.25)
    trace.record("leg.answered", "+46701234567", by="+46701740600")
    assert [e.offset_seconds for e in trace] == [0.0, 15.25]
    assert json.loads(trace.to_json()) == [
        {"t": 0.0, "kind": "call.start", "where": "+4686001000", "caller": "+46701234567"},
        {"t": 15.25, "kind": "leg.answered", "where": "+46701234567", "by": "+46701740600"},
    ]
    lines = trace.to_jsonl().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["kind"] == "leg.answered"
    assert trace.of_kind("leg.answered")[0].detail == {"by": "+46701740600"}
    with pytest.raises(ValueError, match="reserved"):
        trace.record("x", "y", t=1)


# -- call legs ----------------------------------------------------------------------

CALL = CallOffer("c1", caller="+46812345678", called="+4636305500", presented="08123456780001", group="0001")


def test_leg_happy_path_and_history(clock):
    trace = Trace(clock)
    events = []
    leg = CallLeg(clock, CALL, "+4636305525", trace=trace, listener=lambda lg, ev: events.append(ev.state))
    leg.ringing()
    leg.ringing()  # repeated 180s are fine
    clock.advance(4)
    leg.answered()
    assert leg.state == LegState.ANSWERED and leg.answered_by == "+4636305525"
    assert leg.answered_at == T0 + timedelta(seconds=4)
    assert events == ["ringing", "ringing"]  # listeners hear of the answer soon, not inside answered()
    clock.run_until_idle()
    assert events == ["ringing", "ringing", "answered"]
    leg.hangup("caller-hangup")
    assert leg.state == LegState.ENDED and leg.ended_by == "engine"
    assert [e.kind for e in trace] == ["leg.offered", "leg.ringing", "leg.ringing", "leg.answered", "leg.ended"]
    assert trace[0].detail["caller"] == "08123456780001"


def test_cancelled_leg_cannot_answer(clock):
    leg = CallLeg(clock, CALL, "+46701234567")
    leg.ringing()
    assert leg.cancel("answered-elsewhere") is True
    with pytest.raises(IllegalLegTransition):
        leg.answered()
    with pytest.raises(IllegalLegTransition):
        leg.ringing()
    assert leg.cancel() is False
    assert leg.reason == "answered-elsewhere"


def test_illegal_transitions(clock):
    answered = CallLeg(clock, CALL, "a")
    answered.answered()
    assert answered.cancel() is False  # an engine timer racing the answer is harmless
    for report in (answered.ringing, lambda: answered.rejected("busy"), answered.answered):
        with pytest.raises(IllegalLegTransition):
            report()
    rejected = CallLeg(clock, CALL, "b")
    rejected.rejected("busy")
    with pytest.raises(IllegalLegTransition):
        rejected.answered()
    with pytest.raises(IllegalLegTransition):
        rejected.hangup()
    fresh = CallLeg(clock, CALL, "c")
    with pytest.raises(IllegalLegTransition):
        fresh.ended()
    with pytest.raises(ValueError):
        fresh.rejected("tired")
    with pytest.raises(ValueError):
        fresh.forwarded("+46701740600", "because")


def test_forwarded_is_informational_and_the_leg_carries_on(clock):
    leg = CallLeg(clock, CALL, "+46701234567")
    leg.ringing()
    leg.forwarded("+46701740600", "no-reply")
    leg.forwarded("+46709999999", "busy")  # chained forwarding
    leg.answered("+46709999999")
    assert leg.forwards == [("+46701740600", "no-reply"), ("+46709999999", "busy")]
    assert leg.answered_by == "+46709999999"


def test_settled_future_and_done_callbacks(clock):
    leg = CallLeg(clock, CALL, "x")
    done = []
    leg.add_done_callback(lambda lg: done.append(lg.state))

    async def engine():
        settled = await leg.settled()
        return settled.state, clock.offset

    clock.call_later(20, leg.cancel, "ring-timeout")
    assert clock.run_until_complete(engine()) == ("cancelled", 20)
    clock.run_until_idle()
    assert done == ["cancelled"]
    late = []
    leg.add_done_callback(late.append)  # already done: called soon
    clock.run_until_idle()
    assert late == [leg]


def test_scripted_endpoints_and_a_tiny_ring_all(clock):
    """How the engine is meant to use the contract: ring all, first answer wins, cancel the rest."""
    slow = ScriptedEndpoint(clock, "+4636305501", answer_after=12)
    quick = ScriptedEndpoint(clock, "+4636305502", answer_after=7)
    busy = ScriptedEndpoint(clock, "+4636305503", reject="busy")
    for endpoint in (slow, quick, busy):
        assert isinstance(endpoint, EndpointProtocol)

    async def ring_all(endpoints, ring_time):
        legs = [offer_call(clock, e, CALL) for e in endpoints]
        winner = clock.create_future()
        for leg in legs:
            leg.add_listener(lambda lg, ev: winner.set_result(lg) if ev.state == "answered" and not winner.done() else None)
        clock.call_later(ring_time, lambda: winner.done() or winner.set_result(None))
        answered = await winner
        for leg in legs:
            leg.cancel("answered-elsewhere" if answered else "ring-timeout")
        return answered, legs

    answered, legs = clock.run_until_complete(ring_all([slow, quick, busy], 20))
    assert answered.address == "+4636305502" and answered.answered_at == T0 + timedelta(seconds=7)
    assert [lg.state for lg in legs] == ["cancelled", "answered", "rejected"]
    clock.run_until_idle()  # the slow phone's 12-second answer timer was dropped, no error
    assert legs[0].state == "cancelled"


def test_scripted_single_line_endpoint_is_busy_while_in_a_call(clock):
    phone = ScriptedEndpoint(clock, "+4636305525", answer_after=0, single_line=True)
    first = offer_call(clock, phone, CALL)
    clock.run_until_idle()
    second = offer_call(clock, phone, CallOffer("c2", "+46700000001", "+4636305525"))
    assert first.state == "answered" and second.state == "rejected" and second.reason == "busy"
    first.hangup()
    clock.run_until_idle()
    third = offer_call(clock, phone, CallOffer("c3", "+46700000001", "+4636305525"))
    clock.run_until_idle()
    assert third.state == "answered"
