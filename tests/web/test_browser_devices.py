"""Playwright + Debian's Chromium: program a BLF key on Anna's T46S and see the simulated phone get
it after "Synka nu"; bind a device from the technician's inbox; screenshots of the new pages."""

from __future__ import annotations

import re

import aiohttp
import pytest

from provisioning.discovery.sighting import Sighting
from simulators.phone import Phone
from simulators.yealink import YealinkProfile
from web.conftest import PASSWORDS, base_url
from web.test_browser import SHOTS, VIEWPORTS, chromium, log_in  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(90)


def t46s() -> Phone:
    return Phone(YealinkProfile("T46S", "80:5E:C0:AA:BB:01", "66.86.0.15"))


def watch(page, errors: list[str]) -> None:
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))


async def test_program_blf_key_and_phone_gets_it_after_resync(web_server, chromium):  # noqa: F811
    base, prov = base_url(web_server), f"http://127.0.0.1:{web_server.http_port}/"
    first = await t46s().boot_http(prov)  # the phone has called once: deskprov knows where it is
    assert not first.errors and (0, 4) not in first.keys
    errors: list[str] = []
    context = await chromium.new_context(viewport=VIEWPORTS["desktop"], locale="sv-SE")
    page = await context.new_page()
    watch(page, errors)
    await log_in(page, base, "anna", PASSWORDS["anna"])
    await page.get_by_role("link", name="Telefoner").click()
    await page.get_by_role("link", name="Öppna telefon 80:5E:C0:AA:BB:01").click()
    await page.locator("#slot-0-4").focus()  # keyboard selection of the slot
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r".*slot=0-4.*"))
    await page.get_by_label("Typ").select_option("blf")
    await page.get_by_label("Kollega").select_option(label="Bertil Berg (202)")
    await page.get_by_label("Etikett").fill("Bertil")
    await page.get_by_role("button", name="Spara").click()
    await page.get_by_text("Knappen är programmerad").wait_for()
    assert "is-blf" in await page.locator("#slot-0-4").get_attribute("class")
    assert "Bertil" in await page.locator("#slot-0-4").inner_text()
    await page.screenshot(path=str(SHOTS / "device-desktop.png"), full_page=True)
    # a bad target is refused inline, the page stays put
    await page.get_by_label("Eller annat nummer").fill("nej tack!")
    await page.get_by_role("button", name="Spara").click()
    await page.get_by_role("alert").wait_for()
    assert "Målet går inte att använda" in await page.get_by_role("alert").inner_text()

    await page.get_by_role("button", name="Synka nu").click()
    await page.get_by_text("Telefonen ombeds hämta sin konfiguration nu").wait_for()
    state = await t46s().boot_http(prov)
    assert not state.errors
    blf = state.keys[(0, 4)]
    assert (blf.type, blf.value, blf.label) == ("blf", "202", "Bertil")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    await context.close()


async def test_bind_from_inbox_and_screenshots(web_server, chromium):  # noqa: F811
    base = base_url(web_server)
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    context = await chromium.new_context(viewport=VIEWPORTS["phone"], locale="sv-SE")
    page = await context.new_page()
    watch(page, errors)
    await log_in(page, base, "anna", PASSWORDS["anna"])
    await page.goto(base + "/tech/inbox")
    assert "Inga okopplade enheter" in await page.locator("main").inner_text()
    # a phone appears while the page is open: the poll shows it without reload
    await page.evaluate("window.__notReloaded = 1")
    web_server.inbox.saw(Sighting(mac="80:5E:C0:11:22:33", ip="10.0.0.44", how="pnp", vendor="yealink",
                                  model="T46S", firmware="66.86.0.15"))
    await web_server.inbox.flush()
    item = page.locator("li.inbox-item", has_text="10.0.0.44")
    await item.wait_for(timeout=12000)
    assert await page.evaluate("window.__notReloaded") == 1
    await page.screenshot(path=str(SHOTS / "inbox-sighting-phone.png"), full_page=True)
    await item.get_by_label(re.compile("Användare")).select_option(label="Cesar Carlsson (203)")
    await item.get_by_role("button", name=re.compile("Koppla")).click()
    await page.get_by_text("Enheten är kopplad").wait_for()
    assert await page.locator("li.inbox-item", has_text="10.0.0.44").count() == 0
    assert "Cesar Carlsson" in await page.locator("section.recent").inner_text()
    async with aiohttp.ClientSession(cookies={c["name"]: c["value"] for c in await context.cookies()}) as http:
        async with http.get(base + "/api/v1/devices", params={"mac": "805ec0112233"}) as r:
            lines = (await r.json())["items"][0]["lines"]
    assert [l["user_name"] for l in lines] == ["Cesar Carlsson"]
    await context.close()

    for name, viewport in VIEWPORTS.items():
        context = await chromium.new_context(viewport=viewport, locale="sv-SE", device_scale_factor=1)
        page = await context.new_page()
        watch(page, errors)
        await log_in(page, base, "anna", PASSWORDS["anna"])
        for slug, path in [("devices", "/admin/devices"), ("device-key", "/admin/devices/1?slot=0-1&modules=1"),
                           ("inbox", "/tech/inbox"), ("audit", "/admin/audit")]:
            await page.goto(base + path)
            await page.screenshot(path=str(SHOTS / f"{slug}-{name}.png"), full_page=True)
        await context.close()
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
