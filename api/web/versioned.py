"""Optimistic locking for the admin forms: a form carries the version it was rendered from and
the write goes to the API with that version as ``If-Match``, so an edit made in between by
someone else is refused (412) and shown, never silently overwritten."""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from api.framework import etag_of


class IfMatch:
    """The page request as an API handler sees it, with the form's version as If-Match."""

    def __init__(self, request: web.Request, version: int | None) -> None:
        self._request = request
        headers = CIMultiDict(request.headers)
        headers.pop("If-Match", None)
        if version is not None:
            headers["If-Match"] = etag_of(version)
        self.headers = CIMultiDictProxy(headers)

    def __getattr__(self, name: str):
        return getattr(self._request, name)


def form_version(form: dict, field: str = "version") -> int | None:
    """The version a form was rendered from; None (no check) when it is missing or not a number."""
    raw = str(form.get(field, "")).strip()
    return int(raw) if raw.isdigit() and len(raw) <= 12 else None


def if_match(request: web.Request, form: dict, field: str = "version") -> IfMatch:
    return IfMatch(request, form_version(form, field))
