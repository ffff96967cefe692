"""The OpenAPI document describes the API, and schemathesis finds no server error and no response
that violates its schema, as provider staff and as a plain user.

The server runs on its own event loop in a thread (schemathesis' calls are synchronous) on an
ephemeral loopback port, with both example organisations imported; every operation gets a
bounded number of generated requests (valid and invalid), so this stays well under a minute.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_headers_conformance, response_schema_conformance, status_code_conformance,
)

from sqlalchemy import select

from api.principals import TOKEN_PREFIX
from provisioning.clock import ManualClock
from provisioning.model import ApiToken, Organization, SuperAdmin, User
from provisioning.passwords import new_secret, secret_digest

from .conftest import START, start

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance,
          response_headers_conformance]


class ThreadedServer:
    def __init__(self, tmp_path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="api-under-test", daemon=True)
        self.thread.start()
        db = f"sqlite+aiosqlite:///{tmp_path / 'deskprov.sqlite3'}"
        self.server = self.run(start(tmp_path, db, ManualClock(START)))
        self.base = f"http://127.0.0.1:{self.server.api_port}"

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def stop(self) -> None:
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


    async def _principals(self) -> dict[str, str]:
        """A valid token for provider staff and for a plain user, minted again whenever the fuzzer
        revoked one (DELETE /tokens/1 is a valid request) or deleted the user behind it."""
        async with self.server.sessions() as db:
            tokens = {}
            for who in ("staff", "user"):
                token = self.tokens.get(who)
                row = None
                if token:
                    row = (await db.execute(select(ApiToken).where(
                        ApiToken.token_hash == secret_digest(token)))).scalar_one_or_none()
                owner = None
                if row is not None:
                    owner = await db.get(SuperAdmin, row.super_admin_id) if who == "staff" else \
                        await db.get(User, row.user_id)
                if owner is None or getattr(owner, "removed_at", None) is not None:
                    owner = await self._owner(db, who)
                    token = new_secret(TOKEN_PREFIX)
                    db.add(ApiToken(name="fuzz", token_hash=secret_digest(token), prefix=token[:10],
                                    **({"super_admin_id": owner.id} if who == "staff" else {"user_id": owner.id})))
                    await db.commit()
                tokens[who] = token
            return tokens

    async def _owner(self, db, who: str):
        if who == "staff":
            return (await db.execute(select(SuperAdmin))).scalars().first()
        user = (await db.execute(select(User).where(User.removed_at.is_(None), User.is_admin.is_(False))
                                 .order_by(User.id))).scalars().first()
        if user is None:
            org = (await db.execute(select(Organization))).scalars().first()
            if org is None:
                org = Organization(name="Fuzz AB", sip_domain="fuzz.example", device_admin_password="x" * 12)
                db.add(org)
                await db.flush()
            user = User(organization_id=org.id, name="Fuzz User", keywords=[])
            db.add(user)
            await db.flush()
        return user

    def principals(self) -> dict[str, str]:
        self.tokens = self.run(self._principals())
        return self.tokens


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = ThreadedServer(tmp_path_factory.mktemp("fuzz"))
    server.tokens = {}
    yield server
    server.stop()


def _document() -> dict:
    import api.app  # noqa: F401  (registers every route)
    from api.framework import api
    from api.openapi import build

    return build(api)


#: The same document the server serves at /api/v1/openapi.json (checked below); built here so
#: pytest can make one test per operation. (schemathesis' fixture-based lazy loading does not
#: work with pytest 9.)
schema = schemathesis.openapi.from_dict(_document(), config=schemathesis.Config.from_dict({
    "phases": {"coverage": {"enabled": False}},
}))


def test_document_is_openapi_31_with_problem_errors(live):
    live.principals()
    doc = requests.get(f"{live.base}/api/v1/openapi.json", timeout=10).json()
    assert doc["openapi"] == "3.1.0"
    assert "/api/v1/users/{user_id}" in doc["paths"] and "/api/v1/auth/login" in doc["paths"]
    patch = doc["paths"]["/api/v1/users/{user_id}"]["patch"]
    assert patch["responses"]["412"]["content"]["application/problem+json"]
    assert patch["responses"]["200"]["headers"]["ETag"]
    assert any(p["name"] == "If-Match" for p in patch["parameters"])
    assert doc["components"]["schemas"]["Problem"]["properties"]["errors"]
    assert doc == _document()


@schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_error_and_responses_match_the_schema(case, live):
    session = requests.Session()
    tokens = live.principals()
    for who in ("staff", "user"):
        token = tokens[who]
        case.call_and_validate(base_url=live.base, session=session, checks=CHECKS,
                               headers={"Authorization": f"Bearer {token}"})
