"""Two deskprov nodes on one PostgreSQL database: a key changed through node A is served by
node B within a second (B learns it from the change log, which A writes in the same transaction)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from conftest import import_org

EXAMPLE = (Path(__file__).parent.parent / "data" / "exempel.yaml").read_text()
UA = {"User-Agent": "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01"}


async def fetch(server) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{server.http_port}/805ec0aabb01.cfg", headers=UA) as resp:
            assert resp.status == 200
            return await resp.text()


async def test_a_change_on_node_a_is_served_by_node_b_within_a_second(make_server, postgres_url):
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
