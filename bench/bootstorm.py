"""Boot storm: N simulated phones boot at once against a running `deskprov serve`.

Each phone does its vendor's real request sequence with its real User-Agent (the phone
simulator); a share boots over TFTP. Reports configs/s, latency percentiles, errors, and the
server's RSS and CPU, as a table and as JSON in var/bench/bootstorm.json.
Figures are noisy on a shared 2-core VM: compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulators.phone import Phone  # noqa: E402
from simulators.yealink import YealinkProfile  # noqa: E402

MODELS = [("T46S", "66.86.0.15"), ("T48S", "66.86.0.15"), ("T54W", "96.86.0.70"), ("T42S", "66.80.0.110")]


def org_yaml(phones: int) -> tuple[str, list[tuple[str, str, str]]]:
    lines = ["organization: {name: Storm AB, sip_domain: storm.example.net}", "users:"]
    devices = []
    for i in range(phones):
        lines.append(f'  - {{name: "User {i}", number: "+4640{i:07d}"}}')
    lines.append("phones:")
    for i in range(phones):
        model, firmware = MODELS[i % len(MODELS)]
        mac = f"80:5e:c0:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}"
        devices.append((mac, model, firmware))
        lines.append(f'  - {{mac: "{mac}", model: "Yealink {model}", user: "+4640{i:07d}", '
                     f'keys: [{{slot: 2, type: speed_dial, number: "+46812345678", label: Support}}]}}')
    return "\n".join(lines) + "\n", devices


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stats(pid: int) -> tuple[float, float]:
    """(RSS in MB, CPU seconds user+system) of a process, from /proc."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, cpu


async def storm(devices, http_port: int, tftp_port: int, tftp_share: float, concurrency: int) -> dict:
    limit = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    errors: list[str] = []
    files = 0
    rng = random.Random(7)

    async def boot(session, mac, model, firmware):
        nonlocal files
        phone = Phone(YealinkProfile(model=model, mac=mac, firmware=firmware), session=session, tftp_timeout=2.0)
        async with limit:
            if rng.random() < tftp_share:
                state = await phone.boot_tftp("127.0.0.1", tftp_port)
            else:
                state = await phone.boot_http(f"http://127.0.0.1:{http_port}/")
        served = [f for f in state.fetched if f.ok]
        files += len(served)
        latencies.extend(f.elapsed_ms for f in served)
        if state.errors or not state.accounts.get(1) or not state.accounts[1].registered:
            errors.append(f"{mac}: {state.errors or 'account not registered'}")

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(boot(session, *d) for d in devices))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0.0

    return {"phones": len(devices), "files": files, "seconds": elapsed, "configs_per_second": files / elapsed,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": latencies[-1] if latencies else 0.0,
            "mean_ms": statistics.fmean(latencies) if latencies else 0.0, "errors": len(errors),
            "error_samples": errors[:5]}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=2000)
    parser.add_argument("--tftp-share", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="deskprov-bench-"))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DESKPROV_")},
           "DESKPROV_DATA_DIR": str(work), "DESKPROV_LOG_LEVEL": "WARNING",
           # every simulated phone comes from 127.0.0.1; real phones each have their own address
           "DESKPROV_GUARD_MAX_CONCURRENT_PER_SOURCE": str(args.concurrency + 10)}
    text, devices = org_yaml(args.phones)
    (work / "org.yaml").write_text(text)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "provisioning.cli", "import", str(work / "org.yaml")], env=env,
                   check=True, capture_output=True)
    import_seconds = time.perf_counter() - t0

    http_port, api_port, tftp_port = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    server = subprocess.Popen(
        [sys.executable, "-m", "provisioning.cli", "--log-level", "WARNING", "serve", "--http-port", str(http_port),
         "--api-port", str(api_port), "--tftp-port", str(tftp_port)], env=env)
    try:
        async with aiohttp.ClientSession() as s:
            for _ in range(100):
                try:
                    async with s.get(f"http://127.0.0.1:{api_port}/api/v1/health") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
        rss0, cpu0 = proc_stats(server.pid)
        cold = await storm(devices, http_port, tftp_port, args.tftp_share, args.concurrency)
        rss1, cpu1 = proc_stats(server.pid)
        warm = await storm(devices, http_port, tftp_port, args.tftp_share, args.concurrency)
        rss2, cpu2 = proc_stats(server.pid)
    finally:
        server.terminate()
        server.wait(10)

    report = {
        "machine": f"{os.cpu_count()} CPUs, {os.uname().machine}, Python {sys.version.split()[0]}",
        "import_seconds": import_seconds,
        "cold": {**cold, "server_rss_mb": rss1, "server_cpu_seconds": cpu1 - cpu0},
        "warm": {**warm, "server_rss_mb": rss2, "server_cpu_seconds": cpu2 - cpu1},
        "server_rss_idle_mb": rss0,
    }
    out = ROOT / "var" / "bench" / "bootstorm.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"boot storm: {args.phones} Yealink phones, {args.tftp_share:.0%} over TFTP, "
          f"concurrency {args.concurrency} ({report['machine']})")
    print(f"{'run':6} {'files':>7} {'files/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7} "
          f"{'RSS MB':>7} {'CPU s':>6}")
    for name in ("cold", "warm"):
        r = report[name]
        print(f"{name:6} {r['files']:7d} {r['configs_per_second']:9.0f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} "
              f"{r['max_ms']:8.1f} {r['errors']:7d} {r['server_rss_mb']:7.0f} {r['server_cpu_seconds']:6.1f}")
    print(f"warm/cold throughput ratio: {report['warm']['configs_per_second'] / cold['configs_per_second']:.2f}; "
          f"written to {out.relative_to(ROOT)}")
    return 1 if cold["errors"] or warm["errors"] else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
