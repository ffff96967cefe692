"""Fixtures for the API tests: a running server on a movable clock, with two organisations.

``Exempel AB`` (tests/data/exempel.yaml plus a few self-service fields): Anna is its admin,
Bertil a plain user. ``Annan AB`` is a second tenant with its own admin, Cecilia, for the
cross-tenant checks. ``staff`` is a provider super admin.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import pytest

from provisioning.accounts import create_superadmin
from provisioning.clock import ManualClock
from provisioning.orgfile import import_text
from provisioning.server import Server
from conftest import TEST_BOX, make_settings  # tests/ is on sys.path (rootdir conftest)

EXAMPLE = (Path(__file__).parent.parent / "data" / "exempel.yaml").read_text()
#: A Monday morning in Stockholm (08:00 UTC = 09:00 CET).
START = datetime(2027, 3, 1, 8, 0, tzinfo=timezone.utc)
PASSWORDS = {"anna": "Anna-hemligt-1", "bertil": "Bertil-hemligt-2", "cecilia": "Cecilia-hemligt-3",
             "staff": "Staff-hemligt-4"}

ORG = EXAMPLE.replace(
    '    email: anna@exempel.se\n',
    '    email: anna@exempel.se\n    admin: true\n    password: "Anna-hemligt-1"\n    username: anna\n'
    '    mobiles: [{number: "070-123 45 67", profile: mex}]\n    keywords: [ekonomi, växel]\n',
).replace(
    '    extension: "202"\n',
    '    extension: "202"\n    password: "Bertil-hemligt-2"\n    feature_groups: [".Samtalväntar med RBL"]\n',
) + """groups:
  - name: Växeln
    number: "+46854689920"
    members: ["+46854689901", "+46854689902"]
"""

OTHER = """organization:
  name: Annan AB
  sip_domain: annan.sip.example.net
  main_number: "+46311234500"
users:
  - name: Cecilia Carlsson
    number: "+46311234501"
    extension: "301"
    admin: true
    password: "Cecilia-hemligt-3"
phones:
  - mac: "80:5E:C0:CC:00:01"
    model: Yealink T46S
    user: "+46311234501"
"""


class Client:
    """A small JSON client for one principal (cookie jar of its own)."""

    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base = base
        self.http = http
        self.headers: dict[str, str] = {}

    async def call(self, method: str, path: str, json=None, headers=None, data=None, **kw):
        url = self.base + path
        async with self.http.request(method, url, json=json, data=data,
                                     headers={**self.headers, **(headers or {})}, **kw) as resp:
            body = await resp.read()
            payload = None
            if body and resp.content_type.endswith("json"):
                import json as _json
                payload = _json.loads(body)
            resp.payload = payload
            resp.body = body
            return resp

    async def login(self, login: str, password: str, **extra):
        return await self.call("POST", "/api/v1/auth/login", json={"login": login, "password": password, **extra})

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.call("POST", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.call("PATCH", path, json=json, **kw)

    def put(self, path, json=None, **kw):
        return self.call("PUT", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)




async def seed(sessions, now) -> None:
    async with sessions() as session:
        await import_text(session, ORG, now=now)
    async with sessions() as session:
        await import_text(session, OTHER, now=now)
    async with sessions() as session:
        await create_superadmin(session, "staff", PASSWORDS["staff"], now, name="Provider Staff")


async def start(tmp_path: Path, db: str, clock: ManualClock, seeded: bool = False) -> Server:
    from api.app import make_admin_app

    server = Server(make_settings(tmp_path, db), admin_app=make_admin_app, clock=clock)
    await server.start()
    if not seeded:
        await seed(server.sessions, clock.now())
    return server


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated, seeded SQLite file built once; each SQLite test starts from a copy of it
    (migrating and hashing the seed passwords for every test would dominate the run time)."""
    import asyncio

    from provisioning.changes import tracked_sessionmaker
    from provisioning.db import make_engine, upgrade

    path = tmp_path_factory.mktemp("template") / "deskprov.sqlite3"

    async def build():
        engine = make_engine(f"sqlite+aiosqlite:///{path}", TEST_BOX)
        try:
            await upgrade(engine)
            await seed(tracked_sessionmaker(engine, []), START)
        finally:
            await engine.dispose()

    asyncio.run(build())
    return path


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def api_server(tmp_path, clock, sqlite_template):
    """SQLite: for tests whose subject is the API, not the store."""
    import shutil

    shutil.copyfile(sqlite_template, tmp_path / "deskprov.sqlite3")
    server = await start(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'deskprov.sqlite3'}", clock, seeded=True)
    yield server
    await server.stop()


@pytest.fixture
async def api_server_any_db(tmp_path, clock, db_url, migrated):
    """Once on SQLite, once on PostgreSQL: for tests where the store matters (concurrency...)."""
    await migrated.prepare(db_url)  # starts from the migrated template (tests/conftest.py)
    server = await start(tmp_path, db_url, clock)
    yield server
    await server.stop()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def logged_in(server: Server, login: str, password: str, realm: str = "user", remember: bool = True) -> Client:
    """A client with a "keep me logged in" session (tests move the clock by days)."""
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    client = Client(f"http://127.0.0.1:{server.api_port}", session)
    resp = await client.login(login, password, realm=realm, remember=remember)
    assert resp.status == 200, resp.payload
    return client


@pytest.fixture
async def clients(api_server):
    made = {
        "anna": await logged_in(api_server, "+46854689901", PASSWORDS["anna"]),
        "bertil": await logged_in(api_server, "08-546 899 02", PASSWORDS["bertil"]),
        "cecilia": await logged_in(api_server, "+46311234501", PASSWORDS["cecilia"]),
        "staff": await logged_in(api_server, "staff", PASSWORDS["staff"], realm="staff"),
    }
    yield made
    for client in made.values():
        await client.http.close()


@pytest.fixture
def anon(api_server, http) -> Client:
    return Client(f"http://127.0.0.1:{api_server.api_port}", http)
