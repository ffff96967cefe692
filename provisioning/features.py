"""Feature groups (seed 004, "Förklaring av grupper", MISSION A8) and the typed flags they set.

Tenants know these as group memberships with Swedish names, in one of two families: the
``EX-`` groups, or on older tenants the legacy ``.`` groups. deskprov stores one set of typed
per-user flags; both families are read (YAML import) and the flags are written back as the EX
family (export, API). Which group sets which flag:

| group | flag(s) |
|---|---|
| EX-Arbetstid | ``show_mobile_outside_hours`` |
| EX-Ej lämna meddelande i röstbrevlåda | ``voicemail = false`` |
| EX-Hänvisning påverkar även mobilnummer | ``diversion_affects_mobile`` |
| EX-Samtal väntar på fastnätsnummer | ``call_waiting_fixed`` |
| EX-Samtal väntar på mobilnummer | ``call_waiting_mobile`` |
| EX-Val för telefonist i röstbrevlåda | ``voicemail_operator_option`` |
| EX-Vidarekoppling påverkar även mobilnummer | ``forwarding_affects_mobile`` |
| .Med RBL, .Hänvisning med RBL | ``voicemail = true`` (the default) |
| .Utan RBL, .Hänvisning utan RBL | ``voicemail = false`` |
| .Samtalväntar med RBL | ``call_waiting_fixed``, ``voicemail = true`` |
"""

from __future__ import annotations

import unicodedata
from typing import Iterable

#: Every typed flag and its default (a user in no group: voicemail on, everything else off).
FLAGS: dict[str, bool] = {
    "voicemail": True,
    "voicemail_operator_option": False,
    "call_waiting_fixed": False,
    "call_waiting_mobile": False,
    "diversion_affects_mobile": False,
    "forwarding_affects_mobile": False,
    "show_mobile_outside_hours": False,
}

#: group name -> the flag values membership sets
GROUPS: dict[str, dict[str, bool]] = {
    "EX-Arbetstid": {"show_mobile_outside_hours": True},
    "EX-Ej lämna meddelande i röstbrevlåda": {"voicemail": False},
    "EX-Hänvisning påverkar även mobilnummer": {"diversion_affects_mobile": True},
    "EX-Samtal väntar på fastnätsnummer": {"call_waiting_fixed": True},
    "EX-Samtal väntar på mobilnummer": {"call_waiting_mobile": True},
    "EX-Val för telefonist i röstbrevlåda": {"voicemail_operator_option": True},
    "EX-Vidarekoppling påverkar även mobilnummer": {"forwarding_affects_mobile": True},
    ".Hänvisning med RBL": {"voicemail": True},
    ".Med RBL": {"voicemail": True},
    ".Hänvisning utan RBL": {"voicemail": False},
    ".Utan RBL": {"voicemail": False},
    ".Samtalväntar med RBL": {"call_waiting_fixed": True, "voicemail": True},
}

#: flag -> the EX group that expresses its non-default value
EX_GROUP_OF = {
    "show_mobile_outside_hours": "EX-Arbetstid",
    "voicemail": "EX-Ej lämna meddelande i röstbrevlåda",
    "diversion_affects_mobile": "EX-Hänvisning påverkar även mobilnummer",
    "call_waiting_fixed": "EX-Samtal väntar på fastnätsnummer",
    "call_waiting_mobile": "EX-Samtal väntar på mobilnummer",
    "voicemail_operator_option": "EX-Val för telefonist i röstbrevlåda",
    "forwarding_affects_mobile": "EX-Vidarekoppling påverkar även mobilnummer",
}


def _key(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


_BY_KEY = {_key(name): name for name in GROUPS}


def canonical_group(name: str) -> str:
    """The group's canonical spelling (case and spacing forgiven); ValueError if unknown."""
    found = _BY_KEY.get(_key(name))
    if found is None:
        raise ValueError(f"unknown feature group {name!r} (known: {', '.join(GROUPS)})")
    return found


def flags_from_groups(groups: Iterable[str]) -> dict[str, bool]:
    """The flags a set of group memberships gives; a conflict (".Med RBL" and ".Utan RBL") is an error."""
    flags = dict(FLAGS)
    set_by: dict[str, str] = {}
    for group in groups:
        name = canonical_group(group)
        for flag, value in GROUPS[name].items():
            if flag in set_by and flags[flag] != value:
                raise ValueError(f"feature groups {set_by[flag]!r} and {name!r} contradict each other ({flag})")
            flags[flag] = value
            set_by[flag] = name
    return flags


def groups_from_flags(flags: dict[str, bool]) -> list[str]:
    """The EX groups that express ``flags`` (defaults need no group)."""
    return [EX_GROUP_OF[flag] for flag, default in FLAGS.items() if flags.get(flag, default) != default]
