"""The technician's device inbox (/tech/inbox), made for a phone's browser in a server room.

Live updates: the page re-reads a small HTML fragment every 5 seconds (``data-poll``) rather than
holding an event stream. Sightings come from the discovery listeners (PnP, mDNS, SNMP, HTTP/TFTP
requests), which publish no page events, and a poll survives flaky server-room Wi-Fi and sleeping
phone browsers without reconnect logic; the fragment is a few hundred bytes per device. A poll
never replaces the list while the technician is using one of its forms.
"""

from __future__ import annotations

from aiohttp import web

from api.problems import Problem
from api.web.core import Page, call, problem_text, redirect, render
from api.web.pages import guarded, routes

RECENT = 8


async def _context(request: web.Request, page: Page) -> dict:
    inbox = (await call(request, "list_inbox")).items
    users = (await call(request, "list_users", query={"limit": 100})).items
    devices = (await call(request, "list_devices", query={"unbound": False, "limit": 100})).items
    recent = []
    for d in sorted(devices, key=lambda d: d.id, reverse=True)[:RECENT]:
        try:
            sync = await call(request, "device_sync", path={"device_id": d.id})
        except Problem:
            sync = None
        recent.append((d, sync))
    return {"entries": inbox, "users": [u for u in users if u.primary_number or u.extension or u.username],
            "recent": recent}


async def inbox_page_response(request: web.Request, page: Page, *, error: str | None = None,
                              status: int = 200) -> web.Response:
    return render(page, "inbox.html", status=status, error=error, **await _context(request, page))


@routes.get("/tech/inbox")
@guarded(admin=True)
async def inbox_page(request: web.Request, page: Page, form: None) -> web.Response:
    return await inbox_page_response(request, page)


@routes.get("/tech/inbox/fragment")
@guarded(admin=True)
async def inbox_fragment(request: web.Request, page: Page, form: None) -> web.Response:
    return render(page, "_inbox.html", error=None, **await _context(request, page))


@routes.post("/tech/inbox/bind")
@guarded(admin=True)
async def inbox_bind(request: web.Request, page: Page, form: dict) -> web.Response:
    try:
        await call(request, "bind_device", body={"mac": form.get("mac", ""), "user": form.get("user", "")})
    except Problem as problem:
        return await inbox_page_response(request, page, error=problem_text(page, problem), status=problem.status)
    return redirect("/tech/inbox", flash="inbox.bound")
