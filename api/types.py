"""Field types shared by the API schemas: bounded, clean text and bounded ids and times.

Every string the API stores is length-bounded (the column sizes) and free of NUL, control
characters and lone surrogates, which databases refuse; every integer and time is bounded so
no input can overflow a column. A bad value is a 422 naming the field, never a 500.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StringConstraints

from provisioning.numbers import NumberError, to_e164

MAX_ID = 2**31 - 1
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f]")


def _clean(multiline: bool):
    pattern = _CONTROL if multiline else _CONTROL_LINE

    def check(value: str) -> str:
        if pattern.search(value):
            raise ValueError("control characters are not allowed")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("not valid Unicode text") from None
        return value
    return check


def Text(max_length: int, min_length: int = 0, pattern: str | None = None, multiline: bool = False):
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length,
                                            pattern=pattern),
                     AfterValidator(_clean(multiline))]


Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Name = Text(200, 1)
Email = Text(320, 3, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
Password = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_clean(False))]


def _e164(value: str) -> str:
    try:
        return to_e164(value)
    except NumberError as exc:
        raise ValueError(str(exc)) from None


#: A telephone number in any common spelling ("08-546 899 14", "+46 8 546 899 14"), stored E.164.
PhoneNumber = Annotated[str, Field(min_length=1, max_length=32, examples=["+46854689901"]),
                        AfterValidator(_clean(False)), AfterValidator(_e164)]


def _bounded_time(value: datetime) -> datetime:
    if not 2000 <= value.year <= 2199:
        raise ValueError("times must lie between the years 2000 and 2199")
    return value.astimezone(timezone.utc)


def _bounded_date(value: date) -> date:
    if not 2000 <= value.year <= 2199:
        raise ValueError("dates must lie between the years 2000 and 2199")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_bounded_time)]
Day = Annotated[date, AfterValidator(_bounded_date)]


def _not_bool(value):
    if isinstance(value, bool):
        raise ValueError("a number is needed, not true/false")
    return value


StrictInt = Annotated[int, BeforeValidator(_not_bool)]


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes (they are UTC): every time the API shows carries its zone."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


#: A time in a response: always RFC 3339 with an offset.
Timestamp = Annotated[datetime, AfterValidator(_utc)]
