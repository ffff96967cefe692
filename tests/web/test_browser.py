"""Playwright driving Debian's Chromium against a real deskprov: log in, live IN/UT updates
between two members, and screenshots of every page at phone and desktop width
(``var/screenshots/``, not committed)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from web.conftest import PASSWORDS, base_url

playwright_api = pytest.importorskip("playwright.async_api")
CHROMIUM = os.environ.get("DESKPROV_CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.timeout(90)

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}


@pytest.fixture
async def chromium():
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        await browser.close()


async def log_in(page, base: str, login: str, password: str) -> None:
    await page.goto(base + "/login")
    await page.get_by_label("Telefonnummer eller användarnamn").fill(login)
    await page.get_by_label("Lösenord").fill(password)
    await page.get_by_label("Håll mig inloggad").check()
    await page.get_by_role("button", name="Logga in").click()
    await page.wait_for_url(re.compile(r".*/groups$"))


async def test_toggle_updates_other_members_view_live(web_server, chromium):
    base = base_url(web_server)
    errors: list[str] = []
    anna_ctx = await chromium.new_context(viewport=VIEWPORTS["phone"], locale="sv-SE")
    bertil_ctx = await chromium.new_context(viewport=VIEWPORTS["phone"], locale="sv-SE")
    anna, bertil = await anna_ctx.new_page(), await bertil_ctx.new_page()
    for page in (anna, bertil):
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
    await log_in(anna, base, "anna", PASSWORDS["anna"])
    await log_in(bertil, base, "08-546 899 02", PASSWORDS["bertil"])
    for page in (anna, bertil):
        await page.locator("#live-state.on").wait_for()  # the event stream is open

    bertil_row = anna.locator("#group-1 li.member", has_text="Bertil Berg")
    assert await bertil_row.get_attribute("data-state") == "in"
    marker = await anna.evaluate("window.__notReloaded = 1")  # noqa: F841 - survives only without reload

    switch = bertil.get_by_role("switch", name="Inloggad i Växeln")
    assert await switch.get_attribute("aria-checked") == "true"
    await switch.focus()
    await bertil.keyboard.press("Enter")  # keyboard works the switch
    await bertil.locator('#toggle-1[aria-checked="false"]').wait_for()
    await anna.locator('#group-1 li.member[data-state="out"]', has_text="Bertil Berg").wait_for(timeout=5000)
    assert await anna.evaluate("window.__notReloaded") == 1
    assert "Utloggad" in await anna.locator("#group-1 li.member", has_text="Bertil Berg").inner_text()

    # and back in, by click; the "Uppdatera" button re-reads without reload
    await bertil.get_by_role("switch", name="Inloggad i Växeln").click()
    await anna.locator('#group-1 li.member[data-state="in"]', has_text="Bertil Berg").wait_for(timeout=5000)
    await anna.get_by_role("button", name="Uppdatera").click()
    assert await anna.evaluate("window.__notReloaded") == 1
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    await anna_ctx.close()
    await bertil_ctx.close()


async def test_screenshots_of_every_page(web_server, chromium):
    base = base_url(web_server)
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    for name, viewport in VIEWPORTS.items():
        context = await chromium.new_context(viewport=viewport, locale="sv-SE", device_scale_factor=1)
        page = await context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(base + "/login")
        await page.screenshot(path=str(SHOTS / f"login-{name}.png"), full_page=True)
        await log_in(page, base, "anna", PASSWORDS["anna"])
        await page.locator("#live-state.on").wait_for()
        await page.screenshot(path=str(SHOTS / f"groups-{name}.png"), full_page=True)
        for slug, path in [("me", "/me"), ("password", "/password"), ("users", "/admin/users"),
                           ("groups-en", "/groups?lang=en")]:
            await page.goto(base + path)
            await page.screenshot(path=str(SHOTS / f"{slug}-{name}.png"), full_page=True)
        await page.goto(base + "/admin/users?lang=sv")
        await page.get_by_role("link", name="Redigera").first.click()
        await page.screenshot(path=str(SHOTS / f"user-edit-{name}.png"), full_page=True)
        await context.close()
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    assert len(list(SHOTS.glob("*.png"))) >= 14
