"""The inbox's batched writes: a MAC seen again is updated in place (count, address, what it
told), on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from provisioning.changes import tracked_sessionmaker
from provisioning.db import make_engine, upgrade
from provisioning.discovery.inbox import Inbox
from provisioning.discovery.sighting import Sighting as Seen
from provisioning.model import Sighting
from conftest import TEST_BOX  # tests/ is on sys.path (rootdir conftest)


async def test_a_mac_seen_again_is_updated_not_duplicated(db_url):
    engine = make_engine(db_url, TEST_BOX)
    try:
        await upgrade(engine)
        sessions = tracked_sessionmaker(engine, [])
        inbox = Inbox(sessions)
        inbox.saw(Seen(mac="805ec0aabb01", ip="127.0.0.5", how="http", vendor="yealink", model="T46S", firmware=None), "Yealink SIP-T46S 66.86.0.15")
        inbox.saw(Seen(mac="000413aabb02", ip="127.0.0.6", how="pnp", vendor="snom", model=None, firmware=None, port=5062))
        assert await inbox.flush() == 2
        inbox.saw(Seen(mac="805ec0aabb01", ip="127.0.0.9", how="tftp", vendor=None, model=None, firmware=None))
        inbox.saw(Seen(mac="0004f2aabb03", ip="127.0.0.7", how="http", vendor=None, model=None, firmware=None))
        assert await inbox.flush() == 2
        async with sessions() as session:
            rows = {r.mac: r for r in (await session.execute(select(Sighting))).scalars()}
        assert set(rows) == {"805ec0aabb01", "000413aabb02", "0004f2aabb03"}
        again = rows["805ec0aabb01"]
        assert (again.times_seen, again.ip, again.how, again.model, again.user_agent) == \
            (2, "127.0.0.9", "tftp", "T46S", "Yealink SIP-T46S 66.86.0.15")
        assert again.first_seen_at <= again.last_seen_at
        assert rows["000413aabb02"].sip_port == 5062 and rows["000413aabb02"].times_seen == 1
    finally:
        await engine.dispose()
