"""The installation outbox (U7): "send SMS" / "send mail" to a user with an enrolment code.

Messages are recorded in the database (``outbox_message``) and handed to a pluggable
``Outbox``; the default ``FileOutbox`` writes each message as a JSON file under the data
directory and logs it, which is what a test or a deployment without an SMS gateway needs.
A real gateway is one class with an async ``deliver``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

log = logging.getLogger("deskprov.outbox")

#: Crockford-like alphabet without look-alikes: codes are typed by hand on a phone.
_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


@dataclass(frozen=True)
class OutboundMessage:
    id: int
    channel: str          # sms | email
    recipient: str        # E.164 or e-mail address
    subject: str
    body: str
    created_at: datetime


class Outbox(Protocol):
    async def deliver(self, message: OutboundMessage) -> None:
        """Send (or queue) the message; raise to mark it failed."""


class FileOutbox:
    """Writes every message to ``<directory>/<id>-<channel>.json`` (atomically) and logs it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def deliver(self, message: OutboundMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        data = json.dumps(asdict(message), ensure_ascii=False, default=str, indent=2).encode()
        fd, tmp = tempfile.mkstemp(prefix=".msg-", dir=self.directory)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, self.directory / f"{message.id:08d}-{message.channel}.json")
        log.info("outbox: %s to %s: %s", message.channel, message.recipient, message.subject or message.body[:60])


def new_enrolment_code() -> str:
    """``XXXX-XXXX-XXXX``: 60 random bits, easy to type."""
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def compose(channel: str, user_name: str, organization: str, link: str, code: str) -> tuple[str, str]:
    """(subject, body) of an installation message, in Swedish like the service's users."""
    if channel == "sms":
        return "", (f"Hej {user_name}! Installera mobilappen för {organization}: {link} "
                    f"eller ange koden {code} i appen. Koden gäller i 7 dagar.")
    return (f"Installera softphone för {organization}",
            f"Hej {user_name}!\n\nInstallera din softphone för {organization} via länken nedan:\n\n{link}\n\n"
            f"Eller ange koden {code} i programmet. Koden gäller i 7 dagar.\n")
