"""Shared pieces of the benchmark: ports, percentiles, the server subprocess and its vital signs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from provisioning.metrics import process_usage  # noqa: E402


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))]


def latency_summary(values: list[float]) -> dict[str, float]:
    v = sorted(values)
    return {"count": len(v), "p50_ms": round(pct(v, 0.50), 2), "p90_ms": round(pct(v, 0.90), 2),
            "p99_ms": round(pct(v, 0.99), 2), "max_ms": round(v[-1], 2) if v else 0.0}


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (the workers of ``deskprov serve --workers N``)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return out


def tree_usage(pid: int) -> dict[str, float]:
    """RSS and CPU time of a process and its descendants, added up."""
    total = {"rss_mb": 0.0, "peak_rss_mb": 0.0, "cpu_seconds": 0.0}
    for member in descendants(pid):
        try:
            usage = process_usage(member)
        except OSError:
            continue
        for key in total:
            total[key] += usage[key]
    return total


def merge_stats(parts: list[dict]) -> dict:
    """Several workers' /stats as one: counts add up, maxima take the largest, lists join."""
    if len(parts) == 1:
        return parts[0]
    out: dict = {}
    for part in parts:
        for key, value in part.items():
            if key not in out:
                out[key] = value
            elif isinstance(value, dict) and isinstance(out[key], dict):
                out[key] = merge_stats([out[key], value])
            elif isinstance(value, bool) or not isinstance(value, (int, float, list)):
                continue
            elif isinstance(value, list):
                out[key] = out[key] + value
            elif "max" in key:
                out[key] = max(out[key], value)
            else:
                out[key] = out[key] + value
    return out


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return (f"{os.cpu_count()} vCPU {cpu}, {mem // 1024} GB RAM, Linux {os.uname().release}, "
            f"Python {sys.version.split()[0]}")


@dataclass
class ServerProcess:
    """A deskprov server subprocess (bench/serve.py: `deskprov serve` + stats; or the plain CLI)."""

    data_dir: Path
    plain: bool = False
    env_extra: dict[str, str] = field(default_factory=dict)
    http_port: int = 0
    api_port: int = 0
    tftp_port: int = 0
    stats_port: int = 0
    #: ``deskprov serve --workers N``: N processes share the phone port
    workers: int = 1
    stats_ports: list[int] = field(default_factory=list)
    proc: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        return {**{k: v for k, v in os.environ.items() if not k.startswith("DESKPROV_")},
                "DESKPROV_DATA_DIR": str(self.data_dir), "DESKPROV_LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT), **self.env_extra}

    def start(self, timeout: float = 60.0) -> "ServerProcess":
        if not self.http_port:  # a restart keeps its ports: files that name the server stay the same bytes
            self.http_port, self.api_port = free_port(), free_port()
            self.tftp_port, self.stats_port = free_port(socket.SOCK_DGRAM), free_port()
            self.stats_ports = [self.stats_port] + [free_port() for _ in range(self.workers - 1)]
        ports = ["--http-port", str(self.http_port), "--api-port", str(self.api_port),
                 "--tftp-port", str(self.tftp_port)]
        if self.workers > 1:
            ports += ["--workers", str(self.workers)]
        if self.plain:
            cmd = [sys.executable, "-m", "provisioning.cli", "--log-level", "WARNING", "serve", *ports]
        else:
            cmd = [sys.executable, str(BENCH / "serve.py"), *ports,
                   "--stats-port", ",".join(map(str, self.stats_ports))]
        log = open(self.data_dir / "server.log", "ab")
        self.proc = subprocess.Popen(cmd, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.data_dir / 'server.log'}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/api/v1/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError("server did not become healthy")
        if not self.plain:  # the stats listener starts right after the others (in every worker)
            for _ in range(300):
                try:
                    self.stats()
                    break
                except OSError:
                    time.sleep(0.1)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def usage(self) -> dict[str, float]:
        return tree_usage(self.pid)

    def stats(self, reset: bool = False, types: int = 0) -> dict:
        if self.plain:
            return {"process": self.usage()}
        query = "&".join(q for q in ("reset=1" if reset else "", f"types={types}" if types else "") if q)
        parts = []
        for port in self.stats_ports or [self.stats_port]:
            url = f"http://127.0.0.1:{port}/stats" + (f"?{query}" if query else "")
            with urllib.request.urlopen(url, timeout=10) as r:
                parts.append(json.loads(r.read()))
        merged = merge_stats(parts)
        if len(parts) > 1:  # the supervisor's own share too
            merged["process"] = self.usage()
        return merged

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.data_dir / "server.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class UsageSampler:
    """Samples a process's RSS every ``interval`` seconds in the background: the peak of a phase."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_rss_mb = 0.0
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            try:
                self.peak_rss_mb = max(self.peak_rss_mb, tree_usage(self.pid)["rss_mb"])
            except OSError:
                return
            await asyncio.sleep(self.interval)

    def __enter__(self) -> "UsageSampler":
        self.start = tree_usage(self.pid)
        self.started_at = time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc) -> None:
        if self._task:
            self._task.cancel()
        self.end = tree_usage(self.pid)
        self.seconds = time.perf_counter() - self.started_at
        self.peak_rss_mb = max(self.peak_rss_mb, self.end["rss_mb"])

    def as_dict(self) -> dict[str, float]:
        cpu = self.end["cpu_seconds"] - self.start["cpu_seconds"]
        return {"rss_mb": round(self.end["rss_mb"], 1), "peak_rss_mb": round(self.peak_rss_mb, 1),
                "cpu_seconds": round(cpu, 2), "cpu_share": round(cpu / self.seconds, 2) if self.seconds else 0.0}
