"""IVR menus: the state machine fed with keys and timeouts, and menu validation."""

from __future__ import annotations

import pytest

from provisioning.routing.menus import (
    Destination,
    DestinationKind,
    Hangup,
    Menu,
    MenuError,
    MenuRun,
    Play,
    Route,
    WaitForDigit,
    simulate,
)

VAXELN = Destination(DestinationKind.GROUP, "Växeln")


def main_menu(**changes) -> Menu:
    options = {
        "1": VAXELN,
        "2": Destination.from_mapping({"user": "+46854689901"}),
        "3": Destination.from_mapping({"message": "oppettider"}),
        "4": Destination.from_mapping({"menu": "Support"}),
        "5": Destination.from_mapping({"external": "+46317001234"}),
        "6": Destination.from_mapping({"voicemail": "+46854689902"}),
        "9": Destination.from_mapping("repeat"),
        "#": Destination.from_mapping("hangup"),
    }
    settings = dict(
        name="Huvudmeny",
        message="valkommen",
        options=options,
        timeout=5,
        retries=2,
        invalid_message="felval",
        timeout_destination=VAXELN,
    )
    settings.update(changes)
    return Menu(**settings)


GREETING = [Play("valkommen", "greeting"), WaitForDigit(5)]
RETRY = [Play("valkommen", "retry"), WaitForDigit(5)]


def test_start_plays_the_greeting_and_waits():
    run = MenuRun(main_menu())
    assert run.start() == GREETING
    with pytest.raises(MenuError, match="already started"):
        run.start()


@pytest.mark.parametrize(
    ("key", "kind", "target"),
    [
        ("1", DestinationKind.GROUP, "Växeln"),
        ("2", DestinationKind.USER, "+46854689901"),
        ("4", DestinationKind.MENU, "Support"),
        ("5", DestinationKind.EXTERNAL, "+46317001234"),
        ("6", DestinationKind.VOICEMAIL, "+46854689902"),
    ],
)
def test_a_key_routes_to_its_destination_and_ends_the_run(key, kind, target):
    run = MenuRun(main_menu())
    run.start()
    assert run.digit(key) == [Route(Destination(kind, target), "key")]
    assert run.done and run.outcome == Route(Destination(kind, target), "key")
    with pytest.raises(MenuError, match="over"):
        run.digit("1")


def test_hangup_key():
    assert simulate(main_menu(), ["#"]) == GREETING + [Hangup("key")]


def test_repeat_and_message_keys_replay_without_using_a_retry():
    actions = simulate(main_menu(retries=0), ["9", "3", "9", "1"])
    assert actions == GREETING + [
        Play("valkommen", "repeat"), WaitForDigit(5),
        Play("oppettider", "message"), Play("valkommen", "repeat"), WaitForDigit(5),
        Play("valkommen", "repeat"), WaitForDigit(5),
        Route(VAXELN, "key"),
    ]


def test_invalid_keys_play_the_invalid_message_then_retry_then_final_destination():
    run = MenuRun(main_menu())
    run.start()
    assert run.digit("7") == [Play("felval", "invalid"), *RETRY]
    assert run.digit("8") == [Play("felval", "invalid"), *RETRY]
    assert run.failures == 2 and not run.done
    assert run.digit("0") == [Play("felval", "invalid"), Hangup("invalid")]
    assert run.done


def test_invalid_then_a_valid_key_still_routes():
    assert simulate(main_menu(), ["7", "1"])[-1] == Route(VAXELN, "key")


def test_timeouts_retry_then_go_to_the_timeout_destination():
    actions = simulate(main_menu(), ["timeout", "timeout", "timeout", "1"])
    assert actions == GREETING + RETRY + RETRY + [Route(VAXELN, "timeout")]


def test_retries_are_shared_and_the_last_failure_decides_where_to_go():
    # invalid, timeout, invalid: the third failure is an invalid key -> final destination (hang up).
    assert simulate(main_menu(), ["7", "timeout", "7"])[-1] == Hangup("invalid")
    # invalid, invalid, timeout -> the timeout destination.
    assert simulate(main_menu(), ["7", "7", "timeout"])[-1] == Route(VAXELN, "timeout")


def test_without_timeout_destination_or_invalid_message():
    menu = main_menu(timeout_destination=None, invalid_message=None, retries=1)
    assert simulate(menu, ["timeout", "timeout"]) == GREETING + RETRY + [Hangup("timeout")]
    assert simulate(menu, ["7", "7"]) == GREETING + RETRY + [Hangup("invalid")]


def test_no_retries_sends_silence_straight_to_the_switchboard():
    assert simulate(main_menu(retries=0), ["timeout"]) == GREETING + [Route(VAXELN, "timeout")]


def test_final_destination_can_be_a_message_that_ends_the_call():
    menu = main_menu(retries=0, final_destination={"message": "hejda"}, invalid_message=None)
    assert simulate(menu, ["0"]) == GREETING + [Play("hejda", "message"), Hangup("invalid")]


def test_run_must_be_started_and_keys_must_be_keys():
    run = MenuRun(main_menu())
    with pytest.raises(MenuError, match="start"):
        run.digit("1")
    run.start()
    with pytest.raises(MenuError, match="telephone key"):
        run.digit("A")


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"options": {"A": VAXELN}}, "not a key"),
        ({"options": {"1": {"menu": "Huvudmeny"}}}, "menu itself"),
        ({"final_destination": Destination("repeat")}, "cannot be repeat"),
        ({"timeout_destination": "repeat"}, "cannot be repeat"),
        ({"timeout": 0}, "timeout"),
        ({"retries": -1}, "retries"),
        ({"message": ""}, "greeting"),
        ({"name": " "}, "name"),
    ],
)
def test_invalid_menus(changes, match):
    with pytest.raises(MenuError, match=match):
        main_menu(**changes)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"user": ""}, "needs a target"),
        ({"kind": "repeat", "target": "x"}, "takes no target"),
        ({"external": "08-abc"}, "not a phone number"),
        ({"teleport": "x"}, "unknown destination"),
        ({"user": "a", "group": "b"}, "one of kind"),
    ],
)
def test_invalid_destinations(data, match):
    with pytest.raises(MenuError, match=match):
        Destination.from_mapping(data)


def test_destination_mapping_round_trip():
    for dest in (VAXELN, Destination("hangup"), Destination.from_mapping({"external": "08 546 899 14"})):
        assert Destination.from_mapping(dest.to_mapping()) == dest
    assert str(VAXELN) == "group Växeln"


def test_menu_lists_the_voice_messages_it_uses():
    menu = main_menu(final_destination={"message": "hejda"})
    assert menu.message_refs() == [
        ("menu Huvudmeny: greeting", "valkommen"),
        ("menu Huvudmeny: invalid entry", "felval"),
        ("menu Huvudmeny: key 3", "oppettider"),
        ("menu Huvudmeny: final", "hejda"),
    ]
    assert dict(menu.options)["1"] is VAXELN
    with pytest.raises(TypeError):
        menu.options["7"] = VAXELN  # read-only: a frozen menu stays frozen
