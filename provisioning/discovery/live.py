"""``deskprov discover``: every discovery channel at once for a while, as a live table.

What it finds goes into the device inbox (the same table the server's own sightings fill), so
the technician binds from the API, the web page or ``deskprov bind`` right after.
"""

from __future__ import annotations

import asyncio
import time

from rich.console import Console
from rich.live import Live
from rich.table import Table

from provisioning.changes import tracked_sessionmaker
from provisioning.db import engine_for, upgrade
from provisioning.discovery.inbox import Inbox
from provisioning.discovery.mdns import MdnsDiscovery
from provisioning.discovery.pnp import PnpResponder
from provisioning.discovery.sighting import Sighting
from provisioning.discovery.snmp import SnmpResult, expand_targets, scan
from provisioning.settings import Settings
from provisioning.vendors import BY_NAME


def _table(found: dict[str, Sighting], progress: str) -> Table:
    table = Table(title=f"deskprov discover — {progress}", expand=False)
    for column in ("MAC", "seen by", "address", "vendor", "model", "firmware"):
        table.add_column(column)
    for sighting in sorted(found.values(), key=lambda s: (s.vendor or "", s.mac or "")):
        table.add_row(sighting.mac or "?", sighting.how, sighting.ip, sighting.vendor or "", sighting.model or "",
                      sighting.firmware or "")
    return table


async def discover(settings: Settings, *, snmp: list[str], community: str, mdns: bool, pnp: bool,
                   interface: str, seconds: float, snmp_port: int = 161, console: Console | None = None) -> int:
    if not (snmp or mdns or pnp):
        raise ValueError("say what to use: --snmp CIDR, --mdns and/or --pnp")
    targets = [t for cidr in snmp for t in expand_targets([cidr], port=snmp_port)] if snmp else []
    console = console or Console()
    engine = engine_for(settings)
    await upgrade(engine)
    inbox = Inbox(tracked_sessionmaker(engine, []))
    found: dict[str, Sighting] = {}
    scanned = 0

    def saw(sighting: Sighting | None) -> None:
        if sighting is not None and sighting.mac:
            found[sighting.mac] = sighting
            inbox.saw(sighting)

    def snmp_result(result: SnmpResult) -> None:
        nonlocal scanned
        scanned += 1
        saw(result.sighting)

    def pnp_seen(s) -> None:
        if s.mac:
            vendor = (s.vendor or "").lower()
            saw(Sighting(mac=s.mac, ip=s.ip, how="pnp", vendor=vendor if vendor in BY_NAME else None,
                         model=s.model, firmware=s.firmware, port=s.port))

    responder = browser = None
    started = time.monotonic()
    try:
        if pnp:
            responder = PnpResponder(url_for=lambda v, m, mac: settings.provisioning_url, on_sighting=pnp_seen,
                                     group=settings.pnp_group, port=settings.pnp_port, interface=interface)
            await responder.start()
        if mdns:
            browser = MdnsDiscovery(interfaces=(interface,), on_sighting=saw)
            await browser.browse()
        scan_task = asyncio.create_task(scan(targets, community=community, on_result=snmp_result)) if targets else None
        with Live(_table(found, "starting"), console=console, refresh_per_second=4) as live:
            while True:
                elapsed = time.monotonic() - started
                progress = f"{elapsed:4.0f}/{seconds:.0f} s"
                if targets:
                    progress += f", SNMP {scanned}/{len(targets)} hosts"
                live.update(_table(found, progress))
                snmp_done = scan_task is None or scan_task.done()
                if elapsed >= seconds and snmp_done:
                    break
                await asyncio.sleep(0.25)
        if scan_task is not None:
            await scan_task
    finally:
        if responder is not None:
            await responder.stop()
        if browser is not None:
            await browser.stop()
        await inbox.stop()
        await engine.dispose()
    console.print(f"{len(found)} device(s) found and put in the inbox; bind with: deskprov bind MAC USER")
    return 0
