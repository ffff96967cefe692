"""Cost per request must not grow with the fleet: count the SQL statements a phone's fetch issues.

A cached file costs no query at all; a cold render costs the same fixed number of queries in a
10-device, 1-organisation database as in a 500-device, 5-organisation one; phones booting at
once are read together, in about the statements of one; an unknown MAC is looked up once and
then refused from the negative cache.

Statements are counted with SQLAlchemy's ``before_cursor_execute`` on the server's engine
(provisioning.metrics.QueryCounter); the change feed's poll of ``change_event`` runs in the
background every half second and is not part of any request, so it is not counted.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from provisioning.metrics import QueryCounter
from conftest import import_org  # tests/ is on sys.path (rootdir conftest)

pytestmark = pytest.mark.timeout(60)

FIRMWARE = "66.86.0.15"
#: Statements of background jobs, not of requests: ChangeFeed.poll, the fetch audit writer (its
#: insert and its organisation lookup) and the inbox's sighting flush.
BACKGROUND = r"change_event|config_fetch|sighting|SELECT device\.mac, device\.organization_id\s+FROM device"


def mac_of(org: int, phone: int) -> str:
    return f"805ec0{org:02x}{phone:04x}"


def number_of(org: int, user: int) -> str:
    return f"+46{40 + org}{user:07d}"


def org_file(org: int, phones: int) -> str:
    """One organisation: a user per phone plus a few without one, a shared phonebook, and desk
    phones with a line key, a BLF on the next colleague and a speed dial."""
    users = [{"name": f"User {org}-{u}", "number": number_of(org, u), "extension": str(100 + u)}
             for u in range(phones + 5)]
    devices = [{
        "mac": mac_of(org, p), "model": "Yealink T46S", "user": number_of(org, p),
        "keys": [{"slot": 1, "type": "line"},
                 {"slot": 2, "type": "blf", "target": number_of(org, (p + 1) % phones), "label": "Next"},
                 {"slot": 3, "type": "speed_dial", "number": "+46812345678", "label": "Support"}],
    } for p in range(phones)]
    book = {"name": "Kunder", "members": "all",
            "contacts": [{"name": f"Kund {c}", "number": f"+46855{c:06d}"} for c in range(10)]}
    return json.dumps({"organization": {"name": f"Perf {org} AB", "sip_domain": f"perf{org}.example.net"},
                       "users": users, "phonebooks": [book], "phones": devices})  # JSON is YAML


def user_agent(mac: str) -> str:
    return f"Yealink SIP-T46S {FIRMWARE} {':'.join(mac[i:i + 2] for i in range(0, 12, 2))}"


async def fleet_server(make_server, orgs: int, phones_per_org: int):
    server = await make_server()
    for org in range(orgs):
        await import_org(server, org_file(org, phones_per_org))
    return server


async def fetch(server, queries: QueryCounter, path: str, mac: str) -> tuple[int, int]:
    """(HTTP status, SQL statements the request issued)."""
    queries.reset()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{server.http_port}/{path}",
                            headers={"User-Agent": user_agent(mac)}) as response:
            await response.read()
            return response.status, queries.reset()


async def cold_costs(server, macs: list[str]) -> list[tuple[int, int, int, int]]:
    """Per device: (queries of the first file, of its second file, of the first file again, status)."""
    costs = []
    with QueryCounter(server.engine, ignore=BACKGROUND) as queries:
        for mac in macs:
            status, first = await fetch(server, queries, f"{mac}.cfg", mac)
            boot_status, second = await fetch(server, queries, f"{mac}.boot", mac)
            again_status, again = await fetch(server, queries, f"{mac}.cfg", mac)
            assert status == boot_status == again_status == 200, (mac, status, boot_status, again_status)
            costs.append((first, second, again, status))
    return costs


async def test_cold_fetch_costs_a_constant_number_of_queries_and_cached_ones_none(make_server):
    small = await fleet_server(make_server, orgs=1, phones_per_org=10)
    large = await fleet_server(make_server, orgs=5, phones_per_org=100)

    small_costs = await cold_costs(small, [mac_of(0, 0), mac_of(0, 9)])
    large_costs = await cold_costs(large, [mac_of(0, 0), mac_of(2, 50), mac_of(4, 99)])

    cold = {first for first, _, _, _ in small_costs + large_costs}
    assert len(cold) == 1, f"cold fetch query counts differ with the fleet size: small {small_costs}, large {large_costs}"
    per_cold_fetch = cold.pop()
    # device, organisation, lines, users, numbers, keys, the BLF's colleague, phonebook contacts; and
    # (first contact: no credentials) reading and shortening its first-contact window
    assert 0 < per_cold_fetch <= 10, f"a cold render issues {per_cold_fetch} statements"
    # The device's second file renders from the snapshot its first file read; a repeat is cached.
    assert all(second == 0 and again == 0 for _, second, again, _ in small_costs + large_costs), \
        (small_costs, large_costs)


async def test_unknown_mac_is_refused_from_the_negative_cache_after_the_first_lookup(make_server):
    server = await fleet_server(make_server, orgs=1, phones_per_org=3)
    unknown = "805ec0ffff01"
    with QueryCounter(server.engine, ignore=BACKGROUND) as queries:
        first_status, first = await fetch(server, queries, f"{unknown}.cfg", unknown)
        repeats = [await fetch(server, queries, f"{unknown}.cfg", unknown) for _ in range(5)]
    assert first_status == 404 and first >= 1
    assert repeats == [(404, 0)] * 5, repeats


async def test_phones_booting_at_once_are_read_together(make_server):
    """A storm's cold fetches share their reads (provisioning/device_loader.py): 60 phones
    asking at the same moment cost a few reads' statements, not 60 times one phone's, and each
    still gets its own file."""
    phones = 60
    server = await fleet_server(make_server, orgs=1, phones_per_org=phones)
    # Each phone's first anonymous fetch also shortens its own first-contact window (a read of
    # its row by id and an update): writes of one device each, not part of reading.
    first_contact = r"|UPDATE device SET first_contact_until|WHERE device\.id = "
    with QueryCounter(server.engine, ignore=BACKGROUND + first_contact) as queries:
        _, one = await fetch(server, queries, f"{mac_of(0, 0)}.cfg", mac_of(0, 0))
        queries.reset()

        async def boot(p: int) -> tuple[int, str]:
            mac = mac_of(0, p)  # each phone from its own address, as on a LAN (the guard caps one source)
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(f"127.0.1.{p}", 0))) as http, \
                    http.get(f"http://127.0.0.1:{server.http_port}/{mac}.cfg",
                             headers={"User-Agent": user_agent(mac)}) as response:
                return response.status, await response.text()
        answers = await asyncio.gather(*(boot(p) for p in range(1, phones)))
        together = queries.reset()
    assert all(status == 200 for status, _ in answers), [(status, body[:80]) for status, body in answers if status != 200]
    for p, (_, body) in zip(range(1, phones), answers):
        assert number_of(0, p).lstrip("+") in body and f"User 0-{p}" in body, p
    assert 0 < one <= 8 and together <= 4 * one, f"{phones - 1} phones at once issued {together} statements (one: {one})"
    assert server.provisioner.loader.devices_read >= phones
