"""``deskprov serve`` plus a read-only stats listener, for the benchmark.

Runs ``provisioning.server.Server`` exactly as ``deskprov serve`` does (same settings from the
``DESKPROV_*`` environment and the same flags, the same admin app), and also answers
``GET http://127.0.0.1:<stats-port>/stats`` with ``provisioning.metrics.snapshot``: cache and
guard counters, TFTP sessions, SQL statements issued (not counting the change feed's
background poll), RSS and CPU, plus the event loop's lag
(how late a 10 ms timer fires: a long synchronous step, such as rendering or invalidating many
files at once, shows here as blocked serving) and the garbage collector's pauses. ``?reset=1`` starts the SQL and lag counters again.

The stats listener is a separate aiohttp app on its own port: the phone-facing app, its
handlers and its settings are untouched. ``bootstorm.py --plain-serve`` runs the real CLI. With
``--workers N`` it runs ``deskprov serve --workers N``'s supervisor, each worker with its own stats
port (``--stats-port p0,p1,...``); ``common.ServerProcess`` adds their figures up.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import logging
import sys
import time
from collections import Counter
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from provisioning import event_loop  # noqa: E402
from provisioning.metrics import GcPauses, QueryCounter, snapshot  # noqa: E402
from provisioning.server import Server, run_until_signalled  # noqa: E402
from provisioning.settings import load_settings  # noqa: E402


class LoopLag:
    """How late a periodic timer fires: the longest stall of the event loop since the last reset."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.reset()

    def reset(self) -> None:
        self.max_ms = 0.0
        self.over_20ms = 0
        self.over_100ms = 0
        self.samples = 0

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.interval)
            lag = (time.perf_counter() - started - self.interval) * 1000
            self.samples += 1
            self.max_ms = max(self.max_ms, lag)
            self.over_20ms += lag > 20
            self.over_100ms += lag > 100

    def as_dict(self) -> dict:
        return {"max_ms": round(self.max_ms, 2), "over_20ms": self.over_20ms, "over_100ms": self.over_100ms,
                "samples": self.samples}


async def serve(settings, stats_port: int, log_level: str, phone_only: bool = False) -> None:
    """One server process with its stats listener (the whole server, or a phone-only worker)."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    admin_app = None if phone_only else importlib.import_module("api.app").make_admin_app
    server = Server(settings, admin_app=admin_app, phone_only=phone_only)
    # The change feed's poll of change_event (every 0.5 s) is background work, not a request's.
    queries = QueryCounter(server.engine, keep=500, ignore="change_event").attach()
    lag = LoopLag()
    gc_pauses = GcPauses().install()
    runner: web.AppRunner | None = None

    async def stats(request: web.Request) -> web.Response:
        body = snapshot(server, queries) | {"loop_lag": lag.as_dict(), "gc": gc_pauses.as_dict(),
                                            "sql_kinds": queries.summary()}
        if request.query.get("types"):  # diagnostics (a pause itself): the most numerous object types
            objects = gc.get_objects()
            body["tracked_objects"] = len(objects)
            body["object_types"] = dict(Counter(type(o).__qualname__ for o in objects).most_common(
                int(request.query["types"])))
        if request.query.get("reset"):
            queries.reset()
            lag.reset()
            gc_pauses.reset()
        return web.json_response(body)

    async def ready() -> None:
        nonlocal runner
        app = web.Application()
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", stats_port).start()
        asyncio.get_running_loop().create_task(lag.run(), name="loop-lag")

    try:
        await run_until_signalled(server, ready)
    finally:
        if runner is not None:
            await runner.cleanup()


class _Worker:
    """A worker of ``--workers N`` (provisioning/workers.py): worker i answers stats on the i-th port."""

    def __init__(self, stats_ports: list[int], log_level: str) -> None:
        self.stats_ports = stats_ports
        self.log_level = log_level

    def __call__(self, settings, index: int) -> None:
        event_loop.run(serve(settings, self.stats_ports[index], self.log_level, phone_only=index > 0),
                       settings.event_loop)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--http-port", "--api-port", "--tftp-port"):
        parser.add_argument(flag, type=int)
    parser.add_argument("--stats-port", required=True, help="one port, or one per worker (comma-separated)")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--host")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    settings = load_settings({"host": args.host, "http_port": args.http_port, "api_port": args.api_port,
                              "tftp_port": args.tftp_port, "workers": args.workers})
    stats_ports = [int(p) for p in args.stats_port.split(",")]
    if settings.workers > 1:
        from provisioning.workers import Supervisor

        assert len(stats_ports) == settings.workers, "give one stats port per worker"
        logging.basicConfig(level=args.log_level.upper())
        return Supervisor(settings, target=_Worker(stats_ports, args.log_level)).run()
    event_loop.run(serve(settings, stats_ports[0], args.log_level), settings.event_loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
