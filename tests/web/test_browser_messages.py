"""Playwright + Debian's Chromium: upload a voice message through the file input, play it in the
page's <audio> element (time advances, it ends, its duration is the file's), replace it and hear
the new one; add an external contact and see the desk phone's directory get it; screenshots of
both pages at phone and desktop width (``var/screenshots/``)."""

from __future__ import annotations

import pytest

from simulators.phone import Phone
from simulators.yealink import YealinkProfile
from web.conftest import PASSWORDS, base_url
from web.test_browser import SHOTS, VIEWPORTS, chromium, log_in  # noqa: F401  (fixture)
from web.test_message_pages import tone

pytestmark = pytest.mark.timeout(120)

WIDTHS = {"phone": VIEWPORTS["phone"], "desktop": {"width": 1366, "height": 900}}


def watch(page, errors: list[str]) -> None:
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))


async def play_to_the_end(page, card) -> dict:
    """Start the card's player as a person would (a click on its play control) and wait until it
    has played through; returns what the element reported."""
    audio = card.locator("audio")
    await audio.evaluate("""a => new Promise((ok, fail) => {
        if (a.readyState >= 1) { ok(); return; }
        a.addEventListener('loadedmetadata', () => ok(), {once: true});
        a.addEventListener('error', () => fail(new Error('audio error ' + (a.error && a.error.code))), {once: true});
    })""")
    await audio.evaluate("""a => { window.__played = {times: [], ended: false};
        a.addEventListener('timeupdate', () => window.__played.times.push(a.currentTime));
        a.addEventListener('ended', () => { window.__played.ended = true; }, {once: true}); }""")
    box = await audio.bounding_box()
    await audio.click(position={"x": 22, "y": box["height"] / 2})  # the native play button
    await audio.evaluate("""a => new Promise(ok => {
        if (window.__played.ended) { ok(); } else { a.addEventListener('ended', () => ok(), {once: true}); } })""")
    return await audio.evaluate("a => ({duration: a.duration, times: window.__played.times, paused: a.paused,"
                                " src: a.currentSrc})")


async def test_upload_play_replace_voice_message(web_server, chromium, tmp_path):  # noqa: F811
    base = base_url(web_server)
    first, second = tmp_path / "välkommen.wav", tmp_path / "ny-välkommen.wav"
    first.write_bytes(tone(1.5, rate=22050))
    second.write_bytes(tone(3.0, rate=44100, hz=660, channels=2))
    errors: list[str] = []
    context = await chromium.new_context(viewport=WIDTHS["desktop"], locale="sv-SE")
    page = await context.new_page()
    watch(page, errors)
    await log_in(page, base, "anna", PASSWORDS["anna"])
    await page.get_by_role("link", name="Röstmeddelanden").click()
    await page.get_by_role("heading", name="Ny inspelning").wait_for()
    upload = page.locator("section", has=page.get_by_role("heading", name="Ny inspelning"))
    await upload.get_by_label("Namn").fill("Välkommen")
    await upload.get_by_label("Ljudfil").set_input_files(str(first))
    await upload.get_by_role("button", name="Ladda upp").click()
    await page.get_by_text("Inspelningen är uppladdad").wait_for()

    card = page.locator("li.message", has=page.get_by_role("heading", name="Välkommen"))
    assert "1,5 s" in await card.inner_text()
    heard = await play_to_the_end(page, card)
    assert heard["duration"] == pytest.approx(1.5, abs=0.05)
    assert heard["times"] and max(heard["times"]) > 1.0 and heard["paused"]
    await page.screenshot(path=str(SHOTS / "messages-played-desktop.png"), full_page=True)

    # replace it: the same card, a new recording of a different length
    await card.get_by_text("Ersätt inspelning").click()
    await card.get_by_label("Ny ljudfil för Välkommen").set_input_files(str(second))
    await card.get_by_role("button", name="Ladda upp och ersätt").click()
    await page.get_by_text("Inspelningen är ersatt").wait_for()
    card = page.locator("li.message", has=page.get_by_role("heading", name="Välkommen"))
    assert "3,0 s" in await card.inner_text()
    again = await play_to_the_end(page, card)
    assert again["duration"] == pytest.approx(3.0, abs=0.05)
    assert max(again["times"]) > 2.5 and again["src"] != heard["src"]
    assert await page.locator("li.message").count() == 1
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    await context.close()


async def test_contact_reaches_the_desk_phone(web_server, chromium):  # noqa: F811
    base, prov = base_url(web_server), f"http://127.0.0.1:{web_server.http_port}/"
    phone = Phone(YealinkProfile("T46S", "80:5E:C0:AA:BB:01", "66.86.0.15"))
    before = await phone.boot_http(prov)
    assert not before.errors and before.contacts == []
    errors: list[str] = []
    context = await chromium.new_context(viewport=WIDTHS["desktop"], locale="sv-SE")
    page = await context.new_page()
    watch(page, errors)
    await log_in(page, base, "anna", PASSWORDS["anna"])
    await page.get_by_role("link", name="Kontakter").click()
    await page.get_by_label("Telefonbokens namn").fill("Leverantörer")
    await page.get_by_role("button", name="Skapa telefonbok").click()
    await page.get_by_text("Telefonboken är skapad").wait_for()
    add = page.locator("#add")
    await add.get_by_label("Namn").fill("Åkeriet i Göteborg")
    await add.get_by_label("Företag").fill("Åkeriet AB")
    await add.get_by_label("Telefonnummer").fill("031-123 45 67")
    await add.get_by_role("button", name="Lägg till").click()
    await page.get_by_text("Kontakten är tillagd").wait_for()
    # Anna's phone is listed as one that shows the book
    phones = page.locator("#phones")
    assert "80:5E:C0:AA:BB:01" in await phones.inner_text()
    await phones.get_by_role("button", name="Synka telefonerna nu").click()
    await page.get_by_text("1 telefoner ombeds hämta telefonboken nu").wait_for()
    after = await phone.boot_http(prov)
    assert not after.errors
    assert [(c["name"], c["numbers"]) for c in after.contacts] == [("Åkeriet i Göteborg", ["+46311234567"])] or \
        any(c["name"] == "Åkeriet i Göteborg" and "+46311234567" in str(c["numbers"]) for c in after.contacts)
    # search finds it by the number as people write it
    await page.get_by_role("searchbox").fill("031-123")
    await page.get_by_role("button", name="Sök").click()
    assert "1 av 1 kontakter matchar" in await page.locator("main").inner_text()
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    await context.close()


async def test_screenshots_messages_and_contacts(web_server, chromium):  # noqa: F811
    """The pages filled the way a customer's would be, at phone and desktop width."""
    import aiohttp
    from conftest import import_org
    from web.test_message_pages import MENU
    await import_org(web_server, MENU + """phonebooks:
  - name: Externa kontakter
    members: all
    contacts:
      - {name: Leverantören AB, number: "+46311234567", company: Leverantören}
      - {name: Bokföringsbyrån, number: "08-123 456 78", mobile: "070-987 65 43", company: Siffror & Co}
      - {name: Fastighetsjouren, number: "020-12 34 56"}
  - name: Kunder
    members: ["+46854689901"]
    contacts:
      - {name: Kund Ett AB, number: "+46401234567"}
""")
    base = base_url(web_server)
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    context = await chromium.new_context(viewport=WIDTHS["desktop"], locale="sv-SE")
    page = await context.new_page()
    await log_in(page, base, "anna", PASSWORDS["anna"])
    cookies = {c["name"]: c["value"] for c in await context.cookies()}
    async with aiohttp.ClientSession(cookies=cookies) as http:
        for name, seconds in (("Kväll", 4.2), ("Kö", 12.0)):
            async with http.post(base + "/api/v1/messages/recordings", params={"name": name, "filename": f"{name}.wav"},
                                 data=tone(seconds, hz=330), headers={"Content-Type": "audio/wav"}) as r:
                assert r.status == 201, await r.text()
    await context.close()
    for width, viewport in WIDTHS.items():
        context = await chromium.new_context(viewport=viewport, locale="sv-SE", device_scale_factor=1)
        page = await context.new_page()
        watch(page, errors)
        await log_in(page, base, "anna", PASSWORDS["anna"])
        for slug, path in [("messages", "/admin/messages"), ("contacts", "/admin/contacts"),
                           ("contacts-edit", "/admin/contacts?edit=2#contact-2"),
                           ("messages-en", "/admin/messages?lang=en"), ("contacts-en", "/admin/contacts?lang=en")]:
            await page.goto(base + path)
            await page.screenshot(path=str(SHOTS / f"{slug}-{width}.png"), full_page=True)
        await context.close()
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
