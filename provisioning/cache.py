"""The rendered-file cache: render once, serve many.

Entries are keyed by (vendor, MAC or None, file name) and remember which model entities they
were rendered from (``("device", 7)``, ``("user", 3)``, ``("number", "+46...")``...). A committed
change names the entities it touched and exactly the entries that depend on them are dropped.
Negative answers (unknown MAC, unbound device) are cached too, in a bounded LRU, so a MAC
enumeration cannot reach the database once per guess nor grow memory without bound.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from typing import Hashable, Iterable

Dep = tuple[str, Hashable]
CacheKey = tuple[str, str | None, str]


@dataclass(frozen=True)
class RenderedFile:
    body: bytes
    content_type: str
    etag: str

    @classmethod
    def of(cls, body: bytes, content_type: str) -> "RenderedFile":
        return cls(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


#: What a negative entry holds: the reason a request was refused (for the log line).
@dataclass(frozen=True)
class Refusal:
    reason: str
    #: counts towards the requesting source's ban (see provisioning/guard.py)
    suspicious: bool = False


class ConfigCache:
    def __init__(self, max_negative: int = 50_000) -> None:
        #: rendered files and refusals, plus whatever else a renderer keeps per key (snapshots)
        self._entries: dict[CacheKey, object] = {}
        self._negative: OrderedDict[CacheKey, None] = OrderedDict()
        self._by_dep: defaultdict[Dep, set[CacheKey]] = defaultdict(set)
        self._deps_of: dict[CacheKey, frozenset[Dep]] = {}
        self._max_negative = max_negative
        self.hits = 0
        self.misses = 0
        self.invalidations = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey):
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
            if isinstance(entry, Refusal):
                self._negative.move_to_end(key)
        return entry

    def deps(self, key: CacheKey) -> frozenset[Dep]:
        return self._deps_of.get(key, frozenset())

    def put(self, key: CacheKey, entry: object, deps: Iterable[Dep]) -> None:
        self._drop(key)
        deps = frozenset(deps)
        self._entries[key] = entry
        self._deps_of[key] = deps
        for dep in deps:
            self._by_dep[dep].add(key)
        if isinstance(entry, Refusal):
            self._negative[key] = None
            while len(self._negative) > self._max_negative:
                oldest, _ = self._negative.popitem(last=False)
                self._drop(oldest)

    def invalidate(self, deps: Iterable[Dep]) -> int:
        """Drop every entry rendered from any of ``deps``; returns how many were dropped."""
        return len(self.invalidate_keys(deps))

    def invalidate_keys(self, deps: Iterable[Dep]) -> list[CacheKey]:
        """Drop every entry rendered from any of ``deps``; returns their keys (which devices'
        files changed: the resync scheduler notifies those devices)."""
        dropped = []
        for dep in deps:
            for key in list(self._by_dep.get(dep, ())):
                self._drop(key)
                dropped.append(key)
        self.invalidations += len(dropped)
        return dropped

    def clear(self) -> None:
        self.invalidations += len(self._entries)
        self._entries.clear()
        self._negative.clear()
        self._by_dep.clear()
        self._deps_of.clear()

    def _drop(self, key: CacheKey) -> None:
        if self._entries.pop(key, None) is None:
            return
        self._negative.pop(key, None)
        for dep in self._deps_of.pop(key, ()):
            keys = self._by_dep.get(dep)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_dep[dep]
