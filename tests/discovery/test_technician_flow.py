"""Issue "Discovery", end to end on the real server: a simulated Snom, Yealink and Grandstream
find deskprov by SIP plug-and-play, boot (they are not bound yet, so they get nothing secret),
appear in the inbox, get bound with `deskprov bind` (another process), receive a NOTIFY and come
back with their account; a key change later is pushed the same way."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from provisioning.discovery.inbox import Inbox
from provisioning.sync import events_for
from simulators.grandstream import GrandstreamProfile
from simulators.phone import Phone
from simulators.snom import SnomProfile
from simulators.yealink import YealinkProfile
from conftest import import_org
from discovery.test_phone_pnp import GROUP, LO, MULTICAST

ORG = """
organization: {name: Fält AB, sip_domain: falt.sip.example.net}
users:
  - {name: Anna Andersson, number: "+46854689901", extension: "201"}
  - {name: Bertil Berg, number: "+46854689902", extension: "202"}
"""

PHONES = {
    "snom": (lambda: SnomProfile("D785", "000413AA0101", "10.1.33.33"), "Snom D785"),
    "yealink": (lambda: YealinkProfile("T46S", "805EC0AA0101", "66.86.0.15"), "Yealink T46S"),
    "grandstream": (lambda: GrandstreamProfile("GXP2160", "000B82AA0101", "1.0.11.3"), "Grandstream GXP2160"),
}


def deskprov(server, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKPROV_")}
    env["DESKPROV_DB"] = server.settings.database_url
    env["DESKPROV_SECRET_KEY"] = server.settings.secret_key
    result = subprocess.run([sys.executable, "-m", "provisioning.cli", *args], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def until(predicate, timeout: float = 10.0) -> None:
    async def poll():
        while not predicate():
            await asyncio.sleep(0.05)
    await asyncio.wait_for(poll(), timeout)


@pytest.mark.parametrize("vendor", sorted(PHONES))
async def test_found_by_pnp_bound_by_the_technician_and_kept_in_sync(make_server, vendor):
    server = await make_server(resync_debounce_seconds=0)
    await import_org(server, ORG)
    profile, model = PHONES[vendor]
    phone = Phone(profile())
    mac = phone.profile.mac

    first = await phone.boot_pnp(port=server.pnp.port, group=GROUP if MULTICAST else LO, timeout=3)
    assert first is not None, phone.pnp
    assert not any(a.registered for a in first.accounts.values())  # nothing for an unbound device
    await phone.listen_for_resync()

    await server.inbox.flush()
    async with server.sessions() as session:
        entry = next(e for e in await Inbox.unbound(session) if e.mac == mac)
    assert (entry.vendor, entry.ip) == (vendor, LO)
    listing = await asyncio.to_thread(deskprov, server, "inbox")
    assert mac in listing

    out = await asyncio.to_thread(deskprov, server, "bind", ":".join(mac[i:i + 2] for i in range(0, 12, 2)),
                                  "201")
    assert f"bound {mac}" in out
    await asyncio.wait_for(phone.resynced.wait(), 10)  # the server saw the other process's change
    assert phone.resync_events[0] == events_for(vendor)[0]
    await until(lambda: phone.state is not None and 1 in phone.state.accounts
                and phone.state.accounts[1].registered)
    async with server.sessions() as session:
        assert mac not in [e.mac for e in await Inbox.unbound(session)]

    phone.resynced.clear()
    await import_org(server, ORG + f'phones:\n  - mac: "{mac}"\n    model: {model}\n    user: "+46854689901"\n'
                     '    keys:\n      - {slot: 2, type: blf, target: "202", label: Bertil}\n')
    await asyncio.wait_for(phone.resynced.wait(), 10)
    await until(lambda: (0, 2) in phone.state.keys and phone.state.keys[(0, 2)].label == "Bertil")
    assert phone.state.keys[(0, 2)].type == "blf"
    await phone.stop_listening()
