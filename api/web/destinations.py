"""Where a call goes (a menu key, a group's no-answer, a closed calendar entry) as one <select>.

Every destination the API accepts is one option ("user:7", "group:2", "external", "hangup"),
grouped by kind, so choosing works by keyboard and without JavaScript; an external number has
its own text field beside it. Nothing is checked here: the API names a bad choice (422).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from api.web.core import call, env

WITH_ID = ("user", "voicemail", "group", "menu", "message")


@dataclass
class Choices:
    """The organisation's possible targets, read through the API as the admin sees them."""
    users: list
    groups: list
    menus: list
    messages: list

    def message_name(self, message_id: int | None) -> str | None:
        return next((m.name for m in self.messages if m.id == message_id), None)


async def load_choices(request: web.Request, organization_id: int | None) -> Choices:
    scope = {"organization_id": organization_id} if organization_id else {}

    async def every(operation_id: str) -> list:
        items, cursor = [], None
        while True:
            page = await call(request, operation_id, query={**scope, "limit": 200,
                                                            **({"cursor": cursor} if cursor else {})})
            items += page.items
            cursor = page.next_cursor
            if not cursor or len(items) >= 2000:
                return items

    return Choices(users=await every("list_users"), groups=await every("list_groups"),
                   menus=await every("list_menus"), messages=await every("list_messages"))


def value_of(destination) -> str:
    """The <option> value of an API destination (DestinationOut or its dict); '' for none."""
    if destination is None:
        return ""
    kind = destination["kind"] if isinstance(destination, dict) else destination.kind
    ident = destination.get("id") if isinstance(destination, dict) else destination.id
    return f"{kind}:{ident}" if kind in WITH_ID else kind


def number_of(destination) -> str:
    if destination is None:
        return ""
    number = destination.get("number") if isinstance(destination, dict) else destination.number
    return number or ""


def parse(form: dict, field: str) -> dict | None:
    """The API's destination body from the <select> ``field`` (and ``field``_number); None: none chosen."""
    value = str(form.get(field, "")).strip()
    if not value:
        return None
    kind, _, ident = value.partition(":")
    if kind == "external":
        return {"kind": "external", "number": str(form.get(f"{field}_number", "")).strip() or None}
    if kind in WITH_ID:
        return {"kind": kind, "id": int(ident) if ident.isdigit() and len(ident) <= 12 else None}
    return {"kind": kind}


env.globals.update(dest_value=value_of, dest_number=number_of)
