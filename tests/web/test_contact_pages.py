"""External contacts over HTTP: the page in sv/en under the strict CSP, phonebooks created, renamed,
granted and deleted, contacts added, changed (If-Match: a stale page is refused) and removed, bad
numbers refused inline with nothing changed, search by name or number, the members' desk phones
listed and their directory file carrying the contact; CSRF on every form, admins only."""

from __future__ import annotations

import json
import re

import pytest

from simulators.phone import Phone
from simulators.yealink import YealinkProfile
from web.conftest import PASSWORDS
from web.test_message_pages import check_markup
from web.test_pages import check_page

pytestmark = pytest.mark.timeout(90)


async def admin(browser):
    b = browser()
    assert (await b.login("anna", PASSWORDS["anna"])).status == 303
    return b


async def api_get(b, path: str):
    async with b.http.get(b.base + "/api/v1" + path) as resp:
        assert resp.status == 200, path
        return json.loads(await resp.read())


async def users(b) -> dict[str, int]:
    return {u["name"]: u["id"] for u in (await api_get(b, "/users"))["items"]}


async def make_book(b, name: str = "Leverantörer", everyone: bool = True) -> dict:
    resp = await b.post("/admin/contacts/books?lang=sv", {"name": name, **({"everyone": "on"} if everyone else {})})
    assert resp.status == 200 and "Telefonboken är skapad" in resp.text_body
    return next(x for x in (await api_get(b, "/phonebooks"))["items"] if x["name"] == name)


async def contacts(b, book_id: int) -> list[dict]:
    return (await api_get(b, f"/phonebooks/{book_id}/contacts"))["items"]


async def test_contacts_page_sv_en_csp_and_admins_only(browser):
    b = await admin(browser)
    sv = await b.get("/admin/contacts?lang=sv")
    check_page(sv)
    assert "Externa kontakter" in sv.text_body and "Skapa en telefonbok" in sv.text_body
    book = await make_book(b)
    for lang, words in (("sv", ["Lägg till kontakt", "Vem har telefonboken", "På telefonerna"]),
                        ("en", ["Add contact", "Who has the phonebook", "On the phones"])):
        page = await b.get(f"/admin/contacts?book={book['id']}&lang={lang}")
        check_page(page)
        assert all(w in page.text_body for w in words), lang
    assert (await b.get("/admin/contacts?book=999999")).status == 404
    plain = browser()
    await plain.login("08-546 899 02", PASSWORDS["bertil"])
    assert (await plain.get("/admin/contacts")).status == 404
    assert (await plain.post(f"/admin/contacts/books/{book['id']}/contacts",
                             {"name": "X", "number": "031-123 45 67"})).status == 404
    for path in ["/admin/contacts/books", f"/admin/contacts/books/{book['id']}",
                 f"/admin/contacts/books/{book['id']}/contacts", f"/admin/contacts/books/{book['id']}/delete"]:
        resp = await b.post(path + "?lang=sv", {"name": "Utan token", "number": "031-123 45 67"}, csrf=False)
        assert resp.status == 403 and "Formuläret hade gått ut" in resp.text_body, path
    assert await contacts(b, book["id"]) == [] and len((await api_get(b, "/phonebooks"))["items"]) == 1


async def test_add_edit_delete_contact_with_versions(browser):
    b = await admin(browser)
    book = await make_book(b)
    url = f"/admin/contacts/books/{book['id']}/contacts?lang=sv"
    resp = await b.post(url, {"name": "Åkeriet", "number": "031-123 45 67", "company": "Åkeriet AB", "mobile": ""})
    assert resp.status == 200 and "Kontakten är tillagd" in resp.text_body
    [c] = await contacts(b, book["id"])
    assert (c["name"], c["number"], c["company"], c["mobile"]) == ("Åkeriet", "+46311234567", "Åkeriet AB", None)
    assert "031-123 45 67" in resp.text_body  # shown as written in Sweden

    # a bad number: refused inline on that field, what was typed kept, nothing added
    resp = await b.post(url, {"name": "Fel", "number": "inte ett nummer"})
    assert resp.status == 422
    check_markup(resp)
    assert "Rätta de markerade fälten" in resp.text_body and 'id="add-number-error"' in resp.text_body
    assert 'value="inte ett nummer"' in resp.text_body and 'aria-invalid="true"' in resp.text_body
    assert len(await contacts(b, book["id"])) == 1

    # the edit form, then a save with the version it showed
    page = await b.get(f"/admin/contacts?book={book['id']}&edit={c['id']}")
    assert f'action="/admin/contacts/books/{book["id"]}/contacts/{c["id"]}"' in page.text_body
    edit = f"/admin/contacts/books/{book['id']}/contacts/{c['id']}?lang=sv"
    resp = await b.post(edit, {"name": "Åkeriet i Göteborg", "number": "+46 31 123 45 67",
                               "mobile": "070-111 22 33", "company": "", "version": c["version"]})
    assert resp.status == 200 and "Kontakten är sparad" in resp.text_body
    [c2] = await contacts(b, book["id"])
    assert (c2["name"], c2["mobile"], c2["company"]) == ("Åkeriet i Göteborg", "+46701112233", None)
    # the page it came from is stale now: refused, nothing changed
    resp = await b.post(edit, {"name": "Gammal sida", "number": "031-123 45 67", "version": c["version"]})
    assert resp.status == 412 and "Någon annan ändrade detta" in resp.text_body
    assert (await contacts(b, book["id"]))[0]["name"] == "Åkeriet i Göteborg"
    resp = await b.post(edit.replace("?", "/delete?"), {"version": c["version"]})
    assert resp.status == 412 and len(await contacts(b, book["id"])) == 1
    resp = await b.post(edit.replace("?", "/delete?"), {"version": c2["version"]})
    assert resp.status == 200 and "Kontakten är borttagen" in resp.text_body
    assert await contacts(b, book["id"]) == []


async def test_search_by_name_company_or_number(browser):
    b = await admin(browser)
    book = await make_book(b)
    url = f"/admin/contacts/books/{book['id']}/contacts"
    for name, number, company in (("Åkeriet", "031-123 45 67", "Frakt AB"), ("Bokföringsbyrån", "08-123 456 78", ""),
                                  ("Fastighetsjouren", "020-12 34 56", "")):
        assert (await b.post(url, {"name": name, "number": number, "company": company})).status == 200
    base = f"/admin/contacts?book={book['id']}&lang=sv&q="

    async def found(q: str) -> list[str]:
        page = await b.get(base + q)
        return re.findall(r'<p class="contact-name">([^<]+?)(?: <span|</p>)', page.text_body)

    assert await found("åker") == ["Åkeriet"]          # any case, Swedish letters
    assert await found("frakt") == ["Åkeriet"]         # company
    assert await found("031-123") == ["Åkeriet"]       # a number as people write it
    assert await found("+46812") == ["Bokföringsbyrån"]
    assert await found("45 67") == ["Bokföringsbyrån", "Åkeriet"]
    assert await found("finns inte") == []
    assert "Inga kontakter matchar" in (await b.get(base + "finns%20inte")).text_body


async def test_membership_rename_phones_and_directory_file(browser, web_server):
    b = await admin(browser)
    ids = await users(b)
    book = await make_book(b, "Kunder", everyone=False)
    assert book["members"] == []
    page = await b.get(f"/admin/contacts?book={book['id']}")
    assert "Ingen av användarna har en bordstelefon än" in page.text_body
    await b.post(f"/admin/contacts/books/{book['id']}/contacts", {"name": "Kund Ett", "number": "040-123 45 67"})
    book = (await api_get(b, f"/phonebooks/{book['id']}"))
    # give it to Anna (her T46S) and Bertil, with the version the page showed
    async with b.http.post(b.base + f"/admin/contacts/books/{book['id']}?lang=sv", data=[
            ("csrf_token", re.search(r'name="csrf_token" value="([^"]+)"', page.text_body).group(1)),
            ("version", str(book["version"])), ("name", "Kunder i syd"),
            ("member", str(ids["Anna Andersson"])), ("member", str(ids["Bertil Berg"]))]) as resp:
        body = await resp.text()
        assert resp.status == 200 and "Telefonboken är sparad" in body
    saved = await api_get(b, f"/phonebooks/{book['id']}")
    assert saved["name"] == "Kunder i syd" and saved["members"] == sorted([ids["Anna Andersson"], ids["Bertil Berg"]])
    assert "80:5E:C0:AA:BB:01" in body and "Yealink T46S" in body
    # a stale save is refused and changes nothing
    resp = await b.post(f"/admin/contacts/books/{book['id']}", {"version": book["version"], "name": "Gammal"})
    assert resp.status == 412 and (await api_get(b, f"/phonebooks/{book['id']}"))["name"] == "Kunder i syd"
    # the phone's directory file has the contact
    state = await Phone(YealinkProfile("T46S", "80:5E:C0:AA:BB:01", "66.86.0.15")).boot_http(
        f"http://127.0.0.1:{web_server.http_port}/")
    assert not state.errors
    assert any(c["name"] == "Kund Ett" and "+46401234567" in str(c["numbers"]) for c in state.contacts), state.contacts
    # resync: the phone has been heard from, so it is asked
    resp = await b.post(f"/admin/contacts/books/{book['id']}/resync?lang=sv", {})
    assert resp.status == 200 and "1 telefoner ombeds hämta telefonboken nu" in resp.text_body
    # a duplicate book name is refused inline
    resp = await b.post("/admin/contacts/books?lang=sv", {"name": "Kunder i syd"})
    assert resp.status == 409 and "Det finns redan en telefonbok med det namnet" in resp.text_body
    # delete the book: gone from the list and from the phone
    resp = await b.post(f"/admin/contacts/books/{book['id']}/delete?lang=sv", {"version": saved["version"]})
    assert resp.status == 200 and "Telefonboken är borttagen" in resp.text_body
    assert (await api_get(b, "/phonebooks"))["items"] == []
    state = await Phone(YealinkProfile("T46S", "80:5E:C0:AA:BB:01", "66.86.0.15")).boot_http(
        f"http://127.0.0.1:{web_server.http_port}/")
    assert not any(c["name"] == "Kund Ett" for c in state.contacts)
