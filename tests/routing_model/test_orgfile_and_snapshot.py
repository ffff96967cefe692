"""The organisation file's routing sections (issue 5's example imports as written, idempotent,
exports back) and the snapshot the routing engine runs on."""

from __future__ import annotations

from datetime import datetime, timezone

from conftest import TEST_BOX  # tests/ is on sys.path (rootdir conftest)
import pytest
from sqlalchemy import func, select

from provisioning import media
from provisioning.changes import tracked_sessionmaker
from provisioning.db import make_engine, upgrade
from provisioning.model import AnswerGroup, GroupMember, Number, NumberRole, Schedule, ScheduleEntry, VoiceMessage
from provisioning.orgfile import OrgFileError, export, import_text
from provisioning.routing.endpoints import ScriptedEndpoint
from provisioning.routing.engine import Engine
from provisioning.routing.snapshot import load_organisation

from .conftest import EXAMPLE, ISSUE

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
TEXT = EXAMPLE + ISSUE


@pytest.fixture
async def sessions(db_url):
    """SQLite and PostgreSQL: the import is where the store matters."""
    engine = make_engine(db_url, TEST_BOX)
    await upgrade(engine)
    yield tracked_sessionmaker(engine, [])
    await engine.dispose()


async def test_the_issue_example_imports_as_written_and_again_changes_nothing(sessions, tmp_path):
    store = tmp_path / "messages"
    async with sessions() as s:
        report = await import_text(s, TEXT, now=NOW, media_dir=store)
    assert report.created["messages"] == 3 and report.created["groups"] == 1 and report.created["schedules"] == 1
    async with sessions() as s:
        again = await import_text(s, TEXT, now=NOW, media_dir=store)
    assert again.summary().endswith("created nothing; updated nothing; deleted nothing")
    async with sessions() as s:
        msgs = (await s.execute(select(VoiceMessage).order_by(VoiceMessage.name))).scalars().all()
        assert [(m.name, m.status, m.origin) for m in msgs] == [("helg", "ready", "generated"),
                                                                ("lunch", "ready", "generated"),
                                                                ("natt", "ready", "generated")]
        assert all((store / "1" / f"{m.sha256}.wav").exists() for m in msgs)
        main = (await s.execute(select(Number).where(Number.e164 == "+46854689914"))).scalar_one()
        group = (await s.execute(select(AnswerGroup))).scalar_one()
        assert (main.role, main.group_id) == (NumberRole.main, group.id)  # Växeln answers the main number
        assert (group.group_code, group.strategy, group.ring_time) == ("0001", "ring_all", 20)
        members = (await s.execute(select(GroupMember).order_by(GroupMember.position))).scalars().all()
        assert [(m.user_id, m.logged_in) for m in members] == [(1, True), (2, False)]
        entries = (await s.execute(select(ScheduleEntry).order_by(ScheduleEntry.position))).scalars().all()
        names = [e.name for e in entries]
        # Julafton 2026 is the file's own entry: the holiday of that date is not added again.
        assert names[0] == "Julafton" and "Julafton 2026" not in names
        assert "Midsommarafton 2027" in names and "Nyårsdagen 2026" in names  # this year and next
        assert names[-3:] == ["Lunch", "Kontorstid", "default"]
        schedule = (await s.execute(select(Schedule))).scalar_one()
        assert (schedule.owner, schedule.holidays_country, schedule.holidays_action) == ("group", "SE", "closed")

    async with sessions() as s:
        exported = await export(s, "Exempel AB")
    assert "holidays:" in exported and "Nyårsdagen 2026" not in exported
    async with sessions() as s:
        report = await import_text(s, exported, now=NOW, media_dir=store)
    assert report.summary().endswith("created nothing; updated nothing; deleted nothing")


async def test_without_espeak_text_messages_are_pending_and_the_import_succeeds(sessions, tmp_path, monkeypatch):
    monkeypatch.setattr(media, "espeak_binary", lambda: None)
    async with sessions() as s:
        await import_text(s, TEXT, now=NOW, media_dir=tmp_path / "messages")
    async with sessions() as s:
        statuses = {m.name: (m.status, m.sha256) for m in (await s.execute(select(VoiceMessage))).scalars()}
        assert statuses == {"helg": ("pending", None), "lunch": ("pending", None), "natt": ("pending", None)}
    monkeypatch.undo()
    async with sessions() as s:  # once espeak-ng is there, the next import generates them
        await import_text(s, TEXT, now=NOW, media_dir=tmp_path / "messages")
    async with sessions() as s:
        assert {m.status for m in (await s.execute(select(VoiceMessage))).scalars()} == {"ready"}


@pytest.mark.parametrize("change, new, text", [
    ("message: natt}\n    holidays", "message: semester}\n    holidays", "no voice message 'semester'"),
    ("strategy: ring_all", "strategy: everyone", "strategy"),
    ('from: "12:00"', 'from: "12:77"', "12:77"),
])
async def test_errors_name_their_line_and_change_nothing(sessions, change, new, text):
    bad = TEXT.replace(change, new)
    line = 1 + bad[:bad.index(new)].count("\n")
    with pytest.raises(OrgFileError) as caught:
        async with sessions() as s:
            await import_text(s, bad, now=NOW)
    assert any(text in msg for _, msg in caught.value.problems), caught.value.problems
    assert any(where == line for where, _ in caught.value.problems), caught.value.problems
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(VoiceMessage)) == 0


async def test_menus_and_queues_round_trip(sessions, tmp_path):
    text = TEXT.replace("    holidays: {country: SE, action: closed, message: helg}\n", """\
    holidays: {country: SE, action: closed, message: helg}
    queue: {max_callers: 5, max_wait: 120, message: helg, announce_interval: 30, announce_position: true}
    no_answer: {voicemail: "201"}
menus:
  - name: Huvudmeny
    number: "+46854689900"
    message: natt
    options: {"1": {group: Växeln}, "2": {user: "202"}, "5": {external: "08-123 456 78"}, "9": repeat}
    timeout: 4
    retries: 1
    timeout_destination: {group: Växeln}
    schedule:
      - {name: Helg, weekdays: [sat, sun], action: closed, message: helg, then: {voicemail: "+46854689901"}}
""")
    async with sessions() as s:
        await import_text(s, text, now=NOW, media_dir=tmp_path / "m")
    async with sessions() as s:
        exported = await export(s, "Exempel AB")
    assert "Huvudmeny" in exported and "announce_interval: 30" in exported
    async with sessions() as s:
        report = await import_text(s, exported, now=NOW, media_dir=tmp_path / "m")
    assert report.summary().endswith("created nothing; updated nothing; deleted nothing")
    async with sessions() as s:
        org = await load_organisation(s, "Exempel AB", NOW)
    menu = org.menus["Huvudmeny"]
    assert str(menu.menu.options["2"]) == "user +46854689902"
    assert org.numbers["+46854689900"].target == "Huvudmeny"
    assert org.groups["Växeln"].queue.max_callers == 5
    assert str(org.groups["Växeln"].no_answer) == "voicemail +46854689901"


async def test_the_engine_routes_a_call_on_the_database_snapshot(sessions, tmp_path):
    async with sessions() as s:
        await import_text(s, TEXT, now=NOW, media_dir=tmp_path / "m")
    monday_10 = datetime(2027, 3, 1, 9, 0, tzinfo=timezone.utc)
    async with sessions() as s:
        org = await load_organisation(s, "Exempel AB", monday_10)
    assert org.groups["Växeln"].group_id == "0001" and org.numbers["+46854689914"].target == "Växeln"
    engine = Engine(org, start=monday_10)
    anna = ScriptedEndpoint(engine.clock, "+46854689901", answer_after=3)
    bertil = ScriptedEndpoint(engine.clock, "+46854689902", answer_after=1)
    engine.register(anna)
    engine.register(bertil)
    engine.call("+46701112233", "+46854689914", hangup_after=30)
    engine.run()
    assert [e.detail["member"] for e in engine.trace.of_kind("group.answered")] == ["+46854689901"]
    assert bertil.legs == []  # logged out of the group
    assert anna.legs[0].call.presented.endswith("0001")  # C1: the caller's number followed by the group id
