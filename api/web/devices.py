"""Desk phones (A13): the list, and one phone drawn as its model's key layout where a key is
programmed by choosing a slot, a type and a target from the directory; bind/unbind; resync.

Every slot is a link (``?slot=M-S``), so choosing a key works by mouse, keyboard or without
JavaScript; the server renders the small form for the chosen key. Saving reads the phone's keys,
replaces that one and PUTs them all back through the API (catalogue validation, audit).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from yarl import URL

from api.problems import Problem
from api.web.core import Page, call, problem_text, redirect, render
from api.web.pages import guarded, routes

KEY_TYPES = ("line", "blf", "speed_dial", "park", "dtmf", "voicemail", "group_toggle")
NEEDS_TARGET = ("blf", "speed_dial", "park", "dtmf")


@dataclass
class Slot:
    module: int
    slot: int
    key: object | None

    @property
    def ident(self) -> str:
        return f"{self.module}-{self.slot}"


@dataclass
class Strip:
    """The phone itself (module 0) or one expansion module: its current page's two columns."""
    module: int
    name: str
    pages: int
    page: int
    left: list[Slot]
    right: list[Slot]
    page_urls: list[str]


def _per_page(module: int, capacity: int) -> int:
    """Keys visible at once: a desk phone shows five a side, an expansion module ten a side."""
    size = 10 if module == 0 else 20
    return capacity if capacity <= size + 2 else size


def layout(request: web.Request, model, keys: dict, modules: int) -> list[Strip]:
    strips = []
    for module in range(0, modules + 1):
        capacity = model.line_keys if module == 0 else model.expansion.keys
        size = _per_page(module, capacity)
        pages = -(-capacity // size)
        try:
            page = min(max(int(request.query.get(f"p{module}", "1")), 1), pages)
        except ValueError:
            page = 1
        first = (page - 1) * size + 1
        slots = [Slot(module, s, keys.get((module, s))) for s in range(first, min(first + size, capacity + 1))]
        half = -(-len(slots) // 2)
        urls = [str(request.rel_url.update_query({f"p{module}": n}).with_fragment("phone"))
                for n in range(1, pages + 1)]
        strips.append(Strip(module, model.expansion.name if module else model.display_name, pages, page,
                            slots[:half], slots[half:], urls))
    return strips


def _slot_of(request: web.Request) -> tuple[int, int] | None:
    raw = request.query.get("slot", "")
    module, _, slot = raw.partition("-")
    if module.isdigit() and slot.isdigit() and len(raw) <= 8:
        return int(module), int(slot)
    return None


async def _directory(request: web.Request) -> list:
    return (await call(request, "list_users", query={"limit": 100})).items


def _model_of(models, device):
    return next((m for m in models if m.vendor == device.vendor and m.model == device.model), None)


# -- the list -------------------------------------------------------------------------------------


@routes.get("/admin/devices")
@guarded(admin=True)
async def devices_page(request: web.Request, page: Page, form: None) -> web.Response:
    devices = (await call(request, "list_devices", query={"limit": 100})).items
    models = {(m.vendor, m.model): m for m in (await call(request, "list_phone_models")).items}
    return render(page, "devices.html", devices=devices, models=models)


# -- one phone --------------------------------------------------------------------------------------


async def _device_page(request: web.Request, page: Page, *, error: str | None = None, status: int = 200,
                       values: dict | None = None, notice: str | None = None,
                       slot: tuple[int, int] | None = None) -> web.Response:
    device_id = int(request.match_info["device_id"])
    try:
        device = await call(request, "get_device_route", path={"device_id": device_id})
    except Problem as problem:
        return render(page, "error.html", status=problem.status, message=problem_text(page, problem))
    models = (await call(request, "list_phone_models")).items
    model = _model_of(models, device)
    keys = {(k.module, k.slot): k for k in device.keys}
    used_modules = max([k.module for k in device.keys] + [0])
    max_modules = model.expansion.max_modules if model and model.expansion else 0
    try:
        modules = int(request.query.get("modules", used_modules))
    except ValueError:
        modules = used_modules
    modules = min(max(modules, used_modules, 0), max_modules)
    strips = layout(request, model, keys, modules) if model and model.line_keys else []
    chosen = slot or _slot_of(request)
    if chosen and slot is None and not any(s.module == chosen[0] and s.slot == chosen[1]
                          for st in strips for s in st.left + st.right):
        # a slot on another page: show that page
        capacity = model.line_keys if chosen[0] == 0 else (model.expansion.keys if model and model.expansion else 0)
        if model and 0 <= chosen[0] <= max_modules and 1 <= chosen[1] <= capacity:
            size = _per_page(chosen[0], capacity)
            url = request.rel_url.update_query({f"p{chosen[0]}": (chosen[1] - 1) // size + 1,
                                                "modules": max(modules, chosen[0])})
            raise web.HTTPSeeOther(str(url))
        chosen = None
    users = await _directory(request)
    try:
        sync = await call(request, "device_sync", path={"device_id": device_id})
    except Problem:
        sync = None
    try:  # the fetch audit trail: who asked for this phone's files, and what they got
        fetches = (await call(request, "list_device_fetches", path={"device_id": device_id},
                              query={"limit": 20})).items
    except Problem:
        fetches = []
    base = request.rel_url.with_query({k: v for k, v in request.query.items() if k not in ("slot", "lang")})
    return render(page, "device.html", status=status, device=device, model=model, strips=strips, fetches=fetches,
                  chosen=chosen, key=keys.get(chosen) if chosen else None, users=users, key_types=KEY_TYPES,
                  needs_target=NEEDS_TARGET, error=error, values=values or {}, sync=sync, notice=notice,
                  modules=modules, max_modules=max_modules, base=str(base),
                  more_modules=str(base.update_query({"modules": modules + 1}).with_fragment("phone")),
                  fewer_modules=str(base.update_query({"modules": modules - 1}).with_fragment("phone")),
                  slot_url=lambda s: str(base.update_query({"slot": s.ident}).with_fragment("key-form")))


@routes.get(r"/admin/devices/{device_id:\d{1,12}}")
@guarded(admin=True)
async def device_page(request: web.Request, page: Page, form: None) -> web.Response:
    return await _device_page(request, page)


def _key_error(page: Page, problem: Problem) -> str:
    if problem.errors and any(e.get("type") == "key_not_supported" for e in problem.errors):
        return page.t("phone.error.unsupported", detail="; ".join(e["msg"] for e in problem.errors))
    if problem.errors and any(e["loc"][-1] == "target" for e in problem.errors):
        return page.t("phone.error.target", detail="; ".join(e["msg"] for e in problem.errors))
    return problem_text(page, problem)


@routes.post(r"/admin/devices/{device_id:\d{1,12}}/keys")
@guarded(admin=True)
async def device_key_save(request: web.Request, page: Page, form: dict) -> web.Response:
    device_id = int(request.match_info["device_id"])
    try:
        module, slot = int(form.get("module", "")), int(form.get("slot", ""))
    except ValueError:
        return await _device_page(request, page, error=page.t("phone.choose"), status=422)
    device = await call(request, "get_device_route", path={"device_id": device_id})
    keys = [k.model_dump(mode="json") for k in device.keys if (k.module, k.slot) != (module, slot)]
    kind = str(form.get("type", ""))
    if form.get("clear") != "1":
        target = str(form.get("target_number", "")).strip() or str(form.get("target_user", "")).strip() or None
        if kind not in NEEDS_TARGET and kind != "line":
            target = target if kind == "voicemail" and target else None
        if kind == "line":
            target = None
        if kind in NEEDS_TARGET and not target:
            return await _device_page(request, page, error=page.t("phone.error.notarget"), status=422, values=form,
                                      slot=(module, slot))
        keys.append({"module": module, "slot": slot, "type": kind, "target": target,
                     "label": str(form.get("label", "")).strip() or None, "line": 1})
    try:
        await call(request, "put_keys", path={"device_id": device_id}, body={"keys": keys})
    except Problem as problem:
        return await _device_page(request, page, error=_key_error(page, problem), status=problem.status,
                                  values=form, slot=(module, slot))
    back = URL(f"/admin/devices/{device_id}").with_query(
        {k: v for k, v in request.query.items() if k != "slot"} | {"slot": f"{module}-{slot}"})
    return redirect(str(back.with_fragment("key-form")), flash="phone.saved")


@routes.post(r"/admin/devices/{device_id:\d{1,12}}/bind")
@guarded(admin=True)
async def device_bind(request: web.Request, page: Page, form: dict) -> web.Response:
    device_id = int(request.match_info["device_id"])
    try:
        if form.get("unbind") == "1":
            await call(request, "unbind_line", path={"device_id": device_id, "index": 1})
        else:
            await call(request, "bind_line", path={"device_id": device_id, "index": 1},
                       body={"user_id": form.get("user_id") or None})
    except Problem as problem:
        return await _device_page(request, page, error=problem_text(page, problem), status=problem.status)
    return redirect(f"/admin/devices/{device_id}", flash="phone.bound" if form.get("unbind") != "1"
                    else "phone.unbound")


@routes.post(r"/admin/devices/{device_id:\d{1,12}}/sip-password")
@guarded(admin=True)
async def device_sip_password(request: web.Request, page: Page, form: dict) -> web.Response:
    """A new SIP password for line 1; the phone is pushed its new config."""
    device_id = int(request.match_info["device_id"])
    try:
        await call(request, "rotate_line_sip_password", path={"device_id": device_id, "index": 1})
    except Problem as problem:
        return await _device_page(request, page, error=problem_text(page, problem), status=problem.status)
    return redirect(f"/admin/devices/{device_id}", flash="phone.sip_password.done")


@routes.post(r"/admin/devices/{device_id:\d{1,12}}/resync")
@guarded(admin=True)
async def device_resync(request: web.Request, page: Page, form: dict) -> web.Response:
    device_id = int(request.match_info["device_id"])
    back = str(form.get("back", ""))
    try:
        await call(request, "resync_device", path={"device_id": device_id})
    except Problem as problem:
        message = page.t("phone.resync.never") if problem.status == 409 else problem_text(page, problem)
        if back == "inbox":
            from api.web.inbox import inbox_page_response
            return await inbox_page_response(request, page, error=message, status=problem.status)
        return await _device_page(request, page, error=message, status=problem.status)
    if back == "inbox":
        return redirect("/tech/inbox", flash="phone.resync.sent")
    return redirect(f"/admin/devices/{device_id}", flash="phone.resync.sent")
