"""The organisation file covers the self-service model: passwords (hashed), admin rights, mobiles
with Mex, feature groups of both families, keywords, deactivation date, answer groups."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from provisioning.model import AnswerGroup, Number, User
from provisioning.orgfile import OrgFileError, export, import_text
from provisioning.passwords import verify_password

from .conftest import ORG


async def _user(session, name):
    return (await session.execute(select(User).where(User.name == name)
                                  .options(selectinload(User.numbers)))).scalar_one()


async def test_fields_import_hashed_and_export_round_trips(api_server):
    async with api_server.sessions() as session:
        anna = await _user(session, "Anna Andersson")
        bertil = await _user(session, "Bertil Berg")
        assert anna.is_admin and anna.username == "anna" and anna.keywords == ["ekonomi", "växel"]
        assert anna.password_hash.startswith("$argon2id$") and verify_password(anna.password_hash, "Anna-hemligt-1")
        mex = [(n.e164, n.mobile_profile.value) for n in anna.numbers if n.role == "mobile"]
        assert mex == [("+46701234567", "mex")]
        assert bertil.call_waiting_fixed and bertil.voicemail and not bertil.is_admin
        group = (await session.execute(select(AnswerGroup).options(selectinload(AnswerGroup.numbers)))).scalars().first()
        assert group.name == "Växeln" and group.numbers[0].e164 == "+46854689920"
        plain = await export(session, "Exempel AB")
        secret = await export(session, "Exempel AB", with_secrets=True)
    assert "$argon2" not in plain and "password" not in plain and "Anna-hemligt-1" not in secret
    assert "password_hash: $argon2id$" in secret
    for words in ("admin: true", "username: anna", "profile: mex", "- växel",
                  "- EX-Samtal väntar på fastnätsnummer", "name: Växeln"):
        assert words in plain, (words, plain)
    async with api_server.sessions() as session:
        report = await import_text(session, secret)
    assert report.summary().endswith("created nothing; updated nothing; deleted nothing")
    async with api_server.sessions() as session:  # the same file again: the password is not re-hashed
        report = await import_text(session, ORG)
    assert report.summary().endswith("created nothing; updated nothing; deleted nothing")


async def test_legacy_groups_and_deactivation_date(api_server):
    text = ORG.replace('feature_groups: [".Samtalväntar med RBL"]',
                       'feature_groups: [".Hänvisning utan RBL", ".Utan RBL"]\n    deactivation_date: 2027-06-30')
    async with api_server.sessions() as session:
        await import_text(session, text)
    async with api_server.sessions() as session:
        bertil = await _user(session, "Bertil Berg")
        assert bertil.voicemail is False and bertil.call_waiting_fixed is False
        assert str(bertil.deactivation_date) == "2027-06-30"
        assert "EX-Ej lämna meddelande i röstbrevlåda" in await export(session, "Exempel AB")


@pytest.mark.parametrize("mutate, words", [
    (lambda t: t.replace('[".Samtalväntar med RBL"]', '[".Med RBL", ".Utan RBL"]'), "contradict"),
    (lambda t: t.replace('[".Samtalväntar med RBL"]', '["EX-Kaffe"]'), "unknown feature group"),
    (lambda t: t.replace('password: "Bertil-hemligt-2"', 'password: "kort"'), "at least 8"),
    (lambda t: t.replace("profile: mex", "profile: maybe"), "users.0.mobiles.0.profile"),
    (lambda t: t.replace('"070-123 45 67"', '"+46854689902"'), "used twice"),
])
async def test_bad_new_fields_name_the_line(api_server, mutate, words):
    with pytest.raises(OrgFileError) as err:
        async with api_server.sessions() as session:
            await import_text(session, mutate(ORG), source="org.yaml")
    assert words in err.value.format() and "org.yaml:" in err.value.format()


async def test_removed_user_in_the_file_is_named(api_server, clients, clock):
    anna = clients["anna"]
    bertil = (await anna.get("/api/v1/users?number=%2B46854689902")).payload["items"][0]
    await anna.patch(f"/api/v1/users/{bertil['id']}", {"deactivation_date": "2027-03-01"})
    with pytest.raises(OrgFileError) as err:
        async with api_server.sessions() as session:
            await import_text(session, ORG)
    assert "was removed" in err.value.format()
    async with api_server.sessions() as session:
        assert (await session.execute(select(Number).where(Number.e164 == "+46854689902"))).scalar_one()


async def test_an_import_that_changes_something_is_audited_and_one_that_does_not_is_not(api_server, clients):
    anna = clients["anna"]
    before = (await anna.get("/api/v1/audit?entity=organization")).payload["items"]
    async with api_server.sessions() as session:
        await import_text(session, ORG, source="org.yaml")                  # no change
    async with api_server.sessions() as session:
        await import_text(session, ORG.replace("label: Bertil}", "label: Bertil B}"), source="org.yaml")
    after = (await anna.get("/api/v1/audit?entity=organization")).payload["items"]
    assert len(after) == len(before) + 1
    entry = after[0]
    assert entry["action"] == "import" and entry["actor_kind"] == "cli"
    assert entry["after"]["updated"]["keys"] == 1 and entry["after"]["source"] == "org.yaml"
