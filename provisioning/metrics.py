"""Measurement hooks for benchmarks and tests: SQL statement counts and a snapshot of counters.

Nothing here changes what the server does. ``QueryCounter`` listens to an engine's
``before_cursor_execute`` event while attached; ``snapshot`` reads counters the server keeps
anyway (cache, guard, TFTP sessions) plus the process's RSS and CPU time from /proc.
"""

from __future__ import annotations

import gc
import os
import re
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

#: Where each kind of statement names its (first) table.
_TABLE = {verb: re.compile(pattern, re.IGNORECASE) for verb, pattern in {
    "SELECT": r'\bFROM\s+"?(\w+)', "INSERT": r'\bINTO\s+"?(\w+)', "UPDATE": r'^\s*UPDATE\s+"?(\w+)',
    "DELETE": r'\bFROM\s+"?(\w+)'}.items()}
_NO_TABLE = re.compile(r"(?!)")


class QueryCounter:
    """Counts SQL statements sent to the database through one engine (every connection).

    ``with QueryCounter(server.engine) as queries: ...; queries.count``; ``reset()`` returns the
    count so far and starts again. ``statements`` keeps the last ``keep`` statements' text.
    """

    def __init__(self, engine: AsyncEngine | Engine, keep: int = 200, ignore: str | None = None) -> None:
        self._engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
        #: statements matching this regex are not counted (e.g. a background poller's table)
        self._ignore = re.compile(ignore) if ignore else None
        self.count = 0
        self.statements: deque[str] = deque(maxlen=keep)
        self._attached = False

    def _on_execute(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self._ignore is not None and self._ignore.search(statement):
            return
        self.count += 1
        self.statements.append(statement)

    def attach(self) -> "QueryCounter":
        if not self._attached:
            event.listen(self._engine, "before_cursor_execute", self._on_execute)
            self._attached = True
        return self

    def detach(self) -> None:
        if self._attached:
            event.remove(self._engine, "before_cursor_execute", self._on_execute)
            self._attached = False

    def reset(self) -> int:
        count, self.count = self.count, 0
        self.statements.clear()
        return count

    def summary(self) -> dict[str, int]:
        """The kept statements by verb and table: ``{"SELECT device": 1, "SELECT line": 1, ...}``."""
        kinds: Counter[str] = Counter()
        for text in self.statements:
            verb = text.split(None, 1)[0].upper() if text.strip() else "?"
            m = _TABLE.get(verb, _NO_TABLE).search(text)
            kinds[f"{verb} {m.group(1)}" if m else verb] += 1
        return dict(kinds)

    def __enter__(self) -> "QueryCounter":
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.detach()


class GcPauses:
    """Time spent in the cyclic garbage collector, per generation (``gc.callbacks``).

    A full (generation 2) collection walks every tracked object: with a large cache it is a
    stop-the-world pause of the event loop, which this makes visible.
    """

    def __init__(self) -> None:
        self._started = 0.0
        self.reset()

    def reset(self) -> None:
        self.collections = [0, 0, 0]
        self.total_ms = [0.0, 0.0, 0.0]
        self.max_ms = [0.0, 0.0, 0.0]

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        ms = (time.perf_counter() - self._started) * 1000
        gen = info.get("generation", 0)
        self.collections[gen] += 1
        self.total_ms[gen] += ms
        self.max_ms[gen] = max(self.max_ms[gen], ms)

    def install(self) -> "GcPauses":
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)
        return self

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def as_dict(self) -> dict[str, Any]:
        # (not len(gc.get_objects()): on a big heap that call is itself a pause of tens of ms)
        return {"collections": list(self.collections), "total_ms": [round(x, 1) for x in self.total_ms],
                "max_ms": [round(x, 1) for x in self.max_ms]}


def process_usage(pid: int | str = "self") -> dict[str, float]:
    """RSS, peak RSS (MB) and CPU seconds (user + system) of a process, from /proc."""
    rss = hwm = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return {"rss_mb": rss, "peak_rss_mb": hwm, "cpu_seconds": cpu}


def snapshot(server: Any, queries: QueryCounter | None = None) -> dict[str, Any]:
    """Counters of a running ``provisioning.server.Server``; missing parts are left out."""
    out: dict[str, Any] = {"process": process_usage()}
    cache = getattr(server, "cache", None)
    if cache is not None:
        out["cache"] = {"entries": len(cache), "hits": cache.hits, "misses": cache.misses,
                        "invalidations": cache.invalidations,
                        "negative": len(getattr(cache, "_negative", ())),
                        "bytes": getattr(cache, "bytes", 0), "evictions": getattr(cache, "evictions", 0)}
    guard = getattr(getattr(server, "provisioner", None), "guard", None)
    if guard is not None:
        out["guard"] = {"sources": len(guard), **dict(guard.counters)}
    fetch_audit = getattr(server, "fetch_audit", None)
    if fetch_audit is not None:
        out["fetch_audit"] = {"pending": fetch_audit.pending, **dict(fetch_audit.counters)}
    lanes = getattr(server, "lanes", None)
    if lanes:
        out["fast_lane"] = {"answered": sum(lane.answered for lane in lanes),
                            "handed_over": sum(lane.handed_over for lane in lanes),
                            "open": sum(len(lane.connections) for lane in lanes)}
    provisioner = getattr(server, "provisioner", None)
    if provisioner is not None:
        out["device_reads"] = {"reads": provisioner.loader.reads, "devices": provisioner.loader.devices_read}
    tftp = getattr(server, "tftp", None)
    if tftp is not None:
        out["tftp"] = {"active_sessions": tftp.active_sessions, "restarts": tftp.restarts}
    if queries is not None:
        out["sql_statements"] = queries.count
    return out
