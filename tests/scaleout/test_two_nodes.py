"""Two deskprov nodes on one PostgreSQL database: a key changed through node A is served by
node B within a second. B learns it from the change log, which A writes in the same transaction,
and is woken at once by PostgreSQL LISTEN/NOTIFY (its 0.5 s poll is only the fallback)."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import aiohttp
import asyncpg

from conftest import PG_ADMIN_DSN, import_org

EXAMPLE = (Path(__file__).parent.parent / "data" / "exempel.yaml").read_text()
UA = {"User-Agent": "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01"}


async def fetch(server) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{server.http_port}/805ec0aabb01.cfg", headers=UA) as resp:
            assert resp.status == 200
            return await resp.text()


async def propagation_seconds(node_a, node_b, label: str) -> float:
    """Commit a new key label through A; seconds until B's cache has dropped the old file."""
    key = ("yealink", "805ec0aabb01", "805ec0aabb01.cfg")
    for _ in range(20):  # a first fetch may itself commit (the device's credentials) and drop it
        await fetch(node_b)
        if node_b.cache.get(key) is not None:
            break
        await asyncio.sleep(0.05)
    assert node_b.cache.get(key) is not None
    await import_org(node_a, EXAMPLE.replace("label: Bertil", f"label: {label}"))
    committed = time.monotonic()
    while node_b.cache.get(key) is not None:
        assert time.monotonic() - committed < 1.0, "node B still had the old file cached after 1 s"
        await asyncio.sleep(0.002)
    return time.monotonic() - committed


async def test_a_change_on_node_a_is_served_by_node_b_within_a_second(postgres_url, make_server):
    node_a = await make_server(db=postgres_url)
    node_b = await make_server(db=postgres_url)
    await import_org(node_a, EXAMPLE)
    assert "linekey.2.label = Bertil" in await fetch(node_b)  # B has it cached now
    assert "linekey.2.label = Bertil" in await fetch(node_b)

    await import_org(node_a, EXAMPLE.replace("label: Bertil", "label: Bertil Berg"))
    changed_at = time.monotonic()  # committed
    while "linekey.2.label = Bertil Berg" not in await fetch(node_b):
        assert time.monotonic() - changed_at < 1.0, "node B still served the old key after 1 s"
        await asyncio.sleep(0.05)
    assert "linekey.2.label = Bertil Berg" in await fetch(node_a)


async def test_notify_wakes_the_other_node_in_tens_of_milliseconds(postgres_url, make_server):
    node_a = await make_server(db=postgres_url)
    node_b = await make_server(db=postgres_url)
    assert node_b.feed.notifications is not None and node_b.feed.notifications.listening.is_set()
    node_b.feed.interval = 30.0  # no help from polling: only the notification can wake B in time
    await asyncio.sleep(0.6)  # B's current poll wait (0.5 s) runs out; the next one is 30 s
    await import_org(node_a, EXAMPLE)
    seconds = []
    for i in range(5):
        await fetch(node_b)
        seconds.append(await propagation_seconds(node_a, node_b, f"Bertil {i}"))
    assert "linekey.2.label = Bertil 4" in await fetch(node_b)
    print("propagation seconds:", [round(s, 4) for s in seconds])
    assert statistics.median(seconds) < 0.2, seconds  # typically 5-30 ms on loopback


async def test_the_listener_reconnects_when_postgresql_drops_it(postgres_url, make_server):
    node_a = await make_server(db=postgres_url)
    node_b = await make_server(db=postgres_url)
    listener = node_b.feed.notifications
    pid = listener.server_pid
    assert pid is not None
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:  # what a PostgreSQL restart does to the connection
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    deadline = time.monotonic() + 10
    while listener.server_pid in (None, pid) or not listener.listening.is_set():
        assert time.monotonic() < deadline, "LISTEN was not re-established"
        await asyncio.sleep(0.05)
    assert listener.connects == 2
    node_b.feed.interval = 30.0
    await asyncio.sleep(0.6)
    await import_org(node_a, EXAMPLE)
    await fetch(node_b)
    assert await propagation_seconds(node_a, node_b, "Bertil Berg") < 1.0
