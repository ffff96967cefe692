"""Desk phones, the technician's inbox and the audit log over HTTP: CSP, CSRF refusal, sv/en,
programming a key (with the API's validation shown inline), bind/unbind, resync, inbox binding."""

from __future__ import annotations

import re

import pytest

from provisioning.discovery.sighting import Sighting
from web.conftest import PASSWORDS
from web.test_pages import check_page

pytestmark = pytest.mark.timeout(60)


async def admin(browser):
    b = browser()
    assert (await b.login("anna", PASSWORDS["anna"])).status == 303
    return b


async def device_id(b) -> str:
    resp = await b.get("/admin/devices")
    return re.search(r'href="/admin/devices/(\d+)"', resp.text_body).group(1)


async def test_device_pages_sv_en_csp(browser):
    b = await admin(browser)
    did = await device_id(b)
    for path in ["/admin/devices", f"/admin/devices/{did}", f"/admin/devices/{did}?slot=0-4",
                 f"/admin/devices/{did}?modules=2&p0=3&p1=2", "/tech/inbox", "/tech/inbox/fragment", "/admin/audit"]:
        sep = "&" if "?" in path else "?"
        sv = await b.get(path + sep + "lang=sv")
        check_page(sv)
        en = await b.get(path + sep + "lang=en")
        check_page(en)
        if "fragment" not in path:
            assert "Logga ut" in sv.text_body and "Log out" in en.text_body and "Logga ut" not in en.text_body
    page = await b.get(f"/admin/devices/{did}?lang=sv")
    assert "Yealink T46S" in page.text_body and "Synka nu" in page.text_body
    # the T46S: 27 keys, pages of ten (five a side) -> three pages; slot 1 programmed as a line
    assert page.text_body.count('id="slot-') == 10
    assert 'aria-label="Sida 3"' in page.text_body
    assert 'id="slot-0-1" class="keycap is-line' in page.text_body
    # an EXP40 strip: 40 keys in two pages of 20
    exp = await b.get(f"/admin/devices/{did}?modules=1")
    assert exp.text_body.count('id="slot-') == 30 and "Expansionsmodul 1" in exp.text_body
    # choosing a slot on another page jumps to that page
    jump = await b.get(f"/admin/devices/{did}?slot=0-24")
    assert 'id="slot-0-24"' in jump.text_body and 'aria-current="true"' in jump.text_body
    plain = browser()
    await plain.login("08-546 899 02", PASSWORDS["bertil"])
    for path in ["/admin/devices", f"/admin/devices/{did}", "/tech/inbox", "/admin/audit"]:
        assert (await plain.get(path)).status == 404


async def test_device_posts_refuse_without_csrf(browser):
    b = await admin(browser)
    did = await device_id(b)
    for path in [f"/admin/devices/{did}/keys", f"/admin/devices/{did}/bind", f"/admin/devices/{did}/resync",
                 "/tech/inbox/bind"]:
        resp = await b.post(path, {"module": "0", "slot": "4", "type": "blf", "target_user": "202", "unbind": "1",
                                   "mac": "805ec0aabb09", "user": "202"}, csrf=False, allow_redirects=False)
        assert resp.status == 403, path
        assert "Formuläret hade gått ut" in resp.text_body
    async with b.http.get(b.base + f"/api/v1/devices/{did}/keys") as r:
        assert [k["slot"] for k in (await r.json())["keys"]] == [1]


async def test_program_key_validation_bind_and_resync(browser):
    b = await admin(browser)
    did = await device_id(b)
    resp = await b.post(f"/admin/devices/{did}/keys", {"module": "0", "slot": "4", "type": "blf",
                                                      "target_user": "202", "label": "Bertil"})
    assert resp.status == 200 and "Knappen är programmerad" in resp.text_body
    assert 'id="slot-0-4" class="keycap is-blf' in resp.text_body
    async with b.http.get(b.base + f"/api/v1/devices/{did}/keys") as r:
        key = next(k for k in (await r.json())["keys"] if k["slot"] == 4)
    assert (key["type"], key["target"], key["label"]) == ("blf", "+46854689902", "Bertil")
    # the catalogue refuses slot 28 on a T46S: shown inline, in Swedish and English
    resp = await b.post(f"/admin/devices/{did}/keys", {"module": "0", "slot": "28", "type": "blf",
                                                      "target_number": "202"})
    assert resp.status == 422 and "Knappen går inte att programmera" in resp.text_body and 'role="alert"' in resp.text_body
    resp = await b.post(f"/admin/devices/{did}/keys?lang=en", {"module": "7", "slot": "1", "type": "speed_dial",
                                                              "target_number": "0812345678"})
    assert resp.status == 422 and "This model cannot have that key" in resp.text_body
    resp = await b.post(f"/admin/devices/{did}/keys?lang=sv", {"module": "0", "slot": "5", "type": "speed_dial",
                                                              "target_number": "not a number!"})
    assert resp.status == 422 and "Målet går inte att använda" in resp.text_body
    assert 'value="not a number!"' in resp.text_body  # what was typed stays
    resp = await b.post(f"/admin/devices/{did}/keys", {"module": "0", "slot": "5", "type": "blf"})
    assert resp.status == 422 and "Välj en kollega eller skriv ett nummer" in resp.text_body
    # clear the key again
    resp = await b.post(f"/admin/devices/{did}/keys", {"module": "0", "slot": "4", "type": "blf", "clear": "1"})
    assert 'id="slot-0-4" class="keycap is-chosen"' in resp.text_body
    # unbind and bind the owner
    resp = await b.post(f"/admin/devices/{did}/bind", {"unbind": "1"})
    assert resp.status == 200 and "Telefonen är urkopplad" in resp.text_body
    users = await b.get("/admin/users?q=Bertil")
    bertil = re.search(r'href="/admin/users/(\d+)"', users.text_body).group(1)
    resp = await b.post(f"/admin/devices/{did}/bind", {"user_id": bertil})
    assert resp.status == 200 and "Telefonen är kopplad" in resp.text_body
    async with b.http.get(b.base + f"/api/v1/devices/{did}") as r:
        assert [l["user_name"] for l in (await r.json())["lines"]] == ["Bertil Berg"]
    # resync before the phone ever called: a clear message, not a crash
    resp = await b.post(f"/admin/devices/{did}/resync", {})
    assert resp.status == 409 and "har inte kontaktat servern" in resp.text_body


async def test_inbox_lists_and_binds_a_sighting(browser, web_server):
    web_server.inbox.saw(Sighting(mac="80:5E:C0:11:22:33", ip="10.0.0.44", how="pnp", vendor="yealink",
                                  model="T46S", firmware="66.86.0.15"))
    await web_server.inbox.flush()
    b = await admin(browser)
    page = await b.get("/tech/inbox")
    check_page(page)
    assert "805ec0112233" in page.text_body.replace(":", "").lower() and "10.0.0.44" in page.text_body
    assert 'data-poll="/tech/inbox/fragment"' in page.text_body
    frag = await b.get("/tech/inbox/fragment")
    assert "10.0.0.44" in frag.text_body
    mac = re.search(r'name="mac" value="([^"]+)"', page.text_body).group(1)
    resp = await b.post("/tech/inbox/bind", {"mac": mac, "user": "+46854689903"})
    assert resp.status == 200 and "Enheten är kopplad" in resp.text_body
    assert "10.0.0.44" not in resp.text_body.split("Nyligen kopplade")[0]
    async with b.http.get(b.base + "/api/v1/devices", params={"mac": "80:5E:C0:11:22:33"}) as r:
        item = (await r.json())["items"][0]
    assert [l["user_name"] for l in item["lines"]] == ["Cesar Carlsson"]
    assert "Cesar Carlsson" in resp.text_body.split("Nyligen kopplade")[1]
    bad = await b.post("/tech/inbox/bind", {"mac": "80:5E:C0:11:22:34", "user": "nobody-here"})
    assert bad.status in (404, 409, 422) and 'role="alert"' in bad.text_body


async def test_audit_page_shows_changes(browser):
    b = await admin(browser)
    did = await device_id(b)
    await b.post(f"/admin/devices/{did}/keys", {"module": "0", "slot": "6", "type": "speed_dial",
                                               "target_number": "08-123 456 78", "label": "Support"})
    resp = await b.get("/admin/audit?entity=device_keys")
    check_page(resp)
    assert "device_keys" in resp.text_body and "Anna Andersson" in resp.text_body and "+46812345678" in resp.text_body


async def test_device_page_shows_the_fetch_trail_and_rotates_the_sip_password(browser, web_server):
    """Issue "Security": the phone's latest config requests on its page; a new SIP password from it."""
    import aiohttp
    from sqlalchemy import select

    from provisioning.model import Line

    b = await admin(browser)
    did = await device_id(b)
    assert "Inga hämtningar registrerade." in (await b.get(f"/admin/devices/{did}?lang=sv")).text_body
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{web_server.http_port}/805ec0aabb01.cfg",
                            headers={"User-Agent": "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01"}) as resp:
            await resp.read()
    await web_server.fetch_audit.flush()
    page = await b.get(f"/admin/devices/{did}?lang=sv")
    check_page(page)
    assert "Senaste hämtningar" in page.text_body and "/805ec0aabb01.cfg" in page.text_body
    assert "Latest fetches" in (await b.get(f"/admin/devices/{did}?lang=en")).text_body

    async with web_server.sessions() as session:
        before = (await session.execute(select(Line.password).where(Line.device_id == int(did), Line.index == 1))).scalars().all()
    resp = await b.post(f"/admin/devices/{did}/sip-password", {}, allow_redirects=False)
    assert resp.status == 303
    done = await b.get(resp.headers["Location"] + "?lang=sv")
    assert "Nytt SIP-lösenord skapat" in done.text_body
    async with web_server.sessions() as session:
        after = (await session.execute(select(Line.password).where(Line.device_id == int(did), Line.index == 1))).scalars().all()
    assert len(after) == len(before) and set(after).isdisjoint(before)
    assert (await b.post(f"/admin/devices/{did}/sip-password", {}, csrf=False, allow_redirects=False)).status == 403
