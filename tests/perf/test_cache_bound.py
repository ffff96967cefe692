"""The config cache stays within its byte budget, evicts the least recently used first, and its
dependency bookkeeping follows evictions (an evicted entry leaves no trace a change could trip on)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from conftest import import_org
from provisioning.cache import ConfigCache, Refusal, RenderedFile, estimate_size

EXAMPLE = (Path(__file__).parent.parent / "data" / "exempel.yaml").read_text()
UA = {"User-Agent": "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01"}


def _file(i: int, size: int = 1000) -> RenderedFile:
    return RenderedFile.of(f"{i:08d}".encode() * (size // 8), "text/plain")


def _check_bookkeeping(cache: ConfigCache) -> None:
    """Every recorded dependency points at a live entry and back; bytes add up."""
    keys = set(cache._entries)
    assert set(cache._deps_of) == keys == set(cache._cost)
    assert set(cache._negative) <= keys
    for dep, dependents in cache._by_dep.items():
        assert dependents, dep
        for key in dependents:
            assert dep in cache._deps_of[key]
    for key, deps in cache._deps_of.items():
        for dep in deps:
            assert key in cache._by_dep[dep]
    assert cache.bytes == sum(cache._cost.values()) <= cache.max_bytes


def test_the_byte_budget_holds_and_the_least_recently_used_go_first():
    cache = ConfigCache(max_bytes=200_000)
    for i in range(1000):
        cache.put(("yealink", f"m{i}", "f.cfg"), _file(i), {("device", i), ("org", 1)})
        if i >= 10:
            assert cache.get(("yealink", "m0", "f.cfg")) is not None  # kept warm by use
    _check_bookkeeping(cache)
    assert 100 < len(cache) < 200 and cache.evictions == 1000 - len(cache)
    assert cache.get(("yealink", "m1", "f.cfg")) is None  # cold, evicted early
    assert cache.get(("yealink", "m999", "f.cfg")) is not None
    # the org-wide dependency names only what is still cached
    assert cache.dependents(("org", 1)) == set(cache._entries)
    assert cache.invalidate({("device", 1)}) == 0
    cached = len(cache)
    assert cache.invalidate({("org", 1)}) == cached
    _check_bookkeeping(cache)
    assert len(cache) == 0 and cache.bytes == 0


def test_random_puts_gets_and_invalidations_keep_the_books_straight():
    rng = random.Random(9)
    cache = ConfigCache(max_bytes=60_000, max_negative=20)
    for step in range(5000):
        i = rng.randrange(300)
        roll = rng.random()
        key = ("yealink", f"m{i}", rng.choice(["a.cfg", "b.cfg", "snapshot"]))
        if roll < 0.5:
            entry = Refusal("unknown MAC") if rng.random() < 0.2 else _file(i, rng.randrange(100, 3000))
            cache.put(key, entry, {("device", i), ("user", i % 17), ("org", i % 3)})
        elif roll < 0.9:
            cache.get(key)
        else:
            cache.invalidate({("user", rng.randrange(17))})
        if step % 250 == 0:
            _check_bookkeeping(cache)
    _check_bookkeeping(cache)
    assert len(cache._negative) <= 20


def test_an_entry_bigger_than_the_budget_is_not_kept():
    cache = ConfigCache(max_bytes=5_000)
    cache.put(("yealink", "m", "big.cfg"), _file(1, 10_000), {("device", 1)})
    assert len(cache) == 0 and cache.bytes == 0 and not cache.dependents(("device", 1))


def test_snapshots_are_counted_by_what_they_hold():
    small = {"lines": [("anna", "+46854689901")]}
    big = {"lines": [(f"user{i}", f"+4685468{i:04d}") for i in range(200)]}
    assert estimate_size(big) > 20 * estimate_size(small)


async def test_a_server_with_a_tiny_cache_serves_correctly_and_stays_within_it(make_server):
    server = await make_server(cache_max_bytes=9_000)
    await import_org(server, EXAMPLE)
    base = f"http://127.0.0.1:{server.http_port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(3):  # device file, then common files: each evicts the others
            for path in ("/805ec0aabb01.cfg", "/y000000000066.cfg", "/805ec0aabb01.cfg"):
                async with http.get(base + path, headers=UA) as resp:
                    assert resp.status == 200, path
        assert server.cache.bytes <= 9_000 and server.cache.evictions > 0
        _check_bookkeeping(server.cache)
        # a change still reaches the device's file after all the evicting
        await import_org(server, EXAMPLE.replace("label: Bertil", "label: Bertil Berg"))
        async with http.get(base + "/805ec0aabb01.cfg", headers=UA) as resp:
            assert "linekey.2.label = Bertil Berg" in await resp.text()
    _check_bookkeeping(server.cache)


@dataclass(frozen=True)
class Line:  # stands for a snapshot's tree of small objects (module level: it is pickled)
    index: int
    name: str
    number: str


def test_big_renderer_state_is_kept_compressed_and_comes_back_equal():


    snapshot = tuple(Line(i, f"Användare {i}", f"+4685468{i:04d}") for i in range(100))
    cache = ConfigCache()
    cache.put(("yealink", "m", "\x00snapshot"), snapshot, {("device", 1)})
    assert cache.get(("yealink", "m", "\x00snapshot")) == snapshot
    assert cache.bytes < estimate_size(snapshot) / 3


def test_an_entry_read_before_a_change_to_what_it_depends_on_is_not_kept(monkeypatch):
    """A render that began before a change and finishes after it (a slow read during a storm)
    is served but not kept: otherwise the old bytes would stay until the next change."""
    cache = ConfigCache()
    since = cache.epoch
    cache.invalidate({("user", 1)})                       # the change lands during the read
    cache.put(("v", "m1", "a.cfg"), _file(1), {("device", 1), ("user", 1)}, since=since)
    assert cache.get(("v", "m1", "a.cfg")) is None
    cache.put(("v", "m2", "b.cfg"), _file(2), {("device", 2), ("user", 2)}, since=since)  # unrelated
    assert cache.get(("v", "m2", "b.cfg")) is not None
    cache.put(("v", "m1", "a.cfg"), _file(1), {("device", 1), ("user", 1)}, since=cache.epoch)  # read afresh
    assert cache.get(("v", "m1", "a.cfg")) is not None
    # Past its memory of changes the cache cannot tell: a read from before then is not kept.
    monkeypatch.setattr("provisioning.cache.MAX_CHANGED_DEPS", 3)
    old = cache.epoch
    cache.invalidate({("user", n) for n in range(10, 15)})
    cache.put(("v", "m3", "c.cfg"), _file(3), {("device", 3)}, since=old)
    assert cache.get(("v", "m3", "c.cfg")) is None
    cache.clear()
    cache.put(("v", "m3", "c.cfg"), _file(3), {("device", 3)}, since=old)
    assert cache.get(("v", "m3", "c.cfg")) is None
    _check_bookkeeping(cache)
