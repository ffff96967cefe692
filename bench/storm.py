"""The simulator storm: every phone boots with its own vendor profile, from its own source address.

Each phone gets its own aiohttp session whose connector is bound to the phone's loopback
address (``TCPConnector(local_addr=(ip, 0))``), so the server's per-source guard sees a fleet of
distinct clients, as in a real network. A trace on the session records every HTTP exchange with
the User-Agent the profile sent (Poly sends two), so the same requests can be replayed later by
the lean load generators and served from disk by nginx and tftpd-hpa.

TFTP boots bind their client sockets the same way. ``simulators.tftp_client.TftpClient`` has
no local-address parameter, so ``BoundTftpClient`` below (benchmark-only) binds the socket to
the phone's address, taken from a context variable that ``asyncio.to_thread`` carries into the
worker thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import aiohttp

import simulators.phone as phone_module
from simulators.phone import Phone
from simulators.tftp_client import TftpClient

from common import latency_summary
from fleet import FleetPhone

SOURCE_IP: contextvars.ContextVar[str | None] = contextvars.ContextVar("source_ip", default=None)


class BoundTftpClient(TftpClient):
    """The simulator's TFTP client, with its socket bound to the booting phone's own address."""

    def _transfer(self, filename: str, options: dict[str, str]):
        family, _, _, _, server_addr = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            ip = SOURCE_IP.get()
            if ip:
                sock.bind((ip, 0))
            return self._run(sock, server_addr, filename, options)
        finally:
            sock.close()


def install_tftp_binding() -> None:
    phone_module.TftpClient = BoundTftpClient  # BootContext._fetch_tftp looks it up there
    # The simulator's TFTP transfers are blocking code in worker threads: give a storm enough.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=64))


@dataclass
class Exchange:
    transport: str
    path: str          # absolute path on the server, e.g. /805ec0000003.boot
    user_agent: str
    status: int        # HTTP status, or 200 / 404 / 0 for TFTP ok / not found / error
    ms: float


@dataclass
class Boot:
    phone: FleetPhone
    transport: str
    seconds: float
    errors: list[str]
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def ok_files(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.status == 200]


def check_state(phone: FleetPhone, state) -> list[str]:
    """What would keep this phone from working: fetch/parse errors, line 1 not usable."""
    problems = list(state.errors)
    account = state.accounts.get(1)
    if account is None or not account.registered:
        problems.append("line 1 would not register")
    elif account.password != phone.sip_password:
        problems.append("line 1 has the wrong SIP password")
    return problems


async def boot_one(phone: FleetPhone, transport: str, http_base: str, tftp_port: int,
                   timeout: float) -> Boot:
    exchanges: list[Exchange] = []
    started: dict[int, float] = {}

    async def on_start(session, ctx, params):
        started[id(ctx)] = time.perf_counter()

    async def on_end(session, ctx, params):
        ms = (time.perf_counter() - started.pop(id(ctx), time.perf_counter())) * 1000
        exchanges.append(Exchange("http", params.url.path, params.headers.get("User-Agent", ""),
                                  params.response.status, ms))

    async def on_error(session, ctx, params):
        ms = (time.perf_counter() - started.pop(id(ctx), time.perf_counter())) * 1000
        exchanges.append(Exchange("http", params.url.path, params.headers.get("User-Agent", ""), 0, ms))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    trace.on_request_end.append(on_end)
    trace.on_request_exception.append(on_error)
    connector = aiohttp.TCPConnector(local_addr=(phone.ip, 0), limit=8)
    token = SOURCE_IP.set(phone.ip)
    t0 = time.perf_counter()
    try:
        async with aiohttp.ClientSession(connector=connector, trace_configs=[trace],
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            sim = Phone(phone.profile(), session=session, tftp_timeout=1.0, tftp_retries=5)
            sim.credentials = phone.credentials  # provisioned before the power cut: answers challenges
            if transport == "tftp":
                state = await sim.boot_tftp("127.0.0.1", tftp_port)
            else:
                state = await sim.boot_http(http_base)
    finally:
        SOURCE_IP.reset(token)
    seconds = time.perf_counter() - t0
    for f in state.fetched:
        if f.transport == "tftp":
            status = 200 if f.ok else 404 if f.result == "not_found" else 0
            exchanges.append(Exchange("tftp", "/" + f.url.split("/", 3)[-1], "", status, f.elapsed_ms))
    return Boot(phone, transport, seconds, check_state(phone, state), exchanges)


async def run_storm(phones: list[FleetPhone], *, http_base: str, tftp_port: int, tftp_phones: set[int],
                    concurrency: int, timeout: float = 60.0) -> tuple[dict, list[Boot]]:
    """Boot every phone (at most ``concurrency`` at a time); the summary and every boot."""
    limit = asyncio.Semaphore(concurrency)

    async def one(p: FleetPhone) -> Boot:
        async with limit:
            transport = "tftp" if p.index in tftp_phones else "http"
            try:
                return await boot_one(p, transport, http_base, tftp_port, timeout)
            except Exception as exc:  # a client-side failure is still a failed boot
                return Boot(p, transport, 0.0, [f"boot crashed: {type(exc).__name__}: {exc}"])

    cpu0 = os.times()
    started = time.perf_counter()
    boots = await asyncio.gather(*(one(p) for p in phones))
    elapsed = time.perf_counter() - started
    cpu1 = os.times()
    return summarize(boots, elapsed, (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)), boots


_KINDS = [(re.compile(p), k) for p, k in (
    (r"HTTP 503", "HTTP 503 (server: database busy or source over its share)"), (r"HTTP 429", "HTTP 429 (banned)"),
    (r"HTTP \d+", "other HTTP status"), (r"TFTP timeout", "TFTP timeout"), (r"TFTP error", "TFTP error"),
    (r"TimeoutError|ServerTimeout", "HTTP client timeout"), (r"ClientError|Connection|OSError", "connection error"),
    (r"would not register", "line 1 not registering"), (r"wrong SIP password", "wrong SIP password"))]


def error_kind(message: str) -> str:
    return next((kind for pattern, kind in _KINDS if pattern.search(message)), "simulator: " + message[:60])


def summarize(boots: list[Boot], elapsed: float, client_cpu: float) -> dict:
    http_ms = [e.ms for b in boots for e in b.exchanges if e.transport == "http" and e.status == 200]
    tftp_ms = [e.ms for b in boots for e in b.exchanges if e.transport == "tftp" and e.status == 200]
    statuses: dict[str, int] = {}
    for b in boots:
        for e in b.exchanges:
            statuses[f"{e.transport} {e.status}"] = statuses.get(f"{e.transport} {e.status}", 0) + 1
    files = len(http_ms) + len(tftp_ms)
    failed = [b for b in boots if b.errors]
    kinds: dict[str, int] = {}
    for b in failed:  # by the first thing that went wrong on the phone
        kind = error_kind(b.errors[0])
        kinds[kind] = kinds.get(kind, 0) + 1
    by_vendor: dict[str, dict] = {}
    for b in boots:
        v = by_vendor.setdefault(b.phone.vendor, {"phones": 0, "errors": 0, "files": 0, "_ms": []})
        v["phones"] += 1
        v["errors"] += bool(b.errors)
        v["files"] += len(b.ok_files)
        v["_ms"].extend(e.ms for e in b.ok_files)
    for v in by_vendor.values():
        ms = v.pop("_ms")
        v.update({k: s for k, s in latency_summary(ms).items() if k in ("p50_ms", "p99_ms")})
    return {
        "phones": len(boots), "tftp_phones": sum(b.transport == "tftp" for b in boots),
        "files": files, "seconds": round(elapsed, 2), "configs_per_second": round(files / elapsed, 1),
        "http": latency_summary(http_ms), "tftp": latency_summary(tftp_ms),
        "all": latency_summary(http_ms + tftp_ms),
        "boot": latency_summary([b.seconds * 1000 for b in boots]),
        "statuses": dict(sorted(statuses.items())),
        "errors": len(failed), "error_kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1])), "error_samples": [f"{b.phone.vendor} {b.phone.sim_model} {b.phone.mac} "
                                                 f"({b.transport}): {b.errors[:3]}" for b in failed[:8]],
        "by_vendor": dict(sorted(by_vendor.items())),
        "client_cpu_seconds": round(client_cpu, 1),
    }
