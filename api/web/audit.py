"""The audit log (A14): who changed what and when, newest first, filterable by entity."""

from __future__ import annotations

import json

from aiohttp import web

from api.problems import Problem
from api.web.core import Page, call, problem_text, render
from api.web.pages import guarded, routes

ENTITIES = ("user", "device", "device_keys", "group", "diversion")


@routes.get("/admin/audit")
@guarded(admin=True)
async def audit_page(request: web.Request, page: Page, form: None) -> web.Response:
    entity = request.query.get("entity") or None
    query = {"limit": 50, "entity": entity if entity in ENTITIES else None}
    if request.query.get("cursor"):
        query["cursor"] = request.query["cursor"][:200]
    try:
        result = await call(request, "list_audit", query={k: v for k, v in query.items() if v is not None})
    except Problem as problem:
        return render(page, "error.html", status=problem.status, message=problem_text(page, problem))
    rows = [(e, json.dumps(e.before, ensure_ascii=False, indent=1) if e.before is not None else None,
             json.dumps(e.after, ensure_ascii=False, indent=1) if e.after is not None else None)
            for e in result.items]
    older = str(request.rel_url.update_query({"cursor": result.next_cursor})) if result.next_cursor else None
    return render(page, "audit.html", rows=rows, entities=ENTITIES, entity=query["entity"], older=older)
