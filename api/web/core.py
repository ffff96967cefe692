"""The web pages' plumbing: templates, language, CSRF, security headers, in-process API calls.

Pages never reimplement what the REST API does: ``call`` runs an API operation's own handler
(same validation, authorisation, audit) inside the page request, with the caller's session.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web
from pydantic import BaseModel, ValidationError

from api.framework import SERVER, Ctx, Operation, Reply, _errors, _invalid, api
from api.principals import Principal, resolve
from api.problems import Problem
from api.web.i18n import LANGS, pick, t

FLASH = web.RequestKey("web_flash", str)
NEW_CSRF = web.RequestKey("web_csrf_new", str)
ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"
CSRF_COOKIE = "deskprov_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LANG_COOKIE = "lang"
STOCKHOLM = ZoneInfo("Europe/Stockholm")

#: Every web page carries these; no inline script or style can run, nothing may frame the page.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                         undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "" if value is None else value.astimezone(STOCKHOLM).strftime(fmt)


env.filters["local"] = local_time


def mac_text(value: str | None) -> str:
    """12 hex digits as the phone's label shows them (80:5E:C0:AA:BB:01); anything else as it is."""
    raw = (value or "").replace(":", "").replace("-", "")
    if len(raw) == 12:
        return ":".join(raw[i:i + 2] for i in range(0, 12, 2)).upper()
    return value or ""


env.filters["mac"] = mac_text

_OPS: dict[str, Operation] = {}


def operation(operation_id: str) -> Operation:
    if not _OPS:
        _OPS.update({op.operation_id: op for op in api.operations})
    return _OPS[operation_id]


# -- language -------------------------------------------------------------------------------------


def lang_of(request: web.Request) -> str:
    return pick(request.query.get("lang"), request.cookies.get(LANG_COOKIE))


# -- CSRF: a double-submit token --------------------------------------------------------------------


def csrf_token(request: web.Request) -> str:
    """The browser's CSRF token (made on first use and set as a cookie by the page middleware)."""
    token = request.get(NEW_CSRF) or request.cookies.get(CSRF_COOKIE)
    if not token or len(token) != 43:
        token = secrets.token_urlsafe(32)
        request[NEW_CSRF] = token
    return token


async def check_csrf(request: web.Request, form: dict | None = None) -> bool:
    """The cookie must be there and the same token must come back in the form or a header; the
    Origin, when the browser sends one, must be this host."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        return False
    cookie = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER) or (form or {}).get(CSRF_FIELD)
    return bool(cookie) and bool(sent) and hmac.compare_digest(str(cookie), str(sent))


# -- rendering ----------------------------------------------------------------------------------------


@dataclass
class Page:
    request: web.Request
    lang: str
    principal: Principal | None

    def t(self, key: str, **values) -> str:
        return t(self.lang, key, **values)


def render(page: Page, template: str, status: int = 200, **context: Any) -> web.Response:
    request = page.request
    other = LANGS[1 - LANGS.index(page.lang)]
    query = dict(request.query)
    query["lang"] = other
    html = env.get_template(template).render(
        t=page.t, lang=page.lang, me=page.principal, csrf=csrf_token(request), path=request.path,
        switch_lang_url=str(request.rel_url.with_query(query)), flash=request.get(FLASH), **context)
    return web.Response(text=html, content_type="text/html", charset="utf-8", status=status)


def redirect(location: str, flash: str | None = None) -> web.Response:
    response = web.Response(status=303, headers={"Location": location})
    if flash:
        response.set_cookie("flash", flash, httponly=True, samesite="Strict", path="/", max_age=60)
    return response


@web.middleware
async def page_middleware(request: web.Request, handler):
    """On every non-API page: language cookie, CSRF cookie, flash message, security headers."""
    if request.path.startswith("/api/"):
        return await handler(request)
    from api.web.i18n import CATALOGUE
    flash = request.cookies.get("flash")
    if flash in CATALOGUE:
        request[FLASH] = flash
    response = await handler(request)
    if response.prepared:  # a stream sets its own headers
        return response
    response.headers.update(SECURITY_HEADERS)
    if request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "public, max-age=3600"
    if request.get(NEW_CSRF):
        secure = request.app[SERVER].settings.cookie_secure
        response.set_cookie(CSRF_COOKIE, request[NEW_CSRF], httponly=True, samesite="Strict", path="/",
                            secure=secure)
    if request.query.get("lang") in LANGS and request.cookies.get(LANG_COOKIE) != request.query["lang"]:
        response.set_cookie(LANG_COOKIE, request.query["lang"], samesite="Lax", path="/", max_age=365 * 86400)
    if flash and "flash" not in response.cookies:
        response.del_cookie("flash", path="/")
    return response


# -- in-process API calls -----------------------------------------------------------------------------


async def principal_of(request: web.Request) -> Principal | None:
    server = request.app[SERVER]
    async with server.sessions() as db:
        return await resolve(db, request, server.clock.now())


async def call(request: web.Request, operation_id: str, *, path: dict | None = None, query: dict | None = None,
               body: Any = None, raw: "RawBody | None" = None) -> Any:
    """Run an API operation as the page's caller; returns its model (or response) or raises Problem."""
    op = operation(operation_id)
    server = request.app[SERVER]
    now = server.clock.now()
    try:
        parsed_query = op.query.model_validate(query or {}) if op.query is not None else None
        parsed_body = op.body.model_validate(body) if op.body is not None else None
    except ValidationError as exc:
        raise _invalid(_errors(exc, "body")) from None
    async with server.sessions() as db:
        principal = await resolve(db, request, now)
        if op.auth != "public" and principal is None:
            raise Problem(401, "log in")
        if op.auth == "super" and not principal.is_super:
            raise Problem(403, "only provider staff may do this")
        if op.auth == "admin" and not (principal.is_super or principal.is_org_admin):
            raise Problem(403, "only administrators may do this")
        ctx = Ctx(raw or request, server, db, principal, now, path or {}, parsed_query, parsed_body)
        result = await op.handler(ctx)
        await db.commit()
    if isinstance(result, Reply):
        return result.body
    return result


def problem_text(page: Page, problem: Problem) -> str:
    if problem.errors:
        return "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in problem.errors)
    return page.t("error.generic", detail=problem.detail or problem.title)


def as_dict(model: BaseModel | None) -> dict:
    return {} if model is None else model.model_dump(mode="python")


class _Content:
    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self, n: int = -1) -> bytes:
        return self._data if n < 0 else self._data[:n]


class RawBody:
    """The page request as an API operation that reads a raw body (a picture) expects to see it:
    the uploaded file's bytes and media type instead of the multipart form they came in."""

    def __init__(self, request: web.Request, data: bytes, content_type: str) -> None:
        self._request = request
        self.content_type = content_type
        self.content_length = len(data)
        self.content = _Content(data)
        self.headers: dict[str, str] = {}

    def __getattr__(self, name: str):
        return getattr(self._request, name)
