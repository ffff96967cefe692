"""The steps the answer-group and menu admin pages share. Both are *routed entities* (a named
thing of an organisation that calls are sent to, with a number, a calendar and a version), and
both sets of pages have the same shape: a list with a create form, one entity's page, and forms
that change or delete it through the REST API with the rendered version as If-Match.

The steps that are the same are written once here; each page module keeps its own routes,
fields, templates and flash messages and passes what differs through a :class:`RoutedPages`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from api.problems import Problem
from api.web import destinations
from api.web.core import Page, call, redirect
from api.web.form_errors import error_fields, form_error
from api.web.versioned import if_match


def text(form: dict, name: str) -> str | None:
    """A form field as typed, trimmed; None when left empty."""
    return str(form.get(name, "")).strip() or None


async def organizations(request: web.Request, page: Page) -> list:
    """What a superuser creates in (the create form's organisation field); others create in their own."""
    if not page.principal.is_super:
        return []
    return (await call(request, "list_organizations", query={"limit": 200})).items


@dataclass(frozen=True)
class RoutedPages:
    """One kind of routed entity's admin pages, as the shared steps below need to know them."""

    #: "group" or "menu": the API's ``create_<noun>``, ``get_<noun>_route``, ``update_<noun>`` and
    #: ``delete_<noun>``, and their path parameter ``<noun>_id`` (the pages' too).
    noun: str
    #: The list; one entity's page is ``url/<id>``.
    url: str
    #: API field -> label key, for errors and aria-invalid.
    labels: dict[str, str]
    #: The list again after a failed create: ``(request, page, *, error, values, status)``.
    list_page: Callable[..., Awaitable[web.Response]]
    #: The entity's page again after a failed change: ``(request, page, id, *, error, part, values,
    #: invalid, status)``.
    entity_page: Callable[..., Awaitable[web.Response]]

    @property
    def param(self) -> str:
        return f"{self.noun}_id"

    def entity_id(self, request: web.Request) -> int:
        return int(request.match_info[self.param])


async def create(request: web.Request, page: Page, form: dict, pages: RoutedPages, body: dict,
                 flash: str) -> web.Response:
    """The list's create form: ``body`` holds the entity's own fields; the number (if one was typed)
    and, for a superuser, the organisation are added here. On a problem the list again with it."""
    if text(form, "number"):
        body["number"] = text(form, "number")
    if page.principal.is_super:
        body["organization_id"] = text(form, "organization_id")
    try:
        entity = await call(request, f"create_{pages.noun}", body=body)
    except Problem as problem:
        return await pages.list_page(request, page, error=form_error(page, problem, pages.labels), values=form,
                                     status=problem.status)
    return redirect(f"{pages.url}/{entity.id}", flash=flash)


async def load(request: web.Request, pages: RoutedPages, entity_id: int) -> Any:
    """The entity as the API shows it to this admin; 404 if the API refuses (absent or not theirs)."""
    try:
        return await call(request, f"get_{pages.noun}_route", path={pages.param: entity_id})
    except Problem:
        raise web.HTTPNotFound() from None


async def choices_and_schedule(request: web.Request, entity: Any) -> tuple[destinations.Choices, Any]:
    """What the entity's page offers as destinations, and its calendar (None: it has none)."""
    choices = await destinations.load_choices(request, entity.organization_id)
    schedule = None
    if entity.schedule_id is not None:
        schedule = await call(request, "get_schedule", path={"schedule_id": entity.schedule_id})
    return choices, schedule


async def patch(request: web.Request, page: Page, form: dict, pages: RoutedPages, body: dict, *, part: str,
                flash: str, fragment: str, on_saved: Callable[[int], None] | None = None) -> web.Response:
    """One form of the entity's page as a PATCH under If-Match. On a problem the page again with it
    at ``part`` (after 412 with the current entity, not the values typed); else ``on_saved(id)`` and
    back to ``#fragment``."""
    entity_id = pages.entity_id(request)
    try:
        await call(request, f"update_{pages.noun}", path={pages.param: entity_id}, body=body,
                   raw=if_match(request, form))
    except Problem as problem:
        return await pages.entity_page(request, page, entity_id, error=form_error(page, problem, pages.labels),
                                       part=part, values={} if problem.status == 412 else form,
                                       invalid=error_fields(problem, pages.labels), status=problem.status)
    if on_saved is not None:
        on_saved(entity_id)
    return redirect(f"{pages.url}/{entity_id}#{fragment}", flash=flash)


async def delete(request: web.Request, page: Page, form: dict, pages: RoutedPages, flash: str) -> web.Response:
    """The delete button, under If-Match: the list, or the page again with the problem (in use: 409)."""
    entity_id = pages.entity_id(request)
    try:
        await call(request, f"delete_{pages.noun}", path={pages.param: entity_id}, raw=if_match(request, form))
    except Problem as problem:
        return await pages.entity_page(request, page, entity_id, error=form_error(page, problem, pages.labels),
                                       part="delete", status=problem.status)
    return redirect(pages.url, flash=flash)
