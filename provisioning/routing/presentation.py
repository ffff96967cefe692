"""Caller presentation (MISSION C1): what a member's phone shows, and how a callback finds the caller.

A call that reaches a member through an answer group is shown as the caller's
number followed by the group id: ``+46854689914`` calling group ``0001`` shows
``08546899140001`` (seed 000).  The number part is written the way Swedish
phones show numbers, so that dialling it back works:

* a Swedish number (``+46``) in national form, trunk prefix ``0`` first:
  ``+46854689914`` -> ``0854689914``;
* any other country in international form with the ``00`` prefix:
  ``+49301234567`` -> ``0049301234567``;
* anything that is not E.164 (an extension, ``anonymous``) unchanged; a hidden
  caller (``None``/``anonymous``) gets no group suffix either, since there is
  nothing to call back.

Calling back from "recent calls" dials that string.  :func:`callback_number`
turns it back into E.164: when it ends with a group id of the organisation and
what is left is a valid number, the suffix is dropped.  The rule must guess for
countries with variable-length numbers (Germany: both ``0049301234567`` and
``00493012345670001`` are valid), so it strips the suffix only when the whole
string is *not* a valid number or the rest is a Swedish number.  The engine
therefore first looks the string up in its own record of what it presented
(:class:`PresentationLog`), which is exact, and uses the rule only for strings
it never issued (older calls, another node).
"""

from __future__ import annotations

from collections.abc import Iterable

import phonenumbers

__all__ = [
    "PresentationLog",
    "callback_number",
    "dialled_to_e164",
    "national",
    "present",
]

_HIDDEN = frozenset({"", "anonymous", "unknown", "hidden", "restricted"})


def _parse(e164: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(e164, region)
    except phonenumbers.NumberParseException:
        return None


def national(number: str, region: str = "SE") -> str:
    """A number the way a phone in ``region`` shows and dials it (see the module docstring)."""
    if not number.startswith("+"):
        return number
    parsed = _parse(number, region)
    if parsed is None:
        return number
    digits = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]
    if phonenumbers.region_code_for_number(parsed) == region or (
        parsed.country_code == phonenumbers.country_code_for_region(region)
    ):
        return "0" + digits[len(str(parsed.country_code)) :]
    return "00" + digits


def present(caller: str | None, group_id: str | None = None, region: str = "SE") -> str | None:
    """The caller id a callee sees: national form, plus the group id for group calls; ``None`` if hidden."""
    if caller is None or caller.strip().lower() in _HIDDEN:
        return None
    shown = national(caller, region)
    return shown + group_id if group_id else shown


def dialled_to_e164(digits: str, region: str = "SE") -> str | None:
    """``0812345678`` / ``0046812345678`` / ``+46812345678`` -> ``+46812345678``; ``None`` if not a valid number.

    A national number needs its area code (a trunk ``0`` first): ``12345678`` is
    not a number on its own (seed 000: "include the area code").
    """
    text = digits.strip().replace(" ", "").replace("-", "")
    if text.startswith("00"):
        text = "+" + text[2:]
    elif not text.startswith(("+", "0")):
        return None
    parsed = _parse(text, region)
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def callback_number(dialled: str, group_ids: Iterable[str], region: str = "SE") -> str | None:
    """The E.164 number a callback of ``dialled`` reaches, group id suffix removed (rule in the module docstring)."""
    whole = dialled_to_e164(dialled, region)
    for group_id in sorted({g for g in group_ids if g}, key=len, reverse=True):
        if not dialled.endswith(group_id) or len(dialled) <= len(group_id):
            continue
        rest = dialled_to_e164(dialled[: -len(group_id)], region)
        if rest is None:
            continue
        swedish = rest.startswith("+" + str(phonenumbers.country_code_for_region(region)))
        if whole is None or swedish:
            return rest
    return whole


class PresentationLog:
    """What the service presented, so that a callback of exactly that string reaches exactly that caller."""

    def __init__(self) -> None:
        self._issued: dict[str, str] = {}

    def issued(self, presented: str | None, caller: str) -> None:
        if presented is not None and caller.startswith("+"):
            self._issued[presented] = caller

    def resolve(self, dialled: str, group_ids: Iterable[str], region: str = "SE") -> str | None:
        if dialled in self._issued:
            return self._issued[dialled]
        return callback_number(dialled, group_ids, region)
