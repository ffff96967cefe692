"""The rendered-file cache: render once, serve many, within a byte budget.

Entries are keyed by (vendor, MAC or None, file name) and remember which model entities they
were rendered from (``("device", 7)``, ``("user", 3)``, ``("number", "+46...")``...). A committed
change names the entities it touched and exactly the entries that depend on them are dropped.

Memory is bounded two ways: all entries together stay within ``max_bytes`` (an estimate of what
each one holds), the least recently used going first (an evicted file is simply rendered again on
its next request; device snapshots are kept pickled and compressed); and negative answers (unknown MAC, unbound device) are at most
``max_negative``, so a MAC enumeration cannot reach the database once per guess nor crowd out
real files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import sys
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Hashable, Iterable

Dep = tuple[str, Hashable]
CacheKey = tuple[str, str | None, str]

#: Default byte budget: a fleet's files and snapshots (10-40 KB per device) for a few thousand
#: devices at once; phones that boot rarely are re-rendered when they do.
DEFAULT_MAX_BYTES = 128 * 1024 * 1024
#: What an entry costs besides its payload: the key, the dict and LRU slots, the dependency sets.
ENTRY_OVERHEAD = 400
#: Renderer state (device snapshots) at least this big when pickled is kept compressed: a few
#: hundred bytes of zlib instead of a tree of small objects, which costs several times the
#: memory and makes every full garbage collection walk it (pauses of hundreds of ms at 10k
#: devices). Unpacking it again (on a miss of one of the device's other files) takes ~0.1 ms.
PACK_MIN_BYTES = 1024
#: Invalidated dependencies remembered for ``put(since=...)``; past this they are forgotten at
#: once and a read that began before is simply not kept (rendered again on its next request).
MAX_CHANGED_DEPS = 100_000


@dataclass(frozen=True)
class _Packed:
    blob: bytes


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


def estimate_size(obj: object, _seen: set[int] | None = None) -> int:
    """Bytes an entry keeps alive, roughly: a walk of containers and dataclasses (snapshots are
    trees of small dataclasses). Shared objects are counted once per entry; interned constants
    and classes are not counted at all."""
    if isinstance(obj, RenderedFile):
        return sys.getsizeof(obj.body) + len(obj.etag) + 100
    seen = _seen if _seen is not None else set()
    if id(obj) in seen or obj is None or isinstance(obj, (bool, type)):
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, (str, bytes, int, float)):
        return size
    if isinstance(obj, dict):
        return size + sum(estimate_size(k, seen) + estimate_size(v, seen) for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return size + sum(estimate_size(v, seen) for v in obj)
    if dataclasses.is_dataclass(obj):
        return size + sum(estimate_size(getattr(obj, f.name), seen) for f in dataclasses.fields(obj))
    inner = getattr(obj, "__dict__", None)
    return size + (estimate_size(inner, seen) if inner is not None else 0)


def _pack(entry: object) -> tuple[object, int]:
    """(what to keep, its estimated size): big renderer state compressed, the rest as it is."""
    if isinstance(entry, (RenderedFile, Refusal, str)):
        return entry, estimate_size(entry)
    try:
        pickled = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # not picklable: kept live
        return entry, estimate_size(entry)
    if len(pickled) < PACK_MIN_BYTES:
        return entry, estimate_size(entry)
    packed = _Packed(zlib.compress(pickled, 1))
    return packed, sys.getsizeof(packed.blob) + 64


class ConfigCache:
    def __init__(self, max_negative: int = 50_000, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        #: rendered files and refusals, plus whatever else a renderer keeps per key (snapshots);
        #: in use order, least recently used first
        self._entries: OrderedDict[CacheKey, object] = OrderedDict()
        self._negative: OrderedDict[CacheKey, None] = OrderedDict()
        self._by_dep: dict[Dep, set[CacheKey]] = {}
        self._deps_of: dict[CacheKey, frozenset[Dep]] = {}
        self._cost: dict[CacheKey, int] = {}
        self._max_negative = max_negative
        self.max_bytes = max_bytes
        #: estimated bytes held by all entries
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.invalidations = 0
        self.evictions = 0
        #: counts invalidations: a reader notes it before reading the database (``epoch``) and
        #: passes it to ``put`` as ``since``; an entry whose dependencies changed while it was
        #: being read is then served but not kept
        self.epoch = 0
        self._changed_at: dict[Dep, int] = {}
        #: epochs at or before this one are forgotten (``_changed_at`` is bounded)
        self._forgotten = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey):
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        if type(entry) is _Packed:
            return pickle.loads(zlib.decompress(entry.blob))
        return entry

    def deps(self, key: CacheKey) -> frozenset[Dep]:
        return self._deps_of.get(key, frozenset())

    def put(self, key: CacheKey, entry: object, deps: Iterable[Dep], since: int | None = None) -> None:
        """Keep ``entry``; with ``since`` (the ``epoch`` before its data was read) only if none of
        ``deps`` was invalidated since: a render racing a change must not outlive the change."""
        deps = frozenset(deps)
        if since is not None and since < self.epoch and self._changed_since(deps, since):
            self._drop(key)
            return
        self._drop(key)
        entry, size = _pack(entry)
        cost = ENTRY_OVERHEAD + 64 * len(deps) + size
        if cost > self.max_bytes:
            return  # larger than the whole budget: served, but not kept
        self._entries[key] = entry
        self._deps_of[key] = deps
        self._cost[key] = cost
        self.bytes += cost
        for dep in deps:
            keys = self._by_dep.get(dep)
            if keys is None:
                self._by_dep[dep] = {key}
            else:
                keys.add(key)
        if isinstance(entry, Refusal):
            self._negative[key] = None
            while len(self._negative) > self._max_negative:
                oldest, _ = self._negative.popitem(last=False)
                self._drop(oldest)
                self.evictions += 1
        while self.bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)
            self.evictions += 1

    def invalidate(self, deps: Iterable[Dep]) -> int:
        """Drop every entry rendered from any of ``deps``; returns how many were dropped."""
        return len(self.invalidate_keys(deps))

    def invalidate_keys(self, deps: Iterable[Dep]) -> list[CacheKey]:
        """Drop every entry rendered from any of ``deps``; returns their keys (which devices'
        files changed: the resync scheduler notifies those devices)."""
        dropped = []
        self.epoch += 1
        for dep in deps:
            self._changed_at[dep] = self.epoch
            for key in list(self._by_dep.get(dep, ())):
                self._drop(key)
                dropped.append(key)
        self.invalidations += len(dropped)
        if len(self._changed_at) > MAX_CHANGED_DEPS:
            self._forget_changes()
        return dropped

    def _changed_since(self, deps: frozenset[Dep], since: int) -> bool:
        if since < self._forgotten:
            return True  # too old to tell: assume it changed
        return any(self._changed_at.get(dep, 0) > since for dep in deps)

    def _forget_changes(self) -> None:
        self._changed_at.clear()
        self._forgotten = self.epoch

    def clear(self) -> None:
        self.epoch += 1
        self._forget_changes()
        self.invalidations += len(self._entries)
        self._entries.clear()
        self._negative.clear()
        self._by_dep.clear()
        self._deps_of.clear()
        self._cost.clear()
        self.bytes = 0

    def dependents(self, dep: Dep) -> frozenset[CacheKey]:
        """The keys currently recorded as rendered from ``dep`` (for checks and diagnostics)."""
        return frozenset(self._by_dep.get(dep, ()))

    def _drop(self, key: CacheKey) -> None:
        if self._entries.pop(key, None) is None:
            return
        self.bytes -= self._cost.pop(key)
        self._negative.pop(key, None)
        for dep in self._deps_of.pop(key, ()):
            keys = self._by_dep.get(dep)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_dep[dep]
