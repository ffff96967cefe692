"""Logging in (by number and by username), cookies, throttling, tokens, logout, password change."""

from __future__ import annotations

from datetime import timedelta

from .conftest import PASSWORDS, Client, logged_in


async def test_login_by_number_in_any_spelling_and_by_username(api_server, anon):
    for login in ("+46854689901", "08-546 899 01", "+46 8 546 899 01", "anna", "ANNA"):
        resp = await anon.login(login, PASSWORDS["anna"])
        assert resp.status == 200, (login, resp.payload)
        assert resp.payload["principal"] == {"kind": "user", "id": resp.payload["principal"]["id"],
                                             "name": "Anna Andersson", "organization_id": 1, "admin": True,
                                             "via": "session"}


async def test_wrong_password_and_unknown_account_look_the_same(anon):
    wrong = await anon.login("+46854689901", "not-the-password")
    unknown = await anon.login("+46854689999", "not-the-password")
    for resp in (wrong, unknown):
        assert resp.status == 401
        assert resp.content_type == "application/problem+json"
        assert resp.payload["status"] == 401 and resp.payload["title"] == "Unauthorized"
    assert wrong.payload["detail"] == unknown.payload["detail"]


async def test_session_cookie_flags_and_keep_me_logged_in(anon):
    plain = await anon.login("anna", PASSWORDS["anna"])
    cookie = plain.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Max-Age" not in cookie and "expires" not in cookie.lower()  # a browser-session cookie
    assert plain.payload["persistent"] is False
    remembered = await anon.login("anna", PASSWORDS["anna"], remember=True)
    cookie = remembered.headers["Set-Cookie"]
    assert "Max-Age=2592000" in cookie and "HttpOnly" in cookie
    assert remembered.payload["persistent"] is True


async def test_session_expires_on_the_server(api_server, anon, clock):
    assert (await anon.login("anna", PASSWORDS["anna"])).status == 200
    assert (await anon.get("/api/v1/auth/session")).status == 200
    clock.advance(hours=12, seconds=1)
    resp = await anon.get("/api/v1/auth/session")
    assert resp.status == 401 and resp.content_type == "application/problem+json"
    assert "Bearer" in resp.headers["WWW-Authenticate"]


async def test_throttling_per_account_then_retry_after(api_server, anon, clock):
    for _ in range(5):
        assert (await anon.login("anna", "wrong-password-1")).status == 401
    blocked = await anon.login("anna", PASSWORDS["anna"])  # even the right password waits
    assert blocked.status == 429 and blocked.content_type == "application/problem+json"
    retry = int(blocked.headers["Retry-After"])
    assert 0 < retry <= 15 * 60
    assert (await anon.login("bertil", PASSWORDS["bertil"])).status == 401  # bertil has no username...
    assert (await anon.login("+46854689902", PASSWORDS["bertil"])).status == 200  # ...but another account works
    clock.advance(seconds=retry)
    assert (await anon.login("anna", PASSWORDS["anna"])).status == 200


async def test_throttling_per_source_address(api_server, anon):
    for i in range(20):
        assert (await anon.login(f"+4670000{i:04d}", "wrong-password-1")).status == 401
    resp = await anon.login("anna", PASSWORDS["anna"])
    assert resp.status == 429 and "Retry-After" in resp.headers


async def test_logout_ends_the_session(api_server):
    anna = await logged_in(api_server, "anna", PASSWORDS["anna"])
    try:
        assert (await anna.post("/api/v1/auth/logout")).status == 204
        assert (await anna.get("/api/v1/me")).status == 401
    finally:
        await anna.http.close()


async def test_password_change_needs_the_current_one_and_ends_other_sessions(api_server):
    first = await logged_in(api_server, "anna", PASSWORDS["anna"])
    second = await logged_in(api_server, "anna", PASSWORDS["anna"])
    try:
        wrong = await first.post("/api/v1/auth/password", {"current_password": "nope-nope-1",
                                                           "new_password": "Nytt-lösen-99"})
        assert wrong.status == 403
        weak = await first.post("/api/v1/auth/password", {"current_password": PASSWORDS["anna"],
                                                          "new_password": "short"})
        assert weak.status == 422 and weak.payload["errors"][0]["loc"] == ["body", "new_password"]
        ok = await first.post("/api/v1/auth/password", {"current_password": PASSWORDS["anna"],
                                                        "new_password": "Nytt-lösen-99"})
        assert ok.status == 204
        assert (await first.get("/api/v1/me")).status == 200        # this session stays
        assert (await second.get("/api/v1/me")).status == 401       # the others end
        assert (await first.login("anna", PASSWORDS["anna"])).status == 401
        assert (await first.login("anna", "Nytt-lösen-99")).status == 200
    finally:
        await first.http.close()
        await second.http.close()


async def test_api_token_is_shown_once_stored_hashed_and_revocable(api_server, clients, anon):
    staff = clients["staff"]
    created = await staff.post("/api/v1/tokens", {"name": "crm integration"})
    assert created.status == 201
    token = created.payload["token"]
    assert token.startswith("dpt_") and len(token) > 40
    listed = await staff.get("/api/v1/tokens")
    assert "token" not in listed.payload["items"][0]
    async with api_server.sessions() as session:
        from sqlalchemy import select

        from provisioning.model import ApiToken
        stored = (await session.execute(select(ApiToken.token_hash))).scalars().all()
    assert token not in stored and len(stored[0]) == 64
    bearer = Client(anon.base, anon.http)
    bearer.headers = {"Authorization": f"Bearer {token}"}
    who = await bearer.get("/api/v1/auth/session")
    assert who.status == 200 and who.payload["kind"] == "super_admin" and who.payload["via"] == "token"
    assert (await bearer.get("/api/v1/organizations")).payload["items"][1]["name"] == "Annan AB"
    assert (await staff.delete(f"/api/v1/tokens/{created.payload['id']}")).status == 204
    assert (await bearer.get("/api/v1/auth/session")).status == 401


async def test_expired_token_is_refused(api_server, clients, anon, clock):
    resp = await clients["anna"].post("/api/v1/tokens", {
        "name": "short", "expires_at": (clock.now() + timedelta(hours=1)).isoformat()})
    bearer = Client(anon.base, anon.http)
    bearer.headers = {"Authorization": f"Bearer {resp.payload['token']}"}
    assert (await bearer.get("/api/v1/me")).status == 200
    clock.advance(hours=1)
    assert (await bearer.get("/api/v1/me")).status == 401


async def test_removed_user_cannot_log_in(api_server, clients, anon):
    staff = clients["staff"]
    bertil = (await staff.get("/api/v1/users?number=0854689902")).payload["items"][0]
    resp = await staff.patch(f"/api/v1/users/{bertil['id']}", {"deactivation_date": "2027-03-01"})
    assert resp.status == 200 and resp.payload["removed_at"]
    assert (await anon.login("+46854689902", PASSWORDS["bertil"])).status == 401
    assert (await clients["bertil"].get("/api/v1/me")).status == 401  # the session ended too
