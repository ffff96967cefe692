"""IVR menus for the admin (A12): the list, and one menu's page drawn as a keypad where each key
gets its destination (a colleague, a group, another menu, a voice message, a voicemail box, an
external number, repeat or hang up), with the greeting, the wait for a key, what happens after
wrong keys or silence, and the menu's own calendar.

Also the main number's page: who answers it and its calendar. Writes are the REST API's own
operations with the form's version as If-Match (a concurrent edit is refused, not overwritten).
"""

from __future__ import annotations

from aiohttp import web

from api.problems import Problem
from api.web import calendars, destinations, routed_pages
from api.web.core import Page, call, redirect, render
from api.web.pages import guarded, routes
from api.web.routed_pages import text as _text
from provisioning.routing.menus import KEYS

#: The keypad as printed on a phone, and each key's form field name.
KEYPAD = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#")
FIELD = {k: "key_" + {"*": "star", "#": "hash"}.get(k, k) for k in KEYPAD}
assert set(KEYPAD) == KEYS
KEY_KINDS = ("user", "voicemail", "group", "menu", "message", "external", "repeat", "hangup")
END_KINDS = ("user", "voicemail", "group", "menu", "message", "external", "hangup")
LABELS = {"name": "menu.name", "number": "menu.number", "message_id": "menu.greeting", "timeout": "menu.timeout",
          "retries": "menu.retries", "invalid_message_id": "menu.invalid", "timeout_destination": "menu.no_choice",
          "final_destination": "menu.final", "organization_id": "ag.organization",
          **{k: "menu.key" for k in KEYPAD}}


# -- the list -----------------------------------------------------------------------------------------


async def _list_page(request: web.Request, page: Page, *, error: str | None = None, values: dict | None = None,
                     status: int = 200) -> web.Response:
    menus = (await call(request, "list_menus", query={"limit": 200})).items
    organization_id = None if page.principal.is_super else page.principal.organization_id
    choices = await destinations.load_choices(request, organization_id)
    return render(page, "menus.html", status=status, menus=menus, choices=choices, error=error,
                  values=values or {}, organizations=await routed_pages.organizations(request, page), keypad=KEYPAD)


@routes.get("/admin/menus")
@guarded(admin=True)
async def menus_list(request: web.Request, page: Page, form: None) -> web.Response:
    return await _list_page(request, page)


@routes.post("/admin/menus")
@guarded(admin=True)
async def menu_create(request: web.Request, page: Page, form: dict) -> web.Response:
    body = {"name": _text(form, "name"), "message_id": _text(form, "message_id")}
    return await routed_pages.create(request, page, form, PAGES, body, "menu.created")


# -- one menu --------------------------------------------------------------------------------------------


async def menu_page(request: web.Request, page: Page, menu_id: int, *, error: str | None = None,
                    part: str | None = None, values: dict | None = None, invalid: set[str] | None = None,
                    calendar: calendars.CalendarForm | None = None, status: int = 200) -> web.Response:
    menu = await routed_pages.load(request, PAGES, menu_id)
    choices, schedule = await routed_pages.choices_and_schedule(request, menu)
    choices.menus = [m for m in choices.menus if m.id != menu.id]  # a key leading here is "repeat"
    return render(page, "menu.html", status=status, menu=menu, keypad=KEYPAD, field=FIELD,
                  key_kinds=KEY_KINDS, end_kinds=END_KINDS, error=error, part=part, values=values or {},
                  invalid=invalid or set(),
                  **calendars.view(page, schedule, "menu", menu.id, choices, calendar))


calendars.OWNER_PAGES["menu"] = menu_page
PAGES = routed_pages.RoutedPages("menu", "/admin/menus", LABELS, list_page=_list_page, entity_page=menu_page)


def _menu_id(request: web.Request) -> int:
    return int(request.match_info["menu_id"])


@routes.get(r"/admin/menus/{menu_id:\d{1,12}}")
@guarded(admin=True)
async def menu_edit(request: web.Request, page: Page, form: None) -> web.Response:
    return await menu_page(request, page, _menu_id(request))


async def _patch(request: web.Request, page: Page, form: dict, body: dict, part: str, flash: str) -> web.Response:
    return await routed_pages.patch(request, page, form, PAGES, body, part=part, flash=flash, fragment=part)


@routes.post(r"/admin/menus/{menu_id:\d{1,12}}")
@guarded(admin=True)
async def menu_save(request: web.Request, page: Page, form: dict) -> web.Response:
    body = {"name": _text(form, "name"), "number": _text(form, "number"), "message_id": _text(form, "message_id"),
            "timeout": _text(form, "timeout"), "retries": _text(form, "retries"),
            "invalid_message_id": _text(form, "invalid_message_id"),
            "timeout_destination": destinations.parse(form, "timeout_destination"),
            "final_destination": destinations.parse(form, "final_destination")}
    return await _patch(request, page, form, body, "settings", "menu.saved")


@routes.post(r"/admin/menus/{menu_id:\d{1,12}}/keys")
@guarded(admin=True)
async def menu_keys(request: web.Request, page: Page, form: dict) -> web.Response:
    """All twelve keys at once: a key left on "nothing" is not part of the menu."""
    options = {key: d for key in KEYPAD if (d := destinations.parse(form, FIELD[key])) is not None}
    return await _patch(request, page, form, {"options": options}, "keys", "menu.keys.saved")


@routes.post(r"/admin/menus/{menu_id:\d{1,12}}/delete")
@guarded(admin=True)
async def menu_delete(request: web.Request, page: Page, form: dict) -> web.Response:
    return await routed_pages.delete(request, page, form, PAGES, "menu.deleted")


# -- the main number -----------------------------------------------------------------------------------


async def main_number_page(request: web.Request, page: Page, organization_id: int, *,
                           calendar: calendars.CalendarForm | None = None, status: int = 200) -> web.Response:
    try:
        org = await call(request, "get_organization", path={"org_id": organization_id})
    except Problem:
        raise web.HTTPNotFound() from None
    choices = await destinations.load_choices(request, org.id)
    try:
        schedule = await call(request, "get_main_schedule", path={"organization_id": org.id})
    except Problem as problem:
        if problem.status != 404:
            raise
        schedule = None
    answered_by = next((("group", g) for g in choices.groups if g.answers_main_number), None) or \
        next((("menu", m) for m in choices.menus if m.answers_main_number), None)
    return render(page, "menu_main_number.html", status=status, org=org, answered_by=answered_by,
                  **calendars.view(page, schedule, "main", org.id, choices, calendar))


calendars.OWNER_PAGES["main"] = main_number_page


@routes.get("/admin/main-number")
@guarded(admin=True)
async def main_number_home(request: web.Request, page: Page, form: None) -> web.Response:
    if page.principal.organization_id is not None:
        return redirect(f"/admin/main-number/{page.principal.organization_id}")
    organizations = (await call(request, "list_organizations", query={"limit": 200})).items
    return render(page, "menu_main_numbers.html", organizations=organizations)


@routes.get(r"/admin/main-number/{organization_id:\d{1,12}}")
@guarded(admin=True)
async def main_number(request: web.Request, page: Page, form: None) -> web.Response:
    return await main_number_page(request, page, int(request.match_info["organization_id"]))
