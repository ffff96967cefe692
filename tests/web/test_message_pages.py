"""Voice messages over HTTP: the page in sv/en under the strict CSP, real multipart uploads
through the form (normalised to 8 kHz by the API), listening, replacing with If-Match (a stale
version is refused inline), oversized files refused inline, delete refused while a menu uses the
message (the 409's places shown on the card), CSRF on every form, admins only."""

from __future__ import annotations

import io
import math
import re
import struct
import wave

import aiohttp
import pytest

from conftest import import_org
from web.conftest import ORG, PASSWORDS
from web.test_pages import INLINE_HANDLER, INLINE_SCRIPT, check_page


def check_markup(resp) -> None:
    """check_page for an error answer: the same headers and markup rules, any status."""
    assert "unsafe-inline" not in resp.headers["Content-Security-Policy"]
    assert not INLINE_SCRIPT.search(resp.text_body) and not INLINE_HANDLER.search(resp.text_body)
    assert 'style="' not in resp.text_body

pytestmark = pytest.mark.timeout(90)

MENU = ORG + """messages:
  - {name: meny, text: "Välkommen till Exempel."}
menus:
  - name: Huvudmeny
    number: "+46854689900"
    message: meny
    options: {"1": {group: Växeln}}
"""


def tone(seconds: float, rate: int = 16000, hz: float = 440.0, channels: int = 1) -> bytes:
    """A real WAV file: a sine tone of ``seconds``."""
    frames = bytearray()
    for i in range(int(seconds * rate)):
        sample = struct.pack("<h", int(12000 * math.sin(2 * math.pi * hz * i / rate)))
        frames += sample * channels
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return out.getvalue()


async def admin(browser):
    b = browser()
    assert (await b.login("anna", PASSWORDS["anna"])).status == 303
    return b


async def csrf_of(b) -> str:
    page = await b.get("/password")  # every page carries the token; /password any user may open
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text_body).group(1)


async def upload(b, path: str, fields: dict, data: bytes | None, filename: str = "hej.wav",
                 content_type: str = "audio/wav", csrf: bool = True):
    form = aiohttp.FormData()
    if csrf:
        form.add_field("csrf_token", await csrf_of(b))
    for name, value in fields.items():
        form.add_field(name, str(value))
    if data is not None:
        form.add_field("audio", data, filename=filename, content_type=content_type)
    async with b.http.post(b.base + path, data=form) as resp:
        resp.text_body = await resp.text()
        return resp


async def api(b, method: str, path: str, **kw):
    async with b.http.request(method, b.base + "/api/v1" + path, **kw) as resp:
        return resp.status, (await resp.read()), resp.headers


async def messages(b) -> dict[str, dict]:
    status, body, _ = await api(b, "GET", "/messages")
    import json
    return {m["name"]: m for m in json.loads(body)["items"]}


async def test_messages_page_sv_en_csp_and_admins_only(browser):
    b = await admin(browser)
    sv = await b.get("/admin/messages?lang=sv")
    check_page(sv)
    assert "Röstmeddelanden" in sv.text_body and "Ny inspelning" in sv.text_body
    assert 'enctype="multipart/form-data"' in sv.text_body and 'data-max-bytes="8388608"' in sv.text_body
    assert "Skapa med talsyntes" in sv.text_body
    en = await b.get("/admin/messages?lang=en")
    check_page(en)
    assert "Voice messages" in en.text_body and "New recording" in en.text_body and "Ny inspelning" not in en.text_body
    assert 'href="/admin/messages" aria-current="page"' in en.text_body
    plain = browser()
    await plain.login("08-546 899 02", PASSWORDS["bertil"])
    assert (await plain.get("/admin/messages")).status == 404
    assert (await upload(plain, "/admin/messages/recordings", {"name": "x"}, tone(0.5))).status in (403, 404)
    assert await messages(b) == {}


async def test_upload_listen_replace_and_stale_version(browser):
    b = await admin(browser)
    resp = await upload(b, "/admin/messages/recordings", {"name": "Kväll"}, tone(1.0, rate=44100, channels=2),
                        filename="kvall.wav")
    assert resp.status == 200 and "Inspelningen är uppladdad" in resp.text_body
    m = (await messages(b))["Kväll"]
    assert m["duration"] == pytest.approx(1.0, abs=0.01) and m["source_format"] == "WAV"
    assert m["filename"] == "kvall.wav"
    check_page(resp)
    assert f'id="message-{m["id"]}"' in resp.text_body and "1,0 s" in resp.text_body
    assert f'src="/api/v1/messages/{m["id"]}/audio?v={m["version"]}"' in resp.text_body
    status, audio, headers = await api(b, "GET", f"/messages/{m['id']}/audio?v={m['version']}")
    assert status == 200 and headers["Content-Type"] == "audio/wav"
    with wave.open(io.BytesIO(audio)) as w:  # what the browser plays: normalised 8 kHz mono
        assert (w.getframerate(), w.getnchannels()) == (8000, 1)
        assert w.getnframes() / w.getframerate() == pytest.approx(1.0, abs=0.01)

    # replace with a longer recording: the new duration, the same message
    resp = await upload(b, f"/admin/messages/{m['id']}/audio", {"version": m["version"]}, tone(2.5),
                        filename="ny.wav")
    assert resp.status == 200 and "Inspelningen är ersatt" in resp.text_body
    again = (await messages(b))["Kväll"]
    assert again["id"] == m["id"] and again["duration"] == pytest.approx(2.5, abs=0.01)
    assert again["version"] > m["version"] and "2,5 s" in resp.text_body

    # a replace based on the old page is refused inline and changes nothing
    resp = await upload(b, f"/admin/messages/{m['id']}/audio", {"version": m["version"]}, tone(4.0))
    assert resp.status == 412
    assert "Någon annan ändrade meddelandet" in resp.text_body and f'id="message-{m["id"]}-error"' in resp.text_body
    assert (await messages(b))["Kväll"]["duration"] == pytest.approx(2.5, abs=0.01)

    # rename with the current version
    resp = await b.post(f"/admin/messages/{m['id']}", {"name": "Kvällshälsning", "version": again["version"]})
    assert resp.status == 200 and "Meddelandet är sparat" in resp.text_body
    assert "Kvällshälsning" in await messages(b)


async def test_bad_uploads_are_refused_inline_and_change_nothing(browser):
    b = await admin(browser)
    # not audio at all (a PNG labelled as audio): the API's reason, inline
    resp = await upload(b, "/admin/messages/recordings", {"name": "Bild"}, b"\x89PNG\r\n\x1a\n" + b"\0" * 200,
                        filename="bild.png", content_type="image/png")
    assert resp.status == 415 and "Filen går inte att använda" in resp.text_body
    check_markup(resp)
    assert 'value="Bild"' in resp.text_body  # what was typed is kept
    # larger than 8 MB: inline, never stored (read to the end, so the browser gets the page)
    big = b"RIFF" + b"\0" * (8 * 1024 * 1024 + 10)
    resp = await upload(b, "/admin/messages/recordings", {"name": "Stor"}, big)
    assert resp.status == 413 and "Filen är för stor" in resp.text_body and "8,0 MB" in resp.text_body
    # far larger: refused without reading it all
    huge = b"\0" * (70 * 1024 * 1024)
    try:
        resp = await upload(b, "/admin/messages/recordings", {"name": "Jätte"}, huge)
        assert resp.status == 413 and "Filen är för stor" in resp.text_body
    except aiohttp.ClientError:
        pass  # the server may close the connection before the client finishes sending
    # no file, no name
    resp = await upload(b, "/admin/messages/recordings", {"name": "Tom"}, None)
    assert resp.status == 422 and "Välj en ljudfil" in resp.text_body
    resp = await upload(b, "/admin/messages/recordings", {"name": ""}, tone(0.5))
    assert resp.status == 422 and "Ge meddelandet ett namn" in resp.text_body
    # silence is refused by the API
    resp = await upload(b, "/admin/messages/recordings", {"name": "Tyst"}, tone(0.5, hz=0))
    assert resp.status == 422 and "silent" in resp.text_body
    # without the CSRF token nothing happens
    resp = await upload(b, "/admin/messages/recordings", {"name": "Utan"}, tone(0.5), csrf=False)
    assert resp.status == 403 and "Formuläret hade gått ut" in resp.text_body
    # a duplicate name
    assert (await upload(b, "/admin/messages/recordings", {"name": "Dubbel"}, tone(0.5))).status == 200
    resp = await upload(b, "/admin/messages/recordings", {"name": "Dubbel"}, tone(0.7))
    assert resp.status == 409 and "Det finns redan ett meddelande med det namnet" in resp.text_body
    assert sorted(await messages(b)) == ["Dubbel"]


async def test_delete_in_use_shows_where_then_unused_deletes(browser, web_server):
    await import_org(web_server, MENU)
    b = await admin(browser)
    meny = (await messages(b))["meny"]
    page = await b.get("/admin/messages")
    assert "Används av:" in page.text_body and "menyn &#39;Huvudmeny&#39;: hälsning" in page.text_body
    resp = await b.post(f"/admin/messages/{meny['id']}/delete", {"version": meny["version"]})
    assert resp.status == 409
    check_markup(resp)
    assert "Meddelandet används och kan inte tas bort: menyn &#39;Huvudmeny&#39;: hälsning" in resp.text_body
    assert f'id="message-{meny["id"]}-error"' in resp.text_body
    en = await b.post(f"/admin/messages/{meny['id']}/delete?lang=en", {"version": meny["version"]})
    assert "menu &#39;Huvudmeny&#39;: greeting" in en.text_body
    assert "meny" in await messages(b)
    # an unused message goes
    await upload(b, "/admin/messages/recordings", {"name": "Gammal"}, tone(0.5))
    old = (await messages(b))["Gammal"]
    resp = await b.post(f"/admin/messages/{old['id']}/delete?lang=sv", {"version": old["version"]})
    assert resp.status == 200 and "Meddelandet är borttaget" in resp.text_body
    assert "Gammal" not in await messages(b)


async def test_text_to_speech_from_the_page(browser):
    from provisioning.media import espeak_binary
    if espeak_binary() is None:
        pytest.skip("espeak-ng is not installed")
    b = await admin(browser)
    resp = await b.post("/admin/messages/speech", {"name": "Lunch", "text": "Vi har lunchstängt.", "voice": "sv"})
    assert resp.status == 200 and "Meddelandet är skapat med talsyntes" in resp.text_body
    m = (await messages(b))["Lunch"]
    assert m["origin"] == "generated" and m["duration"] > 0.5 and "Talsyntes" in resp.text_body
    # a new text is spoken again: a different recording
    resp = await b.post(f"/admin/messages/{m['id']}", {"name": "Lunch", "version": m["version"],
                                                       "text": "Vi har lunchstängt till klockan ett, välkommen åter."})
    assert resp.status == 200
    assert (await messages(b))["Lunch"]["duration"] > m["duration"]
    resp = await b.post("/admin/messages/speech", {"name": "", "text": ""})
    assert resp.status == 422 and "Fyll i både namn och text" in resp.text_body
