"""The pages: login, password, Mina svarsgrupper (IN/UT), Mina sidor, and the admin's users and phones."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from yarl import URL

from api.principals import COOKIE
from api.problems import Problem
from api.web import live
from api.web.core import (
    STOCKHOLM, Page, RawBody, call, check_csrf, lang_of, principal_of, problem_text, redirect, render,
)

routes = web.RouteTableDef()

USER_HOME = "/groups"


class LoginRequired(Exception):
    pass


async def page_for(request: web.Request, *, admin: bool = False) -> Page:
    principal = await principal_of(request)
    if principal is None:
        raise LoginRequired()
    if admin and not (principal.is_super or principal.is_org_admin):
        raise web.HTTPNotFound()
    return Page(request, lang_of(request), principal)


def _to_login(request: web.Request) -> web.Response:
    target = request.path_qs if request.method == "GET" else USER_HOME
    return redirect("/login?" + URL.build(query={"next": target}).query_string)


def guarded(admin: bool = False):
    """A page for logged-in users (admins with admin=True); POSTs must carry the CSRF token."""
    def wrap(handler):
        async def page(request: web.Request) -> web.StreamResponse:
            try:
                p = await page_for(request, admin=admin)
            except LoginRequired:
                if request.headers.get("Accept", "").startswith("text/event-stream") or \
                        request.headers.get("X-Requested-With") == "fetch":
                    return web.Response(status=401, text="log in")
                return _to_login(request)
            form = None
            if request.method == "POST":
                form = dict(await request.post())
                if not await check_csrf(request, form):
                    return render(p, "error.html", status=403, message=p.t("csrf.failed"))
            return await handler(request, p, form)
        page.__name__ = handler.__name__
        return page
    return wrap


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return USER_HOME


# -- start, login, logout, password (U1, U2) -------------------------------------------------------


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    principal = await principal_of(request)
    if principal is None:
        return redirect("/login")
    return redirect("/admin/users" if principal.is_super else USER_HOME)


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    page = Page(request, lang_of(request), await principal_of(request))
    return render(page, "login.html", next=_safe_next(request.query.get("next")), error=None, login="",
                  remember=False)


@routes.post("/login")
async def login_submit(request: web.Request) -> web.Response:
    page = Page(request, lang_of(request), None)
    form = dict(await request.post())
    login, next_url = str(form.get("login", "")).strip(), _safe_next(form.get("next"))
    remember = form.get("remember") == "on"

    def again(message: str, status: int) -> web.Response:
        return render(page, "login.html", status=status, next=next_url, error=message, login=login,
                      remember=remember)

    if not await check_csrf(request, form):
        return again(page.t("csrf.failed"), 403)
    if not login or not form.get("password"):
        return again(page.t("login.invalid"), 422)
    try:
        response = await call(request, "login", body={"login": login, "password": form["password"],
                                                      "remember": remember})
    except Problem as problem:
        if problem.status == 429:
            return again(page.t("login.throttled"), 429)
        if problem.status == 401:
            return again(page.t("login.failed"), 401)
        return again(page.t("login.invalid"), 422)
    out = redirect(next_url)
    for name, morsel in response.cookies.items():
        out.cookies[name] = morsel
    return out


@routes.post("/logout")
@guarded()
async def logout_submit(request: web.Request, page: Page, form: dict) -> web.Response:
    response = await call(request, "logout")
    out = redirect("/login", flash="logout.done")
    for name, morsel in response.cookies.items():
        out.cookies[name] = morsel
    out.del_cookie(COOKIE, path="/") if COOKIE not in out.cookies else None
    return out


@routes.get("/password")
@guarded()
async def password_form(request: web.Request, page: Page, form: None) -> web.Response:
    return render(page, "password.html", error=None, done=False)


@routes.post("/password")
@guarded()
async def password_submit(request: web.Request, page: Page, form: dict) -> web.Response:
    try:
        await call(request, "change_password", body={"current_password": form.get("current_password", ""),
                                                      "new_password": form.get("new_password", "")})
    except Problem as problem:
        message = page.t("password.wrong") if problem.status == 403 else problem_text(page, problem)
        return render(page, "password.html", status=problem.status, error=message, done=False)
    return render(page, "password.html", error=None, done=True)


# -- Mina svarsgrupper (U5) ------------------------------------------------------------------------


async def _groups_context(request: web.Request, page: Page) -> dict:
    try:
        mine = await call(request, "list_my_groups")
    except Problem as problem:
        return {"groups": [], "as_of": None, "error": problem_text(page, problem)}
    return {"groups": mine.items, "as_of": mine.as_of, "error": None}


@routes.get("/groups")
@guarded()
async def groups_page(request: web.Request, page: Page, form: None) -> web.Response:
    return render(page, "groups.html", **await _groups_context(request, page))


@routes.get("/groups/fragment")
@guarded()
async def groups_fragment(request: web.Request, page: Page, form: None) -> web.Response:
    return render(page, "_groups.html", **await _groups_context(request, page))


@routes.get("/groups/events")
@guarded()
async def groups_events(request: web.Request, page: Page, form: None) -> web.StreamResponse:
    try:
        mine = await call(request, "list_my_groups")
    except Problem:
        return web.Response(status=404)
    return await live.stream(request, [g.id for g in mine.items])


@routes.post(r"/groups/{group_id:\d{1,12}}")
@guarded()
async def groups_toggle(request: web.Request, page: Page, form: dict) -> web.Response:
    group_id = int(request.match_info["group_id"])
    logged_in = form.get("logged_in") == "1"
    fetch = request.headers.get("X-Requested-With") == "fetch"
    try:
        await call(request, "set_my_login", path={"group_id": group_id}, body={"logged_in": logged_in})
    except Problem as problem:
        if fetch:
            return web.Response(status=problem.status, text=problem_text(page, problem))
        return render(page, "error.html", status=problem.status, message=problem_text(page, problem))
    request.app[live.HUB].publish(group_id)
    if fetch:
        return render(page, "_groups.html", **await _groups_context(request, page))
    return redirect(USER_HOME)


# -- Mina sidor (U3, U4, U6) ------------------------------------------------------------------------

REASONS = ("lunch", "meeting", "away", "vacation", "sick", "other")
TARGETS = ("voicemail", "colleague", "switchboard", "message")
CALLER_IDS = ("fixed", "mobile", "main", "hidden")


async def _me_page(request: web.Request, page: Page, *, error: str | None = None, saved: bool = False,
                   status: int = 200, values: dict | None = None) -> web.Response:
    try:
        me = await call(request, "get_me")
    except Problem as problem:
        return render(page, "error.html", status=problem.status, message=problem_text(page, problem))
    diversions = await call(request, "list_my_diversions", query={"state": "current"})
    active = next((d for d in diversions.items if d.active), None)
    return render(page, "me.html", status=status, user=me, diversion=active, error=error, saved=saved,
                  reasons=REASONS, targets=TARGETS, caller_ids=CALLER_IDS, values=values or {})


@routes.get("/me")
@guarded()
async def me_page(request: web.Request, page: Page, form: None) -> web.Response:
    return await _me_page(request, page)


@routes.post("/me/caller-id")
@guarded()
async def me_caller_id(request: web.Request, page: Page, form: dict) -> web.Response:
    try:
        await call(request, "update_me", body={"caller_id": form.get("caller_id")})
    except Problem as problem:
        return await _me_page(request, page, error=problem_text(page, problem), status=problem.status)
    return redirect("/me", flash="me.saved")


def _local_instant(value: str) -> str | None:
    """An <input type=datetime-local> value read as Stockholm time, as the API's ISO instant."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=STOCKHOLM).isoformat()
    except ValueError:
        return value  # the API names the field and the problem


@routes.post("/me/diversion")
@guarded()
async def me_diversion(request: web.Request, page: Page, form: dict) -> web.Response:
    body = {"reason": form.get("reason"), "target": form.get("target"),
            "ends_at": _local_instant(str(form.get("ends_at", "")))}
    if form.get("target") == "colleague":
        body["target_number"] = form.get("target_number") or None
    if form.get("target") == "message":
        body["message"] = form.get("message") or None
    try:
        await call(request, "create_my_diversion", body=body)
    except Problem as problem:
        return await _me_page(request, page, error=problem_text(page, problem), status=problem.status, values=form)
    return redirect("/me", flash="me.saved")


@routes.post(r"/me/diversion/{diversion_id:\d{1,12}}/end")
@guarded()
async def me_diversion_end(request: web.Request, page: Page, form: dict) -> web.Response:
    try:
        await call(request, "end_diversion", path={"diversion_id": int(request.match_info["diversion_id"])})
    except Problem as problem:
        return await _me_page(request, page, error=problem_text(page, problem), status=problem.status)
    return redirect("/me", flash="me.saved")


@routes.post("/me/picture")
@guarded()
async def me_picture(request: web.Request, page: Page, form: dict) -> web.Response:
    upload = form.get("picture")
    try:
        if form.get("remove") == "1":
            await call(request, "delete_my_picture")
        elif isinstance(upload, web.FileField):
            data = upload.file.read()
            await call(request, "put_my_picture", raw=RawBody(request, data, upload.content_type or ""))
        else:
            raise Problem(422, "picture: choose a file")
    except Problem as problem:
        return await _me_page(request, page, error=problem_text(page, problem), status=problem.status)
    return redirect("/me", flash="me.saved")
