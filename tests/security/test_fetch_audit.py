"""The fetch audit trail (issue "Security"): every config request leaves a row in ``config_fetch``
(device, file, source, User-Agent, result, proof), written in batches off the request path,
bounded under a flood, pruned after the retention period, and listed through the admin API with
the same tenant rules as everything else. On SQLite and PostgreSQL where the store matters."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
from sqlalchemy import select

from conftest import import_org, make_settings
from provisioning.accounts import create_superadmin
from provisioning.clock import ManualClock
from provisioning.fetch_audit import FetchAudit
from provisioning.model import ConfigFetch, Device, Organization
from provisioning.serving import FetchRecord
from provisioning.server import Server
from simulators.phone import Phone
from simulators.yealink import YealinkProfile

MAC = "805ec0aabb01"
OTHER_MAC = "805ec0cc0001"
ORG = """
organization: {name: Exempel AB, sip_domain: exempel.sip.example.net}
users:
  - {name: Anna Andersson, number: "+46854689901", extension: "201", admin: true, username: anna,
     password: "Anna-hemligt-1"}
phones:
  - {mac: "80:5E:C0:AA:BB:01", model: Yealink T46S, user: "+46854689901"}
"""
OTHER = """
organization: {name: Annan AB, sip_domain: annan.sip.example.net}
users:
  - {name: Cecilia Carlsson, number: "+46311234501", admin: true, username: cecilia, password: "Cecilia-hemligt-3"}
phones:
  - {mac: "80:5E:C0:CC:00:01", model: Yealink T46S, user: "+46311234501"}
"""


async def rows(server, **where) -> list[ConfigFetch]:
    await server.fetch_audit.flush()
    async with server.sessions() as session:
        query = select(ConfigFetch).order_by(ConfigFetch.id)
        for name, value in where.items():
            query = query.where(getattr(ConfigFetch, name) == value)
        return list((await session.execute(query)).scalars())


async def test_a_boot_over_http_and_tftp_and_a_refusal_leave_the_right_rows(tmp_path, db_url):
    server = Server(make_settings(tmp_path, db_url))
    await server.start()
    try:
        await import_org(server, ORG)
        phone = Phone(YealinkProfile("T46S", MAC, "66.86.0.15"))
        http_state = await phone.boot_http(f"http://127.0.0.1:{server.http_port}/")
        tftp_state = await Phone(YealinkProfile("T46S", MAC, "66.86.0.15")).boot_tftp("127.0.0.1", server.tftp_port)
        assert http_state.accounts[1].registered  # the boot is real: the phone got its account

        # a request for a MAC nobody has: refused, and recorded
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{server.http_port}/001565999999.cfg",
                                headers={"User-Agent": "curl/8.0"}) as resp:
                assert resp.status == 404

        recorded = await rows(server)
        async with server.sessions() as session:
            org_id = (await session.execute(select(Device.organization_id).where(Device.mac == MAC))).scalar_one()
        for transport, state in (("http", http_state), ("tftp", tftp_state)):
            mine = [r for r in recorded if r.transport == transport and "001565999999" not in r.path]
            # one row per request the phone made, same file, same answer
            assert [r.path.rsplit("/", 1)[-1] for r in mine] == [f.url.rsplit("/", 1)[-1] for f in state.fetched]
            assert [r.status == 200 for r in mine] == [f.ok for f in state.fetched]
            assert all(r.source == "127.0.0.1" for r in mine)
            device_rows = [r for r in mine if r.mac == MAC]
            assert device_rows and all(r.organization_id == org_id for r in device_rows)
            assert any(r.status == 200 and r.path.endswith(f"{MAC}.cfg") for r in device_rows)
            if transport == "http":
                assert all(r.user_agent == http_state.user_agent for r in mine)
            else:
                assert all(r.user_agent is None for r in mine)
        refused = next(r for r in recorded if r.path == "/001565999999.cfg")
        assert (refused.status, refused.mac, refused.organization_id, refused.user_agent) == \
            (404, "001565999999", None, "curl/8.0")
        assert refused.reason and refused.auth == "none"
    finally:
        await server.stop()


async def test_hostile_text_is_stored_escaped_and_does_not_break_the_batch(tmp_path, db_url):
    """PostgreSQL refuses NUL in text: one such User-Agent must not lose the batch it is in."""
    server = Server(make_settings(tmp_path, db_url))
    await server.start()
    try:
        server.fetch_audit.record(FetchRecord("x\x00.cfg", "tftp", "127.0.0.1", "evil\x00\x1b[31m\udcff", None,
                                              404, "illegal path", "none"))
        server.fetch_audit.record(FetchRecord("ok.cfg", "http", "127.0.0.1", "fine", None, 404, "no", "none"))
        stored = await rows(server)
        assert [r.path for r in stored] == ["x\\x00.cfg", "ok.cfg"]
        assert stored[0].user_agent == "evil\\x00\\x1b[31m\\udcff"
    finally:
        await server.stop()


async def test_a_source_fetching_one_file_over_and_over_is_summarised(make_server):
    """A phone in a reboot loop (or a load test, or stolen credentials used to hammer) fetches
    the same file many times a minute: its first fetches are rows, the rest one summary row with
    the count, still naming the file and the device; other files and sources keep their rows."""
    server = await make_server()
    audit = server.fetch_audit
    mac = "805ec0aabb01"
    for _ in range(40):
        audit.record(FetchRecord(f"{mac}.cfg", "http", "10.0.0.7", "Yealink", mac, 200, "", "digest"))
    audit.record(FetchRecord(f"{mac}.boot", "http", "10.0.0.7", "Yealink", mac, 200, "", "digest"))
    audit.record(FetchRecord(f"{mac}.cfg", "http", "10.0.0.8", "Yealink", mac, 200, "", "digest"))
    await audit.flush(end_window=True)
    written = await rows(server)
    summary = [r for r in written if r.reason]
    assert len(written) == audit._repeats_per_file + 2 + 1, [(r.path, r.source, r.reason) for r in written]
    assert len(summary) == 1 and summary[0].path == f"{mac}.cfg" and summary[0].mac == mac
    assert summary[0].reason.startswith(f"{40 - audit._repeats_per_file} more fetches of this file")
    assert summary[0].source == "10.0.0.7" and summary[0].status == 200


async def test_an_enumeration_flood_is_summarised_not_written_row_by_row(make_server, caplog):
    """A scan of unknown MACs from one source: the first refusals are rows, the rest one summary row
    per window with the count; memory stays bounded and what is dropped is counted and logged."""
    server = await make_server(guard_refusal_burst=100_000)  # let every guess through to the audit
    await import_org(server, ORG)
    await server.fetch_audit.flush()
    guesses = 150
    async with aiohttp.ClientSession() as http:
        for i in range(guesses):
            async with http.get(f"http://127.0.0.1:{server.http_port}/001565{i:06x}.cfg") as resp:
                assert resp.status == 404
    audit = server.fetch_audit
    assert len(audit._summaries) == 1  # one source, one status: one summary pending, not 380 rows
    await audit.flush(end_window=True)  # the window (a minute) ends
    written = await rows(server)
    individual = [r for r in written if r.path != "*"]
    summary = [r for r in written if r.path == "*"]
    assert len(individual) == audit._refusals_per_source
    assert len(summary) == 1 and int(summary[0].reason.split()[0]) == guesses - len(individual)
    assert all(r.source == "127.0.0.1" and r.status == 404 for r in summary)

    # the bound: with no room left, records are dropped, counted, and the next flush says so
    small = FetchAudit(server.sessions, max_pending=10, max_sources=2, refusals_per_source=1)
    for i in range(50):
        small.record(FetchRecord(f"{i}.cfg", "http", "10.0.0.1", None, MAC, 200, "", "none"))
    for source in ("10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"):
        for _ in range(3):
            small.record(FetchRecord("x.cfg", "http", source, None, None, 404, "unknown", "none"))
    assert small.pending <= 10 + 2
    # 40 served without room; the first refusal of .2 and .3 (no room for the row; their 2 more are
    # summarised); all 3 of .4 and .5 (no room to count a third and fourth source)
    assert small.counters["dropped"] == 40 + 2 + 2 * 3
    assert small.counters["summarised"] == 2 * 2
    with caplog.at_level(logging.WARNING, logger="deskprov.fetch_audit"):
        assert await small.flush() <= 12
    assert "not recorded" in caplog.text
    from provisioning.metrics import snapshot
    assert snapshot(server)["fetch_audit"]["summarised"] == guesses - audit._refusals_per_source


async def test_rows_older_than_the_retention_period_are_deleted(tmp_path, db_url):
    clock = ManualClock(datetime(2027, 3, 1, 8, 0, tzinfo=timezone.utc))
    server = Server(make_settings(tmp_path, db_url, fetch_audit_retention_days=90), clock=clock)
    await server.start()
    try:
        audit = server.fetch_audit
        audit.record(FetchRecord("old.cfg", "http", "127.0.0.1", None, MAC, 404, "unknown", "none"))
        await audit.flush()
        clock.advance(days=60)
        audit.record(FetchRecord("newer.cfg", "http", "127.0.0.1", None, MAC, 404, "unknown", "none"))
        await audit.flush()
        assert await audit.prune() == 0
        clock.advance(days=31)
        assert await audit.prune() == 1
        assert [r.path for r in await rows(server)] == ["newer.cfg"]
    finally:
        await server.stop()


# -- the admin API ---------------------------------------------------------------------------------

async def _login(server, login: str, password: str, realm: str = "user") -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(f"http://127.0.0.1:{server.api_port}/api/v1/auth/login",
                         json={"login": login, "password": password, "realm": realm}) as resp:
        assert resp.status == 200, await resp.text()
    return http


async def _get(http, server, path):
    async with http.get(f"http://127.0.0.1:{server.api_port}/api/v1{path}") as resp:
        return resp.status, await resp.json()


async def test_the_trail_is_listed_per_tenant(tmp_path, db_url):
    from api.app import make_admin_app

    server = Server(make_settings(tmp_path, db_url), admin_app=make_admin_app)
    await server.start()
    clients = []
    try:
        await import_org(server, ORG)
        await import_org(server, OTHER)
        async with server.sessions() as session:
            await create_superadmin(session, "staff", "Staff-hemligt-4", server.clock.now())
            await session.commit()
        async with aiohttp.ClientSession() as http:
            for mac in (MAC, OTHER_MAC, "001565777777"):
                async with http.get(f"http://127.0.0.1:{server.http_port}/{mac}.cfg",
                                    headers={"User-Agent": f"Yealink SIP-T46S 66.86.0.15 {mac}"}) as resp:
                    await resp.read()
        await server.fetch_audit.flush()
        anna = await _login(server, "anna", "Anna-hemligt-1")
        cecilia = await _login(server, "cecilia", "Cecilia-hemligt-3")
        staff = await _login(server, "staff", "Staff-hemligt-4", realm="staff")
        clients = [anna, cecilia, staff]

        status, page = await _get(anna, server, "/config-fetches")
        assert status == 200 and {i["mac"] for i in page["items"]} == {"80:5E:C0:AA:BB:01"}
        status, page = await _get(cecilia, server, "/config-fetches")
        assert status == 200 and {i["mac"] for i in page["items"]} == {"80:5E:C0:CC:00:01"}
        status, page = await _get(staff, server, "/config-fetches")
        assert {i["mac"] for i in page["items"]} == {"80:5E:C0:AA:BB:01", "80:5E:C0:CC:00:01", "00:15:65:77:77:77"}
        status, page = await _get(staff, server, "/config-fetches?mac=00-15-65-77-77-77")
        assert [i["status"] for i in page["items"]] == [404] and page["items"][0]["organization_id"] is None

        # cross-tenant: another organisation's trail and devices are 404, a MAC filter finds nothing
        async with server.sessions() as session:
            other_org = (await session.execute(select(Organization.id).where(Organization.name == "Annan AB"))).scalar()
            other_dev = (await session.execute(select(Device.id).where(Device.mac == OTHER_MAC))).scalar()
            own_dev = (await session.execute(select(Device.id).where(Device.mac == MAC))).scalar()
        status, problem = await _get(anna, server, f"/config-fetches?organization_id={other_org}")
        assert status == 404 and problem["status"] == 404
        status, _ = await _get(anna, server, f"/devices/{other_dev}/fetches")
        assert status == 404
        status, page = await _get(anna, server, "/config-fetches?mac=80:5E:C0:CC:00:01")
        assert status == 200 and page["items"] == []
        status, page = await _get(anna, server, f"/devices/{own_dev}/fetches")
        assert status == 200 and [i["path"] for i in page["items"]] == [f"/{MAC}.cfg"]
        item = page["items"][0]
        assert item["user_agent"].startswith("Yealink") and item["source"] == "127.0.0.1"
        assert item["transport"] == "http" and item["auth"]
        status, problem = await _get(anna, server, "/config-fetches?mac=not-a-mac")
        assert status == 422 and problem["errors"][0]["loc"] == ["query", "mac"]

        # newest first, paged with a cursor
        for i in range(3):
            server.fetch_audit.record(FetchRecord(f"{MAC}-{i}.cfg", "http", "127.0.0.1", None, MAC, 404, "x", "none"))
        await server.fetch_audit.flush()
        status, first = await _get(anna, server, "/config-fetches?limit=2")
        assert [i["path"] for i in first["items"]] == [f"{MAC}-2.cfg", f"{MAC}-1.cfg"]
        status, second = await _get(anna, server, f"/config-fetches?limit=2&cursor={first['next_cursor']}")
        assert [i["path"] for i in second["items"]] == [f"{MAC}-0.cfg", f"/{MAC}.cfg"]
        status, refused = await _get(anna, server, "/config-fetches?refused=true")
        assert all(i["status"] != 200 for i in refused["items"]) and len(refused["items"]) >= 3
    finally:
        for http in clients:
            await http.close()
        await server.stop()
