"""The YAML organisation file: imports as written, idempotent, and bad files change nothing."""

from __future__ import annotations

from pathlib import Path

from conftest import TEST_BOX  # tests/ is on sys.path (rootdir conftest)
import pytest
from sqlalchemy import func, select

from provisioning.changes import tracked_sessionmaker
from provisioning.db import make_engine, upgrade
from provisioning.model import Device, Key, Line, Number, Organization, User
from provisioning.orgfile import OrgFileError, export, import_text, parse

EXAMPLE = (Path(__file__).parent / "data" / "exempel.yaml").read_text()


@pytest.fixture
async def sessions(db_url):
    engine = make_engine(db_url, TEST_BOX)
    await upgrade(engine)
    yield tracked_sessionmaker(engine, [])
    await engine.dispose()


async def counts(sessions) -> dict[str, int]:
    async with sessions() as session:
        return {m.__name__: await session.scalar(select(func.count()).select_from(m))
                for m in (Organization, User, Number, Device, Line, Key)}


async def test_example_imports_as_written(sessions):
    async with sessions() as session:
        report = await import_text(session, EXAMPLE)
    assert report.created == {"users": 2, "numbers": 3, "phones": 1, "keys": 3}
    assert await counts(sessions) == {"Organization": 1, "User": 2, "Number": 3, "Device": 1, "Line": 1, "Key": 3}
    async with sessions() as session:
        line = (await session.execute(select(Line))).scalar_one()
        device = (await session.execute(select(Device))).scalar_one()
    assert (device.mac, device.vendor, device.model) == ("805ec0aabb01", "yealink", "T46S")
    assert len(line.password) >= 20 and line.auth_username.startswith("dp")


async def test_import_is_idempotent_and_keeps_credentials(sessions):
    async with sessions() as session:
        await import_text(session, EXAMPLE)
    async with sessions() as session:
        before = (await session.execute(select(Line.auth_username, Line.password))).one()
        report = await import_text(session, EXAMPLE)
        after = (await session.execute(select(Line.auth_username, Line.password))).one()
    assert report.summary().endswith("created nothing; updated nothing; deleted nothing")
    assert before == after


async def test_given_credentials_are_kept_and_keys_are_synced(sessions):
    async with sessions() as session:
        await import_text(session, EXAMPLE)
    edited = EXAMPLE.replace('    user: "+46854689901"\n',
                             '    user: "+46854689901"\n    sip: {username: anna-desk, password: "s3cret-Passw0rd"}\n')
    edited = edited.replace("      - {slot: 3, type: speed_dial, number: \"+46812345678\", label: Support}\n",
                            "      - {slot: 4, type: speed_dial, number: \"08-123 456 78\", label: Support}\n")
    async with sessions() as session:
        report = await import_text(session, edited)
    assert report.created["keys"] == 1 and report.deleted["keys"] == 1
    async with sessions() as session:
        line = (await session.execute(select(Line))).scalar_one()
        slots = (await session.execute(select(Key.slot, Key.target).order_by(Key.slot))).all()
    assert (line.auth_username, line.password) == ("anna-desk", "s3cret-Passw0rd")
    assert slots == [(1, None), (2, "+46854689902"), (4, "+46812345678")]


async def test_extension_as_key_target_is_stored_as_the_colleagues_number(sessions):
    edited = EXAMPLE.replace('target: "+46854689902"', 'target: "202"')
    async with sessions() as session:
        await import_text(session, edited)
        target = await session.scalar(select(Key.target).where(Key.slot == 2))
    assert target == "+46854689902"


def test_numbers_are_accepted_as_people_write_them():
    parsed = parse(EXAMPLE.replace('main_number: "+46854689914"', 'main_number: "08-546 899 14"')
                   .replace('number: "+46854689901"', 'number: "+46 8 546 899 01"'))
    assert parsed.spec.organization.main_number == "+46854689914"
    assert parsed.spec.users[0].number == "+46854689901"


@pytest.mark.parametrize("mutate, line, words", [
    (lambda t: t.replace("  name: Exempel AB\n", "  name: [Exempel AB\n"), 3, "YAML syntax error"),
    (lambda t: t.replace('"80:5E:C0:AA:BB:01"', '"80:5E:C0:AA:BB"'), 16, "not a MAC address"),
    (lambda t: t.replace('    user: "+46854689901"', '    user: "+46854689909"'), 18, "no user with number"),
    (lambda t: t.replace("{slot: 3,", "{slot: 30,"), 22, "has keys 1-27"),
    (lambda t: t.replace("model: Yealink T46S", "model: Acme Fone 9"), 17, "unknown phone model"),
    (lambda t: t.replace("    extension: \"202\"", "    extension: \"201\""), 14, "extension 201 is used twice"),
    (lambda t: t.replace("  timezone: Europe/Stockholm", "  timezone: Europe/Gothenburg"), 5, "unknown time zone"),
    (lambda t: t.replace("    email: anna@exempel.se", "    e-mail: anna@exempel.se"), 9, "unknown field"),
    (lambda t: t.replace('number: "+46854689902"', 'number: "12"'), 13, "not a possible telephone number"),
    (lambda t: t.replace("type: blf", "type: intercom"), 21, "keys.1.type"),
])
async def test_bad_file_names_the_line_and_changes_nothing(sessions, mutate, line, words):
    async with sessions() as session:
        await import_text(session, EXAMPLE)
    before = await counts(sessions)
    bad = mutate(EXAMPLE.replace("Bertil}", "Bertil B}"))  # would change a label if it were applied
    with pytest.raises(OrgFileError) as err:
        async with sessions() as session:
            await import_text(session, bad, source="exempel.yaml")
    message = err.value.format()
    assert f"exempel.yaml:{line}:" in message and words in message, message
    assert await counts(sessions) == before
    async with sessions() as session:
        assert await session.scalar(select(Key.label).where(Key.slot == 2)) == "Bertil"


async def test_conflict_with_another_organisation_rolls_back_everything(sessions):
    async with sessions() as session:
        await import_text(session, EXAMPLE)
    before = await counts(sessions)
    other = EXAMPLE.replace("name: Exempel AB", "name: Annan AB").replace(
        '"+46854689914"', '"+46854689950"').replace('"+46854689902"', '"+46854689952"')
    with pytest.raises(OrgFileError) as err:
        async with sessions() as session:
            await import_text(session, other)
    assert "belongs to another organisation" in str(err.value)
    assert await counts(sessions) == before


async def test_export_round_trips(sessions):
    async with sessions() as session:
        await import_text(session, EXAMPLE)
        exported = await export(session, "Exempel AB")
        secret = await export(session, "Exempel AB", with_secrets=True)
    assert "password" not in exported and "password" in secret
    async with sessions() as session:
        report = await import_text(session, secret)
    assert report.summary().endswith("created nothing; updated nothing; deleted nothing")
    assert "model: Yealink T46S" in exported


@pytest.mark.parametrize("text", ["", "[]", "just a string", "organization: 5", b"\xff\xfe"])
def test_nonsense_is_refused_clearly(text):
    with pytest.raises(OrgFileError):
        parse(text)
