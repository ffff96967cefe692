"""SIP password rotation: a line gets a new random password, and its phone is made to fetch it.

Why rotation is a model change and nothing more: ``Line.password`` is an encrypted column, so the
new value is sealed on write; the commit records the line's device and user in the change log,
which drops exactly that phone's rendered files here and on every other node, and the resync
scheduler (provisioning/sync.py) sends the phone its vendor's check-sync NOTIFY. The phone's next
fetch renders the new password. The SIP username stays, so the registrar's account keeps its name.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from provisioning.model import Line

#: 18 random bytes: 24 URL-safe characters, the same strength as passwords made at binding.
PASSWORD_BYTES = 18


def new_sip_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def rotate(lines: list[Line], now: datetime) -> list[Line]:
    """Give every line a new password (the caller commits); returns the lines, index order."""
    for line in lines:
        old = line.password
        new = new_sip_password()
        while new == old:  # pragma: no cover - 144 random bits
            new = new_sip_password()
        line.password = new
        line.updated_at = now
    return sorted(lines, key=lambda l: (l.device_id, l.index))
