"""The web UI on the admin listener: server-rendered pages over the REST API's own handlers.

``setup(app)`` mounts the pages, their static files, the IN/UT app's manifest and icons, the
live-update hub and the middlewares (security headers and CSRF cookie on pages; publishing the
REST API's group writes to open IN/UT pages).
"""

from __future__ import annotations

import json

from aiohttp import web

from api.web import admin, audit, devices, inbox, live, pages  # noqa: F401  (these register on pages.routes)
from api.web import answer_groups, calendars, menus  # noqa: F401  (answer groups, calendars, menus)
from api.web import contacts, messages  # noqa: F401  (voice messages, external contacts)
from api.web.core import STATIC, lang_of, page_middleware
from api.web.i18n import t
from api.web.icons import SIZES, icon_png


async def manifest(request: web.Request) -> web.Response:
    lang = lang_of(request)
    body = {
        "name": t(lang, "app.inout"),
        "short_name": t(lang, "app.inout"),
        "lang": lang,
        "start_url": "/groups",
        "scope": "/",
        "display": "standalone",
        "background_color": "#f4f7f8",
        "theme_color": "#0e5c63",
        "icons": [{"src": f"/icons/icon-{s}.png", "sizes": f"{s}x{s}", "type": "image/png", "purpose": "any"}
                  for s in SIZES] + [{"src": "/icons/maskable-512.png", "sizes": "512x512", "type": "image/png",
                                      "purpose": "maskable"}],
    }
    return web.Response(text=json.dumps(body, ensure_ascii=False), content_type="application/manifest+json")


async def icon(request: web.Request) -> web.Response:
    kind, size = request.match_info["kind"], int(request.match_info["size"])
    if size not in SIZES and not (kind == "maskable" and size == 512):
        raise web.HTTPNotFound()
    return web.Response(body=icon_png(size, kind == "maskable"), content_type="image/png",
                        headers={"Cache-Control": "public, max-age=86400"})


def setup(app: web.Application) -> None:
    app[live.HUB] = live.Hub()
    app.on_shutdown.append(app[live.HUB].close)
    app.middlewares.append(page_middleware)
    app.middlewares.append(live.api_write_middleware)
    app.router.add_routes(pages.routes)
    app.router.add_get("/manifest.webmanifest", manifest)
    app.router.add_get(r"/icons/{kind:icon|maskable}-{size:\d{3}}.png", icon)
    app.router.add_static("/static/", STATIC, follow_symlinks=False, append_version=True)
