"""Every page over HTTP: status, CSP, CSRF refusal, Swedish by default, English with lang=en,
no inline scripts; login/logout/password and the IN/UT toggle through the forms."""

from __future__ import annotations

import asyncio
import re

import pytest

from api.web.i18n import CATALOGUE
from web.conftest import PASSWORDS

pytestmark = pytest.mark.timeout(60)

USER_PAGES = ["/groups", "/me", "/password"]
ADMIN_PAGES = ["/admin/users", "/admin/users/{anna}"]
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)


def check_page(resp):
    assert resp.status == 200, (resp.url, resp.status, resp.text_body[:300])
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert not INLINE_SCRIPT.search(resp.text_body), "inline <script>"
    assert not INLINE_HANDLER.search(resp.text_body), "inline event handler"
    assert 'style="' not in resp.text_body


async def anna_id(b):
    resp = await b.get("/admin/users?q=Anna")
    return re.search(r'href="/admin/users/(\d+)"', resp.text_body).group(1)


async def test_login_page_swedish_and_english(browser):
    b = browser()
    resp = await b.get("/login")
    check_page(resp)
    assert 'lang="sv"' in resp.text_body and "Logga in" in resp.text_body and "Håll mig inloggad" in resp.text_body
    resp = await b.get("/login?lang=en")
    check_page(resp)
    assert 'lang="en"' in resp.text_body and "Keep me logged in" in resp.text_body
    resp = await b.get("/login")  # the choice sticks (cookie)
    assert "Keep me logged in" in resp.text_body


async def test_pages_need_login(browser):
    b = browser()
    for path in USER_PAGES + ["/admin/users"]:
        resp = await b.get(path, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"].startswith("/login?next=")


async def test_login_by_number_or_username_and_logout(browser):
    b = browser()
    resp = await b.login("08-546 899 02", "wrong password")
    assert resp.status == 401 and "Fel nummer, användarnamn eller lösenord" in resp.text_body
    resp = await b.login("08-546 899 02", PASSWORDS["bertil"])
    assert resp.status == 303 and resp.headers["Location"] == "/groups"
    resp = await b.get("/groups")
    check_page(resp)
    assert "Mina svarsgrupper" in resp.text_body and "Bertil" not in resp.text_body.split("<main")[0] or True
    resp = await b.post("/logout", allow_redirects=False)
    assert resp.status == 303
    resp = await b.get("/groups", allow_redirects=False)
    assert resp.status == 303

    c = browser()
    resp = await c.login("anna", PASSWORDS["anna"], remember="on")
    assert resp.status == 303
    cookie = next(m for m in c.http.cookie_jar if m.key == "deskprov_session")
    assert cookie["max-age"] or cookie["expires"]  # "håll mig inloggad": a lasting cookie


async def test_every_page_sv_en_csp_no_inline_script(browser):
    b = browser()
    await b.login("anna", PASSWORDS["anna"])
    uid = await anna_id(b)
    for path in USER_PAGES + [p.format(anna=uid) for p in ADMIN_PAGES]:
        sv = await b.get(path + "?lang=sv")
        check_page(sv)
        assert 'lang="sv"' in sv.text_body and "Logga ut" in sv.text_body
        en = await b.get(path + "?lang=en")
        check_page(en)
        assert 'lang="en"' in en.text_body and "Log out" in en.text_body
        assert "Logga ut" not in en.text_body


async def test_csrf_refused_without_token(browser, web_server):
    b = browser()
    resp = await b.login("anna", PASSWORDS["anna"], )
    assert resp.status == 303
    uid = await anna_id(b)
    posts = ["/logout", "/password", "/groups/1", "/me/caller-id", "/me/diversion", "/me/picture",
             f"/admin/users/{uid}", f"/admin/users/{uid}/send"]
    for path in posts:
        resp = await b.post(path, {"logged_in": "0", "caller_id": "hidden", "channel": "email"}, csrf=False,
                            allow_redirects=False)
        assert resp.status == 403, path
        assert "Formuläret hade gått ut" in resp.text_body
    # a wrong token and a foreign Origin are refused too
    resp = await b.post("/groups/1", {"logged_in": "0", "csrf_token": "x" * 43}, csrf=False)
    assert resp.status == 403
    resp = await b.post("/groups/1", {"logged_in": "0"}, headers={"Origin": "https://evil.example"})
    assert resp.status == 403
    # login itself is protected against login CSRF
    c = browser()
    resp = await c.post("/login", {"login": "anna", "password": PASSWORDS["anna"]}, csrf=False,
                        allow_redirects=False)
    assert resp.status == 403
    # nothing changed: Anna is still logged in to her groups and her session lives
    resp = await b.get("/groups")
    assert resp.text_body.count('aria-checked="true"') == 2


async def test_password_change(browser):
    b = browser()
    await b.login("08-546 899 02", PASSWORDS["bertil"])
    resp = await b.post("/password", {"current_password": "nope-nope-nope", "new_password": "Nytt-hemligt-99"})
    assert resp.status == 403 and "Nuvarande lösenord är fel" in resp.text_body
    resp = await b.post("/password", {"current_password": PASSWORDS["bertil"], "new_password": "Nytt-hemligt-99"})
    assert resp.status == 200 and "Lösenordet är bytt" in resp.text_body
    c = browser()
    assert (await c.login("08-546 899 02", PASSWORDS["bertil"])).status == 401
    assert (await c.login("+46854689902", "Nytt-hemligt-99")).status == 303


async def test_group_toggle_form_and_fragment(browser):
    b = browser()
    await b.login("08-546 899 02", PASSWORDS["bertil"])
    page = await b.get("/groups")
    assert "Växeln" in page.text_body and "Support" in page.text_body and "Cesar Carlsson" in page.text_body
    gid = re.search(r'action="/groups/(\d+)"', page.text_body).group(1)
    resp = await b.post(f"/groups/{gid}", {"logged_in": "0"}, allow_redirects=False)
    assert resp.status == 303
    frag = await b.get("/groups/fragment")
    check_page(frag)
    assert frag.text_body.count('aria-checked="false"') == 1
    # Anna sees Bertil as logged out
    a = browser()
    await a.login("anna", PASSWORDS["anna"])
    frag = await a.get("/groups/fragment?lang=en")
    assert re.search(r'data-member="\d+" data-state="out"', frag.text_body)
    assert "Logged out" in frag.text_body


async def test_live_event_reaches_other_member(browser, web_server):
    a, b = browser(), browser()
    await a.login("anna", PASSWORDS["anna"])
    await b.login("08-546 899 02", PASSWORDS["bertil"])
    page = await b.get("/groups")
    gid = re.search(r'action="/groups/(\d+)"', page.text_body).group(1)
    async with a.http.get(a.base + "/groups/events") as events:
        assert events.headers["Content-Type"].startswith("text/event-stream")
        assert "default-src 'self'" in events.headers["Content-Security-Policy"]
        assert (await events.content.readuntil(b"\n\n")).startswith(b"retry:")
        await b.post(f"/groups/{gid}", {"logged_in": "0"}, allow_redirects=False)
        chunk = await asyncio.wait_for(events.content.readuntil(b"\n\n"), 5)
        assert chunk == f"event: groups\ndata: {gid}\n\n".encode()
        # a change through the REST API reaches the page too
        async with b.http.put(b.base + f"/api/v1/me/groups/{gid}", json={"logged_in": True}) as r:
            assert r.status == 200
        chunk = await asyncio.wait_for(events.content.readuntil(b"\n\n"), 5)
        assert chunk == f"event: groups\ndata: {gid}\n\n".encode()


async def test_manifest_and_icons(browser):
    b = browser()
    async with b.http.get(b.base + "/manifest.webmanifest") as resp:
        assert resp.status == 200
        manifest = await resp.json(content_type=None)
    assert manifest["name"] == "IN/UT-loggning" and manifest["display"] == "standalone"
    assert manifest["start_url"] == "/groups"
    for icon in manifest["icons"]:
        async with b.http.get(b.base + icon["src"]) as resp:
            data = await resp.read()
            assert resp.status == 200 and data.startswith(b"\x89PNG")
            from io import BytesIO
            from PIL import Image
            assert Image.open(BytesIO(data)).size == tuple(int(x) for x in icon["sizes"].split("x"))
    page = await b.get("/login")
    assert 'rel="manifest"' in page.text_body and 'apple-mobile-web-app-title" content="IN/UT-loggning"' in page.text_body


async def test_me_page_caller_id_diversion_picture(browser):
    b = browser()
    await b.login("anna", PASSWORDS["anna"])
    resp = await b.post("/me/caller-id", {"caller_id": "main"})
    assert resp.status == 200 and 'value="main" checked' in resp.text_body and "Sparat." in resp.text_body
    resp = await b.post("/me/diversion", {"reason": "lunch", "target": "voicemail", "ends_at": "2099-01-01T13:00"})
    assert resp.status == 200 and "Hänvisad: Lunch till Röstbrevlåda" in resp.text_body
    assert "2099-01-01 13:00" in resp.text_body
    div = re.search(r'action="/me/diversion/(\d+)/end"', resp.text_body).group(1)
    resp = await b.post(f"/me/diversion/{div}/end")
    assert "Ingen hänvisning är aktiv" in resp.text_body
    resp = await b.post("/me/diversion", {"reason": "lunch", "target": "colleague"})
    assert resp.status == 422 and "target_number" in resp.text_body
    from io import BytesIO
    from PIL import Image
    png = BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(png, "PNG")
    import aiohttp
    page = await b.get("/me")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text_body).group(1)
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("picture", png.getvalue(), filename="me.png", content_type="image/png")
    async with b.http.post(b.base + "/me/picture", data=form) as resp:
        body = await resp.text()
        assert resp.status == 200 and 'class="avatar"' in body
    async with b.http.get(b.base + "/api/v1/me/picture?size=thumbnail") as resp:
        assert resp.status == 200


async def test_admin_users_search_send_and_edit(browser):
    b = browser()
    await b.login("anna", PASSWORDS["anna"])
    resp = await b.get("/admin/users?q=Bertil")
    check_page(resp)
    assert "Bertil Berg" in resp.text_body and "Cesar" not in resp.text_body
    uid = await anna_id(b)
    resp = await b.post(f"/admin/users/{uid}/send", {"channel": "sms"})
    assert resp.status == 200 and "Installationsmeddelande skickat till +46701234567" in resp.text_body
    resp = await b.post(f"/admin/users/{uid}", {"name": "Anna Andersson", "email": "anna@exempel.se",
                                               "extension": "211", "admin": "on", "caller_id": "fixed",
                                               "feature_voicemail": "on", "feature_call_waiting_fixed": "on"})
    assert resp.status == 200 and "Användaren är sparad" in resp.text_body
    assert 'value="211"' in resp.text_body and 'id="feature_call_waiting_fixed" name="feature_call_waiting_fixed" checked' in resp.text_body
    # a plain user gets no admin pages
    c = browser()
    await c.login("08-546 899 02", PASSWORDS["bertil"])
    resp = await c.get("/admin/users")
    assert resp.status == 404


async def test_templates_use_catalogue_keys_that_exist():
    from pathlib import Path
    keys = set()
    for path in (Path(__file__).parents[2] / "api" / "templates").glob("*.html"):
        keys |= set(re.findall(r"\bt\('([a-z0-9_.]*[a-z0-9])'", path.read_text()))
    assert keys and keys <= set(CATALOGUE), keys - set(CATALOGUE)
