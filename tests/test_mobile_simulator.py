"""The Mex mobile simulator: MMI codes, GSM call handling, and the C6 voicemail problem.

The simulator is driven by the routing engine's own clock and legs here, which
is also the check that it fits the endpoint contract without importing it.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from provisioning.routing.clock import Trace, VirtualClock
from provisioning.routing.endpoints import CallLeg, CallOffer, EndpointProtocol, ScriptedEndpoint
from provisioning.routing.mex_lint import MexSettings, mobile_warnings, suggested_no_reply_timer
from simulators.mobile import (
    DEFAULT_VOICEMAIL_NUMBER as VM,
    GsmNetwork,
    MmiSyntaxError,
    parse_mmi,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
ME = "+46701234567"
OTHER = "+46709876543"
CALL = CallOffer("c1", caller="+46812345678", called="+4636305500", presented="08123456780001", group="0001")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def net(clock) -> GsmNetwork:
    return GsmNetwork(clock, trace=Trace(clock))


def offer(clock, mobile, call=CALL) -> CallLeg:
    leg = CallLeg(clock, call, mobile.address)
    mobile.offer(leg)
    return leg


def at(clock, leg_time) -> float:
    return (leg_time - clock.start).total_seconds()


# -- MMI parsing and procedures -----------------------------------------------------


@pytest.mark.parametrize(
    "text, procedure, code, fields",
    [
        ("*21#", "activation", "21", ()),
        ("**21*+46701740600#", "registration", "21", ("+46701740600",)),
        ("**61*+46701740600**25#", "registration", "61", ("+46701740600", "", "25")),
        ("#67#", "deactivation", "67", ()),
        ("##002#", "erasure", "002", ()),
        ("*#43#", "interrogation", "43", ()),
        ("*43*11#", "activation", "43", ("11",)),
        (" #43# ", "deactivation", "43", ()),
    ],
)
def test_parse_mmi(text, procedure, code, fields):
    request = parse_mmi(text)
    assert (request.procedure, request.code, request.fields) == (procedure, code, fields)


@pytest.mark.parametrize("text", ["", "21", "*21", "*2#", "*21*abc#", "***21#", "*21*12#3#", "hello"])
def test_parse_mmi_rejects_non_mmi(text):
    with pytest.raises(MmiSyntaxError):
        parse_mmi(text)


@pytest.mark.parametrize("code, key", [("21", "cfu"), ("67", "cfb"), ("61", "cfnry"), ("62", "cfnrc")])
def test_forwarding_lifecycle_for_each_service(net, code, key):
    phone = net.add_mobile(ME)
    assert getattr(phone.settings(), key) is None

    result = phone.dial(f"**{code}*{OTHER}#")
    assert result.ok and result.procedure == "registration" and result.text.startswith("Registration successful")
    assert getattr(phone.settings(), key) == OTHER

    assert phone.dial(f"#{code}#").ok  # deactivation keeps the number registered
    assert getattr(phone.settings(), key) is None
    assert "not active (registered to +46709876543" in phone.dial(f"*#{code}#").text

    assert phone.dial(f"*{code}#").ok  # re-activation uses the registered number
    assert getattr(phone.settings(), key) == OTHER

    assert phone.dial(f"##{code}#").ok  # erasure forgets it
    assert getattr(phone.settings(), key) is None
    refused = phone.dial(f"*{code}#")
    assert not refused.ok and refused.error == "ss-error-status"

    assert phone.dial(f"*{code}*{OTHER}#").ok  # *SC*number# registers and activates too
    assert getattr(phone.settings(), key) == OTHER


def test_interrogation_texts(net):
    phone = net.add_mobile(ME)
    assert phone.dial("*#21#").text == "Call forwarding unconditional: not active"
    phone.dial(f"**61*{VM}**15#")
    assert phone.dial("*#61#").text == f"Call forwarding on no reply: active for voice calls to {VM} after 15 s"
    phone.dial("#61#")
    assert phone.dial("*#61#").text == f"Call forwarding on no reply: not active (registered to {VM} after 15 s)"
    assert phone.dial("*#43#").text == "Call waiting: not active"
    phone.dial("*43#")
    assert phone.dial("*#43#").text == "Call waiting: active for voice calls"
    phone.dial(f"**67*{VM}#")
    assert phone.dial("*#004#").text.splitlines() == [
        f"Call forwarding on busy: active for voice calls to {VM}",
        f"Call forwarding on no reply: not active (registered to {VM} after 15 s)",
        "Call forwarding on not reachable: not active",
    ]


@pytest.mark.parametrize("seconds", [5, 10, 15, 20, 25, 30])
def test_no_reply_timer_accepts_5_to_30_in_steps_of_5(net, seconds):
    phone = net.add_mobile(ME)
    assert phone.dial(f"**61*{VM}**{seconds}#").ok
    assert phone.settings().cfnry_timer == seconds and phone.settings().no_reply_timer == seconds


@pytest.mark.parametrize("seconds", ["35", "7", "0", "4", "31", "100"])
def test_no_reply_timer_refuses_other_values(net, seconds):
    phone = net.add_mobile(ME)
    result = phone.dial(f"**61*{VM}**{seconds}#")
    assert not result.ok and result.error == "unexpected-data-value"
    assert "5 to 30 seconds in steps of 5" in result.text
    assert phone.settings().cfnry is None and phone.settings().cfnry_timer == 30


def test_no_reply_timer_defaults_to_the_networks(clock):
    telia = GsmNetwork(clock)
    phone = telia.add_mobile(ME)
    phone.dial(f"**61*{VM}**10#")
    phone.dial(f"**61*{VM}#")  # a new registration without T takes the network default again
    assert phone.settings().cfnry_timer == 30
    norway = GsmNetwork(clock, default_no_reply_timer=20)
    assert norway.add_mobile(ME).no_reply_timer == 20


def test_timer_only_belongs_to_no_reply(net):
    phone = net.add_mobile(ME)
    result = phone.dial(f"**21*{OTHER}**20#")
    assert not result.ok and result.error == "unexpected-data-value"
    assert not phone.dial("#61***20#").ok


def test_all_forwarding_groups(net):
    phone = net.add_mobile(ME)
    assert phone.dial(f"**002*{VM}**20#").ok
    s = phone.settings()
    assert (s.cfu, s.cfb, s.cfnry, s.cfnrc, s.cfnry_timer) == (VM, VM, VM, VM, 20)
    assert phone.dial("##004#").ok  # all conditional: only CFU survives
    s = phone.settings()
    assert (s.cfu, s.cfb, s.cfnry, s.cfnrc, s.cfnry_timer) == (VM, None, None, None, 30)
    assert phone.dial(f"**004*{OTHER}#").ok
    assert phone.dial("#002#").ok  # deactivate everything, numbers stay registered
    assert phone.settings().cfb is None
    assert phone.dial("*004#").ok
    assert phone.settings().cfb == OTHER and phone.settings().cfu is None
    assert phone.dial("##002#").ok  # erase all forwarding
    s = phone.settings()
    assert (s.cfu, s.cfb, s.cfnry, s.cfnrc) == (None, None, None, None)
    assert not phone.dial("*002#").ok


def test_call_waiting_codes(net):
    phone = net.add_mobile(ME, call_waiting=True)
    assert phone.dial("#43#").ok and not phone.call_waiting
    assert phone.dial("*43#").ok and phone.call_waiting
    assert phone.dial("*43*11#").ok
    for illegal in ("**43#", "##43#"):
        result = phone.dial(illegal)
        assert not result.ok and result.error == "illegal-ss-operation"
    assert not phone.dial("*43*11*5#").ok


def test_basic_service_groups(net):
    phone = net.add_mobile(ME)
    assert phone.dial(f"**21*{OTHER}*11#").ok  # telephony
    assert phone.dial("*#21**10#").ok  # all teleservices include telephony; BS is the 2nd field
    assert phone.dial("*#21*10#").error == "invalid-mmi"  # the 1st field is the number
    assert phone.dial(f"**61*{VM}*19*15#").ok and phone.no_reply_timer == 15
    fax = phone.dial(f"**67*{OTHER}*13#")
    assert not fax.ok and fax.error == "basic-service-not-provided" and "facsimile" in fax.text
    unknown = phone.dial(f"**67*{OTHER}*99#")
    assert not unknown.ok and unknown.error == "invalid-mmi"


def test_other_refusals(net):
    phone = net.add_mobile(ME)
    assert phone.dial("*99#").error == "invalid-mmi"
    assert phone.dial("*#31#").error == "not-supported"  # CLIR: real, but not modelled
    assert phone.dial("hello").error == "invalid-mmi"
    assert phone.dial("**21#").error == "illegal-ss-operation"  # registration without a number
    assert phone.dial(f"**21*{ME}#").error == "illegal-ss-operation"  # to itself
    assert phone.dial(f"#21*{OTHER}#").error == "invalid-mmi"
    phone.switch_off()
    off = phone.dial("#43#")
    assert not off.ok and off.error == "no-network"


# -- calls arriving ------------------------------------------------------------------------


def test_mobile_fits_the_endpoint_protocol(net):
    assert isinstance(net.add_mobile(ME), EndpointProtocol)
    assert isinstance(net.voicemail, EndpointProtocol)


def test_idle_phone_rings_and_answers(clock, net):
    phone = net.add_mobile(ME, answer_after=6)
    leg = offer(clock, phone)
    assert leg.state == "ringing"
    clock.run_until_idle()
    assert leg.state == "answered" and leg.answered_by == ME and at(clock, leg.answered_at) == 6
    assert phone.busy
    leg.hangup()
    clock.run_until_idle()
    assert not phone.busy


def test_user_hangs_up(clock, net):
    phone = net.add_mobile(ME, answer_after=1)
    leg = offer(clock, phone)
    clock.run_until_idle()
    phone.hang_up()
    assert leg.state == "ended" and leg.ended_by == "endpoint"
    clock.run_until_idle()
    assert not phone.busy


def test_never_answers_without_forwarding_rings_until_cancelled(clock, net):
    phone = net.add_mobile(ME)
    leg = offer(clock, phone)
    clock.call_later(40, leg.cancel, "ring-timeout")
    clock.run_until_idle()
    assert leg.state == "cancelled" and clock.offset == 40 and not phone.alerting


def test_network_releases_unanswered_calls_when_configured(clock):
    net = GsmNetwork(clock, no_answer_release=60)
    leg = offer(clock, net.add_mobile(ME))
    clock.run_until_idle()
    assert leg.state == "rejected" and leg.reason == "no-answer" and clock.offset == 60


def test_no_reply_forwarding_to_voicemail(clock, net):
    phone = net.add_mobile(ME)
    phone.dial(f"**61*{VM}**20#")
    leg = offer(clock, phone)
    clock.run_until_idle()
    assert leg.forwards == [(VM, "no-reply")]
    assert leg.state == "answered" and leg.answered_by == VM and at(clock, leg.answered_at) == 20
    [message] = net.voicemail.messages
    assert (message.mailbox, message.caller, message.reason, message.group) == (ME, CALL.caller, "no-reply", "0001")
    clock.advance(12)
    leg.hangup()
    clock.run_until_idle()
    assert message.seconds == 12


def test_user_answer_wins_a_tie_with_the_no_reply_timer(clock, net):
    phone = net.add_mobile(ME, answer_after=20)
    phone.dial(f"**61*{VM}**20#")
    leg = offer(clock, phone)
    clock.run_until_idle()
    assert leg.answered_by == ME and not net.voicemail.messages


def test_answer_before_the_no_reply_timer(clock, net):
    phone = net.add_mobile(ME, answer_after=8)
    phone.dial(f"**61*{VM}**10#")
    leg = offer(clock, phone)
    clock.run_until_idle()
    assert leg.answered_by == ME and leg.forwards == []


def test_no_reply_forwarding_to_another_mobile(clock, net):
    phone = net.add_mobile(ME)
    colleague = net.add_mobile(OTHER, answer_after=3)
    phone.dial(f"**61*{OTHER}**10#")
    leg = offer(clock, phone)
    clock.run_until_idle()
    assert leg.answered_by == OTHER and at(clock, leg.answered_at) == 13
    assert colleague.busy and not phone.busy
    colleague.hang_up()  # the forwarded-to party ends the call: the engine's leg ends too
    assert leg.state == "ended" and leg.ended_by == "endpoint"
    clock.run_until_idle()
    assert not colleague.busy


def test_forwarding_to_a_number_outside_the_network(clock):
    net = GsmNetwork(clock, external=lambda number: desk_phone if number == "+4636305525" else None)
    desk_phone = ScriptedEndpoint(clock, "+4636305525", answer_after=2)
    phone = net.add_mobile(ME)
    phone.dial("**21*+4636305525#")
    leg = offer(clock, phone)
    clock.run_until_idle()
    assert leg.forwards == [("+4636305525", "unconditional")] and leg.answered_by == "+4636305525"
    phone.dial("**21*+4699999999#")  # nobody knows this number
    lost = offer(clock, phone, CallOffer("c2", "+46812345678", ME))
    clock.run_until_idle()
    assert lost.state == "rejected" and lost.reason == "unreachable"


def test_forwarding_loop_is_stopped(clock, net):
    a = net.add_mobile(ME)
    b = net.add_mobile(OTHER)
    a.dial(f"**21*{OTHER}#")
    b.dial(f"**21*{ME}#")
    leg = offer(clock, a)
    clock.run_until_idle()
    assert leg.state == "rejected" and leg.reason == "unreachable"
    assert len(leg.forwards) == net.max_forwardings + 1


def test_unconditional_forwarding_applies_even_when_switched_off(clock, net):
    phone = net.add_mobile(ME, switched_on=False)
    phone.switch_on()
    phone.dial(f"**21*{VM}#")
    phone.switch_off()
    leg = offer(clock, phone)
    assert leg.forwards == [(VM, "unconditional")] and leg.state == "answered"


@pytest.mark.parametrize("why", ["switched_off", "no_coverage"])
def test_not_reachable(clock, net, why):
    phone = net.add_mobile(ME, answer_after=1)
    phone.dial(f"**62*{VM}#")
    if why == "switched_off":
        phone.switch_off()
    else:
        phone.reachable = False
    diverted = offer(clock, phone)
    assert diverted.forwards == [(VM, "not-reachable")] and diverted.answered_by == VM
    phone.forwarding["62"].active = False  # as if #62# had been sent while it was still on
    lost = offer(clock, phone, CallOffer("c2", "+46812345678", ME))
    assert lost.state == "rejected" and lost.reason == "unreachable"


def test_switching_off_while_ringing_applies_not_reachable(clock, net):
    phone = net.add_mobile(ME, voicemail_forwarding=True)
    leg = offer(clock, phone)
    clock.call_later(5, phone.switch_off)
    clock.run_until_idle()
    assert leg.forwards == [(VM, "not-reachable")] and at(clock, leg.answered_at) == 5


def test_busy_without_call_waiting(clock, net):
    phone = net.add_mobile(ME)
    phone.busy = True
    leg = offer(clock, phone)
    assert leg.state == "rejected" and leg.reason == "busy"
    phone.dial(f"**67*{VM}#")
    diverted = offer(clock, phone, CallOffer("c2", "+46812345678", ME))
    assert diverted.forwards == [(VM, "busy")] and diverted.answered_by == VM


def test_busy_with_call_waiting_rings_as_waiting(clock, net):
    phone = net.add_mobile(ME, call_waiting=True)
    phone.dial(f"**67*{VM}#")  # CW takes precedence over CFB
    phone.busy = True
    leg = offer(clock, phone)
    assert leg.state == "ringing" and phone.waiting is leg
    third = offer(clock, phone, CallOffer("c3", "+46812345678", ME))  # only one call may wait
    assert third.forwards == [(VM, "busy")]
    clock.call_later(30, leg.cancel, "ring-timeout")
    clock.run_until_idle()
    assert leg.state == "cancelled" and phone.waiting is None


def test_waiting_call_then_no_reply_forwarding(clock, net):
    phone = net.add_mobile(ME, call_waiting=True)
    phone.dial(f"**61*{VM}**15#")
    phone.busy = True
    leg = offer(clock, phone)
    clock.run_until_idle()
    assert leg.forwards == [(VM, "no-reply")] and at(clock, leg.answered_at) == 15


def test_waiting_call_picked_up(clock, net):
    phone = net.add_mobile(ME, answer_after=1, answers_waiting_after=4, call_waiting=True)
    first = offer(clock, phone)
    clock.run_until_idle()
    second = offer(clock, phone, CallOffer("c2", "+46812345678", ME))
    clock.run_until_idle()
    assert first.state == second.state == "answered" and at(clock, second.answered_at) == 5
    assert len(phone.calls) == 2


@pytest.mark.parametrize("cfb", [False, True])
def test_user_rejects_is_user_determined_busy(clock, net, cfb):
    phone = net.add_mobile(ME, rejects=True, reject_after=2)
    if cfb:
        phone.dial(f"**67*{VM}#")
    leg = offer(clock, phone)
    clock.run_until_idle()
    if cfb:
        assert leg.forwards == [(VM, "busy")] and at(clock, leg.answered_at) == 2
    else:
        assert leg.state == "rejected" and leg.reason == "busy" and clock.offset == 2


def test_cancel_while_ringing_drops_the_phones_timers(clock, net):
    phone = net.add_mobile(ME, answer_after=30)
    phone.dial(f"**61*{VM}**25#")
    leg = offer(clock, phone)
    clock.call_later(10, leg.cancel, "caller-hangup")
    clock.run_until_idle()  # no late answer, no IllegalLegTransition
    assert leg.state == "cancelled" and clock.offset == 10 and not phone.alerting


def test_cancel_reaches_a_forwarded_to_mobile(clock, net):
    phone = net.add_mobile(ME)
    colleague = net.add_mobile(OTHER)
    phone.dial(f"**61*{OTHER}**5#")
    leg = offer(clock, phone)
    clock.advance(6)
    assert colleague.alerting and leg.state == "ringing"
    leg.cancel("answered-elsewhere")
    clock.run_until_idle()
    assert not colleague.alerting and clock.offset == 6


def test_operator_style_voicemail_defaults(net):
    s = net.add_mobile(ME, voicemail_forwarding=True).settings()
    assert (s.cfu, s.cfb, s.cfnry, s.cfnrc, s.cfnry_timer) == (None, VM, VM, VM, 30)


def test_network_trace_tells_the_story(clock, net):
    phone = net.add_mobile(ME)
    phone.dial(f"**61*{VM}**5#")
    offer(clock, phone)
    clock.run_until_idle()
    kinds = [e.kind for e in net.trace]
    assert kinds == ["mobile.mmi", "mobile.offered", "mobile.alerting", "mobile.no-reply", "network.forward", "voicemail.answered"]


# -- C6 at the endpoint level ----------------------------------------------------------


def ring_as_group_member(clock, mobile, ring_time):
    """What the engine does for one member: offer, and cancel when the group's ring time is over."""
    trace = Trace(clock)
    leg = CallLeg(clock, CALL, mobile.address, trace=trace)
    mobile.offer(leg)
    clock.call_later(ring_time, leg.cancel, "ring-timeout")
    clock.run_until_idle()
    return leg, trace


def test_c6_short_no_reply_timer_lets_operator_voicemail_take_the_group_call(clock, net):
    member = net.add_mobile(ME)
    assert member.dial(f"**61*{VM}**15#").ok
    leg, trace = ring_as_group_member(clock, member, ring_time=20)
    assert leg.state == "answered" and leg.answered_by == VM and at(clock, leg.answered_at) == 15
    assert [m.mailbox for m in net.voicemail.messages] == [ME]
    assert [(e.offset_seconds, e.kind) for e in trace] == [
        (0, "leg.offered"),
        (0, "leg.ringing"),
        (15, "leg.forwarded"),
        (15, "leg.answered"),
    ]
    assert mobile_warnings(member.settings(), 20)


def test_c6_fixed_with_a_25_second_timer(clock, net):
    member = net.add_mobile(ME)
    assert member.dial(f"**61*{VM}**25#").ok
    leg, _ = ring_as_group_member(clock, member, ring_time=20)
    assert leg.state == "cancelled" and leg.reason == "ring-timeout" and clock.offset == 20
    assert leg.answered_at is None and not net.voicemail.messages
    assert mobile_warnings(member.settings(), 20) == []


# -- lint ----------------------------------------------------------------------------------


def test_lint_short_timer():
    [warning] = mobile_warnings(MexSettings(no_reply_timer=15, call_waiting=False, forward_on_busy=False), 20)
    assert "15 s" in warning and "20 s" in warning and "voicemail answers the group call" in warning
    assert "**61*<voicemail number>**25#" in warning


def test_lint_clean_settings():
    assert mobile_warnings(MexSettings(no_reply_timer=25, call_waiting=False, forward_on_busy=False), 20) == []
    assert mobile_warnings(MexSettings(no_reply_timer=None, call_waiting=False, forward_on_busy=False), 45) == []


def test_lint_each_rule():
    cw = mobile_warnings(MexSettings(30, call_waiting=True, forward_on_busy=False), 20)
    assert len(cw) == 1 and "#43#" in cw[0] and "waiting call" in cw[0]
    cfb = mobile_warnings(MexSettings(30, call_waiting=False, forward_on_busy=True), 20)
    assert len(cfb) == 1 and "#67#" in cfb[0] and "voicemail" in cfb[0]
    below_minimum = mobile_warnings(MexSettings(20, False, False), 15)
    assert len(below_minimum) == 1 and "minimum of 25 s" in below_minimum[0]
    equal = mobile_warnings(MexSettings(20, False, False), 20)
    assert len(equal) == 1 and "not longer than" in equal[0]
    too_long_ring = mobile_warnings(MexSettings(30, False, False), 30)
    assert len(too_long_ring) == 1 and "No GSM timer" in too_long_ring[0]
    cfu = mobile_warnings(MexSettings(None, False, False, forward_unconditional=True), 20)
    assert len(cfu) == 1 and "#21#" in cfu[0]
    everything = mobile_warnings(MexSettings(15, True, True, True), 20)
    assert len(everything) == 4
    with pytest.raises(ValueError):
        mobile_warnings(MexSettings(25, False, False), 0)


def test_suggested_timer():
    assert [suggested_no_reply_timer(r) for r in (10, 20, 25, 29, 30)] == [25, 25, 30, 30, None]


def test_lint_reads_a_simulator_snapshot(net):
    phone = net.add_mobile(ME, voicemail_forwarding=True, call_waiting=True)
    warnings = mobile_warnings(phone.settings(), 20)
    assert len(warnings) == 2  # 30 s no-reply is fine for 20 s; CW and CFB are not
    phone.dial("#43#")
    phone.dial("#67#")
    assert mobile_warnings(phone.settings(), 20) == []


def test_simulator_is_independent_of_the_server():
    import ast
    import pathlib

    source = pathlib.Path(__file__).resolve().parent.parent / "simulators" / "mobile.py"
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ImportFrom):
            assert not (node.module or "").startswith("provisioning")
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith("provisioning") for a in node.names)


def test_is_fast(clock, net):
    """A full hour of a busy member's calls in virtual time, well under a second of real time."""
    import time

    phone = net.add_mobile(ME, answer_after=12, voicemail_forwarding=True)
    started = time.perf_counter()
    for i in range(120):
        clock.call_later(i * 30, lambda i=i: offer(clock, phone, CallOffer(f"c{i}", "+46812345678", ME)))
    clock.run_until_idle()
    assert time.perf_counter() - started < 1.0
    assert len(phone.offered) == 120
