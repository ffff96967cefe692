"""Scripted call scenarios: an organisation, its endpoints' behaviour, calls, and what must happen.

``deskprov simulate scenario FILE.yaml`` runs one; the scenario tests use the
same runner with desk phones that booted against a real server.

Scenario file format
--------------------
::

    # The organisation, in the routing dict shape (see provisioning.routing.model):
    organization_file: exempel.yaml     # optional: an organisation file this scenario extends
                                        # (relative to the scenario file); a database source comes later
    organization: {main_number: "+46854689914", operator: {group: Växeln}}  # merged over the file's
    messages: [{name: lunch, text: "Vi har lunchstängt."}]
    users:                              # merged into the file's users by number
      - {number: "+46854689902", diversion: {reason: lunch, target: voicemail, until: "2026-03-02T13:00"}}
    groups: [...]                       # replace the file's entries of the same name, or add
    menus: [...]

    start: 2026-03-02T09:59:00          # clock start, local time (default: the first call's time)
    run: 300                            # virtual seconds to run after the start (default 3600)
    seed: 0                             # for the random strategy

    phones:                             # simulated desk phones (simulators.desk_phone)
      - user: "+46854689901"            # its account: the user's number and extension from the model
                                        # (the tests use the identity a booted phone fetched instead)
        answer_after: 3                 # null: never picks up by itself
        busy: false                     # refuses every call busy
        keys: [{slot: 2, type: blf, value: "202", label: Bertil}]
        script:                         # see simulators.desk_phone
          - until: answered
          - {after: 5, press: "##"}
          - {until: dial-tone, press: "202#"}
          - {until: ringback, after: 2, hangup: true}
    network: {voicemail_number: "+46701740600", default_no_reply_timer: 30}
    mobiles:                            # Mex mobiles on the simulated GSM network (simulators.mobile)
      - number: "+46701234567"
        answer_after: null
        voicemail_forwarding: true      # the operator's defaults: busy/no reply/unreachable -> voicemail
        mmi: ["**61*+46701740600**15#", "#43#"]   # then these MMI codes, in order
        switched_on: true
        call_waiting: false
    parties:                            # people outside the service (callbacks, external transfers)
      - {number: "+46812345678", answer_after: 2}
    calls:                              # inbound calls from outside
      - from: "+46812345678"
        to: "+46854689914"
        at: 2026-03-02T10:00:00         # local time, or seconds after start
        dtmf: [{at: 6, keys: "1"}]      # keys at seconds after the call starts
        menu_keys: ["9", timeout, "1"]  # one answer per menu prompt
        hangup_after: 120
    expect:                             # every entry must hold; `deskprov simulate scenario` exits 1 if not
      - {kind: group.answered, member: "+46854689901"}      # some event has these fields (t, where,
      - {kind: transfer.recall, t: 55}                      #   kind and any detail key)
      - {absent: {kind: voicemail.recording}}               # no event has these fields
      - {count: 2, kind: group.offer}                       # exactly this many
      - {call: 1, outcome: busy}                            # the n-th call (1-based) ended so
      - {operator_voicemail: "+46701234567", messages: 1}   # messages in the operator's voicemail
      - {voicemail: "+46854689901", messages: 1}            # messages in the PBX voicemail box
      - {lint: "+46701234567", warnings: true}              # the Mex lint flags (or clears) a mobile

Times without an offset are local time in the organisation's zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from provisioning.routing.clock import DEFAULT_START, Trace, VirtualClock
from provisioning.routing.endpoints import ScriptedEndpoint
from provisioning.routing.engine import CallerScript, Engine, ServiceCall
from provisioning.routing.model import Organisation, merge_documents, organisation_from_dict
from simulators.desk_phone import DeskPhone, PhoneKey
from simulators.mobile import DEFAULT_VOICEMAIL_NUMBER, GsmNetwork, MexMobile

__all__ = ["ScenarioError", "ScenarioResult", "load_scenario", "organisation_of", "run_scenario"]

_ORG_SECTIONS = ("organization", "users", "groups", "menus", "messages", "phones", "phonebooks")
_MAX_RUN = 3600.0


class ScenarioError(ValueError):
    """The scenario file itself is wrong (not: its expectations failed)."""


@dataclass
class ScenarioResult:
    engine: Engine
    calls: list[ServiceCall]
    phones: dict[str, DeskPhone]
    mobiles: dict[str, MexMobile]
    network: GsmNetwork
    failures: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def trace(self) -> Trace:
        return self.engine.trace

    @property
    def ok(self) -> bool:
        return not self.failures


def load_scenario(path: str | Path) -> dict[str, Any]:
    """Read a scenario file; ``organization_file`` is resolved against its directory."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping")
    doc.setdefault("_base_dir", str(path.parent))
    return doc


def organisation_of(doc: Mapping[str, Any], *, base_dir: str | Path | None = None) -> Organisation:
    """The routing model a scenario describes (its ``organization_file`` plus its own sections)."""
    base: dict[str, Any] = {}
    source = doc.get("organization_file")
    if source == "database":
        raise ScenarioError("organization_file: database is not available yet; give a YAML file")
    if source:
        where = Path(base_dir or doc.get("_base_dir") or ".") / str(source)
        try:
            base = yaml.safe_load(where.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ScenarioError(f"organization_file {where}: {exc}") from None
    own = {key: doc[key] for key in _ORG_SECTIONS if key in doc and key != "phones"}
    merged = merge_documents(base, own) if base else own
    return organisation_from_dict(merged)


def _local(value: Any, org: Organisation) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=org.tz)


def _dtmf(value: Any) -> tuple[tuple[float, str], ...]:
    out = []
    for item in value or ():
        if isinstance(item, Mapping):
            out.append((float(item["at"]), str(item["keys"])))
        else:
            at, keys = item
            out.append((float(at), str(keys)))
    return tuple(out)


def run_scenario(doc: Mapping[str, Any], *, base_dir: str | Path | None = None,
                 phone_states: Mapping[str, Any] | None = None, org: Organisation | None = None) -> ScenarioResult:
    """Run a scenario (the dict of the module docstring) and check its expectations.

    ``phone_states`` maps a user's number to the :class:`~simulators.phone.PhoneState`
    a simulated phone fetched from a real server: that phone then takes its
    identity (number, extension, keys) from there instead of from the model.
    """
    org = org or organisation_of(doc, base_dir=base_dir)
    calls_spec = list(doc.get("calls") or [])
    timed = [_local(c["at"], org) for c in calls_spec if c.get("at") is not None and not isinstance(c["at"], (int, float))]
    start = _local(doc["start"], org) if doc.get("start") is not None else (min(timed) if timed else DEFAULT_START)
    clock = VirtualClock(start)
    engine = Engine(org, clock=clock, seed=int(doc.get("seed", 0)))

    net_spec = dict(doc.get("network") or {})
    network = GsmNetwork(clock, voicemail_number=net_spec.get("voicemail_number", DEFAULT_VOICEMAIL_NUMBER),
                         default_no_reply_timer=int(net_spec.get("default_no_reply_timer", 30)),
                         external=lambda number: (engine.endpoints_at(number) or [None])[0], trace=engine.trace)

    phones: dict[str, DeskPhone] = {}
    for spec in doc.get("phones") or []:
        spec = dict(spec)
        number = str(spec.pop("user", None) or spec.pop("number", ""))
        user = org.user(number)
        behaviour = {k: spec[k] for k in ("answer_after", "busy", "script") if k in spec}
        state = (phone_states or {}).get(user.number if user else number)
        if state is not None:
            phone = DeskPhone.from_state(clock, state, trace=engine.trace, **behaviour)
        else:
            if user is None:
                raise ScenarioError(f"phones: {number!r} is not a user of the organisation")
            keys = [PhoneKey(int(k["slot"]), str(k.get("type", "speed_dial")), str(k["value"]), str(k.get("label", "")))
                    for k in spec.get("keys") or []]
            phone = DeskPhone(clock, number=user.number, extension=user.extension, display_name=user.name,
                              keys=keys, trace=engine.trace, **behaviour)
        phones[phone.number] = phone.connect(engine)

    mobiles: dict[str, MexMobile] = {}
    for spec in doc.get("mobiles") or []:
        spec = dict(spec)
        number = str(spec.pop("number"))
        mmi = spec.pop("mmi", [])
        mobile = network.add_mobile(number, **spec)
        for code in mmi:
            result = mobile.dial(code)
            if not result.ok:
                raise ScenarioError(f"mobiles {number}: {code} was refused: {result.text}")
        engine.register(mobile)
        mobiles[number] = mobile

    for spec in doc.get("parties") or []:
        engine.register(ScriptedEndpoint(clock, str(spec["number"]), answer_after=spec.get("answer_after"),
                                         reject=spec.get("reject"), single_line=bool(spec.get("single_line", False))))

    calls = []
    for index, spec in enumerate(calls_spec, start=1):
        try:
            at = spec.get("at")
            when = start + timedelta(seconds=float(at)) if isinstance(at, (int, float)) else (
                _local(at, org) if at is not None else start)
            script = CallerScript(dtmf=_dtmf(spec.get("dtmf")), menu_keys=tuple(str(k) for k in spec.get("menu_keys") or ()),
                                  key_delay=float(spec.get("key_delay", 1.0)), hangup_after=spec.get("hangup_after"))
            calls.append(engine.call(str(spec["from"]), str(spec["to"]), at=when, script=script))
        except (KeyError, ValueError, TypeError) as exc:
            raise ScenarioError(f"calls[{index}]: {exc}") from None

    engine.run(float(doc["run"]) if doc.get("run") is not None else _MAX_RUN)
    result = ScenarioResult(engine, calls, phones, mobiles, network)
    for expectation in doc.get("expect") or []:
        result.checked += 1
        problem = check(expectation, result)
        if problem:
            result.failures.append(problem)
    return result


# -- expectations ------------------------------------------------------------------------------------


def _matches(event: dict[str, Any], want: Mapping[str, Any]) -> bool:
    for key, value in want.items():
        if key not in event:
            return False
        got = event[key]
        if key == "t":
            if abs(float(got) - float(value)) > 1e-6:
                return False
        elif got != value and not (isinstance(got, (list, tuple)) and value in got):
            return False
    return True


def check(expectation: Mapping[str, Any], result: ScenarioResult) -> str | None:
    """``None`` when the expectation holds, else what went wrong."""
    events = result.trace.to_dicts()
    exp = dict(expectation)
    if "absent" in exp:
        found = [e for e in events if _matches(e, exp["absent"])]
        return f"expected no event like {exp['absent']}, found at t={found[0]['t']}: {found[0]}" if found else None
    if "call" in exp:
        index = int(exp["call"])
        if not 1 <= index <= len(result.calls):
            return f"there is no call {index}"
        call = result.calls[index - 1]
        if "outcome" in exp and call.outcome != exp["outcome"]:
            return f"call {index} ended {call.outcome!r}, expected {exp['outcome']!r}"
        return None
    if "operator_voicemail" in exp:
        got = len(result.network.voicemail.messages_for(str(exp["operator_voicemail"])))
        want = int(exp.get("messages", 1))
        return None if got == want else f"operator voicemail {exp['operator_voicemail']}: {got} messages, expected {want}"
    if "voicemail" in exp:
        got = len(result.engine.voicemail.messages_for(str(exp["voicemail"])))
        want = int(exp.get("messages", 1))
        return None if got == want else f"voicemail {exp['voicemail']}: {got} messages, expected {want}"
    if "lint" in exp:
        found = [l for l in result.engine.lint() if l.mobile == str(exp["lint"])]
        if not found:
            return f"the Mex lint has nothing on {exp['lint']} (is it a group member's mobile on the network?)"
        flagged = any(not l.ok for l in found)
        want = bool(exp.get("warnings", True))
        return None if flagged == want else f"the Mex lint {'flags' if flagged else 'does not flag'} {exp['lint']}"
    count = exp.pop("count", None)
    found = [e for e in events if _matches(e, exp)]
    if count is not None:
        return None if len(found) == int(count) else f"expected {count} events like {exp}, found {len(found)}"
    return None if found else f"no event like {exp}"

