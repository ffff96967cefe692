"""Menus (IVR, A12): a greeting, where each key goes, the wait for a key and wrong-key handling.

Destinations are written the same way everywhere (menu keys, a group's no-answer, where a
closed calendar entry leads): ``{"kind": "user"|"voicemail"|"group"|"menu"|"message", "id": ...}``,
``{"kind": "external", "number": "+468..."}``, or ``{"kind": "repeat"|"hangup"}``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from api.access import can_admin_org, creation_org, visible_org_ids
from api.framework import Ctx, Reply, api, etag_of
from api.pagination import Page, PageQuery, paginate
from api.problems import field_problem, not_found
from api.resources import routed
from api.resources.messages import org_message_id
from api.types import Id, PhoneNumber, Text, Timestamp
from provisioning.model import Menu, MenuOption, NumberRole, Organization
from provisioning.routing.menus import KEYS
from provisioning.routing.snapshot import ID_KINDS, OrgRefs

Kind = Literal["user", "group", "menu", "external", "voicemail", "message", "repeat", "hangup"]


class DestinationIn(BaseModel):
    kind: Kind
    id: Id | None = Field(None, description="the user (user, voicemail), group, menu or voice message")
    number: PhoneNumber | None = Field(None, description="the external number (kind external)")

    @model_validator(mode="after")
    def _shape(self) -> "DestinationIn":
        if self.kind in ID_KINDS and self.id is None:
            raise ValueError(f"a {self.kind} destination needs id")
        if self.kind == "external" and self.number is None:
            raise ValueError("an external destination needs number")
        if self.kind not in ID_KINDS and self.id is not None:
            raise ValueError(f"a {self.kind} destination takes no id")
        if self.kind != "external" and self.number is not None:
            raise ValueError(f"a {self.kind} destination takes no number")
        return self


class DestinationOut(BaseModel):
    kind: str
    id: int | None = None
    number: str | None = None
    name: str | None = Field(None, description="the user's, group's, menu's or message's name")


async def destination_in(ctx: Ctx, organization_id: int, d: DestinationIn | None, loc: list,
                         refs: OrgRefs | None = None) -> tuple[str | None, str | None]:
    """The stored (kind, target) pair, after checking the target is the organisation's (422)."""
    if d is None:
        return None, None
    if d.kind in ID_KINDS:
        refs = refs or await OrgRefs.load(ctx.db, organization_id)
        if d.id not in refs.table(d.kind):
            raise field_problem([*loc, "id"], f"no {ID_KINDS[d.kind]} {d.id} in this organisation")
        return d.kind, str(d.id)
    if d.kind == "external":
        return d.kind, d.number
    return d.kind, None


def destination_out(kind: str | None, target: str | None, refs: OrgRefs) -> DestinationOut | None:
    if not kind:
        return None
    if kind in ID_KINDS:
        return DestinationOut(kind=kind, id=int(target) if target and target.isdigit() else None,
                              name=refs.name_of(kind, target))
    if kind == "external":
        return DestinationOut(kind=kind, number=target)
    return DestinationOut(kind=kind)


# -- menus ----------------------------------------------------------------------------------------------


class MenuOut(BaseModel):
    id: int
    organization_id: int
    name: str
    number: str | None
    answers_main_number: bool = Field(description="the menu answers the organisation's main number")
    message_id: int
    message: str | None
    options: dict[str, DestinationOut]
    timeout: float
    retries: int
    invalid_message_id: int | None
    timeout_destination: DestinationOut | None
    final_destination: DestinationOut
    schedule_id: int | None
    updated_at: Timestamp
    version: int


class MenuPage(Page[MenuOut]):
    pass


class MenuQuery(PageQuery):
    organization_id: Id | None = None


class MenuFields(BaseModel):
    message_id: Id | None = Field(None, description="the greeting")
    options: dict[str, DestinationIn] | None = Field(None, description="key (0-9, * or #) -> destination")
    timeout: float | None = Field(None, gt=0, le=120, description="seconds to wait for a key")
    retries: int | None = Field(None, ge=0, le=10, description="wrong keys and silences allowed")
    invalid_message_id: Id | None = None
    timeout_destination: DestinationIn | None = Field(None, description="after the last silence; null: final")
    final_destination: DestinationIn | None = Field(None, description="after the last failure; default hangup")


class MenuCreate(MenuFields):
    organization_id: Id | None = None
    name: Text(100, 1)
    message_id: Id
    number: PhoneNumber | None = Field(None, description="a number of its own, or the organisation's main number")


class MenuPatch(MenuFields):
    name: Text(100, 1) | None = None
    number: PhoneNumber | None = None


async def get_menu(ctx: Ctx, menu_id: int) -> Menu:
    menu = (await ctx.db.execute(select(Menu).where(Menu.id == menu_id).options(
        selectinload(Menu.options), selectinload(Menu.numbers)).execution_options(populate_existing=True))
    ).scalar_one_or_none()
    if menu is None or not can_admin_org(ctx, menu.organization_id):
        raise not_found("menu")
    return menu


async def menu_out(ctx: Ctx, m: Menu, refs: OrgRefs | None = None) -> MenuOut:
    from provisioning.model import Schedule

    refs = refs or await OrgRefs.load(ctx.db, m.organization_id)
    schedule_id = (await ctx.db.execute(select(Schedule.id).where(Schedule.menu_id == m.id))).scalar_one_or_none()
    number = next((n for n in m.numbers), None)
    return MenuOut(
        id=m.id, organization_id=m.organization_id, name=m.name, number=number.e164 if number else None,
        answers_main_number=bool(number and number.role == NumberRole.main), message_id=m.message_id,
        message=refs.messages.get(m.message_id),
        options={o.key: destination_out(o.kind, o.target, refs) for o in m.options}, timeout=m.timeout,
        retries=m.retries, invalid_message_id=m.invalid_message_id,
        timeout_destination=destination_out(m.timeout_kind, m.timeout_target, refs),
        final_destination=destination_out(m.final_kind, m.final_target, refs), schedule_id=schedule_id,
        updated_at=m.updated_at, version=m.version)


MENU = routed.Routed("menu", Menu, get=get_menu, reload=get_menu, out=menu_out)


async def _apply(ctx: Ctx, menu: Menu, body: MenuFields, given: set[str]) -> None:
    org_id = menu.organization_id
    refs = await OrgRefs.load(ctx.db, org_id)
    for name in ("message_id", "timeout", "retries"):
        if name in given and getattr(body, name) is None:
            raise field_problem(["body", name], "may not be null")
    if "message_id" in given:
        menu.message_id = await org_message_id(ctx, org_id, body.message_id, ["body", "message_id"])
    if "invalid_message_id" in given:
        menu.invalid_message_id = await org_message_id(ctx, org_id, body.invalid_message_id,
                                                       ["body", "invalid_message_id"])
    if "timeout" in given:
        menu.timeout = body.timeout
    if "retries" in given:
        menu.retries = body.retries
    if "timeout_destination" in given:
        d = body.timeout_destination
        if d is not None and d.kind == "repeat":
            raise field_problem(["body", "timeout_destination", "kind"], "cannot be repeat (it would never end)")
        menu.timeout_kind, menu.timeout_target = await destination_in(ctx, org_id, d, ["body", "timeout_destination"],
                                                                      refs)
    if "final_destination" in given:
        d = body.final_destination
        if d is not None and d.kind == "repeat":
            raise field_problem(["body", "final_destination", "kind"], "cannot be repeat (it would never end)")
        kind, target = await destination_in(ctx, org_id, d, ["body", "final_destination"], refs)
        menu.final_kind, menu.final_target = kind or "hangup", target
    if "options" in given:
        wanted = {}
        for key, d in (body.options or {}).items():
            if key not in KEYS:
                raise field_problem(["body", "options", key], "not a key; use 0-9, * or #")
            if d.kind == "menu" and d.id == menu.id:
                raise field_problem(["body", "options", key, "id"], "leads to the menu itself; use repeat")
            wanted[key] = await destination_in(ctx, org_id, d, ["body", "options", key], refs)
        menu.options.clear()
        await ctx.db.flush()
        for key, (kind, target) in sorted(wanted.items()):
            menu.options.append(MenuOption(key=key, kind=kind, target=target))


@api.route("GET", "/menus", summary="List menus", tags="menus", auth="admin", query=MenuQuery, response=MenuPage)
async def list_menus(ctx: Ctx):
    q: MenuQuery = ctx.query
    stmt = select(Menu).options(selectinload(Menu.options), selectinload(Menu.numbers))
    org = visible_org_ids(ctx, q.organization_id)
    if org is not None:
        stmt = stmt.where(Menu.organization_id == org)
    rows, cursor = await paginate(ctx.db, stmt, Menu.id, q)
    return MenuPage(items=[await menu_out(ctx, m) for m in rows], next_cursor=cursor)


@api.route("POST", "/menus", summary="Create a menu", tags="menus", auth="admin", body=MenuCreate, response=MenuOut,
           status=201, etag=True, errors=(409,))
async def create_menu(ctx: Ctx):
    body: MenuCreate = ctx.body
    org_id = creation_org(ctx, body.organization_id)
    if await ctx.db.get(Organization, org_id) is None:
        raise field_problem(["body", "organization_id"], "no such organisation")
    await routed.name_free(ctx, MENU, org_id, body.name)
    message_id = await org_message_id(ctx, org_id, body.message_id, ["body", "message_id"])
    menu = Menu(organization_id=org_id, name=body.name, message_id=message_id, options=[], numbers=[])
    ctx.db.add(menu)
    await ctx.db.flush()
    await _apply(ctx, menu, body, body.model_fields_set - {"name", "organization_id", "number"})
    return await routed.created(ctx, MENU, menu, body.number)


@api.route("GET", "/menus/{menu_id}", summary="One menu", tags="menus", auth="admin", response=MenuOut, etag=True)
async def get_menu_route(ctx: Ctx):
    menu = await get_menu(ctx, ctx.path["menu_id"])
    return Reply(await menu_out(ctx, menu), etag=etag_of(menu.version))


@api.route("PATCH", "/menus/{menu_id}", summary="Change a menu's greeting, keys, timeout or retries", tags="menus",
           auth="admin", body=MenuPatch, response=MenuOut, etag=True, if_match=True, errors=(409,))
async def update_menu(ctx: Ctx):
    return await routed.update(ctx, MENU, _apply)


@api.route("DELETE", "/menus/{menu_id}", summary="Delete a menu nothing leads to", tags="menus", auth="admin",
           if_match=True, errors=(409,))
async def delete_menu(ctx: Ctx):
    return await routed.delete(ctx, MENU)
