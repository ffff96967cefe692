"""Pagination: ``limit`` with an opaque ``cursor`` (keyset, stable under inserts) or ``offset``."""

from __future__ import annotations

import base64
from typing import Generic, TypeVar

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import Select

from api.problems import field_problem
from api.types import Text

MAX_LIMIT = 200
T = TypeVar("T")


class PageQuery(BaseModel):
    limit: int = Field(50, ge=1, le=MAX_LIMIT, description=f"items per page (at most {MAX_LIMIT})")
    cursor: Text(64) | None = Field(None, description="next_cursor of the previous page")
    offset: int | None = Field(None, ge=0, le=1_000_000, description="skip this many items (instead of cursor)")

    @model_validator(mode="after")
    def _one_way(self):
        if self.cursor and self.offset is not None:
            raise ValueError("give cursor or offset, not both")
        return self


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="pass as cursor for the next page; null on the last")


def _decode(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)).decode()
        kind, value = text.split(":", 1)
        number = int(value)
        if kind != "id" or not 0 <= number < 2**31:
            raise ValueError
        return number
    except (ValueError, UnicodeDecodeError):
        raise field_problem(["query", "cursor"], "not a cursor this API gave out") from None


def _encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


async def paginate(db, stmt: Select, id_column, query: PageQuery,
                   newest_first: bool = False) -> tuple[list, str | None]:
    """Rows of ``stmt`` (ordered by id) for the page ``query`` asks for, and the next cursor."""
    stmt = stmt.order_by(id_column.desc() if newest_first else id_column)
    if query.cursor:
        after = _decode(query.cursor)
        stmt = stmt.where(id_column < after if newest_first else id_column > after)
    elif query.offset:
        stmt = stmt.offset(query.offset)
    rows = list((await db.execute(stmt.limit(query.limit + 1))).scalars().unique())
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return rows, (_encode(rows[-1].id) if more and rows else None)
