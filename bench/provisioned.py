"""The fleet as it stands after a power cut: provisioned long ago, credentials on every phone.

Import and bulk load both issue each device its HTTP digest credentials and (import) open a
first-contact window. The storm's phones were provisioned before the power cut, so they already
hold their credentials and their windows closed long ago: this closes every window and gives each
simulated phone the credentials the server holds for it (read back through the SecretBox, as the
server reads them), so every device file the bench fetches is authenticated like a real phone's.
"""

from __future__ import annotations

from sqlalchemy import select, update

from provisioning.db import make_engine
from provisioning.model import Device

from fleet import Fleet


async def hand_out_credentials(db_url: str, secret_box, fleet: Fleet) -> int:
    """Close every first-contact window and set ``FleetPhone.credentials``; how many phones got
    credentials (raises if a fleet phone has none in the database)."""
    engine = make_engine(db_url, secret_box)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(Device.__table__).values(first_contact_until=None))
            rows = (await conn.execute(select(Device.__table__.c.mac, Device.__table__.c.http_username,
                                              Device.__table__.c.http_password))).all()
    finally:
        await engine.dispose()
    held = {mac: (user, password) for mac, user, password in rows if user and password}
    missing = [p.mac for p in fleet.phones if p.mac not in held]
    if missing:
        raise RuntimeError(f"{len(missing)} fleet devices have no HTTP credentials in the database, "
                           f"e.g. {missing[:3]}")
    for p in fleet.phones:
        p.credentials = held[p.mac]
    return len(fleet.phones)
