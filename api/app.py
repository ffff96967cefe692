"""The admin listener's application: health, the REST API under /api/v1, its OpenAPI document."""

from __future__ import annotations

import json

from aiohttp import web
from sqlalchemy import text

import provisioning
from api import openapi
from api.framework import SERVER, api
from api.problems import problem_middleware
from api.resources import (  # noqa: F401
    auth, devices, diversions, fetches, groups, inbox, me, menus, messages, misc, organizations, phonebooks,
    schedules, sip_passwords, users,
)
from api.resources.messages import LIMITS as MESSAGE_LIMITS
from api.resources.auth import THROTTLE
from api.throttle import LoginThrottle
from api.web import setup as setup_web_ui
from provisioning.server import Server

__all__ = ["SERVER", "make_admin_app"]


async def health(request: web.Request) -> web.Response:
    """Liveness and readiness: the database answers and the cache is up."""
    server = request.app[SERVER]
    database = "ok"
    try:
        async with server.sessions() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:  # report, never crash the health check
        database = f"error: {type(exc).__name__}"
    status = 200 if database == "ok" else 503
    return web.json_response({"status": "ok" if status == 200 else "degraded", "version": provisioning.__version__,
                              "database": database, "cached_files": len(server.cache)}, status=status)


def make_admin_app(server: Server) -> web.Application:
    # Voice recordings and pictures are the largest bodies; JSON bodies have their own, smaller limit.
    largest = max(server.settings.max_picture_bytes, MESSAGE_LIMITS.max_bytes)
    app = web.Application(client_max_size=max(1024 * 1024, largest + 64 * 1024),
                          middlewares=[problem_middleware])
    app[SERVER] = server
    app[THROTTLE] = LoginThrottle(server.clock)
    app.router.add_get("/api/v1/health", health)
    document = json.dumps(openapi.build(api)).encode()

    async def openapi_json(_request: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/json")

    app.router.add_get("/api/v1/openapi.json", openapi_json)
    api.install(app)
    setup_web_ui(app)  # the web pages (api/web)
    return app
