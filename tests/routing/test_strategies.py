"""Answer-group distribution plans and the queue in front of a group."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from provisioning.routing.strategies import (
    Admission,
    GroupSettings,
    Member,
    QueueSettings,
    QueueState,
    RoundRobinMemory,
    Skip,
    Strategy,
    plan,
    remember,
)

T0 = datetime(2026, 6, 15, 8, 0, tzinfo=timezone.utc)


def team(**overrides: dict) -> list[Member]:
    """Anna, Bertil, Cecilia, David in that order; per-member overrides by first name."""
    names = ["anna", "bertil", "cecilia", "david"]
    return [Member(name, order=i + 1, **overrides.get(name, {})) for i, name in enumerate(names)]


def offers(p) -> list[tuple[str, float, float]]:
    return [(o.member_id, o.start, o.duration) for o in p.offers]


# -- ring all ----------------------------------------------------------------------------------------------


def test_ring_all_rings_everyone_at_once_with_their_own_ring_time_and_repeats():
    members = team(cecilia={"ring_time": 15})
    p = plan(members, GroupSettings(Strategy.RING_ALL, ring_time=20, no_answer_time=50))
    assert p.parallel
    assert p.steps()[0][0] == 0 and [o.member_id for o in p.steps()[0][1]] == ["anna", "bertil", "cecilia", "david"]
    assert offers(p)[:4] == [("anna", 0, 20), ("bertil", 0, 20), ("cecilia", 0, 15), ("david", 0, 20)]
    assert offers(p)[4:8] == [("anna", 20, 20), ("bertil", 20, 20), ("cecilia", 20, 15), ("david", 20, 20)]
    assert offers(p)[8:] == [("anna", 40, 10), ("bertil", 40, 10), ("cecilia", 40, 10), ("david", 40, 10)]
    assert p.gives_up_at == 50
    assert p.ringing_at(17) == ("anna", "bertil", "david")
    assert p.ringing_at(50) == ()


def test_ring_all_once_gives_up_after_the_longest_ring_time():
    p = plan(team(), GroupSettings("ring_all", ring_time=20, no_answer_time=60, repeat=False))
    assert len(p.offers) == 4 and p.gives_up_at == 20


def test_skipped_members_logged_out_diverted_busy_and_call_waiting():
    members = team(
        anna={"logged_in": False},
        bertil={"diverted": True},
        cecilia={"busy": True},
        david={"busy": True, "call_waiting": True},
    )
    p = plan(members, GroupSettings(Strategy.RING_ALL, no_answer_time=20))
    assert p.skipped == (Skip("anna", "logged_out"), Skip("bertil", "diverted"), Skip("cecilia", "busy"))
    (offer,) = p.offers
    assert (offer.member_id, offer.call_waiting) == ("david", True)


def test_nobody_available_means_an_empty_plan_that_gives_up_at_once():
    p = plan(team(anna={"logged_in": False}, bertil={"logged_in": False}, cecilia={"diverted": True},
                  david={"busy": True}), GroupSettings())
    assert p.empty and p.gives_up_at == 0 and len(p.skipped) == 4


# -- sequential strategies -------------------------------------------------------------------------------


def test_linear_hunts_in_order_cycles_and_cuts_the_last_offer():
    p = plan(team(bertil={"ring_time": 10}), GroupSettings(Strategy.LINEAR, ring_time=15, no_answer_time=70))
    assert offers(p) == [
        ("anna", 0, 15), ("bertil", 15, 10), ("cecilia", 25, 15), ("david", 40, 15),
        ("anna", 55, 15),
    ]
    assert [o.round for o in p.offers] == [1, 1, 1, 1, 2]
    assert p.gives_up_at == 70
    assert p.ringing_at(20) == ("bertil",)
    assert not p.parallel


def test_linear_once_and_with_retry_delay():
    once = plan(team(), GroupSettings(Strategy.LINEAR, ring_time=10, no_answer_time=100, repeat=False))
    assert offers(once)[-1] == ("david", 30, 10) and once.gives_up_at == 40
    paused = plan(team(), GroupSettings(Strategy.LINEAR, ring_time=10, no_answer_time=55, retry_delay=5))
    assert offers(paused)[4] == ("anna", 45, 10)


def test_linear_order_follows_the_order_field_not_the_input_order():
    members = [Member("x", order=3), Member("y", order=1), Member("z", order=2)]
    p = plan(members, GroupSettings(Strategy.LINEAR, no_answer_time=60))
    assert p.order() == ("y", "z", "x")


def test_round_robin_continues_after_the_remembered_member():
    settings = GroupSettings(Strategy.ROUND_ROBIN, ring_time=10, no_answer_time=40)
    assert plan(team(), settings).order() == ("anna", "bertil", "cecilia", "david")
    memory = RoundRobinMemory("bertil", 2)
    assert plan(team(), settings, memory=memory).order() == ("cecilia", "david", "anna", "bertil")
    # Bertil left the group: continue after his old position.
    without_bertil = [m for m in team() if m.member_id != "bertil"]
    assert plan(without_bertil, settings, memory=memory).order() == ("cecilia", "david", "anna")
    # The last member remembered: wrap round.
    assert plan(team(), settings, memory=RoundRobinMemory("david", 4)).order()[0] == "anna"


def test_round_robin_memory_is_the_answerer_or_the_last_member_offered():
    settings = GroupSettings(Strategy.ROUND_ROBIN, ring_time=10, no_answer_time=60)
    memory = None
    first_rung = []
    for _ in range(5):  # each call answered by the first member offered
        p = plan(team(), settings, memory=memory)
        first_rung.append(p.offers[0].member_id)
        memory = remember(p, stopped_at=3, answered_by=p.offers[0].member_id, previous=memory)
    assert first_rung == ["anna", "bertil", "cecilia", "david", "anna"]

    p = plan(team(), settings, memory=RoundRobinMemory("anna", 1))  # bertil, cecilia, ...
    assert remember(p, stopped_at=15) == RoundRobinMemory("cecilia", 3)  # caller gave up while cecilia rang
    assert remember(p, stopped_at=25) == RoundRobinMemory("david", 4)
    assert remember(p, stopped_at=10) == RoundRobinMemory("cecilia", 3)  # her offer starts at 10
    assert remember(p, stopped_at=12, answered_by="cecilia") == RoundRobinMemory("cecilia", 3)
    with pytest.raises(ValueError):
        remember(p, stopped_at=12, answered_by="nobody")
    empty = plan([], settings)
    assert remember(empty, stopped_at=5, previous=RoundRobinMemory("anna", 1)) == RoundRobinMemory("anna", 1)


def test_longest_idle_first_never_called_first_ties_by_order():
    members = team(
        anna={"last_call_at": T0 - timedelta(minutes=5)},
        bertil={"last_call_at": T0 - timedelta(hours=2)},
        cecilia={},
        david={"last_call_at": T0 - timedelta(minutes=5)},
    )
    p = plan(members, GroupSettings(Strategy.LONGEST_IDLE, no_answer_time=80))
    assert p.order() == ("cecilia", "bertil", "anna", "david")


def test_fewest_calls_first_ties_by_order():
    members = team(anna={"calls": 7}, bertil={"calls": 2}, cecilia={"calls": 2}, david={"calls": 0})
    p = plan(members, GroupSettings(Strategy.FEWEST_CALLS, no_answer_time=80))
    assert p.order() == ("david", "bertil", "cecilia", "anna")


def test_random_is_seedable_covers_everyone_each_round_and_varies():
    settings = GroupSettings(Strategy.RANDOM, ring_time=10, no_answer_time=80)
    a = plan(team(), settings, rng=42)
    assert offers(a) == offers(plan(team(), settings, rng=random.Random(42)))
    for round_no in (1, 2):
        assert sorted(o.member_id for o in a.offers if o.round == round_no) == ["anna", "bertil", "cecilia", "david"]
    orders = {plan(team(), settings, rng=seed).order() for seed in range(30)}
    assert len(orders) > 5


def test_offer_plan_never_overlaps_in_sequence():
    for strategy in (Strategy.LINEAR, Strategy.ROUND_ROBIN, Strategy.LONGEST_IDLE, Strategy.FEWEST_CALLS, Strategy.RANDOM):
        p = plan(team(anna={"ring_time": 7}), GroupSettings(strategy, ring_time=13, no_answer_time=100), rng=1)
        for before, after in zip(p.offers, p.offers[1:]):
            assert after.start == before.end
        assert p.offers[-1].end == p.gives_up_at == 100


# -- validation ------------------------------------------------------------------------------------------


def test_strategy_names_and_aliases():
    assert Strategy.parse("ring_all") is Strategy.RING_ALL
    assert Strategy.parse("ringall") is Strategy.RING_ALL
    assert Strategy.parse("hunt") is Strategy.LINEAR
    assert Strategy.parse("rrmemory") is Strategy.ROUND_ROBIN
    assert Strategy.parse("longest-idle") is Strategy.LONGEST_IDLE
    with pytest.raises(ValueError, match="unknown distribution strategy"):
        Strategy.parse("whoever")


def test_invalid_members_and_settings():
    with pytest.raises(ValueError, match="ring time"):
        Member("a", ring_time=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        Member("a", last_call_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="no-answer time"):
        GroupSettings(no_answer_time=-1)
    with pytest.raises(ValueError, match="twice"):
        plan([Member("a"), Member("a", order=2)], GroupSettings())


# -- queue -----------------------------------------------------------------------------------------------------


def test_queue_admits_up_to_max_callers_and_keeps_positions():
    queue = QueueState(QueueSettings(max_callers=2, max_wait=120))
    queue, first = queue.admit("c1", T0)
    queue, second = queue.admit("c2", T0 + timedelta(seconds=5))
    same, third = queue.admit("c3", T0 + timedelta(seconds=6))
    assert first == Admission(True, None, 1, T0 + timedelta(seconds=120))
    assert (second.admitted, second.position) == (True, 2)
    assert third == Admission(False, "full") and same is queue
    assert queue.head == "c1" and len(queue) == 2 and "c2" in queue
    queue = queue.leave("c1")
    assert queue.position("c2") == 1 and queue.head == "c2"
    queue, again = queue.admit("c3", T0 + timedelta(seconds=7))
    assert again.position == 2
    with pytest.raises(ValueError, match="already"):
        queue.admit("c3", T0)
    with pytest.raises(KeyError):
        queue.leave("c1")


def test_queue_with_no_members_available():
    assert QueueState(QueueSettings()).admit("c1", T0, available_members=0)[1] == Admission(False, "no_members")
    state, admission = QueueState(QueueSettings(join_empty=True)).admit("c1", T0, available_members=0)
    assert admission.admitted and state.head == "c1"


def test_queue_deadlines_and_expiry():
    queue = QueueState(QueueSettings(max_wait=60))
    queue, _ = queue.admit("c1", T0)
    queue, _ = queue.admit("c2", T0 + timedelta(seconds=30))
    assert queue.expired(T0 + timedelta(seconds=59)) == ()
    assert queue.expired(T0 + timedelta(seconds=60)) == ("c1",)
    assert queue.expired(T0 + timedelta(seconds=90)) == ("c1", "c2")
    assert QueueState().admit("c", T0)[0].deadline("c") is None


def test_kosvar_announcement_schedule_and_positions():
    settings = QueueSettings(max_wait=100, message="kosvar", announce_interval=30, first_announcement=10, announce_position=True)
    queue = QueueState(settings)
    queue, _ = queue.admit("c1", T0)
    queue, _ = queue.admit("c2", T0 + timedelta(seconds=5))
    assert queue.announcement_times("c2") == tuple(T0 + timedelta(seconds=s) for s in (15, 45, 75))
    assert queue.announcement_times("c2", until=T0 + timedelta(seconds=45)) == (T0 + timedelta(seconds=15),)
    assert queue.next_announcement("c2", T0 + timedelta(seconds=15)) == T0 + timedelta(seconds=45)
    assert queue.next_announcement("c2", T0) == T0 + timedelta(seconds=15)
    assert queue.next_announcement("c2", T0 + timedelta(seconds=80)) is None  # next would be at 105 > deadline
    at = T0 + timedelta(seconds=15)
    announcement = queue.announcement("c2", at)
    assert (announcement.message, announcement.position) == ("kosvar", 2)
    assert queue.leave("c1").announcement("c2", at).position == 1


def test_announcements_default_to_the_interval_and_need_a_limit_or_content():
    queue, _ = QueueState(QueueSettings(announce_interval=20, announce_position=True)).admit("c", T0)
    assert queue.announcement_times("c", until=T0 + timedelta(seconds=61)) == tuple(
        T0 + timedelta(seconds=s) for s in (20, 40, 60)
    )
    with pytest.raises(ValueError, match="until"):
        queue.announcement_times("c")
    assert queue.announcement("c", T0).message is None
    silent, _ = QueueState(QueueSettings(max_wait=60)).admit("c", T0)
    assert silent.announcement_times("c") == () and silent.next_announcement("c", T0) is None
    with pytest.raises(ValueError, match="voice message or position"):
        QueueSettings(announce_interval=30)
    with pytest.raises(ValueError, match="max callers"):
        QueueSettings(max_callers=0)
