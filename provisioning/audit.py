"""Writing the audit log: who changed what, when, with the before and after representations.

Callers pass what the API shows of an entity (never its secrets); ``scrub`` drops any key that
names a secret anyway, so a future field cannot leak a password into the log by accident.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from provisioning.model import AuditEntry

SECRET_KEYS = frozenset({
    "password", "password_hash", "new_password", "current_password", "token", "token_hash", "secret",
    "device_admin_password", "code", "code_hash", "sip_password",
})


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a user, a super admin, the system (deactivation) or the CLI."""

    kind: str
    id: int | None
    name: str
    organization_id: int | None = None


SYSTEM = Actor("system", None, "deskprov")
CLI = Actor("cli", None, "deskprov command line")


def scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in SECRET_KEYS}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


def _dump(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(scrub(value), ensure_ascii=False, sort_keys=True, default=str)


def record(session: AsyncSession, actor: Actor, *, now: datetime, action: str, entity: str,
           entity_id: Any = None, organization_id: int | None = None,
           before: Any = None, after: Any = None) -> AuditEntry:
    entry = AuditEntry(
        at=now, actor_kind=actor.kind, actor_id=actor.id, actor_name=actor.name[:200],
        organization_id=organization_id, action=action, entity=entity,
        entity_id=None if entity_id is None else str(entity_id)[:64],
        before=_dump(before), after=_dump(after),
    )
    session.add(entry)
    return entry
