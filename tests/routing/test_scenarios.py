"""End to end: every call behaviour of the seeds, with desk phones that booted against the real server.

Each test starts deskprov (SQLite), imports the organisation, boots a Yealink, a
Snom and a Grandstream simulator over HTTP, and builds the desk-phone
simulators from what those phones fetched (number = account user name,
extension = account label, BLF keys).  Calls then run through the routing
engine on a virtual clock: the routing model comes from the dict builder (the
database-backed routing model is another issue), the phones' identity from the
server.
"""

from __future__ import annotations

import copy
from typing import Any

import aiohttp
import pytest
import yaml

from provisioning.routing.model import merge_documents, organisation_from_dict
from simulators.scenario import ScenarioResult, run_scenario
from simulators.grandstream import GrandstreamProfile
from simulators.mobile import DEFAULT_VOICEMAIL_NUMBER as OPERATOR_VM
from simulators.phone import Phone
from simulators.snom import SnomProfile
from simulators.yealink import YealinkProfile
from conftest import import_org  # tests/ is on sys.path (rootdir conftest)

ANNA, BERTIL, CECILIA = "+46854689901", "+46854689902", "+46854689903"
BERTIL_MOBILE = "+46701234502"
MAIN, MENU_NUMBER, SUPPORT_GROUP = "+46854689914", "+46854689900", "+46854689915"
CALLER, OUTSIDE = "+46812345678", "+46855512345"
MONDAY = "2026-03-02T10:00:00"  # a working Monday, 10:00 in Stockholm

#: What the server imports (the organisation file as it is today).
ORG = f"""
organization:
  name: Exempel AB
  sip_domain: exempel.sip.example.net
  main_number: "{MAIN}"
  timezone: Europe/Stockholm
users:
  - {{name: Anna Andersson, number: "{ANNA}", extension: "201"}}
  - name: Bertil Berg
    number: "{BERTIL}"
    extension: "202"
    mobiles: [{{number: "{BERTIL_MOBILE}", profile: mex}}]
  - {{name: Cecilia Carlsson, number: "{CECILIA}", extension: "203"}}
phones:
  - mac: "80:5E:C0:AA:BB:01"
    model: Yealink T46S
    user: "{ANNA}"
    keys:
      - {{slot: 1, type: line}}
      - {{slot: 2, type: blf, target: "{BERTIL}", label: Bertil}}
      - {{slot: 3, type: speed_dial, number: "{OUTSIDE}", label: Leverantör}}
  - mac: "00:04:13:92:2D:24"
    model: Snom D785
    user: "{BERTIL}"
    keys:
      - {{slot: 1, type: line}}
      - {{slot: 2, type: blf, target: "{ANNA}", label: Anna}}
  - mac: "00:0B:82:AA:BB:01"
    model: Grandstream GXP2160
    user: "{CECILIA}"
"""

#: The routing additions of issue 5, plus a menu and a queue.
ROUTING: dict[str, Any] = yaml.safe_load(f"""
organization: {{operator: {{group: Växeln}}}}
messages:
  - {{name: lunch, text: "Vi har lunchstängt, välkommen åter klockan 13.", seconds: 4}}
  - {{name: natt, text: "Växeln är stängd. Våra öppettider är vardagar 8 till 17.", seconds: 5}}
  - {{name: helg, text: "Idag har vi stängt.", seconds: 3}}
  - {{name: meny, text: "Välkommen. Tryck 1 för växeln, 2 för Cecilia.", seconds: 6}}
  - {{name: fel, text: "Felaktigt val.", seconds: 2}}
  - {{name: kö, text: "Alla handläggare är upptagna, vänligen dröj.", seconds: 3}}
groups:
  - name: Växeln
    number: "{MAIN}"
    group_id: "0001"
    strategy: ring_all
    ring_time: 20
    members:
      - {{user: "{ANNA}", logged_in: true}}
      - {{user: "{BERTIL}", logged_in: false}}
    schedule:
      - {{name: Julafton, date: "2026-12-24", action: closed, message: helg}}
      - {{name: Lunch, weekdays: [mon, tue, wed, thu, fri], from: "12:00", to: "13:00", action: closed, message: lunch}}
      - {{name: Kontorstid, weekdays: [mon, tue, wed, thu, fri], from: "08:00", to: "17:00", action: open}}
      - {{name: default, action: closed, message: natt}}
    holidays: {{country: SE, action: closed, message: helg}}
    no_answer: {{voicemail: "{ANNA}"}}
  - name: Kundtjänst
    number: "{SUPPORT_GROUP}"
    group_id: "0002"
    members: ["{CECILIA}"]
    ring_time: 20
    no_answer_time: 120
    queue: {{max_wait: 60, message: kö, first_announcement: 10, announce_interval: 20, announce_position: true}}
    no_answer: {{voicemail: "{CECILIA}"}}
menus:
  - name: Huvudmeny
    number: "{MENU_NUMBER}"
    message: meny
    options: {{"1": {{group: Växeln}}, "2": {{user: "203"}}, "9": repeat}}
    timeout: 5
    retries: 2
    invalid_message: fel
    timeout_destination: {{group: Växeln}}
""")


def _profiles() -> list[Any]:
    return [
        YealinkProfile("T46S", "80:5E:C0:AA:BB:01", "66.86.0.15"),
        SnomProfile("D785", "00:04:13:92:2D:24", "10.1.33.33", modules=1),
        GrandstreamProfile("GXP2160", "00:0B:82:AA:BB:01", "1.0.11.6", hardware="V1.5A"),
    ]


@pytest.fixture
async def office(sqlite_server) -> dict[str, Any]:
    """The organisation imported into a running server, and what each desk phone fetched from it."""
    await import_org(sqlite_server, ORG)
    url = f"http://127.0.0.1:{sqlite_server.http_port}/"
    states = {}
    async with aiohttp.ClientSession() as session:
        for profile in _profiles():
            state = await Phone(profile, session=session).boot_http(url)
            assert not state.errors, state.errors
            states["+" + state.accounts[1].user_name] = state
    assert set(states) == {ANNA, BERTIL, CECILIA}
    return states


def simulate(states: dict[str, Any], *, users: list[dict[str, Any]] = (), phones: dict[str, dict[str, Any]] | None = None,
             calls: list[dict[str, Any]], mobiles: list[dict[str, Any]] = (), parties: list[dict[str, Any]] = (),
             run: float = 300, expect: list[dict[str, Any]] = (), bertil_in_switchboard: bool = False) -> ScenarioResult:
    """Run calls against the office: phones by user number with their behaviour (default: never answer).

    Bertil is logged out of Växeln (as in issue 5's example) unless ``bertil_in_switchboard``.
    """
    routing = copy.deepcopy(ROUTING)
    routing["groups"][0]["members"][1]["logged_in"] = bertil_in_switchboard
    doc = merge_documents(yaml.safe_load(ORG), {**routing, "users": list(users)})
    org = organisation_from_dict(doc, holiday_years=[2026])
    behaviour = {ANNA: {}, BERTIL: {}, CECILIA: {}, **(phones or {})}
    scenario = {
        "phones": [{"user": number, **spec} for number, spec in behaviour.items()],
        "mobiles": list(mobiles),
        "parties": [{"number": CALLER, "answer_after": 2}, {"number": OUTSIDE, "answer_after": 1}, *parties],
        "calls": calls,
        "run": run,
        "expect": list(expect),
    }
    result = run_scenario(scenario, phone_states=states, org=org)
    assert result.ok, result.failures
    return result


def events(result: ScenarioResult, *kinds: str, **fields: Any) -> list[dict[str, Any]]:
    return [e for e in result.trace.to_dicts()
            if (not kinds or e["kind"] in kinds) and all(e.get(k) == v for k, v in fields.items())]


def first(result: ScenarioResult, kind: str, **fields: Any) -> dict[str, Any]:
    found = events(result, kind, **fields)
    assert found, f"no {kind} {fields} in the trace"
    return found[0]


def group_call(**extra: Any) -> dict[str, Any]:
    return {"from": CALLER, "to": MAIN, "at": MONDAY, "hangup_after": 200, **extra}


#: Anna answers a group call, presses ## and her BLF key for Bertil (from the fetched config), then #.
CONSULT_BERTIL = [{"until": "answered"}, {"after": 5, "press": "##"}, {"until": "dial-tone", "key": 2},
                  {"press": "#"}]


# -- C1: presentation and callback ---------------------------------------------------------------


async def test_phone_identity_comes_from_the_fetched_configuration(office):
    result = simulate(office, calls=[])
    anna, bertil, cecilia = (result.phones[n] for n in (ANNA, BERTIL, CECILIA))
    assert (anna.number, anna.extension, anna.display_name, anna.mac) == (ANNA, "201", "Anna Andersson", "805ec0aabb01")
    assert (anna.keys[2].type, anna.keys[2].value, anna.keys[2].label) == ("blf", "202", "Bertil")
    assert (anna.keys[3].type, anna.keys[3].value) == ("speed_dial", OUTSIDE)
    assert (bertil.number, bertil.keys[2].value) == (BERTIL, "201")  # Snom: no extension in its config
    assert (cecilia.number, cecilia.extension) == (CECILIA, "203")


async def test_c1_group_call_shows_number_and_group_id_and_calling_back_reaches_the_caller(office):
    result = simulate(
        office,
        phones={ANNA: {"answer_after": 3, "script": [
            {"until": "answered"}, {"after": 5, "hangup": True}, {"after": 10, "callback": 1}]}},
        calls=[group_call()],
    )
    anna = result.phones[ANNA]
    assert anna.recent[0] == "08123456780001"
    assert first(result, "leg.offered", where=ANNA)["caller"] == "08123456780001"
    assert first(result, "group.plan")["presented"] == "08123456780001"
    callback = first(result, "call.outgoing", where=ANNA)
    assert callback["digits"] == "08123456780001" and callback["t"] == 18.0
    assert first(result, "number.translated")["to"] == CALLER
    connected = first(result, "call.connected", call=callback["call"])
    assert connected["where"] == CALLER and connected["t"] == 20.0  # the caller's phone answered after 2 s
    assert first(result, "leg.offered", where=CALLER)["caller"] == "0854689901"  # Anna shown in national form


async def test_c1_a_foreign_caller_is_shown_with_00_and_called_back(office):
    german = "+493012345670"
    result = simulate(
        office,
        phones={ANNA: {"answer_after": 3, "script": [{"until": "answered"}, {"after": 2, "hangup": True},
                                                      {"after": 1, "callback": 1}]}},
        parties=[{"number": german, "answer_after": 1}],
        calls=[{**group_call(), "from": german}],
    )
    assert result.phones[ANNA].recent[0] == "00493012345670" + "0001"
    assert first(result, "number.translated")["to"] == german
    assert first(result, "call.connected", where=german)


async def test_c4_a_callback_did_not_come_in_through_the_service_so_it_cannot_be_transferred(office):
    result = simulate(
        office,
        phones={ANNA: {"answer_after": 3, "script": [
            {"until": "answered"}, {"after": 2, "hangup": True}, {"after": 1, "callback": 1},
            {"until": "connected", "after": 2, "press": "##"}]}},
        calls=[group_call()],
    )
    refused = first(result, "feature.refused")
    assert refused["where"] == ANNA and "came in through the service" in refused["reason"]
    assert not events(result, "feature.consult")


# -- C2/C3: consultation, toggling, transfer --------------------------------------------------------


async def test_c2_consultation_then_transfer_by_hanging_up_after_the_colleague_answered(office):
    result = simulate(
        office,
        phones={ANNA: {"answer_after": 3, "script": [*CONSULT_BERTIL, {"until": "connected", "after": 4, "hangup": True}]},
                BERTIL: {"answer_after": 2}},
        calls=[group_call()],
    )
    assert first(result, "feature.consult")["t"] == 8.0
    assert first(result, "tone", where=CALLER, what="hold")["t"] == 8.0
    assert first(result, "phone.key", where=ANNA) == {**first(result, "phone.key"), "value": "202", "label": "Bertil"}
    assert first(result, "feature.dial")["target"] == BERTIL
    assert first(result, "leg.offered", where=BERTIL)["caller"] == "201"  # internal: Anna's extension
    assert first(result, "feature.consult-answered")["t"] == 10.0
    transfer = first(result, "transfer.attended")
    assert (transfer["t"], transfer["where"], transfer["to"]) == (14.0, ANNA, BERTIL)
    assert not events(result, "transfer.recall")
    assert result.calls[0].answered_by == [ANNA, BERTIL]
    hangup = first(result, "leg.ended", where=BERTIL)  # the caller and Bertil talk until the caller hangs up
    assert (hangup["t"], hangup["reason"]) == (200.0, "caller-hung-up")


async def test_c2_abandoned_consultation_takes_the_caller_back_with_hash(office):
    result = simulate(
        office,
        phones={ANNA: {"answer_after": 3, "script": [*CONSULT_BERTIL, {"until": "ringback", "after": 6, "press": "#"}]}},
        calls=[group_call()],
    )
    retrieve = first(result, "feature.retrieve")
    assert (retrieve["t"], retrieve["reason"]) == (14.0, "abandoned")
    assert first(result, "leg.cancelled", where=BERTIL)["reason"] == "retrieved"
    assert first(result, "tone", where=CALLER, what="connected")["t"] == 14.0
    assert result.phones[ANNA].heard[-1][1:] == ("connected", {"party": CALLER})


async def test_c2_a_busy_colleague_gives_busy_tone_and_hash_takes_the_caller_back(office):
    result = simulate(
        office,
        phones={ANNA: {"answer_after": 3, "script": [*CONSULT_BERTIL, {"until": "busy-tone", "after": 1, "press": "#"}]},
                BERTIL: {"busy": True}},
        calls=[group_call()],
    )
    assert first(result, "feature.consult-failed")["reason"] == "busy"
    assert first(result, "feature.retrieve")["t"] == 9.0


async def test_c2_external_consultation_needs_the_area_code(office):
    result = simulate(
        office,
        phones={ANNA: {"answer_after": 3, "script": [
            {"until": "answered"}, {"after": 2, "press": "##"}, {"until": "dial-tone", "press": "5551234#"},
            {"until": "number-unobtainable", "press": "#"}, {"after": 2, "press": "##"},
            {"until": "dial-tone", "press": "0855512345#"}, {"until": "connected", "after": 2, "hangup": True}]}},
        calls=[group_call()],
    )
    failed = first(result, "feature.dial", digits="5551234")
    assert "area code" in failed["problem"]
    assert first(result, "feature.dial", digits="0855512345")["target"] == OUTSIDE
    assert first(result, "transfer.attended")["to"] == OUTSIDE


async def test_c3_toggle_with_hash_hash_2_and_end_the_active_call_with_hash_hash_1(office):
    result = simulate(
        office,
        phones={ANNA: {"answer_after": 3, "script": [
            *CONSULT_BERTIL, {"until": "connected", "after": 3, "press": "##2"}, {"after": 3, "press": "##2"},
            {"after": 3, "press": "##1"}]},
                BERTIL: {"answer_after": 2}},
        calls=[group_call()],
    )
    toggles = events(result, "feature.toggle")
    assert [(e["t"], e["active"]) for e in toggles] == [(13.0, CALLER), (16.0, BERTIL)]
    assert [e["t"] for e in events(result, "tone", where=CALLER, what="hold")] == [8.0, 16.0]
    end = first(result, "feature.end-active")
    assert (end["t"], end["ended"], end["continues"]) == (19.0, BERTIL, CALLER)
    assert first(result, "leg.ended", where=BERTIL)["reason"] == "ended-by-user"
    assert first(result, "call.end")["t"] == 200.0  # Anna and the caller talked on until the caller hung up


async def test_c3_hash_hash_1_while_talking_to_the_caller_ends_the_caller_and_continues_with_the_colleague(office):
    result = simulate(
        office,
        phones={ANNA: {"answer_after": 3, "script": [
            *CONSULT_BERTIL, {"until": "connected", "after": 3, "press": "##2"}, {"after": 3, "press": "##1"},
            {"after": 5, "hangup": True}]},
                BERTIL: {"answer_after": 2}},
        calls=[group_call()],
    )
    end = first(result, "feature.end-active")
    assert (end["t"], end["ended"], end["continues"]) == (16.0, CALLER, BERTIL)
    assert result.calls[0].outcome == "ended-by-user"
    assert first(result, "leg.ended", where=BERTIL)["t"] == 21.0  # Anna hung up, so Bertil's call ended


async def test_c2_blind_transfer_by_hanging_up_while_the_colleague_rings(office):
    result = simulate(
        office,
        phones={ANNA: {"answer_after": 3, "script": [*CONSULT_BERTIL, {"until": "ringback", "after": 2, "hangup": True}]},
                BERTIL: {"answer_after": 12}},
        calls=[group_call()],
    )
    blind = first(result, "transfer.blind")
    assert (blind["t"], blind["to"]) == (10.0, BERTIL)
    assert first(result, "tone", where=CALLER, what="ringback")["t"] == 10.0
    done = first(result, "transfer.completed")
    assert (done["t"], done["to"], done["after"]) == (20.0, BERTIL, 10.0)
    assert not events(result, "transfer.recall")
    assert result.calls[0].answered_by == [ANNA, BERTIL]


# -- C5: the 45-second return ------------------------------------------------------------------------------


async def test_c5_an_unanswered_transfer_returns_after_exactly_45_seconds(office):
    result = simulate(
        office,
        phones={ANNA: {"answer_after": 3, "script": [*CONSULT_BERTIL, {"until": "ringback", "after": 2, "hangup": True}]}},
        calls=[group_call()],
    )
    blind, recall = first(result, "transfer.blind"), first(result, "transfer.recall")
    assert recall["t"] - blind["t"] == 45.0 and recall["after"] == 45.0 and recall["where"] == ANNA
    assert [e["reason"] for e in events(result, "leg.cancelled", where=BERTIL)] == ["recall"]
    assert first(result, "leg.cancelled", where=BERTIL)["t"] == 55.0
    returned = first(result, "transfer.returned")
    assert returned["t"] == 58.0  # Anna's phone rang again and she answered after 3 s
    assert result.phones[ANNA].recent[0] == "0812345678"


async def test_c5_when_the_transferrer_is_busy_at_the_return_the_caller_hears_busy_tone(office):
    result = simulate(
        office,
        phones={ANNA: {"answer_after": 3, "script": [
            *CONSULT_BERTIL, {"until": "ringback", "after": 2, "hangup": True}, {"after": 5, "key": 3}]}},
        calls=[group_call()],
    )
    assert first(result, "call.outgoing", where=ANNA)["digits"] == OUTSIDE  # her speed-dial key
    busy = first(result, "transfer.recall-busy")
    assert busy["t"] == 55.0
    assert first(result, "tone", where=CALLER, what="busy-tone")["t"] == 55.0
    assert result.calls[0].outcome == "busy"
    assert len(result.phones[ANNA].offered) == 1  # the return never rang her


# -- C6: the operator's voicemail and the group -------------------------------------------------------------


@pytest.mark.parametrize("mmi, lost", [
    (["**61*+46701740600**15#"], True),
    (["**61*+46701740600**25#", "#43#", "#67#"], False),
])
async def test_c6_a_short_no_reply_timer_loses_the_group_call_to_the_operators_voicemail(office, mmi, lost):
    result = simulate(
        office,
        bertil_in_switchboard=True,
        mobiles=[{"number": BERTIL_MOBILE, "voicemail_forwarding": True, "mmi": mmi}],
        calls=[group_call(hangup_after=90)],
    )
    lint = {l.mobile: l for l in result.engine.lint()}[BERTIL_MOBILE]
    operator_messages = result.network.voicemail.messages_for(BERTIL_MOBILE)
    if lost:
        answered = first(result, "group.answered")
        assert (answered["t"], answered["member"], answered["answered_by"]) == (15.0, BERTIL, OPERATOR_VM)
        assert first(result, "leg.cancelled", where=ANNA)["reason"] == "answered-elsewhere"
        assert len(operator_messages) == 1 and operator_messages[0].group == "0001"
        assert not lint.ok and "15 s" in lint.warnings[0] and "operator's voicemail answers" in lint.outcome
        assert first(result, "lint.mex", where=BERTIL_MOBILE)["t"] == 0.0
        assert not events(result, "voicemail.recording")
    else:
        assert not events(result, "group.answered") and not operator_messages
        assert first(result, "group.no-answer")["t"] == 60.0
        assert first(result, "voicemail.recording", where=f"voicemail:{ANNA}")
        assert lint.ok and "stops ringing this mobile after 20 s" in lint.outcome
        assert not events(result, "lint.mex")


# -- schedules ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("at, entry, message", [
    ("2026-03-02T12:30:00", "Lunch", "lunch"),
    ("2026-04-03T10:00:00", "Långfredagen 2026", "helg"),  # Good Friday: an Easter-based public holiday
    ("2026-12-24T10:00:00", "Julafton", "helg"),  # the admin's own dated entry
    ("2026-03-02T20:00:00", "default", "natt"),
    ("2026-03-07T10:00:00", "default", "natt"),  # Saturday
])
async def test_schedule_closed_messages(office, at, entry, message):
    result = simulate(office, calls=[group_call(at=at)])
    decision = first(result, "schedule", where="group Växeln")
    assert (decision["action"], decision["entry"], decision["message"]) == ("closed", entry, message)
    played = first(result, "play")
    assert played["message"] == message and played["reason"] == f"closed: {entry}"
    assert result.calls[0].outcome == "closed"
    assert not events(result, "group.offer", "leg.offered")


async def test_schedule_open_during_office_hours(office):
    result = simulate(office, bertil_in_switchboard=True, phones={BERTIL: {"answer_after": 4}}, calls=[group_call()])
    assert first(result, "schedule")["entry"] == "Kontorstid"
    assert first(result, "group.answered")["member"] == BERTIL


# -- menus -------------------------------------------------------------------------------------------------


def menu_call(**extra: Any) -> dict[str, Any]:
    return {"from": CALLER, "to": MENU_NUMBER, "at": MONDAY, "hangup_after": 200, **extra}


async def test_menu_invalid_then_timed_out_then_a_valid_choice(office):
    result = simulate(office, phones={CECILIA: {"answer_after": 2}},
                      calls=[menu_call(menu_keys=["7", "timeout", "2"])])
    kinds = [(e["kind"], e.get("key"), e["t"]) for e in events(result, "menu.invalid", "menu.timeout", "menu.key")]
    # greeting 6 s, key 1 s later; "fel" 2 s, greeting again 6 s, 5 s silence; greeting 6 s, key 1 s later
    assert kinds == [("menu.invalid", "7", 7.0), ("menu.timeout", None, 20.0), ("menu.key", "2", 27.0)]
    assert [e["message"] for e in events(result, "play")] == ["meny", "fel", "meny", "meny"]
    assert first(result, "menu.route")["to"] == "user 203"
    assert first(result, "call.connected")["where"] == CECILIA


async def test_menu_too_many_invalid_choices_hangs_up(office):
    result = simulate(office, calls=[menu_call(menu_keys=["7", "8", "6"])])
    assert len(events(result, "menu.invalid")) == 3
    assert first(result, "menu.hangup")["reason"] == "invalid"
    assert result.calls[0].outcome == "menu-invalid"


async def test_menu_silence_goes_to_the_switchboard(office):
    result = simulate(office, phones={ANNA: {"answer_after": 2}}, calls=[menu_call()])
    assert len(events(result, "menu.timeout")) == 3
    assert first(result, "menu.route")["to"] == "group Växeln"
    assert first(result, "group.answered")["member"] == ANNA


async def test_menu_a_key_during_the_greeting_interrupts_it(office):
    result = simulate(office, phones={ANNA: {"answer_after": 2}}, calls=[menu_call(dtmf=[{"at": 2, "keys": "1"}])])
    assert first(result, "play.interrupted")["t"] == 2.0
    assert first(result, "menu.key")["key"] == "1"
    assert first(result, "group.plan")["t"] == 2.0


# -- queue -------------------------------------------------------------------------------------------------


async def test_queue_announcements_with_position_and_max_wait(office):
    calls = [{"from": CALLER, "to": SUPPORT_GROUP, "at": MONDAY, "hangup_after": 200},
             {"from": OUTSIDE, "to": SUPPORT_GROUP, "at": "2026-03-02T10:00:05", "hangup_after": 200}]
    result = simulate(office, calls=calls)
    first_call, second_call = (c.call_id for c in result.calls)
    assert first(result, "queue.join", call=second_call)["position"] == 2
    one = [(e["t"], e["position"]) for e in events(result, "queue.announcement", call=first_call)]
    two = [(e["t"], e["position"]) for e in events(result, "queue.announcement", call=second_call)]
    assert one == [(10.0, 1), (30.0, 1), (50.0, 1)]
    assert two == [(15.0, 2), (35.0, 2), (55.0, 2)]  # its wait ends at 65 s: no announcement at 75 s
    assert first(result, "queue.timeout", call=first_call)["t"] == 60.0
    assert first(result, "queue.head", call=second_call)["t"] == 60.0
    assert first(result, "queue.timeout", call=second_call)["t"] == 65.0
    assert {e["message"] for e in events(result, "queue.announcement")} == {"kö"}
    assert len(result.engine.voicemail.messages_for(CECILIA)) == 2  # the no-answer destination


# -- users: call waiting, diversion, voicemail ---------------------------------------------------------------


@pytest.mark.parametrize("waiting", [False, True])
async def test_call_waiting_on_the_fixed_number(office, waiting):
    groups = ["EX-Samtal väntar på fastnätsnummer"] if waiting else []
    result = simulate(
        office,
        users=[{"number": ANNA, "feature_groups": groups}],
        phones={ANNA: {"answer_after": 3}},
        calls=[group_call(), {"from": OUTSIDE, "to": MAIN, "at": "2026-03-02T10:00:30", "hangup_after": 100}],
    )
    second = result.calls[1].call_id
    anna = result.phones[ANNA]
    if waiting:
        offer = first(result, "group.offer", call=second)
        assert offer["waiting"] is True and offer["legs"] == [ANNA]
        waiting_legs = anna.offered[1:]  # three rounds of 20 s while she stayed on the first call
        assert [leg.reason for leg in waiting_legs] == ["ring-time", "ring-time", "no-answer"]
        assert {leg.call.presented for leg in waiting_legs} == {"08555123450001"}
        assert first(result, "group.no-answer", call=second)["t"] == 90.0
    else:
        skip = first(result, "group.skip", call=second)
        assert (skip["member"], skip["reason"], skip["t"]) == (ANNA, "busy", 30.0)
        assert first(result, "group.no-answer", call=second)["t"] == 30.0
        assert len(anna.offered) == 1


async def test_a_direct_call_to_a_busy_user_goes_to_voicemail(office):
    result = simulate(
        office,
        phones={ANNA: {"answer_after": 3}},
        calls=[group_call(), {"from": OUTSIDE, "to": ANNA, "at": "2026-03-02T10:00:30", "hangup_after": 20}],
    )
    second = result.calls[1].call_id
    assert first(result, "user.busy", call=second)["t"] == 30.0
    assert first(result, "voicemail.recording", call=second)["t"] == 34.0
    assert result.calls[1].outcome == "caller-hung-up"


LUNCH_DIVERSION = {"reason": "lunch", "target": "voicemail", "until": "2026-03-02T13:00"}


@pytest.mark.parametrize("affects_mobile", [False, True])
async def test_diversion_in_a_group_call_with_and_without_affects_mobile(office, affects_mobile):
    groups = ["EX-Hänvisning påverkar även mobilnummer"] if affects_mobile else []
    result = simulate(
        office,
        bertil_in_switchboard=True,
        users=[{"number": BERTIL, "diversion": LUNCH_DIVERSION, "feature_groups": groups}],
        mobiles=[{"number": BERTIL_MOBILE, "answer_after": 4}],
        calls=[group_call()],
    )
    if affects_mobile:
        assert first(result, "group.skip")["member"] == BERTIL and first(result, "group.skip")["reason"] == "diverted"
        assert not events(result, "leg.offered", where=BERTIL_MOBILE)
        assert first(result, "group.no-answer")
    else:
        offer = first(result, "group.offer", member=BERTIL)
        assert offer["legs"] == [BERTIL_MOBILE]  # the desk phone is closed, the mobile still rings
        assert not events(result, "leg.offered", where=BERTIL)
        answered = first(result, "group.answered")
        assert (answered["member"], answered["answered_by"], answered["t"]) == (BERTIL, BERTIL_MOBILE, 4.0)


@pytest.mark.parametrize("affects_mobile", [False, True])
async def test_diversion_on_a_direct_call(office, affects_mobile):
    groups = ["EX-Hänvisning påverkar även mobilnummer"] if affects_mobile else []
    result = simulate(
        office,
        users=[{"number": BERTIL, "diversion": LUNCH_DIVERSION, "feature_groups": groups, "ring_time": 20}],
        mobiles=[{"number": BERTIL_MOBILE}],
        calls=[{"from": CALLER, "to": BERTIL, "at": MONDAY, "hangup_after": 60}],
    )
    diverted = first(result, "user.diverted")
    assert diverted["reason"] == "lunch" and diverted["until"].startswith("2026-03-02T13:00")
    recording = first(result, "voicemail.recording", where=f"voicemail:{BERTIL}")
    if affects_mobile:
        assert diverted["mobile_rings"] is False and not events(result, "leg.offered", where=BERTIL_MOBILE)
        assert recording["t"] == 4.0  # straight to voicemail: only the greeting first
    else:
        assert diverted["mobile_rings"] is True and first(result, "leg.offered", where=BERTIL_MOBILE)
        assert first(result, "user.no-answer")["t"] == 20.0 and recording["t"] == 24.0


async def test_diversion_has_ended_after_its_end_time(office):
    result = simulate(
        office,
        users=[{"number": BERTIL, "diversion": {**LUNCH_DIVERSION, "until": "2026-03-02T09:00"}}],
        phones={BERTIL: {"answer_after": 2}},
        calls=[{"from": CALLER, "to": BERTIL, "at": MONDAY, "hangup_after": 30}],
    )
    assert not events(result, "user.diverted")
    assert first(result, "call.connected")["where"] == BERTIL


async def test_voicemail_disabled_ex_ej_lamna_meddelande(office):
    result = simulate(
        office,
        users=[{"number": CECILIA, "feature_groups": ["EX-Ej lämna meddelande i röstbrevlåda"], "ring_time": 15}],
        calls=[{"from": CALLER, "to": CECILIA, "at": MONDAY}],
    )
    disabled = first(result, "voicemail.disabled", where=CECILIA)
    assert disabled["t"] == 15.0 and "EX-Ej lämna meddelande" in disabled["why"]
    assert first(result, "play", t=15.0)["message"] == "system:unavailable"
    assert result.calls[0].outcome == "no-voicemail"
    assert not result.engine.voicemail.messages_for(CECILIA) and not events(result, "voicemail.greeting")


@pytest.mark.parametrize("option", [True, False])
async def test_operator_option_in_voicemail(office, option):
    groups = ["EX-Val för telefonist i röstbrevlåda"] if option else []
    result = simulate(
        office,
        bertil_in_switchboard=True,
        users=[{"number": CECILIA, "feature_groups": groups, "ring_time": 15}],
        phones={BERTIL: {"answer_after": 3}},
        calls=[{"from": CALLER, "to": CECILIA, "at": MONDAY, "hangup_after": 60, "dtmf": [{"at": 20, "keys": "0"}]}],
    )
    greeting = first(result, "voicemail.greeting")
    assert greeting["operator_option"] is option
    if option:
        assert first(result, "voicemail.operator")["t"] == 20.0
        assert first(result, "group.plan", where="group Växeln")["t"] == 20.0
        answered = first(result, "group.answered")
        assert (answered["member"], answered["t"]) == (BERTIL, 23.0)
        assert first(result, "leg.offered", where=BERTIL)["caller"] == "08123456780001"
    else:
        assert not events(result, "voicemail.operator")
        assert first(result, "dtmf.passed", keys="0")
        assert result.calls[0].outcome == "caller-hung-up" or result.calls[0].outcome == "voicemail"
