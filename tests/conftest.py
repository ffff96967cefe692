"""Shared fixtures: real databases (SQLite and PostgreSQL) and a real server on ephemeral ports."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path

import asyncpg
import pytest
from hypothesis import settings as hypothesis_settings

# CI must be reproducible: the same examples every run. Developers' runs stay random and find more.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")

from provisioning.orgfile import import_text
from provisioning.secretbox import SecretBox, parse_keys
from provisioning.server import Server
from provisioning.settings import load_settings

DATA = Path(__file__).parent / "data"
EXAMPLE = DATA / "exempel.yaml"
#: The secret key every test server and test engine shares (as the nodes of one deployment must),
#: so a test may open a server's database with its own engine or a `deskprov` subprocess.
TEST_SECRET_KEY = "ZGVza3Byb3YgdGVzdCBrZXksIG5ldmVyIGluIHByb2Q="
TEST_BOX = SecretBox(parse_keys(TEST_SECRET_KEY))
#: Maintenance connection used to create one throw-away database per test.
PG_ADMIN_DSN = os.environ.get("DESKPROV_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _pg_admin(statement: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"deskprov_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is required for this test and is not reachable at {PG_ADMIN_DSN}: {exc}")
    yield f"{_pg_base()}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'deskprov.sqlite3'}"
    return request.getfixturevalue("postgres_url")


def make_settings(tmp_path: Path, db: str, **overrides):
    return load_settings({"host": "127.0.0.1", "http_port": 0, "api_port": 0, "tftp_port": 0, "pnp_port": 0,
                          "data_dir": str(tmp_path / "var"), "db": db, "secret_key": TEST_SECRET_KEY,
                          **overrides}, environ={})


class MigratedTemplates:
    """Empty databases already migrated to the newest revision, built once per test process
    (per xdist worker): servers the fixtures below start begin from a copy instead of running
    every migration again (that dominated their start-up). Migrations themselves are tested on
    empty databases (``db_url``/``postgres_url`` as given, tests/api/test_migration.py...), and
    every server start still runs ``upgrade`` (a no-op at the newest revision) and ``check_key``."""

    def __init__(self, root: Path) -> None:
        # SQLite's is built now (the fixtures copy it from inside their event loop); PostgreSQL's
        # on first use, so runs without PostgreSQL tests never need the server
        self.sqlite = root / "migrated.sqlite3"
        asyncio.run(self._migrate(f"sqlite+aiosqlite:///{self.sqlite}"))
        # closed cleanly, the WAL is checkpointed into the main file and removed
        assert not self.sqlite.with_name(self.sqlite.name + "-wal").exists()
        self._pg: str | None = None

    async def pg(self) -> str:
        if self._pg is None:
            name = f"deskprov_template_{uuid.uuid4().hex[:12]}"
            await _pg_admin(f'CREATE DATABASE "{name}"')
            self._pg = name  # dropped at the end of the session, even if the migration fails
            await self._migrate(f"{_pg_base()}/{name}")
        return self._pg

    @staticmethod
    async def _migrate(url: str) -> None:
        from provisioning.db import make_engine, upgrade

        engine = make_engine(url, TEST_BOX)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    def copy_sqlite_to(self, url: str) -> None:
        """Put a migrated copy where the SQLite URL points, if nothing is there yet."""
        path = Path(url.split(":///", 1)[1])
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.sqlite, path)

    async def prepare(self, url: str) -> None:
        """Make the (new, empty) database at ``url`` a migrated one: SQLite gets a copy of the
        template file; a PostgreSQL test database is re-created from the template database."""
        if url.startswith("sqlite"):
            self.copy_sqlite_to(url)
            return
        name = url.rsplit("/", 1)[1]
        template = await self.pg()
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')

    def drop(self) -> None:
        if self._pg is not None:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{self._pg}" WITH (FORCE)'))


def _pg_base() -> str:
    return PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture(scope="session")
def migrated(tmp_path_factory):
    templates = MigratedTemplates(tmp_path_factory.mktemp("migrated"))
    yield templates
    templates.drop()


@pytest.fixture
async def server(tmp_path, db_url, migrated):
    """A running deskprov (phone HTTP, TFTP, admin API) on ephemeral loopback ports."""
    from api.app import make_admin_app

    await migrated.prepare(db_url)
    srv = Server(make_settings(tmp_path, db_url), admin_app=make_admin_app)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def example_server(server):
    """The running server with the issue's example organisation imported."""
    async with server.sessions() as session:
        await import_text(session, EXAMPLE.read_bytes(), source=str(EXAMPLE))
    return server


@pytest.fixture
async def sqlite_server(tmp_path, migrated):
    """A running deskprov on SQLite only: for vendor-format tests, where the store is not the subject."""
    from api.app import make_admin_app

    db = f"sqlite+aiosqlite:///{tmp_path / 'deskprov.sqlite3'}"
    migrated.copy_sqlite_to(db)
    srv = Server(make_settings(tmp_path, db), admin_app=make_admin_app)
    await srv.start()
    yield srv
    await srv.stop()


async def import_org(server: Server, text: str) -> None:
    """Import an organisation file into a running server (as `deskprov import` would)."""
    async with server.sessions() as session:
        await import_text(session, text)


async def fix_device_credentials(server: Server) -> None:
    """Give every device fixed provisioning credentials (``dp<mac>`` / ``golden-<mac>``) instead of
    random ones: for byte-for-byte golden files, which carry them."""
    from sqlalchemy import select

    from provisioning.model import Device
    async with server.sessions() as session:
        for device in (await session.execute(select(Device))).scalars():
            device.http_username, device.http_password = f"dp{device.mac}", f"golden-{device.mac}"
        await session.commit()


@pytest.fixture
async def make_server(tmp_path, migrated):
    """Start servers with particular settings: ``await make_server(https_port=0, ...)``; SQLite
    unless ``db`` is given (a given database is used as it is: empty ones get migrated on start).
    All are stopped at the end of the test."""
    from api.app import make_admin_app

    started: list[Server] = []

    async def factory(**overrides) -> Server:
        if "db" in overrides:
            db = overrides.pop("db")
        else:
            db = f"sqlite+aiosqlite:///{tmp_path / f'deskprov{len(started)}.sqlite3'}"
            migrated.copy_sqlite_to(db)
        srv = Server(make_settings(tmp_path, db, **overrides), admin_app=make_admin_app)
        await srv.start()
        started.append(srv)
        return srv

    yield factory
    for srv in reversed(started):
        await srv.stop()


#: What golden files say phones provision from: fixed, so the files do not depend on the port.
GOLDEN_URL = "http://prov.example.net/"


@pytest.fixture
async def golden_server(make_server):
    """A running server (SQLite) whose rendered files are byte-for-byte reproducible."""
    return await make_server(public_url=GOLDEN_URL)
