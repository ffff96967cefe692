"""Migration 0002 on a database with data: nothing is lost (SQLite batch mode copies tables,
which with foreign keys on would cascade-delete dependants), on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from conftest import TEST_BOX  # tests/ is on sys.path (rootdir conftest)
from provisioning.db import _alembic_config, make_engine, revision, upgrade


async def test_upgrade_from_0001_keeps_every_row(db_url):
    engine = make_engine(db_url, TEST_BOX)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), "0001"))
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO organization (name, sip_domain, timezone, language, sip_port, sip_transport,"
                " voicemail_number, pickup_code, group_toggle_code, device_admin_password, created_at, updated_at)"
                " VALUES ('X', 'x.example', 'Europe/Stockholm', 'sv', 5060, 'udp', '*97', '*8', '*45', 'pw',"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
            await conn.execute(text(
                'INSERT INTO "user" (organization_id, name, created_at, updated_at)'
                " VALUES (1, 'A', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
            await conn.execute(text(
                "INSERT INTO number (e164, organization_id, role, user_id, created_at, updated_at)"
                " VALUES ('+46854689901', 1, 'primary', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
            await conn.execute(text(
                "INSERT INTO device (mac, organization_id, created_at, updated_at)"
                " VALUES ('805ec0aabb01', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
            await conn.execute(text(
                "INSERT INTO line (device_id, \"index\", user_id, auth_username, password, created_at, updated_at)"
                " VALUES (1, 1, 1, 'dpabc', 'secret-secret', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        await upgrade(engine)
        current, head = await revision(engine)
        assert current == head and current >= "0002"
        async with engine.connect() as conn:
            counts = [(await conn.execute(text(f'SELECT count(*) FROM "{t}"'))).scalar()
                      for t in ("organization", "user", "number", "device", "line")]
            user = (await conn.execute(text(
                'SELECT version, is_admin, voicemail, caller_id, removed_at FROM "user"'))).one()
        assert counts == [1, 1, 1, 1, 1]
        assert tuple(user) == (1, False, True, "fixed", None)
    finally:
        await engine.dispose()
