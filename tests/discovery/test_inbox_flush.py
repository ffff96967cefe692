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


async def test_a_device_seen_again_unchanged_is_written_at_most_once_a_refresh(db_url, monkeypatch):
    """A fleet fetching all day must not rewrite every device's row every flush: the same
    sighting again is written at most every REFRESH_SECONDS; anything new in it at once."""
    from provisioning.discovery import inbox as inbox_module

    engine = make_engine(db_url, TEST_BOX)
    try:
        await upgrade(engine)
        sessions = tracked_sessionmaker(engine, [])
        inbox = Inbox(sessions)
        seen = Seen(mac="805ec0aabb01", ip="127.0.0.5", how="http", vendor="yealink", model="T46S", firmware=None)
        inbox.saw(seen, "Yealink SIP-T46S 66.86.0.15")
        assert await inbox.flush() == 1
        inbox.saw(seen, "Yealink SIP-T46S 66.86.0.15")                      # the same, at once
        assert await inbox.flush() == 0
        inbox.saw(Seen(mac="805ec0aabb01", ip="127.0.0.9", how="http", vendor="yealink", model="T46S",
                       firmware=None), "Yealink SIP-T46S 66.86.0.15")        # moved: written at once
        assert await inbox.flush() == 1
        monkeypatch.setattr(inbox_module, "REFRESH_SECONDS", 0.0)           # a refresh later
        inbox.saw(Seen(mac="805ec0aabb01", ip="127.0.0.9", how="http", vendor="yealink", model="T46S",
                       firmware=None), "Yealink SIP-T46S 66.86.0.15")
        assert await inbox.flush() == 1
        async with sessions() as session:
            row = (await session.execute(select(Sighting))).scalar_one()
        assert (row.times_seen, row.ip) == (3, "127.0.0.9")
    finally:
        await engine.dispose()
