"""An attacker guesses MACs of a known OUI while a real phone boots: no secret leaks, the
attacker is banned after a burst, and the phone on another address is served throughout."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from provisioning.guard import GuardSettings, SourceGuard
from simulators.phone import Phone
from simulators.yealink import YealinkProfile

ATTACKER = "127.0.0.2"


async def test_mac_guessing_is_banned_and_leaks_nothing_while_a_phone_boots(example_server, caplog):
    caplog.set_level(logging.WARNING, "deskprov.serve")
    base = f"http://127.0.0.1:{example_server.http_port}"
    statuses: dict[int, int] = {}
    leaked = []

    async def attack():
        connector = aiohttp.TCPConnector(local_addr=(ATTACKER, 0), limit=16)
        async with aiohttp.ClientSession(connector=connector) as http:
            async def guess(i: int):
                mac = f"805ec0{i:06x}"
                ua = f"Yealink SIP-T46S 66.86.0.15 {':'.join(mac[j:j + 2] for j in range(0, 12, 2))}"
                async with http.get(f"{base}/{mac}.cfg", headers={"User-Agent": ua}) as resp:
                    body = await resp.read()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
                    if b"password" in body:
                        leaked.append(mac)
            for start in range(0, 10_000, 500):
                await asyncio.gather(*(guess(i) for i in range(start, start + 500)))

    attack_task = asyncio.create_task(attack())
    await asyncio.sleep(0.2)
    state = await Phone(YealinkProfile(model="T46S", mac="80:5E:C0:AA:BB:01", firmware="66.86.0.15")).boot_http(
        base + "/")
    await attack_task

    assert state.accounts[1].registered, state.errors  # the legitimate phone was served meanwhile
    assert not leaked
    assert sum(statuses.values()) == 10_000
    assert statuses.get(429, 0) >= 9_000, statuses      # banned after the first burst
    assert statuses.get(200, 0) == 0
    assert example_server.provisioner.guard.counters["bans"] == 1
    assert any("banned 127.0.0.2" in r.getMessage() for r in caplog.records)
    # the attacker's guesses never reached the database more than the burst allows
    assert example_server.cache.misses < 200


def test_ban_expires_and_counts_only_bursts():
    now = [0.0]
    guard = SourceGuard(GuardSettings(refusal_burst=5, refusal_window=10, ban_seconds=60), clock=lambda: now[0])
    for _ in range(4):
        guard.refused("10.0.0.9", "unknown MAC")
        now[0] += 3          # 4 refusals spread over 12 s: never 5 within 10 s
    assert guard.admit("10.0.0.9").allowed
    guard.release("10.0.0.9")
    for _ in range(5):
        guard.refused("10.0.0.9", "unknown MAC")
    verdict = guard.admit("10.0.0.9")
    assert (verdict.allowed, verdict.status) == (False, 429) and 0 < verdict.retry_after <= 61
    assert guard.admit("10.0.0.10").allowed  # another source is not affected
    now[0] += 61
    assert guard.admit("10.0.0.9").allowed


def test_concurrency_share_gets_503():
    guard = SourceGuard(GuardSettings(max_concurrent_per_source=2))
    assert guard.admit("a").allowed and guard.admit("a").allowed
    verdict = guard.admit("a")
    assert (verdict.allowed, verdict.status, verdict.retry_after) == (False, 503, 1)
    guard.release("a")
    assert guard.admit("a").allowed


def test_memory_stays_bounded_under_a_scan_from_many_sources():
    now = [0.0]
    guard = SourceGuard(GuardSettings(refusal_window=10), clock=lambda: now[0])
    for i in range(10_000):
        source = f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"
        guard.admit(source)
        guard.release(source)
        guard.refused(source, "unknown MAC")
    now[0] += 11
    guard.sweep()
    assert len(guard) == 0


@pytest.mark.parametrize("peer, header, expected", [
    ("10.0.0.1", "203.0.113.7", "203.0.113.7"),                 # trusted proxy: believe the client hop
    ("10.0.0.1", "198.51.100.1, 203.0.113.7", "203.0.113.7"),   # rightmost untrusted hop wins
    ("10.0.0.1", "203.0.113.7, 10.0.0.2", "203.0.113.7"),       # a second proxy of ours is skipped
    ("192.0.2.50", "203.0.113.7", "192.0.2.50"),                # not a proxy: header ignored
    ("10.0.0.1", "not-an-ip", "10.0.0.1"),
    ("10.0.0.1", None, "10.0.0.1"),
])
def test_forwarded_for_only_from_trusted_proxies(peer, header, expected):
    guard = SourceGuard(GuardSettings(trusted_proxies=("10.0.0.0/24",)))
    assert guard.client_address(peer, header) == expected
