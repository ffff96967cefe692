"""Answer groups for the admin (A10): the list with members and strategy, and one group's page:
settings, members in ring order, the queue ("kösvar") and its calendar.

Every write is the REST API's own operation (``update_group`` and friends) with the version the
form was rendered from as If-Match, so two admins editing the same group cannot silently undo
each other's change; the loser sees the current group and a sentence saying why.
"""

from __future__ import annotations

from aiohttp import web

from api.problems import Problem
from api.web import calendars, destinations, live, routed_pages
from api.web.core import Page, call, redirect, render
from api.web.form_errors import form_error
from api.web.pages import guarded, routes
from api.web.routed_pages import text as _text
from provisioning.routing.strategies import Strategy

STRATEGIES = tuple(s.value for s in Strategy)
#: API field -> label key, for errors and aria-invalid.
LABELS = {"name": "ag.name", "number": "ag.number", "group_id": "ag.group_id", "strategy": "ag.strategy",
          "ring_time": "ag.ring_time", "no_answer_time": "ag.no_answer_time", "repeat": "ag.repeat",
          "retry_delay": "ag.retry_delay", "no_answer": "ag.no_answer", "members": "ag.members",
          "max_callers": "ag.queue.max_callers", "max_wait": "ag.queue.max_wait",
          "message_id": "ag.queue.message", "first_announcement": "ag.queue.first",
          "announce_interval": "ag.queue.interval", "organization_id": "ag.organization"}
NO_ANSWER_KINDS = ("user", "voicemail", "group", "menu", "message", "external", "hangup")


# -- the list -------------------------------------------------------------------------------------


async def _list_page(request: web.Request, page: Page, *, error: str | None = None, values: dict | None = None,
                     status: int = 200) -> web.Response:
    groups = (await call(request, "list_groups", query={"limit": 200})).items
    states = {}
    for g in groups:
        if g.schedule_id is not None:
            states[g.id] = (await call(request, "get_schedule", path={"schedule_id": g.schedule_id})).state
    return render(page, "answer_groups.html", status=status, groups=groups, states=states, error=error,
                  values=values or {}, organizations=await routed_pages.organizations(request, page))


@routes.get("/admin/groups")
@guarded(admin=True)
async def groups_list(request: web.Request, page: Page, form: None) -> web.Response:
    return await _list_page(request, page)


@routes.post("/admin/groups")
@guarded(admin=True)
async def group_create(request: web.Request, page: Page, form: dict) -> web.Response:
    body = {"name": _text(form, "name"), "strategy": form.get("strategy") or "ring_all"}
    return await routed_pages.create(request, page, form, PAGES, body, "ag.created")


# -- one group ---------------------------------------------------------------------------------------


async def group_page(request: web.Request, page: Page, group_id: int, *, error: str | None = None,
                     part: str | None = None, values: dict | None = None, invalid: set[str] | None = None,
                     calendar: calendars.CalendarForm | None = None, status: int = 200) -> web.Response:
    group = await routed_pages.load(request, PAGES, group_id)
    choices, schedule = await routed_pages.choices_and_schedule(request, group)
    member_ids = {m.user_id for m in group.members}
    return render(page, "answer_group.html", status=status, group=group, strategies=STRATEGIES,
                  error=error, part=part, values=values or {}, invalid=invalid or set(),
                  candidates=[u for u in choices.users if u.id not in member_ids],
                  no_answer_kinds=NO_ANSWER_KINDS,
                  **calendars.view(page, schedule, "group", group.id, choices, calendar))


calendars.OWNER_PAGES["group"] = group_page
PAGES = routed_pages.RoutedPages("group", "/admin/groups", LABELS, list_page=_list_page, entity_page=group_page)


def _group_id(request: web.Request) -> int:
    return int(request.match_info["group_id"])


@routes.get(r"/admin/groups/{group_id:\d{1,12}}")
@guarded(admin=True)
async def group_edit(request: web.Request, page: Page, form: None) -> web.Response:
    return await group_page(request, page, _group_id(request))


async def _patch(request: web.Request, page: Page, form: dict, body: dict, part: str, flash: str,
                 fragment: str) -> web.Response:
    # once saved, open IN/UT pages show member changes at once
    return await routed_pages.patch(request, page, form, PAGES, body, part=part, flash=flash, fragment=fragment,
                                    on_saved=lambda group_id: request.app[live.HUB].publish(group_id))


@routes.post(r"/admin/groups/{group_id:\d{1,12}}")
@guarded(admin=True)
async def group_save(request: web.Request, page: Page, form: dict) -> web.Response:
    body = {"name": _text(form, "name"), "number": _text(form, "number"), "group_id": _text(form, "group_id"),
            "strategy": form.get("strategy") or None, "ring_time": _text(form, "ring_time"),
            "no_answer_time": _text(form, "no_answer_time"), "repeat": form.get("repeat") == "on",
            "retry_delay": _text(form, "retry_delay"), "no_answer": destinations.parse(form, "no_answer")}
    return await _patch(request, page, form, body, "settings", "ag.saved", "settings")


@routes.post(r"/admin/groups/{group_id:\d{1,12}}/queue")
@guarded(admin=True)
async def group_queue(request: web.Request, page: Page, form: dict) -> web.Response:
    queue = None
    if form.get("queue_enabled") == "on":
        queue = {"max_callers": _text(form, "max_callers"), "max_wait": _text(form, "max_wait"),
                 "message_id": _text(form, "message_id"), "first_announcement": _text(form, "first_announcement"),
                 "announce_interval": _text(form, "announce_interval"),
                 "announce_position": form.get("announce_position") == "on",
                 "join_empty": form.get("join_empty") == "on"}
    return await _patch(request, page, form, {"queue": queue}, "queue", "ag.queue.saved", "queue")


@routes.post(r"/admin/groups/{group_id:\d{1,12}}/members")
@guarded(admin=True)
async def group_members(request: web.Request, page: Page, form: dict) -> web.Response:
    """One form for the whole list: ring times as typed, plus the button pressed (move, remove, add)."""
    group_id = _group_id(request)
    group = await routed_pages.load(request, PAGES, group_id)
    order = [m.user_id for m in group.members]
    op, _, who = str(form.get("op", "")).partition(":")
    uid = int(who) if who.isdigit() and len(who) <= 12 else None
    if op in ("up", "down") and uid in order:
        i = order.index(uid)
        j = i - 1 if op == "up" else i + 1
        if 0 <= j < len(order):
            order[i], order[j] = order[j], order[i]
    elif op == "remove" and uid in order:
        order.remove(uid)
    elif op == "add":
        new = _text(form, "add_user")
        if new is None:
            return await group_page(request, page, group_id, error=page.t("ag.members.choose"), part="members",
                                    values=form, invalid={"add_user"}, status=422)
        order.append(int(new) if new.isdigit() and len(new) <= 12 else new)
    members = [{"user_id": u, "ring_time": _text(form, f"ring_{u}")} for u in order]
    fragment = f"member-{uid}" if op in ("up", "down") and uid else "members"
    return await _patch(request, page, form, {"members": members}, "members",
                        "ag.members.saved", fragment)


@routes.post(r"/admin/groups/{group_id:\d{1,12}}/members/{user_id:\d{1,12}}/login")
@guarded(admin=True)
async def group_member_login(request: web.Request, page: Page, form: dict) -> web.Response:
    group_id = _group_id(request)
    try:
        await call(request, "set_member_login", path={"group_id": group_id,
                                                      "user_id": int(request.match_info["user_id"])},
                   body={"logged_in": form.get("logged_in") == "1"})
    except Problem as problem:
        return await group_page(request, page, group_id, error=form_error(page, problem, LABELS), part="members",
                                status=problem.status)
    request.app[live.HUB].publish(group_id)  # open IN/UT pages show it at once
    return redirect(f"/admin/groups/{group_id}#member-{request.match_info['user_id']}", flash="ag.members.saved")


@routes.post(r"/admin/groups/{group_id:\d{1,12}}/delete")
@guarded(admin=True)
async def group_delete(request: web.Request, page: Page, form: dict) -> web.Response:
    return await routed_pages.delete(request, page, form, PAGES, "ag.deleted")
