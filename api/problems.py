"""RFC 9457 problem details: every error the API returns is ``application/problem+json``.

Handlers raise ``Problem``; the middleware also turns aiohttp's own errors (unknown route,
wrong method, body too large), database conflicts and anything unexpected into problems, so
no HTML or plain-text error ever leaves the API.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

log = logging.getLogger("deskprov.api")

MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    """One failing field: where (``["body", "keys", 2, "slot"]``), what, and an error code."""

    loc: list[str | int]
    msg: str
    type: str


class ProblemModel(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field("about:blank", description="a URI naming the problem type; about:blank: see title")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = Field(None, description="the failing fields (422)")


class Problem(Exception):
    def __init__(self, status: int, detail: str | None = None, *, title: str | None = None,
                 errors: list[dict] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or title or str(status))
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.errors = errors
        self.headers = headers or {}

    def response(self, instance: str | None = None) -> web.Response:
        body: dict[str, Any] = {"type": "about:blank", "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if self.errors is not None:
            body["errors"] = self.errors
        return web.Response(status=self.status, body=json.dumps(body, ensure_ascii=False).encode(),
                            content_type=MEDIA_TYPE, headers=self.headers)


def field_problem(loc: list, msg: str, kind: str = "value_error", status: int = 422) -> Problem:
    return Problem(status, f"{'.'.join(map(str, loc))}: {msg}", errors=[{"loc": loc, "msg": msg, "type": kind}])


def not_found(what: str = "resource") -> Problem:
    return Problem(404, f"no such {what}")


_AIOHTTP_DETAIL = {
    404: "no such resource",
    405: "method not allowed on this resource",
    413: "request body too large",
}


@web.middleware
async def problem_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except Problem as problem:
        return problem.response(request.path)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return Problem(exc.status, _AIOHTTP_DETAIL.get(exc.status, exc.reason), headers=headers).response(request.path)
    except StaleDataError:
        return Problem(412, "the resource was changed by someone else meanwhile; fetch it again").response(request.path)
    except IntegrityError:
        log.info("integrity conflict on %s %s", request.method, request.path, exc_info=True)
        return Problem(409, "the change conflicts with existing data").response(request.path)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return Problem(500, "internal error; it has been logged").response(request.path)
