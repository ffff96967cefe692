"""Boot storm: N phones of a realistic vendor mix boot at once against `deskprov serve`, with baselines.

Phases (each can be skipped with --skip):

1. **storm**: the fleet (bench/fleet.py: every vendor with a plugin and a simulator, catalogue
   models, keys, phonebooks, several organisations) is imported with the real org-file import;
   every phone boots with its simulator profile from its own 127.x.y.z address, a share over
   TFTP; cold (rendered from the database), then warm (cached). Latency, errors (including a
   wrong or missing SIP account), server RSS/CPU, SQL statements.
2. **http**: the files the phones fetched are pre-rendered to disk and served by nginx; wrk
   replays the recorded (path, User-Agent) pairs against deskprov and nginx alternately, same
   threads and connections: cached config throughput as a ratio to nginx, with latency. Every
   request carries its device's HTTP digest answer (deskprov verifies it; nginx has no auth).

The phones were provisioned before the "power cut": each holds the digest credentials the
server issued it and no first-contact window is open (bench/provisioned.py); TFTP may carry
secrets to 127.0.0.0/8, every organisation's office LAN here.
3. **tftp**: 1,000 phones fetch their files over TFTP at once (lean asyncio client, each phone
   from its own address, lock-step with its profile's blksize/tsize) from deskprov and from
   tftpd-hpa serving the same files: completion time as a ratio.
4. **rerender**: an organisation-wide setting of the largest customer changes (committed from
   another process, as a CLI import or another node would); its phones re-fetch everything
   while a probe measures serving latency for everyone else: re-render time, blocking.
5. **render**: cold render throughput per vendor, Provisioner in-process (no HTTP).
6. **scale**: 100,000 devices bulk-inserted; server RSS idle and after a storm of a sample.

Figures are noisy on a shared 2-core VM: compare the ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, ServerProcess, UsageSampler, latency_summary, machine  # noqa: E402

from provisioning.changes import tracked_sessionmaker  # noqa: E402
from provisioning.db import make_engine, upgrade  # noqa: E402
from provisioning.secretbox import load_secret_box  # noqa: E402
from provisioning.model import Organization  # noqa: E402
from provisioning.orgfile import import_text  # noqa: E402

import fleet as fleet_mod  # noqa: E402
from baselines import Nginx, PythonFloor, TftpdHpa, ensure_tool, make_world_readable  # noqa: E402
from loadgen import (RawHttp, TftpPhone, authorised_requests, run_wrk, tftp_fleet, wrk_list_length,  # noqa: E402
                     write_wrk_list, write_wrk_script)
from provisioned import hand_out_credentials  # noqa: E402
from storm import Boot, install_tftp_binding, run_storm  # noqa: E402

PHASES = ("storm", "http", "tftp", "rerender", "render", "scale")
TARGETS = {"errors": 0, "http_ratio": 0.5, "p99_ms": 100.0, "rss_100k_mb": 300.0, "tftp_ratio": 2.0}


def say(*parts) -> None:
    print(*parts, flush=True)


# ------------------------------------------------------------------------------------------------
# set-up


async def import_fleet(data_dir: Path, fleet: fleet_mod.Fleet) -> float:
    """Every organisation through the real org-file import (parse, validate, apply, commit);
    then the phones get the credentials it issued and the first-contact windows close (the
    storm is phones provisioned long ago, booting after a power cut)."""
    db_url = f"sqlite+aiosqlite:///{data_dir / 'deskprov.sqlite3'}"
    engine = make_engine(db_url, load_secret_box("", data_dir))
    started = time.perf_counter()
    try:
        await upgrade(engine)
        sessions = tracked_sessionmaker(engine, [])
        for org in fleet.orgs:
            async with sessions() as session:
                await import_text(session, fleet_mod.org_yaml(org), source=org.name)
    finally:
        await engine.dispose()
    seconds = time.perf_counter() - started
    await hand_out_credentials(db_url, load_secret_box("", data_dir), fleet)
    return seconds


# ------------------------------------------------------------------------------------------------
# phase helpers


async def settle(server: ServerProcess, quiet_ms: float = 50.0, limit: float = 60.0) -> float:
    """Wait until the server's event loop has been responsive for a second (background work of
    the previous phase, e.g. resync NOTIFYs and sighting writes after a change, is done)."""
    if server.plain:
        await asyncio.sleep(2.0)
        return 2.0
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        server.stats(reset=True)
        await asyncio.sleep(1.0)
        if server.stats()["loop_lag"]["max_ms"] < quiet_ms:
            break
    return round(time.perf_counter() - started, 1)


async def capture_files(server: ServerProcess, boots: list[Boot], root: Path) -> dict[str, bytes]:
    """Every file a phone got, fetched once more from deskprov (its UA, its address), written
    under ``root`` at its URL path: the pre-rendered copy the baselines serve."""
    wanted: dict[str, tuple[str, str, tuple[str, str] | None]] = {}
    for b in boots:
        ua = b.phone.profile().user_agent()
        for e in b.ok_files:
            wanted.setdefault(e.path, (e.user_agent or ua, b.phone.ip, b.phone.credentials))
    files: dict[str, bytes] = {}
    queue = list(wanted.items())

    async def worker(i: int) -> None:
        clients: dict[str, RawHttp] = {}
        while queue:
            path, (ua, ip, credentials) = queue.pop()
            client = clients.get(ip) or clients.setdefault(ip, RawHttp(server.http_port, ip))
            status, body = await client.get(path, ua, credentials)
            if status != 200:
                raise RuntimeError(f"capture: {path} answered {status}")
            files[path] = body
            if len(clients) > 4:
                for c in clients.values():
                    await c.close()
                clients.clear()
        for c in clients.values():
            await c.close()

    await asyncio.gather(*(worker(i) for i in range(16)))
    for path, body in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
    make_world_readable(root)
    return files


async def http_phase(server: ServerProcess, boots: list[Boot], root: Path, work: Path, args) -> dict:
    requests = [(e.path, e.user_agent, b.phone.credentials) for b in boots for e in b.ok_files
                if e.transport == "http"]
    script = write_wrk_script(work)

    async def authorised_list(nonces_from: int, seconds: float, rps: float) -> Path:
        """Requests for one wrk run, authorised right before it with nonces of the server that
        checks them (nginx gets deskprov's, and ignores the Authorization header)."""
        rows = await authorised_requests(nonces_from, requests, connections=args.wrk_connections,
                                         count=wrk_list_length(seconds, rps))
        return write_wrk_list(rows, work)

    rounds: dict[str, list[dict]] = {"deskprov": [], "nginx": [], "python floor": []}
    rates: dict[str, float] = {}  # each target's list is sized from its own warm-up rate
    settled = await settle(server)
    credentials = {c[0]: c[1] for _, _, c in requests if c is not None}
    protected = {path for path, _, c in requests if c is not None}
    with Nginx(root, work / "nginx", workers=args.nginx_workers) as nginx, \
            PythonFloor(root, work / "python-floor", credentials, protected) as floor:
        targets = (("deskprov", server.http_port, server.http_port), ("nginx", nginx.port, server.http_port),
                   ("python floor", floor.port, floor.port))
        # warm-up all (connections, nginx's open-file cache, deskprov's pages); a list that ran
        # out capped the rate: warm up again with a longer one
        for name, port, nonces_from in targets:
            rates[name] = 0.0
            for _ in range(4):
                warm = run_wrk(port, script, await authorised_list(nonces_from, 2, rates[name] * 2 or 0),
                               connections=args.wrk_connections, seconds=2)
                rates[name] = max(rates[name], warm["rps"])
                if not warm["list_exhausted"]:
                    break
        for r in range(args.wrk_rounds):
            for name, port, nonces_from in targets:
                for _ in range(3):  # a list that ran out (the target got faster) is made longer and run again
                    data = await authorised_list(nonces_from, args.wrk_seconds, rates[name])
                    stats0 = server.stats(reset=True) if name == "deskprov" else None
                    result = run_wrk(port, script, data, connections=args.wrk_connections,
                                     seconds=args.wrk_seconds)
                    rates[name] = max(rates[name], result["rps"])
                    if not result["list_exhausted"]:
                        break
                if name == "deskprov":
                    stats1 = server.stats()
                    cpu = stats1["process"]["cpu_seconds"] - stats0["process"]["cpu_seconds"]
                    result["server_cpu_share"] = round(cpu / result["seconds"], 2)
                    result["sql_statements"] = stats1.get("sql_statements")
                    result["loop_lag_max_ms"] = stats1.get("loop_lag", {}).get("max_ms")
                    result["gc_max_ms"] = max(stats1.get("gc", {}).get("max_ms", [0]))
                    result["sql_kinds"] = stats1.get("sql_kinds")
                    result["fast_lane"] = stats1.get("fast_lane")
                rounds[name].append(result)
                rates[name] = max(rates[name], result["rps"])
                say(f"  wrk round {r + 1} {name:12}: {result['rps']:8.0f} req/s  p99 {result['p99_ms']:6.1f} ms"
                    f"  errors {result['errors']}")

    def med(name: str, key: str) -> float:
        return statistics.median(x[key] for x in rounds[name])

    # The machine is shared and its speed drifts: each round's ratio compares back-to-back runs.
    ratios = [d["rps"] / n["rps"] for d, n in zip(rounds["deskprov"], rounds["nginx"])]
    floor_ratios = [f["rps"] / n["rps"] for f, n in zip(rounds["python floor"], rounds["nginx"])]
    return {
        "load_generator": f"wrk -t1 -c{args.wrk_connections} -d{args.wrk_seconds}s, Lua walking once through "
                          f"a list of requests (2.5x what its warm-up rate needs) cycled from {len(requests)} recorded "
                          f"(path, User-Agent) pairs, each with its device's digest Authorization (a fresh "
                          f"nonce per connection, increasing nonce counts), made right before each run; "
                          f"non-200 answers count as errors; nginx worker_processes {args.nginx_workers}",
        "authentication": "deskprov's figures include verifying an HTTP digest (MD5, qop=auth, nonce and "
                          "nonce-count check) on every request, as device authentication requires; nginx "
                          "serves the same pre-rendered files without any authentication. That is the "
                          "honest comparison: a static server with no auth vs. deskprov doing its job.",
        "requests_recorded": len(requests), "settle_seconds": settled,
        "deskprov_rps": med("deskprov", "rps"), "nginx_rps": med("nginx", "rps"),
        "ratio": round(statistics.median(ratios), 3), "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
        "deskprov_p99_ms": med("deskprov", "p99_ms"), "nginx_p99_ms": med("nginx", "p99_ms"),
        "python_floor": "bench/python_floor.py: the same files from one CPython process (uvloop, httptools), "
                        "every device file's digest checked with deskprov's own code, nothing else",
        "python_floor_rps": med("python floor", "rps"), "python_floor_ratio": round(statistics.median(floor_ratios), 3),
        "deskprov_errors": sum(x["errors"] for x in rounds["deskprov"]),
        "nginx_errors": sum(x["errors"] for x in rounds["nginx"]),
        "python_floor_errors": sum(x["errors"] for x in rounds["python floor"]),
        "rounds": rounds,
    }


def tftp_phones(boots: list[Boot], count: int) -> list[TftpPhone]:
    out = []
    for b in boots:
        files = [e.path for e in b.ok_files]
        if not files:
            continue
        opts = b.phone.profile().tftp_options()
        out.append(TftpPhone(b.phone.ip, files, opts.get("blksize"), bool(opts.get("tsize"))))
        if len(out) == count:
            break
    return out


async def tftp_phase(server: ServerProcess, boots: list[Boot], root: Path, files: dict[str, bytes], args) -> dict:
    phones = tftp_phones(boots, args.tftp_phones)
    settled = await settle(server)
    rounds: dict[str, list[dict]] = {"deskprov": [], "tftpd-hpa": []}
    with TftpdHpa(root) as tftpd:
        for r in range(args.tftp_rounds):
            for name, port in (("deskprov", server.tftp_port), ("tftpd-hpa", tftpd.port)):
                with UsageSampler(server.pid if name == "deskprov" else tftpd.proc.pid) as usage:
                    result = await tftp_fleet(phones, "127.0.0.1", port, expected=files, seed=r)
                d = result.as_dict()
                if name == "deskprov":
                    d["server"] = usage.as_dict()
                rounds[name].append(d)
                say(f"  tftp round {r + 1} {name:9}: {d['seconds']:6.2f} s for {d['phones']} phones / {d['files']} "
                    f"files, errors {d['errors']}, busy {d['busy_refusals']}, retransmits {d['retransmits']}, "
                    f"p99 file {d['file']['p99_ms']:.0f} ms")
                await asyncio.sleep(1.0)

    # After a power cut the server restarts too: the same 1,000 phones against an empty cache.
    server.stop()
    server.start()
    await asyncio.sleep(1.0)
    with UsageSampler(server.pid) as usage:
        cold = (await tftp_fleet(phones, "127.0.0.1", server.tftp_port, expected=files, seed=99)).as_dict()
    cold["server"] = usage.as_dict()
    say(f"  tftp cold deskprov (restarted, empty cache): {cold['seconds']:6.2f} s, errors {cold['errors']}, "
        f"busy {cold['busy_refusals']}, retransmits {cold['retransmits']}, p99 file {cold['file']['p99_ms']:.0f} ms")

    def med(name: str) -> float:
        return statistics.median(x["seconds"] for x in rounds[name])

    ratios = [d["seconds"] / t["seconds"] for d, t in zip(rounds["deskprov"], rounds["tftpd-hpa"])]
    return {"phones": len(phones), "files": sum(len(p.files) for p in phones), "settle_seconds": settled,
            "deskprov_seconds": med("deskprov"), "tftpd_hpa_seconds": med("tftpd-hpa"),
            "ratio": round(statistics.median(ratios), 2), "ratio_range": [round(min(ratios), 2), round(max(ratios), 2)],
            "deskprov_errors": sum(x["errors"] + x["content_mismatches"] for x in rounds["deskprov"]),
            "tftpd_hpa_errors": sum(x["errors"] for x in rounds["tftpd-hpa"]),
            "cold": cold, "cold_ratio": round(cold["seconds"] / med("tftpd-hpa"), 2),
            "rounds": rounds}


async def rerender_phase(server: ServerProcess, fleet: fleet_mod.Fleet, boots: list[Boot],
                         files: dict[str, bytes], data_dir: Path, root: Path, args) -> dict:
    big = max(fleet.orgs, key=lambda o: len(o.phones))
    affected = [b for b in boots if b.phone.org == big.index and b.ok_files]
    others = [(e.path, e.user_agent or b.phone.profile().user_agent(), b.phone.ip, b.phone.credentials)
              for b in boots if b.phone.org != big.index for e in b.ok_files if e.transport == "http"]
    random.Random(3).shuffle(others)
    probes: list[tuple[float, float, int]] = []  # (time, ms, status)
    stop = asyncio.Event()

    async def probe(worker: int) -> None:
        i = worker
        client = RawHttp(server.http_port, others[worker % len(others)][2])
        try:
            while not stop.is_set():
                path, ua, _, credentials = others[i % len(others)]
                i += args.probe_workers
                t0 = time.perf_counter()
                status, _ = await client.get(path, ua, credentials)
                probes.append((t0, (time.perf_counter() - t0) * 1000, status))
                await asyncio.sleep(args.probe_interval)
        finally:
            await client.close()

    await settle(server)
    probe_tasks = [asyncio.create_task(probe(w)) for w in range(args.probe_workers)]
    await asyncio.sleep(3.0)
    server.stats(reset=True)
    before_stats = server.stats()

    # The change: the customer's NTP server, committed from this (another) process.
    engine = make_engine(f"sqlite+aiosqlite:///{data_dir / 'deskprov.sqlite3'}", load_secret_box("", data_dir))
    try:
        async with tracked_sessionmaker(engine, [])() as session:
            row = (await session.execute(select(Organization).where(Organization.name == big.name))).scalar_one()
            row.ntp_server = "ntp.rerender.example.net"
            await session.commit()
    finally:
        await engine.dispose()
    t_change = time.perf_counter()
    invalidated_at = None
    for _ in range(100):
        s = server.stats()
        if s["cache"]["invalidations"] > before_stats["cache"]["invalidations"]:
            invalidated_at = time.perf_counter()
            break
        await asyncio.sleep(0.05)

    # Its phones resync (as after a check-sync NOTIFY): every file once, `rerender_concurrency` at a time.
    queue = list(affected)
    resync_ms: list[float] = []
    changed_phones = 0
    resync_errors = 0
    unchanged: dict[str, int] = {}
    new_files: dict[str, bytes] = {}

    async def resync() -> None:
        nonlocal changed_phones, resync_errors
        while queue:
            b = queue.pop()
            client = RawHttp(server.http_port, b.phone.ip)
            changed = False
            try:
                for e in b.ok_files:  # TFTP-booted phones' files too (the same bytes over HTTP)
                    t0 = time.perf_counter()
                    status, body = await client.get(e.path, e.user_agent or b.phone.profile().user_agent(),
                                                    b.phone.credentials)
                    resync_ms.append((time.perf_counter() - t0) * 1000)
                    resync_errors += status != 200
                    changed |= body != files.get(e.path)
                    if status == 200:
                        new_files[e.path] = body
            finally:
                await client.close()
            changed_phones += changed
            if not changed:
                key = f"{b.phone.vendor} {b.phone.model.name}"
                unchanged[key] = unchanged.get(key, 0) + 1

    t_resync = time.perf_counter()
    await asyncio.gather(*(resync() for _ in range(args.rerender_concurrency)))
    t_done = time.perf_counter()
    # What failed (counted above) is fetched again now, so the baselines get the server's new bytes.
    retry = RawHttp(server.http_port, "127.15.0.1")
    for b in affected:
        for e in b.ok_files:
            if e.path not in new_files:
                status, body = await retry.get(e.path, e.user_agent or b.phone.profile().user_agent(),
                                               b.phone.credentials)
                if status == 200:
                    new_files[e.path] = body
    await retry.close()
    during_stats = server.stats()
    await asyncio.sleep(2.0)
    stop.set()
    await asyncio.gather(*probe_tasks)
    # what the change leaves behind (resync NOTIFYs to every phone of the customer, sighting writes)
    settled_after = await settle(server)

    # the baselines serve the new bytes from now on
    for path, body in new_files.items():
        if files.get(path) != body:
            files[path] = body
            (root / path.lstrip("/")).write_bytes(body)

    def window(a: float, b: float) -> dict:
        return latency_summary([ms for t, ms, _ in probes if a <= t < b])

    t_first = probes[0][0] if probes else t_change
    return {
        "organization_phones": len(big.phones), "phones_resynced": len(affected),
        "files_resynced": len(resync_ms), "resync_errors": resync_errors,
        "phones_with_changed_files": changed_phones, "unchanged_phones_by_model": unchanged,
        "invalidation_seconds": round(invalidated_at - t_change, 2) if invalidated_at else None,
        "rerender_seconds": round(t_done - t_resync, 2),
        "rerender_files_per_second": round(len(resync_ms) / (t_done - t_resync), 1),
        "resync_latency": latency_summary(resync_ms),
        "probe_before": window(t_first, t_change), "probe_during": window(t_change, t_done),
        "probe_after": window(t_done, float("inf")),
        "probe_errors": sum(1 for _, _, s in probes if s != 200), "settle_after_seconds": settled_after,
        "loop_lag_max_ms": during_stats.get("loop_lag", {}).get("max_ms"),
        "sql_statements": during_stats.get("sql_statements"),
    }


async def scale_phase(args, work: Path) -> dict:
    from scale import bulk_load

    data_dir = work / "scale"
    data_dir.mkdir()
    big = fleet_mod.build(args.scale_devices, seed=args.seed + 1)
    db_url = f"sqlite+aiosqlite:///{data_dir / 'deskprov.sqlite3'}"
    loaded = await bulk_load(db_url, big, load_secret_box("", data_dir))
    await hand_out_credentials(db_url, load_secret_box("", data_dir), big)  # provisioned long ago
    say(f"  bulk-inserted {loaded['devices']} devices, {loaded['users']} users, {loaded['organizations']} "
        f"organisations in {loaded['seconds']} s")
    server = ServerProcess(data_dir, plain=args.plain_serve).start()
    try:
        await asyncio.sleep(3.0)
        idle = server.usage()
        sample = random.Random(args.seed).sample(big.phones, min(args.scale_sample, len(big.phones)))
        tftp = {p.index for p in sample if random.Random(p.index).random() < args.tftp_share}
        base = f"http://127.0.0.1:{server.http_port}/"
        with UsageSampler(server.pid) as u1:
            cold, _ = await run_storm(sample, http_base=base, tftp_port=server.tftp_port, tftp_phones=tftp,
                                      concurrency=args.concurrency)
        with UsageSampler(server.pid) as u2:
            warm, _ = await run_storm(sample, http_base=base, tftp_port=server.tftp_port, tftp_phones=tftp,
                                      concurrency=args.concurrency)
        stats = server.stats()
    finally:
        server.stop()
    per_device = (u2.as_dict()["rss_mb"] - idle["rss_mb"]) / max(1, len(sample))
    return {"database": loaded, "idle_rss_mb": round(idle["rss_mb"], 1),
            "mb_per_booted_device": round(per_device, 4),
            "rss_if_every_device_booted_mb": round(idle["rss_mb"] + per_device * loaded["devices"]),
            "sample_phones": len(sample), "cold": {**cold, "server": u1.as_dict()},
            "warm": {**warm, "server": u2.as_dict()},
            "rss_after_storm_mb": u2.as_dict()["rss_mb"], "peak_rss_mb": max(u1.peak_rss_mb, u2.peak_rss_mb),
            "cache_entries": stats.get("cache", {}).get("entries")}


# ------------------------------------------------------------------------------------------------


def report_table(report: dict) -> None:
    say()
    say(f"boot storm: {report['phones']} phones {report['vendors']}, {report['tftp_share']:.0%} over TFTP, "
        f"{report['concurrency']} booting at once; {report['machine']}")
    say(f"{'run':10} {'phones':>6} {'files':>7} {'files/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>8} "
        f"{'errors':>6} {'RSS MB':>7} {'CPU s':>6} {'SQL':>6}")
    runs = [(k, report[k]) for k in ("cold", "warm") if k in report]
    if "scale" in report:
        runs += [(f"100k {k}", report["scale"][k]) for k in ("cold", "warm")]
    for name, r in runs:
        s = r["server"]
        say(f"{name:10} {r['phones']:6d} {r['files']:7d} {r['configs_per_second']:8.0f} {r['all']['p50_ms']:7.1f} "
            f"{r['all']['p99_ms']:7.1f} {r['all']['max_ms']:8.1f} {r['errors']:6d} {s['rss_mb']:7.0f} "
            f"{s['cpu_seconds']:6.1f} {str(r.get('sql_statements', '-')):>6}")
    say("(simulator storm: latency per file as the phone sees it; the simulators are the bottleneck here)")
    checks = []
    if "http" in report:
        h = report["http"]
        say(f"cached HTTP, wrk: deskprov {h['deskprov_rps']:.0f} req/s (p99 {h['deskprov_p99_ms']:.1f} ms), "
            f"nginx {h['nginx_rps']:.0f} req/s (p99 {h['nginx_p99_ms']:.1f} ms): ratio {h['ratio']:.2f}; "
            f"the Python floor (digest check only) {h['python_floor_rps']:.0f} req/s: ratio {h['python_floor_ratio']:.2f}")
        checks.append(("cached throughput >= 0.5x nginx", h["ratio"] >= TARGETS["http_ratio"], f"{h['ratio']:.2f}x"))
        checks.append(("p99 < 100 ms at that rate", h["deskprov_p99_ms"] < TARGETS["p99_ms"],
                       f"{h['deskprov_p99_ms']:.1f} ms"))
    if "tftp" in report:
        t = report["tftp"]
        say(f"TFTP, {t['phones']} phones / {t['files']} files at once: deskprov {t['deskprov_seconds']:.2f} s, "
            f"tftpd-hpa {t['tftpd_hpa_seconds']:.2f} s: ratio {t['ratio']:.2f} (errors {t['deskprov_errors']} / "
            f"{t['tftpd_hpa_errors']})")
        say(f"TFTP after a restart (empty cache): deskprov {t['cold']['seconds']:.2f} s, errors {t['cold']['errors']}: "
            f"ratio {t['cold_ratio']:.2f}")
        checks.append(("TFTP within 2x of tftpd-hpa (warm)", t["ratio"] <= TARGETS["tftp_ratio"], f"{t['ratio']:.2f}x"))
        checks.append(("TFTP within 2x of tftpd-hpa (restarted, cold)",
                       t["cold_ratio"] <= TARGETS["tftp_ratio"] and not t["cold"]["errors"],
                       f"{t['cold_ratio']:.2f}x, {t['cold']['errors']} errors"))
    if "rerender" in report:
        r = report["rerender"]
        say(f"org-wide change: {r['phones_resynced']} phones / {r['files_resynced']} files re-rendered in "
            f"{r['rerender_seconds']:.2f} s ({r['rerender_files_per_second']:.0f}/s), {r['phones_with_changed_files']} "
            f"phones got new bytes; other phones' p99 {r['probe_before']['p99_ms']:.1f} ms before, "
            f"{r['probe_during']['p99_ms']:.1f} ms during (max {r['probe_during']['max_ms']:.0f} ms, "
            f"loop lag max {r['loop_lag_max_ms']} ms)")
    if "render" in report:
        say("cold render in-process (configs/s, ms per device, template share, SQL per device): " + ", ".join(
            f"{v} {x['configs_per_second']:.0f}/{x['ms_per_device']:.1f}/{x['template_share']:.0%}/"
            f"{x['sql_per_device']:g}" for v, x in report["render"].items()))
    if "scale" in report:
        s = report["scale"]
        say(f"{s['database']['devices']} devices in the database: RSS idle {s['idle_rss_mb']:.0f} MB, after a "
            f"{s['sample_phones']}-phone storm {s['rss_after_storm_mb']:.0f} MB (peak {s['peak_rss_mb']:.0f} MB); "
            f"{s['mb_per_booted_device'] * 1024:.0f} KiB per booted device: all {s['database']['devices']} booted "
            f"would be ~{s['rss_if_every_device_booted_mb']:.0f} MB")
        checks.append(("RSS < 300 MB with 100k devices", s["peak_rss_mb"] < TARGETS["rss_100k_mb"],
                       f"{s['peak_rss_mb']:.0f} MB"))
    if "warm" in report:
        errors = report["cold"]["errors"] + report["warm"]["errors"]
        kinds = {k: v for r in (report["cold"], report["warm"]) for k, v in r.get("error_kinds", {}).items()}
        checks.insert(0, (f"{report['phones']} phones, zero errors", errors == 0,
                          f"{report['cold']['errors']} cold + {report['warm']['errors']} warm phones failed"
                          + (f": {kinds}" if kinds else "")))
    say("targets: " + "; ".join(f"{name}: {'MET' if ok else 'MISSED'} ({value})" for name, ok, value in checks))
    report["targets"] = {name: {"met": ok, "value": value} for name, ok, value in checks}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=2000)
    parser.add_argument("--tftp-share", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=200, help="phones booting at the same moment")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip", default="", help=f"comma-separated phases to skip: {', '.join(PHASES[1:])}")
    parser.add_argument("--wrk-connections", type=int, default=32,
                        help="wrk connections (all from 127.0.0.1: keep within the guard's 32 per source)")
    parser.add_argument("--wrk-seconds", type=float, default=5.0)
    parser.add_argument("--wrk-rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1,
                        help="deskprov serve --workers (processes sharing the phone port). The bench's "
                             "database is SQLite, whose single writer the workers' sighting and "
                             "audit writes contend for: >1 shows the serving side, not a deployment")
    parser.add_argument("--nginx-workers", type=int, default=0, help="nginx worker_processes (default: --workers)")
    parser.add_argument("--tftp-phones", type=int, default=1000)
    parser.add_argument("--tftp-rounds", type=int, default=2)
    parser.add_argument("--rerender-concurrency", type=int, default=50)
    parser.add_argument("--probe-workers", type=int, default=8)
    parser.add_argument("--probe-interval", type=float, default=0.02)
    parser.add_argument("--scale-devices", type=int, default=100_000)
    parser.add_argument("--scale-sample", type=int, default=2000)
    parser.add_argument("--plain-serve", action="store_true", help="run `deskprov serve` itself (no stats port)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "bootstorm.json"))
    args = parser.parse_args()
    args.nginx_workers = args.nginx_workers or args.workers
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.plain_serve:
        skip |= {"rerender"}  # needs the stats port

    install_tftp_binding()
    work = Path(tempfile.mkdtemp(prefix="deskprov-bench-"))
    data_dir, root = work / "data", work / "static"
    data_dir.mkdir()
    root.mkdir()
    fleet = fleet_mod.build(args.phones, seed=args.seed)
    report: dict = {"machine": machine(), "phones": args.phones, "workers": args.workers, "vendors": fleet.vendor_counts(),
                    "organizations": len(fleet.orgs), "tftp_share": args.tftp_share,
                    "concurrency": args.concurrency, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3]}
    say(f"fleet: {args.phones} phones {report['vendors']} in {len(fleet.orgs)} organisations; work dir {work}")
    if {"http", "tftp"} - skip:
        for tool in ("wrk", "nginx", "in.tftpd"):
            if ensure_tool(tool) is None:
                say(f"  {tool} is missing and could not be installed: its phase is skipped")
                skip |= {"wrk": {"http"}, "nginx": {"http"}, "in.tftpd": {"tftp"}}[tool]

    report["import_seconds"] = round(await import_fleet(data_dir, fleet), 1)
    say(f"imported in {report['import_seconds']} s")

    server = ServerProcess(data_dir, plain=args.plain_serve, workers=args.workers).start()
    failed = False
    try:
        await asyncio.sleep(1.0)
        report["server_rss_idle_mb"] = round(server.usage()["rss_mb"], 1)
        rng = random.Random(args.seed)
        tftp = {p.index for p in fleet.phones if rng.random() < args.tftp_share}
        base = f"http://127.0.0.1:{server.http_port}/"
        for name in ("cold", "warm"):
            server.stats(reset=True)
            with UsageSampler(server.pid) as usage:
                summary, boots = await run_storm(fleet.phones, http_base=base, tftp_port=server.tftp_port,
                                                 tftp_phones=tftp, concurrency=args.concurrency)
            stats = server.stats()
            report[name] = {**summary, "server": usage.as_dict(), "sql_statements": stats.get("sql_statements"),
                            "loop_lag_max_ms": stats.get("loop_lag", {}).get("max_ms"), "gc": stats.get("gc"),
                            "cache": stats.get("cache"), "guard": stats.get("guard"),
                            "sql_kinds": stats.get("sql_kinds")}
            say(f"{name} storm: {summary['files']} files in {summary['seconds']} s, p99 {summary['all']['p99_ms']} ms,"
                f" errors {summary['errors']}")
            for sample in summary["error_samples"][:5]:
                say(f"   {sample}")

        if {"http", "tftp", "rerender"} - skip:
            files = await capture_files(server, boots, root)
            report["static_files"] = {"count": len(files), "bytes": sum(map(len, files.values()))}
        if "http" not in skip:
            say("cached HTTP throughput: deskprov vs nginx")
            report["http"] = await http_phase(server, boots, root, work, args)
        if "rerender" not in skip:
            say("org-wide change while serving")
            report["rerender"] = await rerender_phase(server, fleet, boots, files, data_dir, root, args)
        if "tftp" not in skip:  # last: it restarts the server
            say(f"TFTP: {args.tftp_phones} phones at once, deskprov vs tftpd-hpa")
            report["tftp"] = await tftp_phase(server, boots, root, files, args)
    except Exception:
        failed = True
        say("server log tail:\n" + server.log_tail())
        raise
    finally:
        server.stop()

    if "render" not in skip:
        say("cold render per vendor (in-process)")
        from render import render_throughput
        report["render"] = await render_throughput(data_dir, boots, f"http://127.0.0.1:{server.http_port}/")
    if "scale" not in skip:
        say(f"scale: {args.scale_devices} devices")
        report["scale"] = await scale_phase(args, work)

    report["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    report_table(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    say(f"written to {out}")
    if not args.keep and not failed:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(t["met"] for t in report["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
