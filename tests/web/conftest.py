"""A running deskprov with a small organisation for the web UI tests.

Anna is the organisation's admin, Bertil a plain user; both are in the answer groups
"Växeln" and "Support". Passwords come from the organisation file (``password:``).
"""

from __future__ import annotations

import re

import aiohttp
import pytest

from conftest import import_org  # tests/ is on sys.path (rootdir conftest)

PASSWORDS = {"anna": "Anna-hemligt-1", "bertil": "Bertil-hemligt-2"}

ORG = """organization:
  name: Exempel AB
  sip_domain: exempel.sip.example.net
  main_number: "+46854689914"
  timezone: Europe/Stockholm
users:
  - name: Anna Andersson
    email: anna@exempel.se
    number: "+46854689901"
    extension: "201"
    admin: true
    username: anna
    password: "Anna-hemligt-1"
    mobiles: [{number: "070-123 45 67", profile: mex}]
  - name: Bertil Berg
    number: "+46854689902"
    extension: "202"
    password: "Bertil-hemligt-2"
  - name: Cesar Carlsson
    number: "+46854689903"
    extension: "203"
phones:
  - mac: "80:5E:C0:AA:BB:01"
    model: Yealink T46S
    user: "+46854689901"
    keys:
      - {slot: 1, type: line}
groups:
  - name: Växeln
    number: "+46854689920"
    members: ["+46854689901", "+46854689902", "+46854689903"]
  - name: Support
    members: ["+46854689901", "+46854689902"]
"""


@pytest.fixture
async def web_server(make_server):
    server = await make_server()
    await import_org(server, ORG)
    return server


def base_url(server) -> str:
    return f"http://127.0.0.1:{server.api_port}"


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """An aiohttp client with its own cookie jar that behaves like a form-posting browser."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def get(self, path: str, **kw):
        async with self.http.get(self.base + path, **kw) as resp:
            resp.text_body = await resp.text()
            return resp

    async def post(self, path: str, data: dict | None = None, csrf: bool = True, **kw):
        data = dict(data or {})
        if csrf:
            page = await self.get("/login" if path == "/login" else "/groups")
            match = CSRF.search(page.text_body) or re.search(r'name="csrf-token" content="([^"]+)"', page.text_body)
            data["csrf_token"] = match.group(1)
        async with self.http.post(self.base + path, data=data, **kw) as resp:
            resp.text_body = await resp.text()
            return resp

    async def login(self, login: str, password: str, **extra):
        return await self.post("/login", {"login": login, "password": password, **extra}, allow_redirects=False)

    async def close(self):
        await self.http.close()


@pytest.fixture
async def browser(web_server):
    made: list[Browser] = []

    def factory() -> Browser:
        b = Browser(base_url(web_server))
        made.append(b)
        return b

    yield factory
    for b in made:
        await b.close()
