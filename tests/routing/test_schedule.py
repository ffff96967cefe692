"""Schedules: a full week, holidays, specific dates, DST nights of 2026, midnight spans, overrides, lint."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from provisioning.routing.schedule import (
    Action,
    DateSpan,
    Override,
    Schedule,
    ScheduleEntry,
    ScheduleError,
    TimeSpan,
    Weekday,
    add_holidays,
    entry_from_mapping,
    evaluate,
    holiday_entries,
    lint,
    move,
)

STHLM = ZoneInfo("Europe/Stockholm")
UTC = timezone.utc
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def local(text: str) -> datetime:
    """A Stockholm wall-clock time (fold=0), e.g. ``local("2026-03-30 08:00")``."""
    return datetime.fromisoformat(text).replace(tzinfo=STHLM)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# The schedule of the YAML example, as the org-file importer will hand it over.
EXAMPLE = [
    {"name": "Julafton", "date": "2026-12-24", "action": "closed", "message": "helg"},
    {"name": "Lunch", "weekdays": WEEKDAYS, "from": "12:00", "to": "13:00", "action": "closed", "message": "lunch"},
    {"name": "Kontorstid", "weekdays": WEEKDAYS, "from": "08:00", "to": "17:00", "action": "open"},
    {"name": "default", "action": "closed", "message": "natt"},
]


def example_entries() -> tuple[ScheduleEntry, ...]:
    return tuple(entry_from_mapping(e) for e in EXAMPLE)


def key(decision) -> tuple:
    return (decision.action, decision.message, decision.entry_name)


# -- a full week ------------------------------------------------------------------------------------


def test_full_week_with_lunch_holiday_specific_date_and_default():
    """Every quarter hour of Easter week 2026: lunch, a meeting date, Långfredagen, Påskdagen, nights."""
    entries = (ScheduleEntry.on_date("Personalmöte", "2026-04-01", "closed", "mote", start="08:00", end="10:00"),)
    entries += example_entries()
    schedule = Schedule(add_holidays(entries, 2026, message="helg"))
    holidays = {date(2026, 4, 3), date(2026, 4, 5), date(2026, 4, 6)}

    def expected(moment: datetime) -> tuple[Action, str | None]:
        day, t = moment.date(), moment.time()
        if day in holidays:
            return Action.CLOSED, "helg"
        if day == date(2026, 4, 1) and time(8) <= t < time(10):
            return Action.CLOSED, "mote"
        if day.weekday() < 5 and time(12) <= t < time(13):
            return Action.CLOSED, "lunch"
        if day.weekday() < 5 and time(8) <= t < time(17):
            return Action.OPEN, None
        return Action.CLOSED, "natt"

    moment = local("2026-03-30 00:00")
    end = local("2026-04-07 00:00")
    checked = 0
    while moment < end:
        decision = evaluate(schedule, moment)
        assert (decision.action, decision.message) == expected(moment), moment
        # until is exact: the decision holds just before it and differs at it.
        assert decision.until is not None and decision.until > moment
        assert key(evaluate(schedule, decision.until - timedelta(microseconds=1))) == key(decision)
        assert key(evaluate(schedule, decision.until)) != key(decision)
        moment = (moment.astimezone(UTC) + timedelta(minutes=15)).astimezone(STHLM)
        checked += 1
    assert checked == 8 * 96


def test_decisions_name_the_entry_and_the_next_change():
    schedule = Schedule(example_entries())
    d = evaluate(schedule, local("2026-12-23 09:00"))
    assert (d.action, d.entry_name, d.source, d.until) == (Action.OPEN, "Kontorstid", "entry", local("2026-12-23 12:00"))
    d = evaluate(schedule, local("2026-12-23 12:30"))
    assert (d.action, d.message, d.until) == (Action.CLOSED, "lunch", local("2026-12-23 13:00"))
    d = evaluate(schedule, local("2026-12-24 10:00"))  # a Thursday: the specific date wins
    assert (d.entry_name, d.message, d.until) == ("Julafton", "helg", local("2026-12-25 00:00"))
    d = evaluate(schedule, local("2026-12-25 18:00"))  # Friday evening: night until Monday morning
    assert (d.entry_name, d.source, d.message, d.until) == ("default", "default", "natt", local("2026-12-28 08:00"))
    assert d.is_open is False


def test_evaluate_takes_any_timezone_and_refuses_naive_times():
    schedule = Schedule(example_entries())
    assert evaluate(schedule, utc("2026-06-15 06:30")).entry_name == "Kontorstid"  # 08:30 CEST
    assert evaluate(schedule, utc("2026-01-15 06:30")).entry_name == "default"  # 07:30 CET
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(schedule, datetime(2026, 6, 15, 8, 30))


def test_no_default_lets_calls_through_and_only_default_never_changes():
    d = evaluate(Schedule(example_entries()[1:3]), local("2026-06-13 10:00"))  # a Saturday
    assert (d.action, d.source, d.entry_name) == (Action.OPEN, "none", None)
    assert d.until == local("2026-06-15 08:00")
    d = evaluate(Schedule((ScheduleEntry.default("closed", "natt"),)), local("2026-06-13 10:00"))
    assert (d.action, d.until) == (Action.CLOSED, None)


def test_a_different_timezone_moves_office_hours():
    schedule = Schedule(example_entries(), timezone="America/New_York")
    assert evaluate(schedule, utc("2026-06-15 13:00")).entry_name == "Kontorstid"  # 09:00 EDT
    assert evaluate(schedule, utc("2026-06-15 11:00")).entry_name == "default"  # 07:00 EDT


# -- DST nights 2026 ---------------------------------------------------------------------------------


def test_spring_forward_boundary_in_the_gap_starts_when_the_clocks_jump():
    """29 March 2026: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist."""
    entries = (
        ScheduleEntry.weekly("Nattservice", ["sun"], "closed", "service", start="02:30", end="04:00"),
        ScheduleEntry.default("open"),
    )
    schedule = Schedule(entries)
    before = evaluate(schedule, utc("2026-03-29 00:59"))  # 01:59 CET
    assert before.entry_name == "default"
    assert before.until == utc("2026-03-29 01:00")  # the jump, 03:00 CEST
    assert before.until == local("2026-03-29 03:00")
    during = evaluate(schedule, utc("2026-03-29 01:00"))
    assert (during.entry_name, during.until) == ("Nattservice", local("2026-03-29 04:00"))
    assert evaluate(schedule, utc("2026-03-29 02:00")).entry_name == "default"  # 04:00 CEST
    # A week later, in summer time, the entry starts at 02:30 as written.
    assert evaluate(schedule, local("2026-04-05 02:29")).entry_name == "default"
    assert evaluate(schedule, local("2026-04-05 02:30")).entry_name == "Nattservice"


def test_spring_forward_span_inside_the_gap_does_not_occur_that_night():
    entries = (
        ScheduleEntry.weekly("Glapp", ["sun"], "closed", "x", start="02:00", end="02:45"),
        ScheduleEntry.default("open"),
    )
    schedule = Schedule(entries)
    moment = utc("2026-03-28 23:00")
    while moment < utc("2026-03-29 03:00"):
        assert evaluate(schedule, moment).entry_name == "default", moment
        moment += timedelta(minutes=5)
    assert evaluate(schedule, local("2026-04-05 02:15")).entry_name == "Glapp"


def test_spring_forward_office_day_and_night_lengths():
    schedule = Schedule(example_entries())
    friday = evaluate(schedule, local("2026-03-27 17:00"))
    assert friday.entry_name == "default"
    assert friday.until == local("2026-03-30 08:00") == utc("2026-03-30 06:00")  # CEST on Monday
    # Night span over the jump is one hour shorter in real time.
    night = Schedule((ScheduleEntry.weekly("Natt", ["sat"], "closed", "natt", start="22:00", end="06:00"),))
    d = evaluate(night, local("2026-03-28 22:00"))
    assert d.entry_name == "Natt"
    assert d.until - local("2026-03-28 22:00").astimezone(UTC) == timedelta(hours=7)


def test_autumn_repeated_hour_uses_the_first_occurrence_and_never_flickers():
    """25 October 2026: 03:00 CEST goes back to 02:00 CET; 02:00-02:59 happens twice."""
    entries = (
        ScheduleEntry.weekly("Sen jour", ["sun"], "open", start="00:00", end="02:30"),
        ScheduleEntry.default("closed", "natt"),
    )
    schedule = Schedule(entries)
    first_pass = evaluate(schedule, utc("2026-10-25 00:15"))  # 02:15 CEST
    assert first_pass.entry_name == "Sen jour"
    assert first_pass.until == utc("2026-10-25 00:30")  # 02:30 CEST, the first 02:30
    second_pass = evaluate(schedule, utc("2026-10-25 01:15"))  # 02:15 CET, the same wall time again
    assert second_pass.entry_name == "default"
    assert second_pass.until == local("2026-11-01 00:00")  # no flicker back on at 02:00 CET
    # A boundary in the repeated hour happens once: 02:30 CEST starts an entry for 1.5 real hours.
    later = Schedule((ScheduleEntry.weekly("X", ["sun"], "closed", "x", start="02:30", end="03:00"),))
    d = evaluate(later, utc("2026-10-25 00:30"))
    assert d.entry_name == "X"
    assert d.until == utc("2026-10-25 02:00")  # 03:00 CET
    assert evaluate(later, utc("2026-10-25 00:29")).entry_name is None


def test_autumn_night_span_is_one_hour_longer():
    night = Schedule((ScheduleEntry.weekly("Natt", ["sat"], "closed", "natt", start="22:00", end="06:00"),))
    d = evaluate(night, local("2026-10-24 22:00"))
    assert d.until == local("2026-10-25 06:00")
    assert d.until - local("2026-10-24 22:00").astimezone(UTC) == timedelta(hours=9)
    for hour in range(9):  # every real hour of the night is covered, including both 02:xx
        assert evaluate(night, utc("2026-10-24 20:30") + timedelta(hours=hour)).entry_name == "Natt"


def test_office_hours_are_wall_clock_on_both_sides_of_both_changes():
    schedule = Schedule(example_entries())
    assert evaluate(schedule, utc("2026-03-27 07:00")).entry_name == "Kontorstid"  # Fri 08:00 CET
    assert evaluate(schedule, utc("2026-03-30 06:00")).entry_name == "Kontorstid"  # Mon 08:00 CEST
    assert evaluate(schedule, utc("2026-03-30 05:59")).entry_name == "default"
    assert evaluate(schedule, utc("2026-10-23 06:00")).entry_name == "Kontorstid"  # Fri 08:00 CEST
    assert evaluate(schedule, utc("2026-10-26 06:59")).entry_name == "default"  # Mon 07:59 CET
    assert evaluate(schedule, utc("2026-10-26 07:00")).entry_name == "Kontorstid"


# -- midnight-crossing spans ------------------------------------------------------------------------


def test_span_crossing_midnight_belongs_to_the_day_it_starts():
    entries = (
        ScheduleEntry.weekly("Nattjour", ["fri"], "open", start="22:00", end="06:00"),
        ScheduleEntry.default("closed", "natt"),
    )
    schedule = Schedule(entries)
    assert evaluate(schedule, local("2026-06-12 21:59")).entry_name == "default"  # Friday
    d = evaluate(schedule, local("2026-06-12 22:00"))
    assert (d.entry_name, d.until) == ("Nattjour", local("2026-06-13 06:00"))
    assert evaluate(schedule, local("2026-06-13 03:00")).entry_name == "Nattjour"  # Saturday early
    assert evaluate(schedule, local("2026-06-13 06:00")).entry_name == "default"
    assert evaluate(schedule, local("2026-06-14 03:00")).entry_name == "default"  # Sunday early: no
    assert evaluate(schedule, local("2026-06-12 03:00")).entry_name == "default"  # Friday early: Thursday's


def test_span_crossing_midnight_wraps_from_sunday_into_monday_and_new_year():
    entries = (
        ScheduleEntry.weekly("Söndagsnatt", ["sun"], "open", start="23:00", end="01:00"),
        ScheduleEntry.on_date("Nyårsnatt", "2026-12-31", "open", start="20:00", end="04:00"),
        ScheduleEntry.default("closed", "natt"),
    )
    schedule = Schedule(entries)
    assert evaluate(schedule, local("2026-06-15 00:30")).entry_name == "Söndagsnatt"  # Monday 00:30
    assert evaluate(schedule, local("2027-01-01 03:59")).entry_name == "Nyårsnatt"
    assert evaluate(schedule, local("2027-01-01 04:00")).entry_name == "default"


def test_end_at_midnight_is_the_end_of_the_day():
    span = TimeSpan("18:00", "24:00")
    assert span.end == time(0) and not span.crosses_midnight
    entries = (ScheduleEntry("Kväll", "open", weekdays=["mon"], span=span), ScheduleEntry.default("closed", "n"))
    schedule = Schedule(entries)
    d = evaluate(schedule, local("2026-06-15 23:59"))
    assert (d.entry_name, d.until) == ("Kväll", local("2026-06-16 00:00"))
    assert TimeSpan("22:00", "06:00").crosses_midnight


# -- manual override --------------------------------------------------------------------------------


def test_override_wins_until_it_expires():
    override = Override("closed", local("2026-06-15 14:00"), "stangt")
    schedule = Schedule(example_entries(), override=override)
    d = evaluate(schedule, local("2026-06-15 10:00"))
    assert (d.action, d.message, d.source, d.entry_name, d.until) == (
        Action.CLOSED, "stangt", "override", None, local("2026-06-15 14:00")
    )
    after = evaluate(schedule, local("2026-06-15 14:00"))
    assert (after.action, after.entry_name, after.source) == (Action.OPEN, "Kontorstid", "entry")
    # "open until" through a night; then the night message again.
    schedule = Schedule(example_entries(), override=Override("open", local("2026-06-15 19:00")))
    assert evaluate(schedule, local("2026-06-15 18:00")).is_open
    assert evaluate(schedule, local("2026-06-15 19:00")).message == "natt"


def test_override_validation():
    with pytest.raises(ScheduleError, match="needs a voice message"):
        Override("closed", local("2026-06-15 14:00"))
    with pytest.raises(ScheduleError, match="must not have a voice message"):
        Override("open", local("2026-06-15 14:00"), "x")
    with pytest.raises(ValueError, match="timezone-aware"):
        Override("open", datetime(2026, 6, 15, 14))


# -- entries and their validation -------------------------------------------------------------------


def test_entry_from_mapping_round_trips_and_normalises():
    for data in EXAMPLE:
        entry = entry_from_mapping(data)
        assert entry_from_mapping(entry.to_mapping()) == entry
    lunch = entry_from_mapping(EXAMPLE[1])
    assert lunch.weekdays == frozenset(Weekday(i) for i in range(5))
    assert lunch.span == TimeSpan(time(12), time(13)) and lunch.kind == "weekly"
    assert entry_from_mapping({"name": "[default]", "action": "stängd", "message": "natt"}).is_default
    swedish = entry_from_mapping({"name": "Helg", "weekdays": ["lör", "söndag"], "action": "öppen"})
    assert swedish.weekdays == {Weekday.SAT, Weekday.SUN}
    span = entry_from_mapping({"name": "Jul", "date": "2026-12-24", "end_date": "2026-12-26", "action": "closed", "message": "x"})
    assert span.dates == DateSpan(date(2026, 12, 24), date(2026, 12, 26)) and not span.dates.single


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"name": "Öppet", "weekdays": ["mon"], "action": "open", "message": "x"}, "open_with_message"),
        ({"name": "Stängt", "weekdays": ["mon"], "action": "closed"}, "closed_without_message"),
        ({"name": "Vad", "action": "open"}, "needs_when"),
        ({"name": "default", "weekdays": ["mon"], "action": "closed", "message": "x"}, "default_with_when"),
        ({"name": "Noll", "weekdays": ["mon"], "from": "08:00", "to": "08:00", "action": "open"}, "empty_span"),
        ({"name": "X", "weekdays": ["funday"], "action": "open"}, "bad_weekday"),
        ({"name": "X", "weekdays": ["mon"], "from": "25:00", "to": "26:00", "action": "open"}, "bad_time"),
        ({"name": "X", "date": "2026-02-30", "action": "open"}, "bad_date"),
        ({"name": "X", "date": "2026-12-26", "end_date": "2026-12-24", "action": "open"}, "date_order"),
        ({"name": "X", "weekdays": ["mon"], "action": "maybe"}, "bad_action"),
        ({"name": " ", "weekdays": ["mon"], "action": "open"}, "empty_name"),
        ({"name": "X", "weekdays": ["mon"], "action": "open", "colour": "red"}, "unknown_field"),
    ],
)
def test_invalid_entries_explain_themselves_in_both_languages(data, key):
    with pytest.raises(ScheduleError) as caught:
        entry_from_mapping(data)
    assert caught.value.key == key
    assert str(caught.value) and caught.value.text("sv") and caught.value.text("sv") != str(caught.value)


def test_unknown_timezone():
    with pytest.raises(ScheduleError, match="Unknown time zone") as caught:
        Schedule((), timezone="Europe/Atlantis")
    assert "Okänd tidszon" in caught.value.text("sv")


def test_date_span_narrowed_to_weekdays():
    summer = ScheduleEntry.on_date(
        "Sommarfredag", "2026-06-22", "closed", "sommar", last="2026-08-09", weekdays=["fri"], start="13:00", end="17:00"
    )
    schedule = Schedule((summer, *example_entries()))
    assert evaluate(schedule, local("2026-07-03 14:00")).entry_name == "Sommarfredag"
    assert evaluate(schedule, local("2026-07-02 14:00")).entry_name == "Kontorstid"  # a Thursday
    assert evaluate(schedule, local("2026-08-14 14:00")).entry_name == "Kontorstid"  # after the summer
    assert lint(Schedule((summer, *example_entries()))) == []
    (warning,) = lint((*example_entries()[1:3], summer, example_entries()[3]))
    assert warning.key == "date_never_used"  # below Kontorstid, which covers its Fridays 13-17


# -- move and lint --------------------------------------------------------------------------------------


def test_move_up_down_and_clamped():
    items = ("a", "b", "c", "d")
    assert move(items, 2, -1) == ("a", "c", "b", "d")
    assert move(items, 0, 1) == ("b", "a", "c", "d")
    assert move(items, 0, -1) == items
    assert move(items, 1, 10) == ("a", "c", "d", "b")
    with pytest.raises(IndexError):
        move(items, 4, -1)
    with pytest.raises(IndexError):
        move(items, -1, 1)


def test_lint_wrong_order_of_a11_and_fixing_it_with_move():
    """Office hours above lunch and a date below both: both warned; moving them up clears it."""
    julafton, lunch, kontorstid, default = example_entries()
    wrong = (kontorstid, lunch, julafton, default)
    warnings = lint(wrong)
    assert [(w.position, w.key) for w in warnings] == [(2, "never_used"), (3, "date_partly_hidden")]
    lunch_warning, date_warning = warnings
    assert lunch_warning.params["by"] == ["Kontorstid"]
    assert lunch_warning.text("en") == (
        "'Lunch' (Mon–Fri 12:00–13:00) is never used: it is hidden by 'Kontorstid' above it "
        "(Mon–Fri 08:00–17:00). The calendar is read from the top and the first matching entry wins: "
        "move 'Lunch' above 'Kontorstid', or remove it."
    )
    assert "uppifrån och ner" in lunch_warning.text("sv") and "mån–fre 12:00–13:00" in lunch_warning.text("sv")
    assert date_warning.params["by"] == ["Kontorstid", "Lunch"]
    assert "Specifika datum ska ligga överst" in date_warning.text("sv")
    assert "tor 24 dec 2026" in date_warning.text("sv")
    assert "'Kontorstid' and 'Lunch'" in date_warning.text("en")

    step = move(wrong, 1, -1)  # lunch above office hours
    assert [w.key for w in lint(step)] == ["date_partly_hidden"]
    fixed = move(step, 2, -2)  # the date to the top
    assert fixed == example_entries()
    assert lint(fixed) == []
    assert lint(Schedule(fixed)) == []


def test_lint_date_fully_hidden_by_a_weekly_entry():
    julafton, lunch, kontorstid, default = example_entries()
    meeting = ScheduleEntry.on_date("Möte", "2026-12-23", "closed", "mote", start="09:00", end="10:00")
    (warning,) = lint((lunch, kontorstid, meeting, default))
    assert (warning.key, warning.position, warning.params["by"]) == ("date_never_used", 3, ["Kontorstid"])
    assert "Wed 23 Dec 2026 09:00–10:00" in warning.text("en")
    assert lint((meeting, lunch, kontorstid, default)) == []


def test_lint_below_an_entry_that_covers_all_time_and_default_not_last():
    julafton, lunch, kontorstid, default = example_entries()
    always = ScheduleEntry.weekly("Alltid öppet", range(7), "open")
    warnings = lint((always, lunch, default))
    assert [(w.key, w.position) for w in warnings] == [("below_all_time", 2), ("below_all_time", 3)]
    assert warnings[0].params["by"] == ["Alltid öppet"]
    assert "används aldrig" in warnings[0].text("sv")

    entries = (julafton, default, lunch, kontorstid)
    (warning,) = lint(entries)
    assert (warning.key, warning.position, warning.params["below"]) == ("default_not_last", 2, ["Lunch", "Kontorstid"])
    assert "Move [default] to the bottom" in warning.text("en")
    assert lint(move(entries, 1, 10)) == []


def test_lint_hidden_by_several_entries_together_and_across_the_week_end():
    lunch = ScheduleEntry.weekly("Lunch", WEEKDAYS, "closed", "lunch", start="12:00", end="13:00")
    early = ScheduleEntry.weekly("Tidig vecka", ["mon", "tue", "wed"], "open", start="08:00", end="17:00")
    late = ScheduleEntry.weekly("Sen vecka", ["thu", "fri"], "open", start="08:00", end="17:00")
    default = ScheduleEntry.default("closed", "natt")
    (warning,) = lint((early, late, lunch, default))
    assert (warning.key, warning.params["by"]) == ("never_used", ["Tidig vecka", "Sen vecka"])
    assert lint((early, lunch, late, default)) == []  # only partly hidden: lunch still applies Thu-Fri

    sunday_night = ScheduleEntry.weekly("Söndagsnatt", ["sun"], "closed", "natt", start="22:00", end="06:00")
    monday_early = ScheduleEntry.weekly("Måndag tidigt", ["mon"], "open", start="00:00", end="00:30")
    (warning,) = lint((sunday_night, monday_early, default))
    assert (warning.key, warning.params["by"]) == ("never_used", ["Söndagsnatt"])


def test_lint_duplicates_missing_default_never_occurring_and_expired():
    a = ScheduleEntry.weekly("Kontorstid", WEEKDAYS, "open", start="08:00", end="12:00")
    b = ScheduleEntry.weekly("kontorstid", WEEKDAYS, "open", start="13:00", end="17:00")
    warnings = lint((a, b))
    assert [(w.key, w.severity) for w in warnings] == [("duplicate_name", "warning"), ("no_default", "info")]
    assert warnings[0].params["positions"] == [1, 2]
    assert "2 poster heter 'Kontorstid' (plats 1, 2)" in warnings[0].text("sv")

    odd = ScheduleEntry.on_date("Måndagsjul", "2026-12-24", "closed", "x", weekdays=["mon"])
    assert [w.key for w in lint((odd, ScheduleEntry.default("closed", "n")))] == ["never_occurs"]

    old = ScheduleEntry.on_date("Julafton 2025", "2025-12-24", "closed", "x")
    warnings = lint((old, ScheduleEntry.default("closed", "n")), today=date(2026, 1, 10))
    assert [(w.key, w.severity) for w in warnings] == [("expired", "info")]
    assert lint((old, ScheduleEntry.default("closed", "n")), today=date(2025, 12, 24)) == []


def test_lint_warning_to_dict_is_json_safe_with_both_texts():
    import json

    julafton, lunch, kontorstid, default = example_entries()
    data = lint((kontorstid, lunch, default))[0].to_dict()
    assert set(data) == {"key", "severity", "position", "params", "text"}
    assert set(data["text"]) == {"en", "sv"}
    json.dumps(data)


# -- public holidays --------------------------------------------------------------------------------


def test_swedish_holidays_public_and_de_facto():
    public = holiday_entries(2026, message="helg", include_de_facto=False)
    names = {e.name for e in public}
    assert {"Långfredagen 2026", "Annandag påsk 2026", "Kristi himmelsfärdsdag 2026", "Midsommardagen 2026"} <= names
    assert not {"Midsommarafton 2026", "Julafton 2026", "Nyårsafton 2026"} & names
    both = holiday_entries(2026, message="helg")
    extra = {e.name: e.dates.first for e in both} .items() - {e.name: e.dates.first for e in public}.items()
    assert dict(extra) == {
        "Midsommarafton 2026": date(2026, 6, 19),
        "Julafton 2026": date(2026, 12, 24),
        "Nyårsafton 2026": date(2026, 12, 31),
    }
    assert [e.dates.first for e in both] == sorted(e.dates.first for e in both)
    assert all(e.action is Action.CLOSED and e.message == "helg" and e.span is None for e in both)
    easter_2027 = {e.name: e.dates.first for e in holiday_entries(2027, message="helg")}
    assert easter_2027["Långfredagen 2027"] == date(2027, 3, 26)
    assert easter_2027["Midsommarafton 2027"] == date(2027, 6, 25)


def test_add_holidays_goes_above_weekly_entries_skipping_the_admins_own_dates():
    entries = example_entries()
    with_holidays = add_holidays(entries, 2026, message="helg")
    assert with_holidays[0].name == "Julafton"  # the admin's own entry for 24 Dec stays and wins
    assert "Julafton 2026" not in {e.name for e in with_holidays}
    added = with_holidays[1:-3]
    assert len(added) == 15 and all(e.kind == "date" for e in added)
    assert [e.name for e in with_holidays[-3:]] == ["Lunch", "Kontorstid", "default"]
    assert lint(with_holidays) == []
    assert add_holidays(with_holidays, 2026, message="helg") == with_holidays  # idempotent
    schedule = Schedule(with_holidays)
    assert evaluate(schedule, local("2026-04-03 10:00")).entry_name == "Långfredagen 2026"
    assert evaluate(schedule, local("2026-06-19 12:30")).entry_name == "Midsommarafton 2026"
    assert evaluate(schedule, local("2026-12-24 10:00")).entry_name == "Julafton"
    public_only = Schedule(add_holidays(entries, 2026, message="helg", include_de_facto=False))
    assert evaluate(public_only, local("2026-06-19 10:00")).entry_name == "Kontorstid"
    # Date spans (summer hours) go below the holidays, so Midsommarafton still closes.
    summer = ScheduleEntry.on_date("Sommar", "2026-06-15", "open", last="2026-08-14", weekdays=WEEKDAYS)
    spanned = add_holidays((summer, *entries[1:]), 2026, message="helg")
    assert spanned.index(summer) > [e.name for e in spanned].index("Midsommarafton 2026")


def test_holidays_for_several_years_have_distinct_names():
    entries = holiday_entries([2026, 2027], message="helg")
    assert len({e.name for e in entries}) == len(entries) == 32


def test_schedule_lists_where_messages_are_used():
    schedule = Schedule(example_entries(), override=Override("closed", local("2026-06-15 14:00"), "stangt"))
    assert schedule.message_refs() == [("Julafton", "helg"), ("Lunch", "lunch"), ("default", "natt"), ("override", "stangt")]
