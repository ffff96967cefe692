"""What answer groups and menus have in common in the REST API: both are *routed entities*, a
named thing of an organisation that calls are sent to, that may have a number of its own (or
answer the organisation's main number) and that menu keys, no-answer destinations and calendar
entries may lead to.

Their own fields differ and stay in ``groups.py`` and ``menus.py``; the name check, the number,
the If-Match check, the before/after audit record and the 409 on deleting one that is still in
use are the same for both, so they are written once, here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from api.framework import Ctx, Reply, check_if_match, etag_of
from api.problems import Problem, field_problem
from provisioning.audit import record
from provisioning.model import AnswerGroup, Menu, Number, NumberRole, Schedule, ScheduleEntry


@dataclass(frozen=True)
class Routed:
    """One kind of routed entity, as the shared handlers below need to know it."""

    #: "group" or "menu": the audit entity, the number's role and the word in problem messages.
    kind: str
    #: AnswerGroup or Menu (has id, organization_id, name, numbers, version, updated_at).
    model: type
    #: The entity by id if this caller may administer it, else a 404 problem.
    get: Callable[[Ctx, int], Awaitable[Any]]
    #: The entity read fresh after a write.
    reload: Callable[[Ctx, int], Awaitable[Any]]
    #: The response model.
    out: Callable[[Ctx, Any], Awaitable[BaseModel]]

    @property
    def column(self) -> str:
        """``group_id`` or ``menu_id``: the path parameter, and the Number column that points here."""
        return f"{self.kind}_id"


async def referenced_by(ctx: Ctx, organization_id: int, kind: str, ident: int) -> list[str]:
    """Menu keys, groups' no-answer and calendar entries that lead to this group or menu."""
    target = str(ident)
    out = []
    menus = (await ctx.db.execute(select(Menu).where(Menu.organization_id == organization_id)
                                  .options(selectinload(Menu.options)))).scalars().all()
    for m in menus:
        out += [f"menu '{m.name}': key {o.key}" for o in m.options if o.kind == kind and o.target == target]
        if m.timeout_kind == kind and m.timeout_target == target:
            out.append(f"menu '{m.name}': no choice")
        if m.final_kind == kind and m.final_target == target:
            out.append(f"menu '{m.name}': final")
    for g in (await ctx.db.execute(select(AnswerGroup).where(
            AnswerGroup.organization_id == organization_id, AnswerGroup.no_answer_kind == kind,
            AnswerGroup.no_answer_target == target))).scalars():
        out.append(f"group '{g.name}': no answer")
    rows = (await ctx.db.execute(select(ScheduleEntry.name).join(Schedule, Schedule.id == ScheduleEntry.schedule_id)
                                 .where(Schedule.organization_id == organization_id, ScheduleEntry.then_kind == kind,
                                        ScheduleEntry.then_target == target))).scalars().all()
    out += [f"calendar entry '{name}'" for name in rows]
    return out


async def set_owned_number(ctx: Ctx, owner, kind: str, e164: str | None) -> None:
    """Give a group or menu exactly this number (or none). The organisation's main number stays
    the organisation's: its row only records that the group or menu answers it."""
    column = "group_id" if kind == "group" else "menu_id"
    for number in list(owner.numbers):
        if number.e164 == e164:
            return
        if number.role == NumberRole.main:
            setattr(number, column, None)
        else:
            await ctx.db.delete(number)
    await ctx.db.flush()
    if e164 is None:
        return
    existing = (await ctx.db.execute(select(Number).where(Number.e164 == e164))).scalar_one_or_none()
    if existing is not None and existing.role == NumberRole.main and existing.organization_id == owner.organization_id:
        if existing.group_id is not None or existing.menu_id is not None:
            raise Problem(409, f"the main number {e164} is already answered by another group or menu",
                          errors=[{"loc": ["body", "number"], "msg": "already answered", "type": "conflict"}])
        setattr(existing, column, owner.id)
        return
    if existing is not None:
        raise Problem(409, f"number {e164} is already assigned",
                      errors=[{"loc": ["body", "number"], "msg": "already assigned", "type": "conflict"}])
    ctx.db.add(Number(e164=e164, organization_id=owner.organization_id, role=NumberRole(kind),
                      **{column: owner.id}))


async def name_free(ctx: Ctx, routed: Routed, org_id: int, name: str, but: int | None = None) -> None:
    """409 if another group (or menu) of the organisation has this name."""
    model = routed.model
    other = (await ctx.db.execute(select(model.id).where(model.organization_id == org_id, model.name == name))
             ).scalar_one_or_none()
    if other is not None and other != but:
        raise Problem(409, f"a {routed.kind} named {name!r} exists",
                      errors=[{"loc": ["body", "name"], "msg": "already in use", "type": "conflict"}])


async def created(ctx: Ctx, routed: Routed, entity: Any, number: str | None) -> Reply:
    """The end of a create, once the entity and its own fields are stored: its number, the audit
    record and the reply with its ETag."""
    await set_owned_number(ctx, entity, routed.kind, number)
    await ctx.db.flush()
    entity = await routed.reload(ctx, entity.id)
    out = await routed.out(ctx, entity)
    record(ctx.db, ctx.actor(), now=ctx.now, action="create", entity=routed.kind, entity_id=entity.id,
           organization_id=entity.organization_id, after=out.model_dump(mode="json"))
    return Reply(out, etag=etag_of(entity.version))


async def update(ctx: Ctx, routed: Routed, apply: Callable[[Ctx, Any, Any, set[str]], Awaitable[None]]) -> Reply:
    """A PATCH under If-Match: the name and the number here, the rest by ``apply(ctx, entity, body,
    given)``; ``updated_at`` and an audit record only when the result differs from before."""
    entity = await routed.get(ctx, ctx.path[routed.column])
    check_if_match(ctx, entity.version)
    body = ctx.body
    given = body.model_fields_set
    before = (await routed.out(ctx, entity)).model_dump(mode="json")
    if "name" in given:
        if body.name is None:
            raise field_problem(["body", "name"], "may not be null")
        await name_free(ctx, routed, entity.organization_id, body.name, entity.id)
        entity.name = body.name
    await apply(ctx, entity, body, given - {"name", "number"})
    if "number" in given:
        await set_owned_number(ctx, entity, routed.kind, body.number)
    await ctx.db.flush()
    entity = await routed.reload(ctx, entity.id)
    after = (await routed.out(ctx, entity)).model_dump(mode="json")
    if after != before:
        entity.updated_at = ctx.now
        await ctx.db.flush()
        entity = await routed.reload(ctx, entity.id)
        record(ctx.db, ctx.actor(), now=ctx.now, action="update", entity=routed.kind, entity_id=entity.id,
               organization_id=entity.organization_id, before=before, after=after)
    return Reply(await routed.out(ctx, entity), etag=etag_of(entity.version))


async def delete(ctx: Ctx, routed: Routed) -> None:
    """A DELETE under If-Match, refused (409) while anything leads to the entity. Its own numbers
    go with it; the organisation's main number stays, only no longer answered by it."""
    entity = await routed.get(ctx, ctx.path[routed.column])
    check_if_match(ctx, entity.version)
    used = await referenced_by(ctx, entity.organization_id, routed.kind, entity.id)
    if used:
        raise Problem(409, f"{routed.kind} {entity.name!r} is in use: {'; '.join(used)}",
                      errors=[{"loc": ["path", routed.column], "msg": where, "type": "in_use"} for where in used])
    before = (await routed.out(ctx, entity)).model_dump(mode="json")
    for number in entity.numbers:
        if number.role == NumberRole.main:
            setattr(number, routed.column, None)
        else:
            await ctx.db.delete(number)
    await ctx.db.delete(entity)
    record(ctx.db, ctx.actor(), now=ctx.now, action="delete", entity=routed.kind, entity_id=entity.id,
           organization_id=entity.organization_id, before=before)
