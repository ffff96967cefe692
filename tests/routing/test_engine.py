"""The routing engine's pieces without a server: presentation, the model builder, edge cases, the CLI."""

from __future__ import annotations

import argparse
import ast
import io
import json
import pathlib
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import yaml

from simulators import simulate_cli as routing_cli
from provisioning.routing.endpoints import ScriptedEndpoint
from provisioning.routing.engine import Engine
from provisioning.routing.menus import DestinationKind
from provisioning.routing.mex_lint import MexSettings, group_call_outcome
from provisioning.routing.model import RoutingModelError, merge_documents, organisation_from_dict
from provisioning.routing.presentation import PresentationLog, callback_number, dialled_to_e164, national, present
from simulators.scenario import load_scenario, run_scenario
from simulators.desk_phone import DeskPhone

ROOT = pathlib.Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Europe/Stockholm")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=TZ)
ANNA, BERTIL, CECILIA = "+46854689901", "+46854689902", "+46854689903"
CALLER = "+46812345678"

ISSUE5 = """
messages:
  - {name: lunch, text: "Vi har lunchstängt, välkommen åter klockan 13."}
  - {name: natt, text: "Växeln är stängd. Våra öppettider är vardagar 8 till 17."}
  - {name: helg, text: "Idag har vi stängt."}
groups:
  - name: Växeln
    number: "+46854689914"
    group_id: "0001"
    strategy: ring_all
    ring_time: 20
    members:
      - {user: "+46854689901", logged_in: true}
      - {user: "+46854689902", logged_in: false}
    schedule:
      - {name: Julafton, date: "2026-12-24", action: closed, message: helg}
      - {name: Lunch, weekdays: [mon, tue, wed, thu, fri], from: "12:00", to: "13:00", action: closed, message: lunch}
      - {name: Kontorstid, weekdays: [mon, tue, wed, thu, fri], from: "08:00", to: "17:00", action: open}
      - {name: default, action: closed, message: natt}
    holidays: {country: SE, action: closed, message: helg}
"""


def org(**overlay):
    base = yaml.safe_load((ROOT / "tests" / "data" / "exempel.yaml").read_text())
    base["users"].append({"name": "Cecilia Carlsson", "number": CECILIA, "extension": "203"})
    return organisation_from_dict(merge_documents(merge_documents(base, yaml.safe_load(ISSUE5)), overlay),
                                  holiday_years=[2026])


# -- presentation (C1) -----------------------------------------------------------------------------------


@pytest.mark.parametrize("caller, group, shown", [
    ("+46854689914", "0001", "08546899140001"),  # the seed's example
    ("+46701234567", "0001", "07012345670001"),
    ("+4930123456", "0002", "0049301234560002"),
    ("+46812345678", None, "0812345678"),
    ("anonymous", "0001", None),
    (None, "0001", None),
])
def test_presentation(caller, group, shown):
    assert present(caller, group) == shown


@pytest.mark.parametrize("dialled, number", [
    ("08546899140001", "+46854689914"),
    ("0812345678", "+46812345678"),
    ("+46812345678", "+46812345678"),
    ("07012345670001", "+46701234567"),
    ("12345678", None),  # no area code
    # German numbers vary in length: with the suffix it is still a valid number, so the rule keeps it;
    # the engine's presentation log (below) is what makes such callbacks exact.
    ("00493012345670001", "+493012345670001"),
])
def test_callback_rule(dialled, number):
    assert callback_number(dialled, ["0001"]) == number


def test_the_presentation_log_is_exact_where_the_rule_must_guess():
    log = PresentationLog()
    shown = present("+493012345670", "0001")
    log.issued(shown, "+493012345670")
    assert log.resolve(shown, ["0001"]) == "+493012345670"
    assert log.resolve("08546899140001", ["0001"]) == "+46854689914"  # never issued: the rule
    assert national("+46854689901") == "0854689901" and dialled_to_e164("0854689901") == "+46854689901"


# -- the model builder -------------------------------------------------------------------------------------


def test_the_issue_5_example_builds_on_the_foundation_example():
    model = org()
    group = model.group("0001")
    assert group is model.group("Växeln") and group.numbers == ("+46854689914",)
    assert [(m.user, m.logged_in) for m in group.members] == [(ANNA, True), (BERTIL, False)]
    assert model.numbers["+46854689914"].kind is DestinationKind.GROUP
    assert model.user("201").number == ANNA and model.user(ANNA).desk_phones[0].model == "Yealink T46S"
    names = [e.name for e in group.calendar.schedule.entries]
    assert names[0] == "Julafton" and "Långfredagen 2026" in names and names[-1] == "default"
    assert "Julafton 2026" not in names  # the admin's own entry for the day wins
    assert group.calendar.schedule.evaluate(datetime(2026, 3, 2, 12, 30, tzinfo=TZ)).message == "lunch"


def test_feature_groups_and_diversion_in_the_dict_shape():
    model = org(users=[{"number": ANNA, "feature_groups": ["EX-Ej lämna meddelande i röstbrevlåda",
                                                          "EX-Hänvisning påverkar även mobilnummer"],
                        "mobiles": [{"number": "+46701234501", "profile": "mex"}],
                        "diversion": {"reason": "meeting", "target": "colleague", "number": "202",
                                      "until": "2026-03-02T11:00"}}])
    anna = model.users[ANNA]
    assert not anna.flags.voicemail and anna.flags.diversion_affects_mobile
    assert anna.diverted(T0).target_number == "202" and anna.diverted(datetime(2026, 3, 2, 11, 0, tzinfo=TZ)) is None
    assert model.numbers["+46701234501"].target == "+46701234501"  # a Mex mobile is the secondary number


def test_all_problems_are_reported_together():
    with pytest.raises(RoutingModelError) as caught:
        org(groups=[{"name": "Fel", "number": "+46854689999", "members": ["+46854680000"],
                     "schedule": [{"name": "default", "action": "closed", "message": "saknas"}],
                     "no_answer": {"menu": "Ingen"}}])
    text = str(caught.value)
    assert "member +46854680000 is not a user" in text and "'saknas'" in text and "no menu 'Ingen'" in text


# -- engine edge cases ----------------------------------------------------------------------------------------


def test_several_endpoints_at_one_number_fork_and_the_first_answer_wins():
    engine = Engine(org(), start=T0)
    desk = ScriptedEndpoint(engine.clock, ANNA, answer_after=4)
    softphone = ScriptedEndpoint(engine.clock, ANNA, answer_after=2)
    engine.register(desk)
    engine.register(softphone)
    engine.call(CALLER, ANNA, hangup_after=30)
    engine.run()
    assert softphone.legs[0].state == "ended" and desk.legs[0].reason == "answered-elsewhere"
    assert [e.offset_seconds for e in engine.trace.of_kind("call.connected")] == [2.0]


def test_round_robin_remembers_who_took_the_last_call():
    model = org(groups=[{"name": "Växeln", "number": "+46854689914", "group_id": "0001", "strategy": "round_robin",
                         "ring_time": 10, "members": [ANNA, BERTIL, CECILIA]}])
    engine = Engine(model, start=T0)
    for number in (ANNA, BERTIL, CECILIA):
        engine.register(ScriptedEndpoint(engine.clock, number, answer_after=2))
    for minute in range(3):
        engine.call(CALLER, "+46854689914", at=T0.replace(minute=minute), hangup_after=20)
    engine.run()
    assert [e.detail["member"] for e in engine.trace.of_kind("group.answered")] == [ANNA, BERTIL, CECILIA]


def test_a_call_to_a_number_outside_the_service_cannot_be_transferred():
    engine = Engine(org(), start=T0)
    private = "+46709999999"  # e.g. a non-Mex mobile: not a number of the service
    phone = DeskPhone(engine.clock, number=private, answer_after=1, trace=engine.trace,
                      script=[{"until": "answered", "after": 2, "press": "##"}]).connect(engine)
    call = engine.call(CALLER, private, hangup_after=10)
    engine.run()
    assert not call.via_service and phone.calls == []
    assert engine.trace.of_kind("feature.refused")[0].offset_seconds == 3.0


def test_hanging_up_while_dialling_gives_the_held_caller_straight_back():
    engine = Engine(org(), start=T0)
    DeskPhone(engine.clock, number=ANNA, extension="201", answer_after=2, trace=engine.trace, script=[
        {"until": "answered", "after": 2, "press": "##"}, {"until": "dial-tone", "press": "20"},
        {"after": 1, "hangup": True}]).connect(engine)
    engine.call(CALLER, "+46854689914", hangup_after=30)
    engine.run()
    recall = engine.trace.of_kind("transfer.recall")[0]
    assert (recall.offset_seconds, recall.detail["reason"]) == (5.0, "held")
    assert engine.trace.of_kind("transfer.returned")[0].offset_seconds == 7.0
    assert not engine.trace.of_kind("feature.dial")  # the inter-digit timer never ran out


@pytest.mark.parametrize("keys, rings_at", [("202#", 5.0), ("202", 9.0)])
def test_hash_after_the_number_makes_it_ring_sooner(keys, rings_at):
    engine = Engine(org(), start=T0)
    DeskPhone(engine.clock, number=ANNA, answer_after=2, trace=engine.trace, script=[
        {"until": "answered", "after": 3, "press": "##"}, {"until": "dial-tone", "press": keys}]).connect(engine)
    bertil = ScriptedEndpoint(engine.clock, BERTIL)
    engine.register(bertil)
    engine.call(CALLER, "+46854689914", hangup_after=30)
    engine.run()
    assert (bertil.legs[0].offered_at - T0).total_seconds() == rings_at  # else the 4 s inter-digit timeout


def test_a_single_hash_in_a_call_is_passed_on_after_the_feature_timeout():
    engine = Engine(org(), start=T0)
    DeskPhone(engine.clock, number=ANNA, answer_after=1, trace=engine.trace,
              script=[{"until": "answered", "after": 1, "press": "#"}, {"after": 5, "press": "#5"}]).connect(engine)
    engine.call(CALLER, "+46854689914", hangup_after=20)
    engine.run()
    passed = [(e.offset_seconds, e.detail["keys"]) for e in engine.trace.of_kind("dtmf.passed")]
    assert passed == [(3.5, "#"), (7.0, "#5")]
    assert not engine.trace.of_kind("feature.consult")


@pytest.mark.parametrize("affects_mobile", [False, True])
def test_call_forwarding_and_forwarding_affects_mobile(affects_mobile):
    mobile, elsewhere = "+46701234501", "+46855512345"
    features = {"forwarding_affects_mobile": affects_mobile}
    engine = Engine(org(users=[{"number": ANNA, "forward_to": elsewhere, "features": features,
                                "mobiles": [{"number": mobile, "profile": "mex"}]}]), start=T0)
    handset = ScriptedEndpoint(engine.clock, mobile, answer_after=3)
    for endpoint in (ScriptedEndpoint(engine.clock, elsewhere, answer_after=1), handset):
        engine.register(endpoint)
    engine.call(CALLER, ANNA, hangup_after=10)  # the fixed number is always forwarded
    engine.call(CALLER, mobile, at=T0.replace(minute=1), hangup_after=10)  # the Mex mobile only with the flag
    engine.run()
    forwarded = [e.detail["call"] for e in engine.trace.of_kind("user.forwarded")]
    assert forwarded == (["c1", "c2"] if affects_mobile else ["c1"])
    assert bool(handset.legs) is not affects_mobile


def test_voicemail_ends_a_message_at_its_maximum_length():
    engine = Engine(org(), start=T0, voicemail_max=30)
    engine.register(ScriptedEndpoint(engine.clock, CECILIA))  # rings, never answers
    call = engine.call(CALLER, CECILIA)
    engine.run()
    assert call.outcome == "voicemail"
    assert (call.ended_at - T0).total_seconds() == 25 + 4 + 30  # ring time, greeting, message


def test_group_call_outcome_in_words():
    assert "after 15 s" in group_call_outcome(MexSettings(15, False, False), 20)
    assert "stops ringing this mobile after 20 s" in group_call_outcome(MexSettings(25, False, False), 20)
    assert "at once" in group_call_outcome(MexSettings(None, False, False, forward_unconditional=True), 20)


# -- simulators and CLI ----------------------------------------------------------------------------------


def test_the_desk_phone_simulator_is_independent_of_the_server():
    source = ROOT / "simulators" / "desk_phone.py"
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ImportFrom):
            assert not (node.module or "").startswith("provisioning")
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith("provisioning") for a in node.names)


def test_a_script_step_with_two_actions_is_refused():
    with pytest.raises(ValueError, match="one action"):
        DeskPhone(None, number=ANNA, script=[{"press": "##", "hangup": True}])


def _parse(argv):
    parser = argparse.ArgumentParser()
    routing_cli.add_simulate_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_simulate_call_prints_json_lines(tmp_path):
    org_file = tmp_path / "org.yaml"
    doc = merge_documents(yaml.safe_load((ROOT / "tests" / "data" / "exempel.yaml").read_text()), yaml.safe_load(ISSUE5))
    org_file.write_text(yaml.safe_dump(doc, allow_unicode=True))
    out = io.StringIO()
    args = _parse(["simulate", "call", "--org", str(org_file), "--from", CALLER, "--to", "+46854689914",
                   "--at", "2026-03-02T10:00", "--answer", "201=3", "--hangup-after", "30", "--json"])
    assert routing_cli.run_simulate(args, out=out) == 0
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert all({"t", "kind", "where"} <= set(e) for e in events)
    answered = next(e for e in events if e["kind"] == "group.answered")
    assert (answered["t"], answered["member"]) == (3.0, ANNA)

    out = io.StringIO()
    args = _parse(["simulate", "call", "--org", str(org_file), "--from", CALLER, "--to", "+46854689914",
                   "--at", "2026-03-02T12:15"])
    assert routing_cli.run_simulate(args, out=out) == 0
    text = out.getvalue()
    assert "schedule" in text and "Lunch" in text and "12:15:00" in text


def test_simulate_scenario_exits_1_when_an_expectation_fails(tmp_path):
    (tmp_path / "exempel.yaml").write_text((ROOT / "tests" / "data" / "exempel.yaml").read_text())
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump({
        "organization_file": "exempel.yaml",
        "phones": [{"user": ANNA, "answer_after": 2}],
        "calls": [{"from": CALLER, "to": ANNA, "at": "2026-03-02T10:00:00", "hangup_after": 10}],
        "expect": [{"kind": "call.connected", "where": ANNA, "t": 2.0}, {"kind": "voicemail.recording"}],
    }))
    out = io.StringIO()
    assert routing_cli.run_simulate(_parse(["simulate", "scenario", str(scenario)]), out=out) == 1
    assert "FAILED no event like {'kind': 'voicemail.recording'}" in out.getvalue()
    result = run_scenario(load_scenario(scenario))
    assert result.failures == ["no event like {'kind': 'voicemail.recording'}"] and result.checked == 2
