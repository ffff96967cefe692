"""What the admin pages need beyond ``core.call``: reading every page of a list, and reading a
multipart upload without ever holding more than the API would accept (a file that is too large
becomes a clear inline error, not a dropped connection). If-Match lives in ``api.web.versioned``.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import BodyPartReader, web

from api.web.core import call

#: Text fields of an upload form are short (a name, a version, the CSRF token).
MAX_FIELD_BYTES = 64 * 1024
#: Past this many bytes an oversized upload is not even read to the end: the connection is closed.
DRAIN_FACTOR = 8


async def every(request: web.Request, operation_id: str, *, path: dict | None = None, query: dict | None = None,
                limit: int = 200, most: int = 5000) -> list:
    """All items of a paged API list (up to ``most``), read page by page with its cursor."""
    items: list = []
    cursor = None
    while True:
        page = await call(request, operation_id, path=path,
                          query=(query or {}) | {"limit": limit} | ({"cursor": cursor} if cursor else {}))
        items.extend(page.items)
        cursor = page.next_cursor
        if not cursor or len(items) >= most:
            return items


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes
    size: int
    too_large: bool


class UploadTooLarge(Exception):
    """The request is so much larger than the limit that it was not read to the end."""


async def read_upload_form(request: web.Request, limit: int) -> dict:
    """A form's fields, with each file as an :class:`Upload` holding at most ``limit`` bytes.

    A larger file is read to its end (up to ``DRAIN_FACTOR`` times the limit) and discarded, so the
    browser receives the page with the error instead of a reset connection."""
    if request.content_type != "multipart/form-data":
        return dict(await request.post())
    if request.content_length is not None and request.content_length > limit * DRAIN_FACTOR:
        raise UploadTooLarge()
    form: dict = {}
    total = 0
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue  # a nested multipart: no browser sends one
        kept = bytearray()
        size = 0
        while chunk := await part.read_chunk(65536):
            size += len(chunk)
            total += len(chunk)
            if total > limit * DRAIN_FACTOR:
                raise UploadTooLarge()
            if part.filename is None and size > MAX_FIELD_BYTES:
                raise UploadTooLarge()
            if size <= limit:
                kept.extend(chunk)
        if part.filename is None:
            form[part.name or ""] = bytes(kept).decode(part.get_charset("utf-8"), errors="replace")
        else:
            form[part.name or ""] = Upload(filename=part.filename, content_type=part.headers.get("Content-Type", ""),
                                           data=bytes(kept) if size <= limit else b"", size=size,
                                           too_large=size > limit)
    return form
