"""``deskprov simulate``: run one call, or a scripted scenario, through the routing engine and print the trace.

It composes the routing engine with the simulators, so it lives here: the core
(``provisioning``) never imports the simulators; ``provisioning/cli.py`` loads this module by
name for the ``simulate`` subcommand.

Usage::

    deskprov simulate call --org org.yaml --from +46812345678 --to +46854689914 \\
        --at 2026-03-02T10:00 [--answer 201=3] [--busy 202] [--keys 1,timeout] \\
        [--dtmf 6:1] [--hangup-after 120] [--run 600] [--json]
    deskprov simulate scenario FILE.yaml [--json]

``--org`` is an organisation file in the routing dict shape
(:mod:`provisioning.routing.model`); reading the current database comes with the
database-backed routing model.  In ``simulate call`` every user has a desk phone
that rings and never answers unless ``--answer USER=SECONDS`` (number or
extension) says so, ``--busy USER`` makes it refuse busy, and every ringing
mobile behaves like a fresh subscription (the operator's voicemail takes
busy, unreachable and unanswered calls after 30 s; ``--mmi MOBILE=CODE``
changes that, e.g. ``--mmi +46701234567=**61*+46701740600**15#``).

Output: a timeline (time of day, seconds from the start, event kind, where,
details) rendered with ``rich``; with ``--json`` JSON Lines instead, one object
per event: ``{"t": seconds from the start, "kind": ..., "where": ..., ...details}``.
The event kinds are listed in :mod:`provisioning.routing.engine`.  ``simulate
scenario`` also prints the result of each expectation and exits 1 when one
fails (scenario format: :mod:`simulators.scenario`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from provisioning.routing.clock import Trace
from provisioning.routing.engine import CallerScript, Engine
from provisioning.routing.model import Organisation, RoutingModelError, organisation_from_dict
from simulators.scenario import ScenarioError, ScenarioResult, load_scenario, run_scenario
from simulators.desk_phone import DeskPhone
from simulators.mobile import GsmNetwork

__all__ = ["add_simulate_parser", "main", "render_timeline", "run_simulate", "simulate_call", "write_jsonl"]

_STYLES = {
    "call": "bold", "number": "bold", "group": "cyan", "queue": "cyan", "menu": "cyan", "schedule": "cyan",
    "user": "magenta", "voicemail": "magenta", "feature": "yellow", "transfer": "yellow", "lint": "bold red",
    "tone": "green", "play": "green", "leg": "dim", "mobile": "blue", "network": "blue", "phone": "blue",
}
_HIDDEN_DETAIL = {"leg"}


def add_simulate_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``simulate call`` and ``simulate scenario`` to a subparsers object."""
    simulate = sub.add_parser("simulate", help="run calls through the routing engine and print what happens")
    kinds = simulate.add_subparsers(dest="simulate_command", required=True)

    call = kinds.add_parser("call", help="one inbound call: --from, --to, --at")
    call.add_argument("--org", required=True, help="organisation file (routing dict shape, YAML)")
    call.add_argument("--from", dest="caller", required=True, help="the caller's number (E.164)")
    call.add_argument("--to", required=True, help="the dialled number")
    call.add_argument("--at", help="local time in the organisation's zone, e.g. 2026-03-02T10:00 (default: now)")
    call.add_argument("--answer", action="append", default=[], metavar="USER=SECONDS",
                      help="this user's desk phone answers after SECONDS (repeatable)")
    call.add_argument("--busy", action="append", default=[], metavar="USER", help="this user's desk phone is busy")
    call.add_argument("--mmi", action="append", default=[], metavar="MOBILE=CODE",
                      help="send an MMI code from a mobile before the call, e.g. +4670...=#67#")
    call.add_argument("--keys", default="", help="menu answers, comma separated (timeout = no key)")
    call.add_argument("--dtmf", action="append", default=[], metavar="SECONDS:KEYS", help="keys at a time")
    call.add_argument("--hangup-after", type=float, help="the caller hangs up after this many seconds")
    call.add_argument("--run", type=float, default=600.0, help="virtual seconds to simulate (default 600)")
    call.add_argument("--json", action="store_true", help="JSON Lines, one object per event")

    scenario = kinds.add_parser("scenario", help="a scripted scenario file (see the README)")
    scenario.add_argument("file")
    scenario.add_argument("--json", action="store_true", help="JSON Lines, one object per event")
    return simulate


def run_simulate(args: argparse.Namespace, *, out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    try:
        if args.simulate_command == "call":
            org = _load_org(args.org)
            engine = simulate_call(
                org, args.caller, args.to, _at(args.at, org),
                answer=dict(_pair(a, float) for a in args.answer), busy=set(args.busy),
                mmi=[_pair(m, str) for m in args.mmi],
                menu_keys=[k.strip() for k in args.keys.split(",") if k.strip()],
                dtmf=[_pair(d, str, sep=":") for d in args.dtmf], hangup_after=args.hangup_after, run=args.run,
            )
            _emit(engine.trace, org, args.json, out)
            if not args.json:
                _summary(engine, out)
            return 0
        doc = load_scenario(args.file)
        result = run_scenario(doc)
        _emit(result.trace, result.engine.org, args.json, out)
        if not args.json:
            _summary(result.engine, out)
            _expectations(result, out)
        return 0 if result.ok else 1
    except (ScenarioError, RoutingModelError, OSError, ValueError) as exc:
        print(f"deskprov simulate: {exc}", file=sys.stderr)
        return 2


def simulate_call(
    org: Organisation,
    caller: str,
    to: str,
    at: datetime,
    *,
    answer: dict[str, float] | None = None,
    busy: set[str] | None = None,
    mmi: Sequence[tuple[str, str]] = (),
    menu_keys: Sequence[str] = (),
    dtmf: Sequence[tuple[float, str]] = (),
    hangup_after: float | None = None,
    run: float = 600.0,
) -> Engine:
    """One inbound call with default endpoints (see the module docstring); returns the engine after the run."""
    engine = Engine(org, start=at)
    answer = {_user_number(org, k): v for k, v in (answer or {}).items()}
    busy = {_user_number(org, b) for b in busy or ()}
    for user in org.users.values():
        DeskPhone(engine.clock, number=user.number, extension=user.extension, display_name=user.name,
                  answer_after=answer.get(user.number), busy=user.number in busy, trace=engine.trace).connect(engine)
    network = GsmNetwork(engine.clock, trace=engine.trace,
                         external=lambda number: (engine.endpoints_at(number) or [None])[0])
    for user in org.users.values():
        for mobile in user.ringing_mobiles:
            engine.register(network.add_mobile(mobile.number, voicemail_forwarding=True))
    for number, code in mmi:
        phone = network.mobiles.get(number)
        if phone is None:
            raise ValueError(f"--mmi: {number} is not a ringing mobile of a user")
        result = phone.dial(code)
        if not result.ok:
            raise ValueError(f"--mmi {code}: {result.text}")
    script = CallerScript(dtmf=tuple((float(t), k) for t, k in dtmf), menu_keys=tuple(menu_keys),
                          hangup_after=hangup_after)
    engine.call(caller, to, at=at, script=script)
    engine.run(run)
    return engine


# -- output --------------------------------------------------------------------------------------------


def write_jsonl(trace: Trace, out: IO[str]) -> None:
    """One JSON object per line and event: ``t`` (seconds from the start), ``kind``, ``where``, details."""
    out.write(trace.to_jsonl())


def render_timeline(trace: Trace, *, tz: ZoneInfo, console: Console, title: str | None = None) -> None:
    """The trace as a table: local time, seconds from the start, kind, where, details."""
    table = Table(title=title, show_lines=False, header_style="bold", pad_edge=False)
    table.add_column("time", no_wrap=True)
    table.add_column("+s", justify="right", no_wrap=True)
    table.add_column("event", no_wrap=True)
    table.add_column("where", no_wrap=True)
    table.add_column("details")
    calls = {e.detail.get("call") for e in trace.events if "call" in e.detail}
    for event in trace.events:
        style = _STYLES.get(event.kind.split(".", 1)[0], "")
        local = (trace.origin + timedelta(seconds=event.offset_seconds)).astimezone(tz)
        detail = {k: v for k, v in event.detail.items()
                  if k not in _HIDDEN_DETAIL and v is not None and not (k == "call" and len(calls) <= 1)}
        table.add_row(local.strftime("%H:%M:%S"), f"{event.offset_seconds:.1f}", Text(event.kind, style=style),
                      event.where, _details(detail))
    console.print(table)


def _details(detail: dict[str, Any]) -> str:
    parts = []
    for key, value in detail.items():
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value) if all(len(str(v)) < 40 for v in value) else "\n  " + "\n  ".join(
                str(v) for v in value)
        parts.append(f"{key}={value}")
    return "  ".join(parts)


def _emit(trace: Trace, org: Organisation, as_json: bool, out: IO[str]) -> None:
    if as_json:
        write_jsonl(trace, out)
    else:
        render_timeline(trace, tz=org.tz, console=Console(file=out, width=160), title=org.name or None)


def _summary(engine: Engine, out: IO[str]) -> None:
    console = Console(file=out, width=160)
    for call in engine.calls:
        console.print(f"[bold]{call.call_id}[/bold] {call.caller} -> {call.dialled}: "
                      f"{call.outcome or call.state}; answered by {', '.join(call.answered_by) or 'nobody'}")
    for lint in engine.lint():
        if not lint.ok:
            console.print(f"[bold red]Mex lint[/bold red] {lint.mobile} (group {lint.group}): {lint.outcome}")
            for warning in lint.warnings:
                console.print(f"  - {warning}")


def _expectations(result: ScenarioResult, out: IO[str]) -> None:
    console = Console(file=out, width=160)
    if result.ok:
        console.print(f"[green]all {result.checked} expectations hold[/green]")
    for failure in result.failures:
        console.print(f"[bold red]FAILED[/bold red] {failure}")


# -- argument helpers ----------------------------------------------------------------------------------


def _load_org(path: str) -> Organisation:
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    return organisation_from_dict(doc)


def _at(text: str | None, org: Organisation) -> datetime:
    if text is None:
        return datetime.now(org.tz).replace(microsecond=0)
    moment = datetime.fromisoformat(text)
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=org.tz)


def _pair(text: str, convert: Any, *, sep: str = "=") -> tuple[Any, Any]:
    left, found, right = text.partition(sep)
    if not found:
        raise ValueError(f"expected A{sep}B, not {text!r}")
    if sep == ":":
        return float(left), convert(right)
    return left, convert(right)


def _user_number(org: Organisation, ref: str) -> str:
    user = org.user(ref)
    if user is None:
        raise ValueError(f"{ref!r} is not a user's number or extension")
    return user.number


def main(argv: list[str] | None = None) -> int:
    """``python -m provisioning.routing.cli call|scenario ...`` until the lead wires ``deskprov simulate``."""
    parser = argparse.ArgumentParser(prog="deskprov")
    add_simulate_parser(parser.add_subparsers(dest="command", required=True))
    return run_simulate(parser.parse_args(["simulate", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())
