"""Secrets at rest (issue "Security"): SIP passwords, the devices' admin password and device
credentials are never in the database in clear, on SQLite (the file's bytes) and PostgreSQL (rows
read with plain asyncpg); a node with the wrong key stops with a clear message; ``deskprov secrets
rotate`` moves everything to a new key; the 0005 migration seals a database written at 0004;
export still works; web passwords are argon2id; rotating a user's SIP password pushes new configs
to the phone."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from alembic import command
from sqlalchemy import select, text

from conftest import TEST_BOX, TEST_SECRET_KEY, import_org, make_settings
from provisioning.db import _alembic_config, make_engine, upgrade
from provisioning.model import AuditEntry, Device, Line, Organization, User
from provisioning.secretbox import PREFIX, SecretBox, SecretKeyError, key_id, new_key_text, parse_keys
from provisioning.server import Server
from simulators.phone import Phone
from simulators.yealink import YealinkProfile

MAC = "805ec0aabb01"
SIP_PASSWORD = "Sip-hemlighet-0123456789"
ADMIN_PASSWORD = "Telefon-admin-98765"
ORG = f"""
organization: {{name: Exempel AB, sip_domain: exempel.sip.example.net, device_admin_password: "{ADMIN_PASSWORD}"}}
users:
  - {{name: Anna Andersson, number: "+46854689901", extension: "201", admin: true, username: anna,
     password: "Anna-hemligt-1"}}
  - {{name: Bertil Berg, number: "+46854689902", extension: "202"}}
phones:
  - mac: "80:5E:C0:AA:BB:01"
    model: Yealink T46S
    user: "+46854689901"
    sip: {{username: anna-t46s, password: "{SIP_PASSWORD}"}}
"""
OTHER = """
organization: {name: Annan AB, sip_domain: annan.sip.example.net}
users:
  - {name: Cecilia Carlsson, number: "+46311234501", admin: true, username: cecilia, password: "Cecilia-hemligt-3"}
"""


def deskprov(db_url: str, secret_key: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKPROV_")}
    env.update(DESKPROV_DB=db_url, DESKPROV_SECRET_KEY=secret_key, DESKPROV_HTTP_PORT="0", DESKPROV_API_PORT="0",
               DESKPROV_TFTP_PORT="0", DESKPROV_PNP_ENABLED="false")
    result = subprocess.run([sys.executable, "-m", "provisioning.cli", *args], env=env, capture_output=True,
                            text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


async def start(tmp_path: Path, db_url: str, secret_key: str = TEST_SECRET_KEY, **settings) -> Server:
    from api.app import make_admin_app

    server = Server(make_settings(tmp_path, db_url, secret_key=secret_key, **settings), admin_app=make_admin_app)
    await server.start()
    return server


async def boot(server: Server) -> Phone:
    phone = Phone(YealinkProfile("T46S", MAC, "66.86.0.15"))
    await phone.boot_http(f"http://127.0.0.1:{server.http_port}/")
    return phone


async def plain_secrets(server: Server) -> list[str]:
    """Every secret the model holds, opened (what must not be in the raw database)."""
    async with server.sessions() as session:
        values = [*(await session.execute(select(Line.password))).scalars(),
                  *(await session.execute(select(Organization.device_admin_password))).scalars(),
                  *(await session.execute(select(Device.http_password))).scalars(),
                  *(await session.execute(select(Device.config_key))).scalars()]
    return [v for v in values if v]


async def raw_database(db_url: str) -> bytes:
    """The database as an attacker with the file or a plain SQL connection sees it."""
    if db_url.startswith("sqlite"):
        path = Path(db_url.split("///", 1)[1])
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        tables = [r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")]
        dump = [str([tuple(r) for r in await conn.fetch(f'SELECT * FROM "{t}"')]) for t in tables]
    finally:
        await conn.close()
    return "\n".join(dump).encode()


async def sealed_values(db_url: str) -> list[str]:
    engine = make_engine(db_url)  # no box: reads the stored text
    try:
        async with engine.connect() as conn:
            rows = [*(await conn.execute(text("SELECT password FROM line"))).scalars(),
                    *(await conn.execute(text("SELECT device_admin_password FROM organization"))).scalars(),
                    *(await conn.execute(text("SELECT http_password FROM device"))).scalars(),
                    *(await conn.execute(text("SELECT config_key FROM device"))).scalars()]
    finally:
        await engine.dispose()
    return [v for v in rows if v]


async def test_the_raw_database_holds_no_secret_in_clear(tmp_path, db_url):
    server = await start(tmp_path, db_url)
    try:
        await import_org(server, ORG)
        phone = await boot(server)
        assert phone.state.accounts[1].password == SIP_PASSWORD  # served to the phone, so really stored
        secrets = await plain_secrets(server)
        assert SIP_PASSWORD in secrets and ADMIN_PASSWORD in secrets
        async with server.sessions() as session:
            web_hashes = list((await session.execute(select(User.password_hash).where(User.password_hash.is_not(None))))
                              .scalars())
    finally:
        await server.stop()
    raw = await raw_database(db_url)
    assert b"anna-t46s" in raw  # the reader really sees the rows (usernames are not secret)
    for secret in secrets:
        assert secret.encode() not in raw, f"{secret[:4]}... is in the database in clear"
    assert all(v.startswith(f"{PREFIX}:{TEST_BOX.key_id}:") for v in await sealed_values(db_url))
    # web (admin and user) passwords: argon2id hashes, never the password
    assert web_hashes and all(h.startswith("$argon2id$") for h in web_hashes)
    assert b"Anna-hemligt-1" not in raw


async def test_a_node_with_the_wrong_key_stops_with_a_clear_message(tmp_path, db_url):
    server = await start(tmp_path, db_url)
    await import_org(server, ORG)
    await server.stop()

    wrong = new_key_text()
    node = Server(make_settings(tmp_path, db_url, secret_key=wrong))
    with pytest.raises(SecretKeyError, match=f"sealed with key {TEST_BOX.key_id}.*same secret_key"):
        await node.start()
    await node.stop()

    result = await asyncio.to_thread(deskprov, db_url, wrong, "serve", check=False)
    assert result.returncode == 2
    assert f"sealed with key {TEST_BOX.key_id}" in result.stderr and "Traceback" not in result.stderr
    result = await asyncio.to_thread(deskprov, db_url, "bm90IGEga2V5", "secrets", "check", check=False)
    assert result.returncode == 2 and "32-byte keys" in result.stderr
    ok = await asyncio.to_thread(deskprov, db_url, TEST_SECRET_KEY, "secrets", "check")
    assert f"secret key {TEST_BOX.key_id} opens the stored secrets" in ok.stdout


async def test_rotation_reseals_everything_under_the_new_key_and_the_old_one_can_go(tmp_path, db_url):
    server = await start(tmp_path, db_url)
    try:
        await import_org(server, ORG)
        before = (await boot(server)).state.accounts[1].password
    finally:
        await server.stop()
    new = new_key_text()
    new_id = key_id(parse_keys(new)[0])

    out = (await asyncio.to_thread(deskprov, db_url, f"{new},{TEST_SECRET_KEY}", "secrets", "rotate")).stdout
    assert "line.password: 1 re-sealed" in out and f"under key {new_id}" in out
    assert all(v.startswith(f"{PREFIX}:{new_id}:") for v in await sealed_values(db_url))
    again = (await asyncio.to_thread(deskprov, db_url, f"{new},{TEST_SECRET_KEY}", "secrets", "rotate")).stdout
    assert "\n0 values re-sealed" in again  # nothing left under the old key

    # the old key is gone from the setting: the node starts and the phone gets the same password
    server = await start(tmp_path, db_url, secret_key=new)
    try:
        assert (await boot(server)).state.accounts[1].password == before == SIP_PASSWORD
    finally:
        await server.stop()
    old_only = await asyncio.to_thread(deskprov, db_url, TEST_SECRET_KEY, "secrets", "check", check=False)
    assert old_only.returncode == 2 and f"sealed with key {new_id}" in old_only.stderr


async def test_migration_0005_seals_a_database_written_at_0004(db_url):
    engine = make_engine(db_url, TEST_BOX)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), "0004"))
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO organization (name, sip_domain, timezone, language, sip_port, sip_transport,"
                " voicemail_number, pickup_code, group_toggle_code, device_admin_password, created_at, updated_at)"
                f" VALUES ('X', 'x.example', 'Europe/Stockholm', 'sv', 5060, 'udp', '*97', '*8', '*45',"
                f" '{ADMIN_PASSWORD}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
            await conn.execute(text(
                'INSERT INTO "user" (organization_id, name, created_at, updated_at)'
                " VALUES (1, 'A', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
            await conn.execute(text(
                "INSERT INTO device (mac, organization_id, created_at, updated_at)"
                f" VALUES ('{MAC}', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
            await conn.execute(text(
                "INSERT INTO line (device_id, \"index\", user_id, auth_username, password, created_at, updated_at)"
                f" VALUES (1, 1, 1, 'dpabc', '{SIP_PASSWORD}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        await upgrade(engine)
    finally:
        await engine.dispose()
    stored = await sealed_values(db_url)
    assert len(stored) == 2 and all(v.startswith(f"{PREFIX}:{TEST_BOX.key_id}:") for v in stored)
    assert SIP_PASSWORD.encode() not in await raw_database(db_url)
    engine = make_engine(db_url, TEST_BOX)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(select(Line.password))).scalar_one() == SIP_PASSWORD
            assert (await conn.execute(select(Organization.device_admin_password))).scalar_one() == ADMIN_PASSWORD
    finally:
        await engine.dispose()


async def test_export_opens_secrets_only_when_asked(tmp_path, db_url):
    server = await start(tmp_path, db_url)
    try:
        await import_org(server, ORG)
    finally:
        await server.stop()
    plain = (await asyncio.to_thread(deskprov, db_url, TEST_SECRET_KEY, "export")).stdout
    assert "Exempel AB" in plain and "anna-t46s" not in plain and SIP_PASSWORD not in plain
    assert ADMIN_PASSWORD not in plain and PREFIX + ":" not in plain
    full = (await asyncio.to_thread(deskprov, db_url, TEST_SECRET_KEY, "export", "--secrets")).stdout
    assert SIP_PASSWORD in full and ADMIN_PASSWORD in full and PREFIX + ":" not in full


# -- SIP password rotation pushes new configs ------------------------------------------------------

async def _login(server, login: str, password: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(f"http://127.0.0.1:{server.api_port}/api/v1/auth/login",
                         json={"login": login, "password": password}) as resp:
        assert resp.status == 200, await resp.text()
    return http


async def test_rotating_a_users_sip_password_pushes_the_new_config_to_the_phone(tmp_path, db_url):
    server = await start(tmp_path, db_url, resync_debounce_seconds=0)
    anna = cecilia = None
    phone = Phone(YealinkProfile("T46S", MAC, "66.86.0.15"))
    try:
        await import_org(server, ORG)
        await import_org(server, OTHER)
        await phone.boot_http(f"http://127.0.0.1:{server.http_port}/")
        assert phone.state.accounts[1].password == SIP_PASSWORD
        await phone.listen_for_resync()
        # where the phone's SIP port is (what its PnP SUBSCRIBE tells a real server)
        server.sync.seen(MAC, "127.0.0.1", sip_port=phone.sip_port, vendor="yealink")
        async with server.sessions() as session:
            user_id = (await session.execute(select(User.id).where(User.username == "anna"))).scalar_one()
            bertil = (await session.execute(select(User.id).where(User.name == "Bertil Berg"))).scalar_one()
            device_id = (await session.execute(select(Device.id).where(Device.mac == MAC))).scalar_one()
        anna = await _login(server, "anna", "Anna-hemligt-1")
        cecilia = await _login(server, "cecilia", "Cecilia-hemligt-3")
        api = f"http://127.0.0.1:{server.api_port}/api/v1"

        # another tenant cannot rotate (404, as for anything of another tenant); nothing changes
        for path in (f"/users/{user_id}/sip-password", f"/devices/{device_id}/lines/1/sip-password"):
            async with cecilia.post(api + path) as resp:
                assert resp.status == 404
        async with anna.post(api + f"/users/{bertil}/sip-password") as resp:
            assert resp.status == 409  # no phone line: nothing to rotate
        assert await plain_secrets(server) and SIP_PASSWORD in await plain_secrets(server)

        async with anna.post(api + f"/users/{user_id}/sip-password") as resp:
            assert resp.status == 200
            body = await resp.json()
        assert [(l["mac"], l["index"], l["sip_username"]) for l in body["lines"]] == \
            [("80:5E:C0:AA:BB:01", 1, "anna-t46s")]
        assert "password" not in str(body).replace("sip-password", "")

        await asyncio.wait_for(phone.resynced.wait(), 10)  # NOTIFY received, config fetched again
        new = phone.state.accounts[1].password
        assert new and new != SIP_PASSWORD and phone.state.accounts[1].auth_name == "anna-t46s"
        async with server.sessions() as session:
            assert (await session.execute(select(Line.password))).scalar_one() == new
            audit = (await session.execute(select(AuditEntry).where(AuditEntry.action == "rotate_sip_password")))\
                .scalar_one()
        assert new not in str(audit.after) and SIP_PASSWORD not in str(audit.after)

        # one line, through the device: the phone is pushed again
        phone.resynced.clear()
        async with anna.post(api + f"/devices/{device_id}/lines/1/sip-password") as resp:
            assert resp.status == 200
        await asyncio.wait_for(phone.resynced.wait(), 10)
        assert phone.state.accounts[1].password not in (new, SIP_PASSWORD)
        async with anna.post(api + f"/devices/{device_id}/lines/2/sip-password") as resp:
            assert resp.status == 404
    finally:
        await phone.stop_listening()
        for http in (anna, cecilia):
            if http is not None:
                await http.close()
        await server.stop()
    raw = await raw_database(db_url)
    assert phone.state.accounts[1].password.encode() not in raw
