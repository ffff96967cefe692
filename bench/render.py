"""Cold render throughput per vendor: the Provisioner in-process against the benchmark's database.

For each vendor, a sample of its phones asks for every device file it fetched in the storm
(same names, same User-Agents, same source addresses) with the cache cleared before each
round, so every device's snapshot is read from the database and every file rendered. The time
spent inside the vendor plugin's ``render_device`` (templates) is measured separately from the
total; the rest is the database read (SQLAlchemy async ORM + aiosqlite) and request handling.
"""

from __future__ import annotations

import statistics
import time

from provisioning.cache import ConfigCache
from provisioning.changes import tracked_sessionmaker
from provisioning.db import engine_for
from provisioning.metrics import QueryCounter
from provisioning.serving import Provisioner
from provisioning.settings import load_settings
from provisioning.templating import PhoneTemplates
from provisioning.vendors import BY_NAME
from simulators.phone import DigestClient

from storm import Boot


def _authorization(digest: DigestClient | None, path: str) -> str | None:
    return digest.authorization("GET", path) if digest is not None else None


async def render_throughput(data_dir, boots: list[Boot], public_url: str, *, per_vendor: int = 150,
                            rounds: int = 3) -> dict:
    settings = load_settings({"data_dir": str(data_dir), "public_url": public_url}, environ={})
    engine = engine_for(settings)
    provisioner = Provisioner(settings, tracked_sessionmaker(engine, []), ConfigCache(),
                              PhoneTemplates(settings.templates_dir))
    out: dict[str, dict] = {}
    try:
        by_vendor: dict[str, list[Boot]] = {}
        for b in boots:
            by_vendor.setdefault(b.phone.vendor, []).append(b)
        for vendor, vendor_boots in sorted(by_vendor.items()):
            requests = []  # (path, ua, ip, digest): the device files of the sampled phones
            devices = 0
            for b in vendor_boots[:per_vendor]:
                mine = []
                # the phone answers the server's digest challenge, as over HTTP (verifying it is part of serving)
                digest = DigestClient(*b.phone.credentials) if b.phone.credentials else None
                if digest is not None:
                    digest.learn(provisioner.digest.challenge())
                for e in b.ok_files:
                    if e.transport != "http":
                        continue
                    outcome = await provisioner.fetch(e.path, user_agent=e.user_agent, client_ip=b.phone.ip,
                                                      transport="bench", authorization=_authorization(digest, e.path))
                    if outcome.file is not None and outcome.mac:
                        mine.append((e.path, e.user_agent, b.phone.ip, digest))
                devices += bool(mine)
                requests.extend(mine)
            if not requests:
                continue
            plugin = BY_NAME[vendor]
            original = plugin.render_device
            template_seconds = 0.0

            def timed(*args, **kw):
                nonlocal template_seconds
                t = time.perf_counter()
                try:
                    return original(*args, **kw)
                finally:
                    template_seconds += time.perf_counter() - t

            plugin.render_device = timed  # instance attribute, this process only; removed below
            rates, template_shares, statements = [], [], 0
            try:
                with QueryCounter(engine, keep=0) as queries:
                    for _ in range(rounds):
                        provisioner.cache.clear()
                        template_seconds = 0.0
                        queries.reset()
                        started = time.perf_counter()
                        for path, ua, ip, digest in requests:
                            outcome = await provisioner.fetch(path, user_agent=ua, client_ip=ip, transport="bench",
                                                              authorization=_authorization(digest, path))
                            assert outcome.file is not None, (vendor, path, outcome.reason)
                        elapsed = time.perf_counter() - started
                        rates.append(len(requests) / elapsed)
                        template_shares.append(template_seconds / elapsed)
                        statements = queries.count
            finally:
                del plugin.render_device
            rate = statistics.median(rates)
            out[vendor] = {"devices": devices, "files": len(requests), "configs_per_second": round(rate, 1),
                           "ms_per_device": round(1000 * len(requests) / rate / devices, 2),
                           "template_share": round(statistics.median(template_shares), 2),
                           "sql_per_device": round(statements / devices, 1)}
    finally:
        await engine.dispose()
    return out
