"""The calendar editor shared by answer groups, menus and the main number (A11).

The calendar is read top to bottom and the first matching entry wins, so the editor shows the
entries in order with move up/down buttons, every lint warning inline under the entry it is
about, what the calendar says right now, the public holidays of a year in one step and the
manual override. All of it goes through the schedule API (same rules, audit, lint); every form
carries the calendar's version, so an edit made meanwhile in another window is refused (412)
and shown instead of being overwritten.

The owner's page (group, menu, main number) renders the editor; after a write the browser is
sent back to it, and a refused write re-renders it with the error beside the form.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web
from yarl import URL

from api.problems import Problem
from api.web import destinations
from api.web.core import Page, call, redirect
from api.web.form_errors import error_fields, form_error
from api.web.pages import guarded, routes
from api.web.versioned import if_match
from provisioning.routing.schedule import DEFAULT_NAME, describe_when

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Entry form fields, named as the API names them, -> their label key.
LABELS = {"name": "cal.name", "date": "cal.date", "end_date": "cal.end_date", "weekdays": "cal.weekdays",
          "from": "cal.from", "to": "cal.to", "action": "cal.action", "message_id": "cal.message",
          "then": "cal.then", "year": "cal.year", "until": "cal.until", "country": "cal.country",
          "entries": "cal.title"}


@dataclass
class CalendarForm:
    """What a refused calendar write leaves on the re-rendered page."""
    error: str | None = None
    part: str = "entry"                     # entry | holidays | override | calendar
    values: dict = field(default_factory=dict)
    invalid: set[str] = field(default_factory=set)
    entry: int | str | None = None          # the entry being edited, "new", or None


#: kind (group | menu | main) -> renders the owner's page with the calendar form state.
OwnerPage = Callable[..., Awaitable[web.Response]]
OWNER_PAGES: dict[str, OwnerPage] = {}


def owner_url(kind: str, owner_id: int) -> str:
    return {"group": f"/admin/groups/{owner_id}", "menu": f"/admin/menus/{owner_id}",
            "main": f"/admin/main-number/{owner_id}"}[kind]


@dataclass
class Row:
    entry: object
    when: str
    warnings: list
    first: bool
    last: bool
    is_default: bool


def _when(entry, lang: str) -> str:
    when: dict = {}
    if entry.date:
        when["dates"] = [entry.date, entry.end_date or entry.date]
    if entry.weekdays:
        when["weekdays"] = [WEEKDAYS.index(w) for w in entry.weekdays]
    if entry.from_:
        when["from"], when["to"] = entry.from_, entry.to
    return describe_when(when, lang)


def _local(value: datetime | None, tz: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "" if value is None else value.astimezone(tz).strftime(fmt)


def _until_text(page: Page, until: datetime | None, tz: ZoneInfo, now: datetime) -> str:
    if until is None:
        return ""
    local = until.astimezone(tz)
    if local.date() == now.astimezone(tz).date():
        return page.t("cal.until.today", time=local.strftime("%H:%M"))
    return page.t("cal.until.day", time=local.strftime("%Y-%m-%d %H:%M"))


def view(page: Page, schedule, owner_kind: str, owner_id: int, choices: destinations.Choices,
         form: CalendarForm | None = None) -> dict:
    """The template context of the editor (``_calendar.html``)."""
    form = form or CalendarForm()
    request = page.request
    context = {"schedule": schedule, "owner_kind": owner_kind, "owner_id": owner_id, "choices": choices,
               "form": form, "weekdays": WEEKDAYS, "rows": [], "general": [], "editing": None,
               "state_text": "", "override_until": "", "moved": None, "moved_dir": None,
               "default_name": DEFAULT_NAME, "this_year": datetime.now().year, "tz": "",
               "self_url": owner_url(owner_kind, owner_id),
               "entry_form": {"when": "weekly", "action": "open"}}
    if schedule is None:
        return context
    tz = ZoneInfo(schedule.timezone)
    lang = page.lang
    by_entry: dict[int, list] = {}
    for warning in schedule.lint:
        if warning.entry_id is None:
            context["general"].append(warning)
        else:
            by_entry.setdefault(warning.entry_id, []).append(warning)
    entries = schedule.entries
    context["rows"] = [Row(e, _when(e, lang), by_entry.get(e.id, []), i == 0, i == len(entries) - 1,
                           e.name == DEFAULT_NAME and not e.date and not e.weekdays)
                       for i, e in enumerate(entries)]
    chosen = form.entry if form.entry is not None else request.query.get("entry")
    if isinstance(chosen, str) and chosen.isdigit():
        chosen = int(chosen)
    context["editing"] = next((e for e in entries if e.id == chosen), None)
    if form.part == "entry" and form.values:
        context["entry_form"] = form.values
    elif context["editing"] is not None:
        context["entry_form"] = entry_values(context["editing"])
    state = schedule.state
    context["this_year"] = state.at.astimezone(tz).year
    source = page.t(f"cal.source.{state.source}") if state.source in ("override", "default") else (state.entry or "")
    until = _until_text(page, state.until, tz, state.at)
    context["state_text"] = " · ".join(p for p in (source, state.message and page.t("cal.plays", message=state.message),
                                                   until) if p)
    if schedule.override:
        context["override_until"] = _local(schedule.override.until, tz)
    moved = request.query.get("moved", "")
    context["moved"] = int(moved) if moved.isdigit() and len(moved) <= 12 else None
    context["moved_dir"] = request.query.get("dir") if request.query.get("dir") in ("up", "down") else None
    context["tz"] = schedule.timezone
    return context


def entry_values(entry) -> dict:
    """An entry as the form's values (for editing)."""
    values = {"name": "" if entry.name == DEFAULT_NAME and not entry.date and not entry.weekdays else entry.name,
              "when": "date" if entry.date else "weekly" if entry.weekdays else "default",
              "date": entry.date or "", "end_date": entry.end_date or "", "from": entry.from_ or "",
              "to": entry.to or "", "action": entry.action, "message_id": str(entry.message_id or ""),
              "then": destinations.value_of(entry.then), "then_number": destinations.number_of(entry.then)}
    values.update({f"weekday_{w}": "on" for w in entry.weekdays})
    return values


# -- writes ------------------------------------------------------------------------------------------


def _int(value) -> int | None:
    raw = str(value or "").strip()
    return int(raw) if raw.isdigit() and len(raw) <= 12 else None


def _entry_body(form: dict) -> dict:
    """The API's entry from the form; only the fields of the chosen kind of "when" are sent."""
    kind = form.get("when")
    body: dict = {"name": DEFAULT_NAME if kind == "default" else str(form.get("name", "")).strip(),
                  "action": form.get("action") or None}
    if kind in ("date", "weekly"):
        body["weekdays"] = [w for w in WEEKDAYS if form.get(f"weekday_{w}") == "on"]
        body["from"] = str(form.get("from", "")).strip() or None
        body["to"] = str(form.get("to", "")).strip() or None
    if kind == "date":
        body["date"] = str(form.get("date", "")).strip() or None
        body["end_date"] = str(form.get("end_date", "")).strip() or None
    if body["action"] == "closed":
        body["message_id"] = _int(form.get("message_id"))
        body["then"] = destinations.parse(form, "then")
    return body


def _instant(value: str, tz: ZoneInfo) -> str | None:
    """An <input type=datetime-local> value in the organisation's time zone, as an ISO instant."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=tz).isoformat()
    except ValueError:
        return value  # the API names the field


async def _schedule(request: web.Request) -> object:
    try:
        return await call(request, "get_schedule", path={"schedule_id": int(request.match_info["schedule_id"])})
    except Problem:
        raise web.HTTPNotFound() from None


async def _again(request: web.Request, page: Page, schedule, problem: Problem, form: dict, part: str,
                 entry: int | str | None = None) -> web.Response:
    state = CalendarForm(error=form_error(page, problem, LABELS), part=part, values=form,
                         invalid=error_fields(problem, LABELS), entry=entry)
    if problem.status == 412:
        state.values = {}  # the page now shows the current calendar; the stale edit is not replayed
    return await OWNER_PAGES[schedule.owner.kind](request, page, schedule.owner.id, calendar=state,
                                                  status=problem.status)


def _back(schedule, fragment: str = "calendar", **query) -> str:
    url = URL(owner_url(schedule.owner.kind, schedule.owner.id))
    if query:
        url = url.with_query(query)
    return str(url.with_fragment(fragment))


SCHEDULE = r"/admin/calendars/{schedule_id:\d{1,12}}"
ENTRY = SCHEDULE + r"/entries/{entry_id:\d{1,12}}"


@routes.post("/admin/calendars")
@guarded(admin=True)
async def calendar_create(request: web.Request, page: Page, form: dict) -> web.Response:
    """Give a group, a menu or the main number a calendar (empty: calls go through until entries say otherwise)."""
    kind, owner_id = form.get("owner"), _int(form.get("owner_id"))
    operation = {"group": ("put_group_schedule", "group_id"), "menu": ("put_menu_schedule", "menu_id"),
                 "main": ("put_main_schedule", "organization_id")}.get(str(kind))
    if operation is None or owner_id is None:
        raise web.HTTPNotFound()
    try:
        await call(request, operation[0], path={operation[1]: owner_id}, body={"entries": []})
    except Problem as problem:
        if problem.status == 404:
            raise web.HTTPNotFound() from None
        return await OWNER_PAGES[str(kind)](request, page, owner_id, status=problem.status,
                                            calendar=CalendarForm(error=form_error(page, problem, LABELS),
                                                                  part="calendar"))
    return redirect(str(URL(owner_url(str(kind), owner_id)).with_fragment("calendar")), flash="cal.created")


@routes.post(SCHEDULE + "/entries")
@guarded(admin=True)
async def entry_save(request: web.Request, page: Page, form: dict) -> web.Response:
    """Add an entry, or change the one named by ``entry_id``."""
    schedule = await _schedule(request)
    entry_id = _int(form.get("entry_id"))
    body = _entry_body(form)
    try:
        if entry_id is None:
            saved = await call(request, "add_schedule_entry", path={"schedule_id": schedule.id}, body=body,
                               raw=if_match(request, form))
            before = {e.id for e in schedule.entries}
            entry_id = next((e.id for e in saved.entries if e.id not in before), None)
        else:
            await call(request, "update_schedule_entry", path={"schedule_id": schedule.id, "entry_id": entry_id},
                       body=body, raw=if_match(request, form))
    except Problem as problem:
        return await _again(request, page, schedule, problem, form, "entry", entry_id or "new")
    return redirect(_back(schedule, f"entry-{entry_id}" if entry_id else "calendar"), flash="cal.saved")


@routes.post(ENTRY + "/move")
@guarded(admin=True)
async def entry_move(request: web.Request, page: Page, form: dict) -> web.Response:
    schedule = await _schedule(request)
    entry_id = int(request.match_info["entry_id"])
    direction = form.get("direction")
    try:
        await call(request, "move_schedule_entry", path={"schedule_id": schedule.id, "entry_id": entry_id},
                   body={"direction": direction}, raw=if_match(request, form))
    except Problem as problem:
        return await _again(request, page, schedule, problem, {}, "list")
    return redirect(_back(schedule, f"entry-{entry_id}", moved=entry_id, dir=str(direction)), flash="cal.moved")


@routes.post(ENTRY + "/delete")
@guarded(admin=True)
async def entry_delete(request: web.Request, page: Page, form: dict) -> web.Response:
    schedule = await _schedule(request)
    try:
        await call(request, "delete_schedule_entry",
                   path={"schedule_id": schedule.id, "entry_id": int(request.match_info["entry_id"])},
                   raw=if_match(request, form))
    except Problem as problem:
        return await _again(request, page, schedule, problem, {}, "list")
    return redirect(_back(schedule), flash="cal.deleted")


@routes.post(SCHEDULE + "/holidays")
@guarded(admin=True)
async def holidays_add(request: web.Request, page: Page, form: dict) -> web.Response:
    schedule = await _schedule(request)
    body = {"year": _int(form.get("year")), "country": str(form.get("country", "SE")),
            "action": form.get("action") or "closed", "message_id": _int(form.get("message_id"))}
    try:
        saved = await call(request, "add_schedule_holidays", path={"schedule_id": schedule.id}, body=body,
                           raw=if_match(request, form))
    except Problem as problem:
        return await _again(request, page, schedule, problem, form, "holidays")
    added = len(saved.entries) - len(schedule.entries)
    return redirect(_back(schedule), flash="cal.holidays.added" if added else "cal.holidays.none")


@routes.post(SCHEDULE + "/override")
@guarded(admin=True)
async def override_set(request: web.Request, page: Page, form: dict) -> web.Response:
    schedule = await _schedule(request)
    try:
        if form.get("end") == "1":
            await call(request, "end_schedule_override", path={"schedule_id": schedule.id},
                       raw=if_match(request, form))
        else:
            action = form.get("action") or None
            body = {"action": action, "until": _instant(str(form.get("until", "")).strip(),
                                                        ZoneInfo(schedule.timezone)),
                    "message_id": _int(form.get("message_id")) if action == "closed" else None}
            await call(request, "set_schedule_override", path={"schedule_id": schedule.id}, body=body,
                       raw=if_match(request, form))
    except Problem as problem:
        return await _again(request, page, schedule, problem, form, "override")
    return redirect(_back(schedule, "override"), flash="cal.override.ended" if form.get("end") == "1"
                    else "cal.override.set")


@routes.post(SCHEDULE + "/delete")
@guarded(admin=True)
async def calendar_delete(request: web.Request, page: Page, form: dict) -> web.Response:
    schedule = await _schedule(request)
    try:
        await call(request, "delete_schedule", path={"schedule_id": schedule.id}, raw=if_match(request, form))
    except Problem as problem:
        return await _again(request, page, schedule, problem, {}, "calendar")
    return redirect(_back(schedule), flash="cal.removed")

