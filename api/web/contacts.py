"""External contacts (A9) for admins: phonebooks, their contacts (search, add, change, remove),
who has each book, and the desk phones that show it as their directory.

A desk phone's directory file holds the contacts of every book granted to a user on its lines,
so the page lists exactly those phones with their sync state; "Synka telefonerna" asks them to
fetch it now. Changes go through the phonebooks API (validation, numbers to E.164, audit, the
change log that drops the affected phones' cached files).
"""

from __future__ import annotations

import re

import phonenumbers
from aiohttp import web
from yarl import URL

from api.problems import Problem
from api.web.core import Page, call, env, problem_text, redirect, render
from api.web.forms import every
from api.web.versioned import IfMatch, form_version
from api.web.pages import guarded, routes
from provisioning.numbers import NumberError, to_e164

HOME = "/admin/contacts"
CONTACT_FIELDS = ("name", "number", "mobile", "company")
MOST_PHONES = 200


def national(number: str | None) -> str:
    """+46311234567 as a Swede writes it (031-123 45 67); other countries' numbers internationally."""
    try:
        parsed = phonenumbers.parse(number or "", None)
    except phonenumbers.NumberParseException:
        return number or ""
    style = phonenumbers.PhoneNumberFormat.NATIONAL if parsed.country_code == 46 else \
        phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(parsed, style)


env.filters["national"] = national


def _digits(text: str | None) -> str:
    return re.sub(r"\D", "", text or "")


def matches(contact, q: str) -> bool:
    """A search hit on name or company (any case), or on a number written in any common way
    ("08-123 45", "+46812345", "812345")."""
    needle = q.casefold().strip()
    if not needle:
        return True
    if needle in contact.name.casefold() or needle in (contact.company or "").casefold():
        return True
    digits = _digits(q)
    if len(digits) < 3:
        return False
    wanted = {digits}
    if digits.startswith("0") and not digits.startswith("00"):
        wanted.add("46" + digits[1:])
    try:
        wanted.add(_digits(to_e164(q)))
    except (NumberError, ValueError):
        pass
    numbers = [_digits(n) for n in (contact.number, contact.mobile) if n]
    return any(w in n for w in wanted for n in numbers)


def field_errors(problem: Problem) -> dict[str, str]:
    """The API's 422 as one message per form field (the rest goes to the page's error line)."""
    return {str(e["loc"][-1]): e["msg"] for e in (problem.errors or []) if e.get("loc") and e["loc"][0] == "body"}


def _book_url(book_id: int | None, **query) -> str:
    url = URL(HOME).with_query({"book": book_id} if book_id else {})
    return str(url.update_query({k: v for k, v in query.items() if v}))


async def _phones_for(request: web.Request, members: set[int]) -> list[dict]:
    """The desk phones with a line for one of ``members``: they get the book as their directory."""
    if not members:
        return []
    models = {(m.vendor, m.model): m.display_name for m in (await call(request, "list_phone_models")).items}
    phones = []
    for device in await every(request, "list_devices", most=5000):
        names = [line.user_name for line in device.lines if line.user_id in members]
        if not names:
            continue
        try:
            sync = await call(request, "device_sync", path={"device_id": device.id})
        except Problem:
            sync = None
        phones.append({"device": device, "users": names, "sync": sync,
                       "model": models.get((device.vendor, device.model)) or device.model})
        if len(phones) >= MOST_PHONES:
            break
    return phones


async def _contacts_page(request: web.Request, page: Page, *, book_id: int | None = None, error: str | None = None,
                         notice: str | None = None, status: int = 200, values: dict | None = None,
                         errors: dict | None = None, edit: int | None = None, form_of: str | None = None,
                         new_book: dict | None = None) -> web.Response:
    books = sorted(await every(request, "list_phonebooks"), key=lambda b: b.name.casefold())
    if book_id is None:
        raw = request.query.get("book", "")
        book_id = int(raw) if raw.isdigit() and len(raw) <= 12 else None
    book = next((b for b in books if b.id == book_id), books[0] if books and book_id is None else None)
    if book_id is not None and book is None:
        return render(page, "error.html", status=404, message=page.t("contacts.book.missing"))
    q = request.query.get("q", "").strip()[:100]
    if edit is None:
        raw_edit = request.query.get("edit", "")
        edit = int(raw_edit) if raw_edit.isdigit() and len(raw_edit) <= 12 else None
    contacts, shown, users, phones = [], [], [], []
    users = sorted(await every(request, "list_users"), key=lambda u: u.name.casefold())
    if book is not None:
        contacts = sorted(await every(request, "list_contacts", path={"phonebook_id": book.id}),
                          key=lambda c: (c.name.casefold(), c.number))
        shown = [c for c in contacts if matches(c, q)]
        phones = await _phones_for(request, set(book.members))
    return render(page, "contacts.html", status=status, books=books, book=book, contacts=contacts, shown=shown, q=q,
                  users=users, phones=phones, error=error, notice=notice, values=values or {},
                  errors=errors or {}, edit=edit, form_of=form_of, new_book=new_book or {},
                  members=set(book.members) if book else set(), book_url=_book_url,
                  member_names=[u.name for u in users if book and u.id in book.members])


@routes.get(HOME)
@guarded(admin=True)
async def contacts_page(request: web.Request, page: Page, form: None) -> web.Response:
    return await _contacts_page(request, page)


def _book_id(request: web.Request) -> int:
    return int(request.match_info["book_id"])


def _problem(page: Page, problem: Problem) -> str:
    if problem.status == 412:
        return page.t("contacts.error.stale")
    if problem.status == 409:
        return page.t("contacts.error.bookname")
    if problem.status == 422 and problem.errors:
        return page.t("contacts.error.fields")
    return problem_text(page, problem)


async def _member_ids(request: web.Request) -> list[int]:
    return [int(v) for v in (await request.post()).getall("member", []) if str(v).isdigit() and len(str(v)) <= 12]


# -- phonebooks -------------------------------------------------------------------------------------


@routes.post(HOME + "/books")
@guarded(admin=True)
async def book_create(request: web.Request, page: Page, form: dict) -> web.Response:
    name = str(form.get("name", "")).strip()
    members = ([u.id for u in await every(request, "list_users")] if form.get("everyone") == "on" else [])
    try:
        book = await call(request, "create_phonebook", body={"name": name, "members": members})
    except Problem as problem:
        return await _contacts_page(request, page, error=_problem(page, problem), status=problem.status,
                                    errors=field_errors(problem), form_of="book",
                                    new_book={"name": name, "everyone": form.get("everyone") == "on"})
    return redirect(_book_url(book.id), flash="contacts.book.created")


@routes.post(HOME + r"/books/{book_id:\d{1,12}}")
@guarded(admin=True)
async def book_save(request: web.Request, page: Page, form: dict) -> web.Response:
    """The book's name and who has it (one checkbox per user)."""
    book_id = _book_id(request)
    body = {"name": str(form.get("name", "")).strip(), "members": await _member_ids(request)}
    try:
        await call(request, "update_phonebook", path={"phonebook_id": book_id}, body=body,
                   raw=IfMatch(request, form_version(form)))
    except Problem as problem:
        if problem.status == 404:
            return render(page, "error.html", status=404, message=problem_text(page, problem))
        return await _contacts_page(request, page, book_id=book_id, error=_problem(page, problem),
                                    status=problem.status, errors=field_errors(problem), form_of="members")
    return redirect(_book_url(book_id) + "#members", flash="contacts.book.saved")


@routes.post(HOME + r"/books/{book_id:\d{1,12}}/delete")
@guarded(admin=True)
async def book_delete(request: web.Request, page: Page, form: dict) -> web.Response:
    book_id = _book_id(request)
    try:
        await call(request, "delete_phonebook", path={"phonebook_id": book_id},
                   raw=IfMatch(request, form_version(form)))
    except Problem as problem:
        if problem.status == 404:
            return render(page, "error.html", status=404, message=problem_text(page, problem))
        return await _contacts_page(request, page, book_id=book_id, error=_problem(page, problem),
                                    status=problem.status)
    return redirect(HOME, flash="contacts.book.deleted")


@routes.post(HOME + r"/books/{book_id:\d{1,12}}/resync")
@guarded(admin=True)
async def book_resync(request: web.Request, page: Page, form: dict) -> web.Response:
    """Ask every phone that shows the book to fetch its files now (phones never heard from are counted)."""
    book_id = _book_id(request)
    try:
        book = await call(request, "get_phonebook_route", path={"phonebook_id": book_id})
    except Problem as problem:
        return render(page, "error.html", status=problem.status, message=problem_text(page, problem))
    sent = unreachable = 0
    for phone in await _phones_for(request, set(book.members)):
        try:
            await call(request, "resync_device", path={"device_id": phone["device"].id})
            sent += 1
        except Problem:
            unreachable += 1
    notice = page.t("contacts.resync.sent", n=sent) + (
        " " + page.t("contacts.resync.unreachable", n=unreachable) if unreachable else "")
    return await _contacts_page(request, page, book_id=book_id, notice=notice)


# -- contacts ----------------------------------------------------------------------------------------


def _contact_body(form: dict, *, patch: bool) -> dict:
    body = {}
    for name in CONTACT_FIELDS:
        value = str(form.get(name, "")).strip()
        body[name] = value or None
    if not patch:
        body = {k: v for k, v in body.items() if v is not None}
    return body


@routes.post(HOME + r"/books/{book_id:\d{1,12}}/contacts")
@guarded(admin=True)
async def contact_add(request: web.Request, page: Page, form: dict) -> web.Response:
    book_id = _book_id(request)
    try:
        made = await call(request, "create_contact", path={"phonebook_id": book_id},
                          body=_contact_body(form, patch=False))
    except Problem as problem:
        if problem.status == 404:
            return render(page, "error.html", status=404, message=problem_text(page, problem))
        return await _contacts_page(request, page, book_id=book_id, error=_problem(page, problem),
                                    status=problem.status, values=form, errors=field_errors(problem), form_of="add")
    return redirect(_book_url(book_id) + f"#contact-{made.id}", flash="contacts.added")


@routes.post(HOME + r"/books/{book_id:\d{1,12}}/contacts/{contact_id:\d{1,12}}")
@guarded(admin=True)
async def contact_save(request: web.Request, page: Page, form: dict) -> web.Response:
    book_id, contact_id = _book_id(request), int(request.match_info["contact_id"])
    try:
        await call(request, "update_contact", path={"phonebook_id": book_id, "contact_id": contact_id},
                   body=_contact_body(form, patch=True), raw=IfMatch(request, form_version(form)))
    except Problem as problem:
        if problem.status == 404:
            return render(page, "error.html", status=404, message=problem_text(page, problem))
        return await _contacts_page(request, page, book_id=book_id, error=_problem(page, problem),
                                    status=problem.status, values=form, errors=field_errors(problem),
                                    edit=contact_id, form_of="edit")
    return redirect(_book_url(book_id) + f"#contact-{contact_id}", flash="contacts.saved")


@routes.post(HOME + r"/books/{book_id:\d{1,12}}/contacts/{contact_id:\d{1,12}}/delete")
@guarded(admin=True)
async def contact_delete(request: web.Request, page: Page, form: dict) -> web.Response:
    book_id, contact_id = _book_id(request), int(request.match_info["contact_id"])
    try:
        await call(request, "delete_contact", path={"phonebook_id": book_id, "contact_id": contact_id},
                   raw=IfMatch(request, form_version(form)))
    except Problem as problem:
        if problem.status == 404:
            return render(page, "error.html", status=404, message=problem_text(page, problem))
        return await _contacts_page(request, page, book_id=book_id, error=_problem(page, problem),
                                    status=problem.status)
    return redirect(_book_url(book_id) + "#contacts", flash="contacts.deleted")
