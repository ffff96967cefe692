"""The admin listener's application (the REST API grows here; see the issues)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

import provisioning
from provisioning.server import Server

SERVER = web.AppKey("server", Server)


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
    app = web.Application(client_max_size=1024 * 1024)
    app[SERVER] = server
    app.router.add_get("/api/v1/health", health)
    return app
