"""A large database fast: the fleet bulk-inserted with SQLAlchemy Core (no ORM, no per-row flush).

Writes the same rows ``deskprov import`` would (organisations, users with primary numbers,
devices with their lines and keys, a shared phonebook per organisation granted to everyone),
with explicit ids into a freshly migrated database. Devices get their HTTP digest credentials
as the import issues them (the password sealed by the engine's SecretBox), and no first-contact
window: bench/provisioned.py hands the credentials to the simulated phones.
"""

from __future__ import annotations

import time

from sqlalchemy import insert

from provisioning.db import make_engine, upgrade
from provisioning.device_auth import new_credentials
from provisioning.model import (
    Contact, Device, Key, KeyType, Line, Number, NumberRole, Organization, Phonebook, PhonebookMember, User,
)
from provisioning.model.base import utcnow

from fleet import CONTACTS, TFTP_SECRET_NETWORKS, Fleet, contact_number, user_number

CHUNK = 20_000


async def bulk_load(db_url: str, fleet: Fleet, secret_box) -> dict:
    engine = make_engine(db_url, secret_box)
    started = time.perf_counter()
    try:
        await upgrade(engine)
        now = utcnow()
        orgs, users, numbers, devices, lines, keys, books, contacts, members = ([] for _ in range(9))
        user_id: dict[int, int] = {}
        contact_id = 0
        for org in fleet.orgs:
            oid = org.index + 1
            orgs.append({"id": oid, "name": org.name, "sip_domain": org.sip_domain, "timezone": "Europe/Stockholm",
                         "language": "sv", "device_admin_password": "Bench-Adm1n-Secret",
                         "tftp_secret_networks": TFTP_SECRET_NETWORKS, "created_at": now,
                         "updated_at": now})
            for i, u in enumerate(org.users):
                uid = len(users) + 1
                user_id[u] = uid
                name = f"User {u}"
                users.append({"id": uid, "organization_id": oid, "name": name, "extension": str(1000 + i),
                              "search_text": name.casefold(), "keywords": [], "created_at": now, "updated_at": now})
                numbers.append({"id": uid, "e164": user_number(u), "organization_id": oid,
                                "role": NumberRole.primary, "user_id": uid, "created_at": now, "updated_at": now})
                members.append({"phonebook_id": oid, "user_id": uid})
            books.append({"id": oid, "organization_id": oid, "name": "Kunder", "created_at": now, "updated_at": now})
            for j in range(CONTACTS):
                contact_id += 1
                contacts.append({"id": contact_id, "phonebook_id": oid, "name": f"Kund {j:02d} AB",
                                 "number": contact_number(j), "created_at": now, "updated_at": now})
        for p in fleet.phones:
            did = p.index + 1
            http_username, http_password = new_credentials(p.mac)  # as the import issues them
            devices.append({"id": did, "mac": p.mac, "organization_id": p.org + 1, "vendor": p.vendor,
                            "model": p.model.name, "http_username": http_username, "http_password": http_password,
                            "credentials_issued_at": now, "created_at": now, "updated_at": now})
            for i, u in enumerate(p.users):
                password = p.sip_password if i == 0 else f"{p.sip_password}-{i + 1}"
                lines.append({"id": len(lines) + 1, "device_id": did, "index": i + 1, "user_id": user_id[u],
                              "auth_username": p.sip_username if i == 0 else f"{p.sip_username}-{i + 1}",
                              "password": password, "created_at": now, "updated_at": now})
            for k in p.keys:
                keys.append({"id": len(keys) + 1, "device_id": did, "module": 0, "slot": k["slot"],
                             "type": KeyType(k["type"]), "target": k.get("target") or k.get("number"),
                             "label": k.get("label"), "line_index": 1, "created_at": now, "updated_at": now})
        async with engine.begin() as conn:
            for model, rows in ((Organization, orgs), (User, users), (Number, numbers), (Device, devices),
                                (Line, lines), (Key, keys), (Phonebook, books), (Contact, contacts),
                                (PhonebookMember, members)):
                for i in range(0, len(rows), CHUNK):
                    await conn.execute(insert(model.__table__), rows[i:i + CHUNK])
    finally:
        await engine.dispose()
    return {"devices": len(devices), "users": len(users), "organizations": len(orgs), "lines": len(lines),
            "keys": len(keys), "seconds": round(time.perf_counter() - started, 1)}
