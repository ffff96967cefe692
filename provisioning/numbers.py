"""Telephone number parsing with ``phonenumbers``: whatever people type, stored as E.164."""

from __future__ import annotations

import phonenumbers


class NumberError(ValueError):
    """Not a valid telephone number."""


def to_e164(text: str, region: str = "SE") -> str:
    """``08-546 899 14``, ``+46 8 546 899 14``, ``0046854689914`` -> ``+46854689914``."""
    raw = str(text).strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise NumberError(f"not a telephone number: {text!r}") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise NumberError(f"not a possible telephone number: {text!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
