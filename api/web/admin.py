"""Admin pages: the users list with search and quick actions (A1, U7), and the user editor."""

from __future__ import annotations

from aiohttp import web

from api.problems import Problem
from api.web.core import Page, call, problem_text, redirect, render
from api.web.pages import guarded, routes

FEATURES = ("voicemail", "voicemail_operator_option", "call_waiting_fixed", "call_waiting_mobile",
            "diversion_affects_mobile", "forwarding_affects_mobile", "show_mobile_outside_hours")


async def _users_page(request: web.Request, page: Page, *, notice: str | None = None, error: str | None = None,
                      status: int = 200) -> web.Response:
    q = request.query.get("q", "").strip()[:100]
    result = await call(request, "list_users", query={"q": q or None, "limit": 100} if q else {"limit": 100})
    return render(page, "users.html", status=status, users=result.items, q=q, notice=notice, error=error)


@routes.get("/admin/users")
@guarded(admin=True)
async def users_page(request: web.Request, page: Page, form: None) -> web.Response:
    return await _users_page(request, page)


@routes.post(r"/admin/users/{user_id:\d{1,12}}/send")
@guarded(admin=True)
async def users_send(request: web.Request, page: Page, form: dict) -> web.Response:
    try:
        sent = await call(request, "send_installation", path={"user_id": int(request.match_info["user_id"])},
                          body={"channel": form.get("channel")})
    except Problem as problem:
        return await _users_page(request, page, error=problem_text(page, problem), status=problem.status)
    return await _users_page(request, page, notice=page.t("users.sent", recipient=sent.recipient))


async def _user_form(request: web.Request, page: Page, *, error: str | None = None, saved: bool = False,
                     status: int = 200) -> web.Response:
    user = await call(request, "get_user_route", path={"user_id": int(request.match_info["user_id"])})
    return render(page, "user_edit.html", status=status, user=user, features=FEATURES, error=error, saved=saved,
                  caller_ids=("fixed", "mobile", "main", "hidden"))


@routes.get(r"/admin/users/{user_id:\d{1,12}}")
@guarded(admin=True)
async def user_edit(request: web.Request, page: Page, form: None) -> web.Response:
    try:
        return await _user_form(request, page)
    except Problem as problem:
        return render(page, "error.html", status=problem.status, message=problem_text(page, problem))


@routes.post(r"/admin/users/{user_id:\d{1,12}}")
@guarded(admin=True)
async def user_save(request: web.Request, page: Page, form: dict) -> web.Response:
    user_id = int(request.match_info["user_id"])
    keywords = [k.strip() for k in str(form.get("keywords", "")).split(",") if k.strip()]
    body = {
        "name": form.get("name") or None,
        "email": form.get("email") or None,
        "username": form.get("username") or None,
        "extension": form.get("extension") or None,
        "keywords": keywords,
        "deactivation_date": form.get("deactivation_date") or None,
        "softphone_licence": form.get("softphone_licence") == "on",
        "admin": form.get("admin") == "on",
        "caller_id": form.get("caller_id") or None,
        "features": {name: form.get(f"feature_{name}") == "on" for name in FEATURES},
    }
    body = {k: v for k, v in body.items() if v is not None}
    try:
        await call(request, "update_user", path={"user_id": user_id}, body=body)
    except Problem as problem:
        return await _user_form(request, page, error=problem_text(page, problem), status=problem.status)
    return redirect(f"/admin/users/{user_id}", flash="user.saved")
