"""Fixtures for the routing model: a running server whose Exempel AB carries issue 5's example
(messages, the Växeln group answering the main number, its calendar with Swedish holidays),
plus a second tenant for the cross-tenant checks; the clock is movable."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import pytest

from provisioning.clock import ManualClock
from provisioning.orgfile import import_text
from provisioning.server import Server
from conftest import TEST_BOX  # tests/ is on sys.path (rootdir conftest)
from conftest import make_settings as settings

HERE = Path(__file__).parent
EXAMPLE = (HERE.parent / "data" / "exempel.yaml").read_text()
ISSUE = (HERE / "issue_example.yaml").read_text()
#: Monday 1 March 2027, 09:00 in Stockholm (CET).
START = datetime(2027, 3, 1, 8, 0, tzinfo=timezone.utc)
PASSWORDS = {"anna": "Anna-hemligt-1", "cecilia": "Cecilia-hemligt-3"}

ORG = EXAMPLE.replace(
    "    email: anna@exempel.se\n",
    '    email: anna@exempel.se\n    admin: true\n    password: "Anna-hemligt-1"\n',
) + ISSUE

OTHER = """organization:
  name: Annan AB
  sip_domain: annan.sip.example.net
  main_number: "+46311234500"
users:
  - name: Cecilia Carlsson
    number: "+46311234501"
    admin: true
    password: "Cecilia-hemligt-3"
messages:
  - {name: stängt, text: "Stängt."}
"""




class Client:
    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base, self.http = base, http

    async def call(self, method: str, path: str, json_body=None, headers=None, data=None):
        async with self.http.request(method, self.base + "/api/v1" + path, json=json_body, data=data,
                                     headers=headers or {}) as resp:
            resp.body = await resp.read()
            resp.payload = json.loads(resp.body) if resp.body and resp.content_type.endswith("json") else None
            return resp

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> Path:
    """A migrated, seeded SQLite file and its data directory, built once and copied per test."""
    import asyncio

    from provisioning.changes import tracked_sessionmaker
    from provisioning.db import make_engine, upgrade

    root = tmp_path_factory.mktemp("rm-template")

    async def build():
        engine = make_engine(f"sqlite+aiosqlite:///{root / 'deskprov.sqlite3'}", TEST_BOX)
        try:
            await upgrade(engine)
            sessions = tracked_sessionmaker(engine, [])
            for text in (ORG, OTHER):
                async with sessions() as session:
                    await import_text(session, text, now=START, media_dir=root / "var" / "messages")
        finally:
            await engine.dispose()

    asyncio.run(build())
    return root


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def server(tmp_path, clock, template):
    from api.app import make_admin_app

    shutil.copyfile(template / "deskprov.sqlite3", tmp_path / "deskprov.sqlite3")
    shutil.copytree(template / "var", tmp_path / "var")
    srv = Server(settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'deskprov.sqlite3'}"),
                 admin_app=make_admin_app, clock=clock)
    await srv.start()
    yield srv
    await srv.stop()


async def _login(server: Server, login: str, password: str) -> Client:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    client = Client(f"http://127.0.0.1:{server.api_port}", http)
    resp = await client.post("/auth/login", {"login": login, "password": password, "remember": True})
    assert resp.status == 200, resp.payload
    return client


@pytest.fixture
async def anna(server):
    client = await _login(server, "+46854689901", PASSWORDS["anna"])
    yield client
    await client.http.close()


@pytest.fixture
async def cecilia(server):
    client = await _login(server, "+46311234501", PASSWORDS["cecilia"])
    yield client
    await client.http.close()
