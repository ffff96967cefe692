"""The fetch audit trail: every config request is written to ``config_fetch``, off the request path.

After an incident the operator must be able to answer "who fetched this phone's config, from
where, with which proof, and what did they get?". ``Provisioner.fetch_observers`` hands every
request (refusals included) to :meth:`FetchAudit.record`, which only appends to memory; a
background task writes the pending rows in one batch per ``interval``.

Why the buffer is shaped like this: a MAC scan sends thousands of refusals a second, and the
audit must neither turn that into a write per guess nor grow without limit.

* Requests that were served, or that name a device, are kept row by row (up to the bound),
  except that a source fetching the same file again and again (a phone in a reboot loop, a
  load test, stolen credentials used to hammer) has only its first ``repeats_per_file`` fetches
  of that file per ``window`` kept row by row (one by default); the rest become one summary row with the count
  (path and MAC kept), as refusals do. A real boot fetches each file once.
* Refusals are kept row by row only for the first ``refusals_per_source`` of each source per
  ``window`` (a minute); the rest of that source's refusals are counted and written as **one
  summary row** per (source, status) when the window ends (``path`` "*", reason "N more refusals
  ...; last: ..."). A scan costs a source at most a few rows a minute, and nothing disappears
  silently: the flood is in the trail as a count.
* Everything pending is bounded (``max_pending`` rows, ``max_sources`` summarised sources); what
  does not fit is dropped, counted in ``counters["dropped"]`` and named in a warning log line.

Rows older than ``retention_days`` are deleted once an hour (0 keeps them forever).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Callable

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from provisioning.model import ConfigFetch, Device
from provisioning.serving import FetchRecord

log = logging.getLogger("deskprov.fetch_audit")

#: Rows waiting for the next flush, at most (a fleet's boot storm fits; a flood does not).
MAX_PENDING = 20_000
#: Refusals of one source kept row by row per window; the rest become a summary row.
REFUSALS_PER_SOURCE = 20
#: The window (seconds) the per-source allowance and the summary rows cover.
WINDOW = 60.0
#: Sources whose extra refusals are summarised per window, at most.
MAX_SOURCES = 5_000
#: Fetches of one file by one source kept row by row per window; the rest become a summary row
#: (a boot fetches each file once; wrk replaying 6,824 files made 34,000 rows a minute at 5).
REPEATS_PER_FILE = 1
#: Rows per INSERT: SQLAlchemy prepares a statement's parameters on the event loop, so one
#: statement of 20,000 rows stalled serving for hundreds of milliseconds; between chunks the
#: loop serves.
INSERT_CHUNK = 500
#: How often old rows are deleted (seconds).
PRUNE_EVERY = 3600.0
#: Rows deleted per statement when pruning (keeps each transaction short).
PRUNE_BATCH = 10_000


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _printable(text: str, limit: int) -> str:
    """Hostile paths and User-Agents may carry NUL, control bytes or lone surrogates: PostgreSQL
    refuses NUL in text (one such request would fail the whole batch), and a log reader's
    terminal should not interpret them. They are stored escaped."""
    text = text[:limit]
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
                   for c in text)[:limit]


class FetchAudit:
    """Buffers fetch records and writes them in batches; see the module docstring."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, now: Callable[[], datetime] = _utcnow,
                 retention_days: int = 90, interval: float = 1.0, max_pending: int = MAX_PENDING,
                 refusals_per_source: int = REFUSALS_PER_SOURCE, max_sources: int = MAX_SOURCES,
                 window: float = WINDOW, prune: bool = True, repeats_per_file: int = REPEATS_PER_FILE) -> None:
        self._sessions = sessions
        self._now = now
        self.retention_days = retention_days
        self._interval = interval
        self._max_pending = max_pending
        self._refusals_per_source = refusals_per_source
        self._repeats_per_file = repeats_per_file
        self._max_sources = max_sources
        self._prune = prune and retention_days > 0
        self._window = window
        self._window_start = time.monotonic()
        self._rows: list[dict] = []
        #: refusals per source in this window (row by row ones included)
        self._refusals: Counter[str] = Counter()
        #: served fetches per (source, MAC, path) in this window
        self._repeats: Counter[tuple[str, str | None, str]] = Counter()
        #: (source, status, MAC, path) -> [count beyond the allowance, first at, last reason, transport];
        #: refusals are summarised per source and status (MAC None, path "*")
        self._summaries: dict[tuple[str, int, str | None, str], list] = {}
        self._dropped_since_log = 0
        self._last_prune = 0.0
        self._task: asyncio.Task | None = None
        #: recorded (row by row), summarised (folded into a summary row), dropped (no room), written,
        #: pruned, flush_errors: for logs, metrics and tests
        self.counters: Counter[str] = Counter()

    # -- recording (on the request path: cheap, never blocks, never raises) --------------------
    def record(self, fetch: FetchRecord) -> None:
        if time.monotonic() - self._window_start >= self._window:
            self._end_window()
        if fetch.status != 200:
            source = fetch.source
            if source not in self._refusals and len(self._refusals) >= self._max_sources:
                self._summarise(fetch)  # too many sources this window: no room to count them one by one
                return
            self._refusals[source] += 1
            if self._refusals[source] > self._refusals_per_source:
                self._summarise(fetch)
                return
        else:
            file = (fetch.source, fetch.mac, fetch.path)
            repeats = self._repeats[file] = self._repeats[file] + 1
            if repeats > self._repeats_per_file:
                self._summarise(fetch)
                return
        if len(self._rows) >= self._max_pending:
            self._drop()
            return
        self.counters["recorded"] += 1
        self._rows.append({
            "at": self._now(), "mac": fetch.mac, "path": _printable(fetch.path, 255),
            "transport": fetch.transport[:8], "source": _printable(fetch.source, 45),
            "user_agent": _printable(fetch.user_agent, 512) if fetch.user_agent else None,
            "status": fetch.status, "reason": _printable(fetch.reason, 200), "auth": fetch.auth[:16],
        })

    def _summarise(self, fetch: FetchRecord) -> None:
        served = fetch.status == 200
        key = (fetch.source, fetch.status, fetch.mac if served else None, fetch.path if served else "*")
        summary = self._summaries.get(key)
        if summary is None:
            if len(self._summaries) >= self._max_sources:
                self._drop()
                return
            summary = self._summaries[key] = [0, self._now(), "", fetch.transport, None]
        summary[0] += 1
        said = fetch.auth if served else fetch.reason
        if said != summary[4]:  # the last one's words (made printable only when they change)
            summary[2], summary[4] = f"authenticated by {said}" if served else _printable(said, 120), said
        self.counters["summarised"] += 1

    def _drop(self) -> None:
        self.counters["dropped"] += 1
        self._dropped_since_log += 1

    @property
    def pending(self) -> int:
        return len(self._rows) + len(self._summaries)

    def _end_window(self) -> None:
        """Turn the window's summaries into rows (they are written on the next flush) and start anew."""
        for (source, status, mac, path), (count, at, reason, transport, _) in self._summaries.items():
            what = "fetches of this file" if status == 200 else "refusals"
            self._rows.append({
                "at": at, "mac": mac, "path": _printable(path, 255), "transport": transport,
                "source": _printable(source, 45), "user_agent": None, "status": status, "auth": "none",
                "reason": f"{count} more {what} from this source summarised; last: {reason}"[:200],
            })
        self._summaries = {}
        self._refusals = Counter()
        self._repeats = Counter()
        self._window_start = time.monotonic()

    # -- writing ---------------------------------------------------------------------------------
    async def flush(self, *, end_window: bool = False) -> int:
        """Write what is pending (one SELECT for the devices' organisations, one INSERT); returns
        how many rows were written. Summaries are written once their window has ended (or with
        ``end_window``, as on stop)."""
        if end_window or time.monotonic() - self._window_start >= self._window:
            self._end_window()
        if self._dropped_since_log:
            log.warning("fetch audit: %d requests not recorded (more than %d pending, or more than %d "
                        "flooding sources in one window); %d dropped since start", self._dropped_since_log,
                        self._max_pending, self._max_sources, self.counters["dropped"])
            self._dropped_since_log = 0
        rows, self._rows = self._rows, []
        if not rows:
            return 0
        macs = {r["mac"] for r in rows if r["mac"]}
        try:
            # Read, then write in a transaction whose first statement writes (on SQLite, one that
            # read first fails at once if another connection committed in between).
            async with self._sessions() as session:
                orgs = dict((await session.execute(
                    select(Device.mac, Device.organization_id).where(Device.mac.in_(macs)))).all()) if macs else {}
            for row in rows:
                row["organization_id"] = orgs.get(row["mac"]) if row["mac"] else None
            async with self._sessions() as session:
                for start in range(0, len(rows), INSERT_CHUNK):
                    await session.execute(insert(ConfigFetch), rows[start:start + INSERT_CHUNK])
                await session.commit()
        except Exception:
            self.counters["flush_errors"] += 1
            self.counters["dropped"] += len(rows)
            raise
        self.counters["written"] += len(rows)
        return len(rows)

    async def prune(self) -> int:
        """Delete rows older than the retention period; returns how many."""
        if self.retention_days <= 0:
            return 0
        cutoff = self._now() - timedelta(days=self.retention_days)
        total = 0
        async with self._sessions() as session:
            while True:
                ids = select(ConfigFetch.id).where(ConfigFetch.at < cutoff).limit(PRUNE_BATCH).scalar_subquery()
                deleted = (await session.execute(
                    delete(ConfigFetch).where(ConfigFetch.id.in_(ids)).execution_options(
                        synchronize_session=False))).rowcount or 0
                await session.commit()
                total += deleted
                if deleted < PRUNE_BATCH:
                    break
        if total:
            log.info("fetch audit: deleted %d rows older than %d days", total, self.retention_days)
        self.counters["pruned"] += total
        return total

    # -- background task -------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="fetch-audit")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await self.flush(end_window=True)
        except Exception:
            log.warning("fetch audit: could not write the last records", exc_info=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
                if self._prune and time.monotonic() - self._last_prune >= PRUNE_EVERY:
                    self._last_prune = time.monotonic()
                    await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be briefly away: what was pending is counted as dropped
                log.warning("fetch audit: writing failed", exc_info=True)
