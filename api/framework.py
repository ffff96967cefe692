"""Routes declared once, with their pydantic models, served by aiohttp and described by OpenAPI.

``@api.route(...)`` registers an operation: method, path, who may call it, and the pydantic
models of its query, body and response. The same declaration validates every request (422
naming the failing fields), serialises every response, and produces the OpenAPI document
(``api/openapi.py``), so the document cannot drift from what the server does.

A handler receives one ``Ctx`` (request, server, database session, principal, clock reading,
parsed path/query/body) and returns a pydantic model, a ``Reply`` (status, ETag, headers),
``None`` (204) or a ready ``web.Response`` (pictures).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable

from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.principals import Principal, resolve
from api.problems import Problem
from api.types import MAX_ID
from provisioning.audit import Actor
from provisioning.server import Server

SERVER = web.AppKey("server", Server)
PREFIX = "/api/v1"
MAX_JSON_BYTES = 256 * 1024

#: Path parameters that are not database ids: name -> (python type, min, max)
PATH_PARAMS: dict[str, tuple[type, int, int]] = {"index": (int, 1, 64)}


@dataclass
class Reply:
    body: BaseModel | None = None
    status: int | None = None                  # None: the operation's documented success status
    etag: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Ctx:
    request: web.Request
    server: Server
    db: AsyncSession
    principal: Principal | None
    now: datetime
    path: dict[str, Any]
    query: Any = None
    body: Any = None

    @property
    def me(self) -> Principal:
        assert self.principal is not None
        return self.principal

    def actor(self) -> Actor:
        return self.me.actor()


Handler = Callable[[Ctx], Awaitable[Any]]


@dataclass
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tags: tuple[str, ...]
    auth: str                                  # public | any | admin | super
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    etag: bool = False                         # single-resource response: carries an ETag
    if_match: bool = False                     # a write that honours If-Match
    body_media: tuple[str, ...] = ("application/json",)
    response_media: tuple[str, ...] = ("application/json",)
    description: str = ""

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


class Api:
    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def route(self, method: str, path: str, *, summary: str, tags: tuple[str, ...] | str, auth: str = "any",
              **options) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            op = Operation(method, path, handler, summary, (tags,) if isinstance(tags, str) else tags, auth,
                           description=(handler.__doc__ or "").strip(), **options)
            if any(o.operation_id == op.operation_id for o in self.operations):
                raise ValueError(f"duplicate operation id {op.operation_id}")
            self.operations.append(op)
            return handler
        return register

    def install(self, app: web.Application) -> None:
        for op in self.operations:
            app.router.add_route(op.method, PREFIX + op.path, _endpoint(op))


api = Api()


def _path_values(op: Operation, request: web.Request) -> dict[str, Any]:
    values = {}
    for name in op.path_params:
        raw = request.match_info[name]
        kind, low, high = PATH_PARAMS.get(name, (int, 1, MAX_ID))
        if kind is int:
            if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
                raise Problem(404, "no such resource")
            values[name] = int(raw)
        else:
            values[name] = raw
    return values


def _errors(exc: ValidationError, where: str) -> list[dict]:
    out = []
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        msg = error["msg"].removeprefix("Value error, ")
        out.append({"loc": [where, *error["loc"]], "msg": msg, "type": error["type"]})
    return out


def _invalid(errors: list[dict]) -> Problem:
    first = errors[0]
    return Problem(422, f"{'.'.join(map(str, first['loc']))}: {first['msg']}", errors=errors)


async def _json_body(op: Operation, request: web.Request) -> Any:
    media = request.content_type
    if not (media == "application/json" or (media.startswith("application/") and media.endswith("+json"))):
        raise Problem(415, "send the body as application/json")
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise Problem(413, f"a JSON body has at most {MAX_JSON_BYTES} bytes")
    raw = await request.content.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise Problem(413, f"a JSON body has at most {MAX_JSON_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Problem(400, "the body is not valid JSON",
                      errors=[{"loc": ["body"], "msg": "not valid JSON", "type": "json_invalid"}]) from None
    try:
        return op.body.model_validate(data)
    except ValidationError as exc:
        raise _invalid(_errors(exc, "body")) from None
    except RecursionError:
        raise Problem(400, "the body is nested too deeply") from None


def etag_of(version: int) -> str:
    return f'"{version}"'


def check_if_match(ctx: Ctx, version: int) -> None:
    """412 when the client sent If-Match and it does not name the current version."""
    header = ctx.request.headers.get("If-Match")
    if header is None:
        return
    tags = [t.strip() for t in header.split(",")]
    if "*" in tags or etag_of(version) in tags:
        return
    raise Problem(412, "the resource has changed since you fetched it (If-Match does not match its ETag)",
                  headers={"ETag": etag_of(version)})


def _endpoint(op: Operation):
    async def endpoint(request: web.Request) -> web.StreamResponse:
        server: Server = request.app[SERVER]
        path = _path_values(op, request)
        query = None
        if op.query is not None:
            try:
                query = op.query.model_validate(dict(request.query))
            except ValidationError as exc:
                raise _invalid(_errors(exc, "query")) from None
        now = server.clock.now()
        async with server.sessions() as db:
            principal = await resolve(db, request, now)
            if op.auth != "public" and principal is None:
                raise Problem(401, "log in or send an API token",
                              headers={"WWW-Authenticate": 'Bearer realm="deskprov"'})
            if op.auth == "super" and not principal.is_super:
                raise Problem(403, "only provider staff (super admins) may do this")
            if op.auth == "admin" and not (principal.is_super or principal.is_org_admin):
                raise Problem(403, "only administrators may do this")
            body = None
            if op.body is not None:
                body = await _json_body(op, request)
            ctx = Ctx(request, server, db, principal, now, path, query, body)
            result = await op.handler(ctx)
            await db.commit()
        return _respond(op, result)
    endpoint.__name__ = op.operation_id
    return endpoint


def _respond(op: Operation, result: Any) -> web.StreamResponse:
    if isinstance(result, web.StreamResponse):
        return result
    if result is None:
        return web.Response(status=204)
    reply = result if isinstance(result, Reply) else Reply(result)
    status = reply.status or op.status
    headers = dict(reply.headers)
    if reply.etag:
        headers["ETag"] = reply.etag
    if reply.body is None:
        return web.Response(status=204, headers=headers)
    payload = reply.body.model_dump_json(by_alias=True).encode()
    return web.Response(status=status, body=payload, content_type="application/json", headers=headers)
