"""Playwright + Debian's Chromium on the answer-group, calendar and menu pages: reorder a calendar
entry by keyboard and see its lint warning go away; program menu keys (a group, an external
number); screenshots of every new page at phone (390 px) and desktop (1366 px) width."""

from __future__ import annotations

import re

import aiohttp
import pytest

from web.conftest import PASSWORDS, base_url
from web.routing_org import routing_server  # noqa: F401  (fixture)
from web.test_browser import SHOTS, chromium, log_in  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(120)
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 900}}


def watch(page, errors: list[str]) -> None:
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))


async def api_json(context, base: str, path: str) -> dict:
    async with aiohttp.ClientSession(cookies={c["name"]: c["value"] for c in await context.cookies()}) as http:
        async with http.get(base + "/api/v1" + path) as r:
            assert r.status == 200
            return await r.json()


async def test_reorder_calendar_entry_and_the_lint_warning_goes_away(routing_server, chromium):  # noqa: F811
    base = base_url(routing_server)
    errors: list[str] = []
    context = await chromium.new_context(viewport=VIEWPORTS["desktop"], locale="sv-SE")
    page = await context.new_page()
    watch(page, errors)
    await log_in(page, base, "anna", PASSWORDS["anna"])
    await page.get_by_role("link", name="Svarsgrupper", exact=True).click()
    await page.get_by_role("link", name="Öppna svarsgruppen Växeln").click()
    lunch = page.locator("li.entry", has_text="Lunch")
    assert "has-lint" in await lunch.get_attribute("class")
    assert "används aldrig" in await lunch.locator(".lint").inner_text()  # inline, next to Lunch
    await page.screenshot(path=str(SHOTS / "answer-group-lint-desktop.png"), full_page=True)

    await page.get_by_role("button", name="Flytta upp Lunch").focus()  # keyboard only
    await page.keyboard.press("Enter")
    await page.get_by_text("Posten är flyttad").wait_for()
    lunch = page.locator("li.entry", has_text="Lunch")
    assert await lunch.locator(".entry-pos").inner_text() == "1"
    assert await lunch.locator(".lint").count() == 0 and "has-lint" not in await lunch.get_attribute("class")
    assert await page.locator("li.entry .lint").count() == 0
    # focus stays on the moved entry's buttons, so the next key press moves it again
    focused = await page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused == "Flytta ned Lunch"
    schedule = await api_json(context, base, "/groups/1/schedule")
    assert [e["name"] for e in schedule["entries"]] == ["Lunch", "Kontorstid", "default"]
    assert schedule["lint"] == []

    # moving it back down brings the warning back, in English too
    await page.keyboard.press("Enter")
    await page.get_by_text("Posten är flyttad").wait_for()
    await page.goto(base + "/admin/groups/1?lang=en")
    assert "is never used" in await page.locator("li.entry", has_text="Lunch").locator(".lint").inner_text()
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    await context.close()


async def test_menu_keys_by_browser(routing_server, chromium):  # noqa: F811
    base = base_url(routing_server)
    errors: list[str] = []
    context = await chromium.new_context(viewport=VIEWPORTS["phone"], locale="sv-SE")
    page = await context.new_page()
    watch(page, errors)
    await log_in(page, base, "anna", PASSWORDS["anna"])
    await page.goto(base + "/admin/menus")
    await page.get_by_role("link", name="Öppna menyn Huvudmeny").click()
    number = page.get_by_label("Externt nummer").nth(3)  # key 4's, shown only when chosen
    assert not await number.is_visible()
    await page.get_by_label("Knapp 2", exact=True).select_option(label="Support")
    await page.get_by_label("Knapp 4", exact=True).select_option(value="external")
    assert await number.is_visible()
    await number.fill("08-123 456 78")
    await page.get_by_role("button", name="Spara knappval").click()
    await page.get_by_text("Knappvalen är sparade").wait_for()
    menu = await api_json(context, base, "/menus/1")
    assert menu["options"]["2"]["name"] == "Support"
    assert menu["options"]["4"] == {"kind": "external", "id": None, "number": "+46812345678", "name": None}
    assert menu["options"]["1"]["name"] == "Växeln" and menu["options"]["9"]["kind"] == "repeat"
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    await context.close()


async def test_screenshots_of_the_routing_pages(routing_server, chromium):  # noqa: F811
    base = base_url(routing_server)
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    for name, viewport in VIEWPORTS.items():
        context = await chromium.new_context(viewport=viewport, locale="sv-SE", device_scale_factor=1)
        page = await context.new_page()
        watch(page, errors)
        await log_in(page, base, "anna", PASSWORDS["anna"])
        for slug, path in [("answer-groups", "/admin/groups"), ("answer-group", "/admin/groups/1"),
                           ("answer-group-en", "/admin/groups/1?lang=en"),
                           ("answer-group-entry", "/admin/groups/1?lang=sv&entry=2#entry-form"),
                           ("menus", "/admin/menus"), ("menu", "/admin/menus/1"),
                           ("main-number", "/admin/main-number")]:
            await page.goto(base + path)
            await page.screenshot(path=str(SHOTS / f"{slug}-{name}.png"), full_page=True)
        await context.close()
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    assert all((SHOTS / f"{slug}-{name}.png").stat().st_size > 10_000 for slug in ("answer-group", "menu")
               for name in VIEWPORTS)
