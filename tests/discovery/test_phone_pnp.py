"""Simulated phones find deskprov by SIP plug-and-play, boot, and re-fetch after a check-sync NOTIFY.

Everything runs on 127.0.0.1: the PnP responder joins the group on loopback only and the phone
simulator sets IP_MULTICAST_IF to 127.0.0.1 (falls back to unicast SUBSCRIBEs where the kernel
has no multicast on lo).
"""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from provisioning.discovery.fingerprints import vendor_for_mac
from provisioning.discovery.pnp import PnpResponder
from provisioning.sync import SyncScheduler, SyncState, events_for
from provisioning.vendors import BY_NAME
from simulators.grandstream import GrandstreamProfile
from simulators.phone import Phone
from simulators.snom import SnomProfile
from simulators.yealink import YealinkProfile
from conftest import import_org  # tests/ is on sys.path (rootdir conftest)

LO, GROUP = "127.0.0.1", "224.0.1.75"

ORG = """
organization:
  name: PnP AB
  sip_domain: pnp.sip.example.net
  timezone: Europe/Stockholm
users:
  - {name: Anna Andersson, number: "+46854689901", extension: "201"}
  - {name: Bertil Berg, number: "+46854689902", extension: "202"}
phones:
  - mac: "00:04:13:AA:00:01"
    model: Snom D785
    user: "+46854689901"
    keys:
      - {slot: 1, type: line}
      - {slot: 2, type: blf, target: "202", label: Bertil}
  - mac: "80:5E:C0:AA:00:01"
    model: Yealink T46S
    user: "+46854689901"
    keys:
      - {slot: 1, type: line}
      - {slot: 2, type: blf, target: "202", label: Bertil}
  - mac: "00:0B:82:AA:00:01"
    model: Grandstream GXP2160
    user: "+46854689901"
    keys:
      - {slot: 1, type: line}
      - {slot: 2, type: blf, target: "202", label: Bertil}
"""

PROFILES = {
    "snom": lambda: SnomProfile("D785", "000413AA0001", "10.1.33.33"),
    "yealink": lambda: YealinkProfile("T46S", "805EC0AA0001", "66.86.0.15"),
    "grandstream": lambda: GrandstreamProfile("GXP2160", "000B82AA0001", "1.0.11.3"),
}


def _multicast_on_loopback() -> bool:
    recv, send = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        recv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        recv.bind((GROUP, 0))
        recv.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                        struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton(LO)))
        send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(LO))
        send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        send.bind((LO, 0))
        send.sendto(b"probe", (GROUP, recv.getsockname()[1]))
        recv.settimeout(1.0)
        recv.recvfrom(64)
        return True
    except OSError:
        return False
    finally:
        recv.close()
        send.close()


MULTICAST = _multicast_on_loopback()


class Site:
    """A running deskprov with a PnP responder and a sync scheduler wired the way the lead will:
    PnP sightings and served requests tell the scheduler where devices are and what they fetched."""

    def __init__(self, server, url_for=None) -> None:
        self.server = server
        self.base = server.settings.provisioning_url
        self.sightings = []
        self.sync = SyncScheduler(debounce=0.1, notify_timeout=2.0)
        self.responder = PnpResponder(url_for=url_for or self.url_for, on_sighting=self.on_sighting,
                                      port=0, interface=LO, multicast=MULTICAST, notify_t1=0.1)
        original = server.provisioner.fetch

        async def fetch(raw_path, *, user_agent, client_ip, transport, **kw):
            outcome = await original(raw_path, user_agent=user_agent, client_ip=client_ip, transport=transport, **kw)
            if outcome.mac:
                self.sync.fetched(outcome.mac, raw_path, client_ip, vendor=outcome.vendor, transport=transport)
            return outcome

        server.provisioner.fetch = fetch

    def url_for(self, vendor, model, mac):
        plugin = BY_NAME.get(vendor_for_mac(mac) or "")
        pnp_url = getattr(plugin, "pnp_url", None)
        return pnp_url(self.base, mac) if pnp_url else self.base

    def on_sighting(self, s) -> None:
        self.sightings.append(s)
        if s.mac:
            self.sync.seen(s.mac, s.ip, sip_port=s.port, vendor=vendor_for_mac(s.mac))

    async def __aenter__(self) -> "Site":
        await self.responder.start()
        await self.sync.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.sync.stop()
        await self.responder.stop()

    async def pnp_boot(self, phone: Phone):
        return await phone.boot_pnp(port=self.responder.port, group=GROUP if MULTICAST else LO, timeout=3)


async def _until(predicate, timeout: float = 5.0) -> None:
    async def poll():
        while not predicate():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout)


@pytest.mark.parametrize("vendor", sorted(PROFILES))
async def test_pnp_boot_then_a_key_change_is_pushed(make_server, vendor):
    server = await make_server()
    await import_org(server, ORG)
    phone = Phone(PROFILES[vendor]())
    mac = phone.profile.mac
    async with Site(server) as site:
        state = await site.pnp_boot(phone)
        assert state is not None, phone.pnp
        assert not state.errors, state.errors
        assert state.accounts[1].registered and state.keys[(0, 2)].label == "Bertil"
        expected_url = site.base if vendor != "grandstream" else site.base.rstrip("/") + "/"
        assert phone.pnp.url == expected_url
        sighting = site.sightings[-1]
        assert (sighting.mac, sighting.ip, sighting.port) == (mac, LO, phone.sip_port)

        await phone.listen_for_resync()  # on the port the SUBSCRIBE came from
        await import_org(server, ORG.replace("label: Bertil", "label: Bertil B"))
        site.sync.files_changed(mac)  # the lead wires this to the cache invalidation
        await asyncio.wait_for(phone.resynced.wait(), 5)
        assert phone.resyncs == 1 and phone.resync_events == [events_for(vendor)[0]]
        assert phone.state.keys[(0, 2)].label == "Bertil B" and not phone.state.errors
        await _until(lambda: site.sync.status(mac).state is SyncState.in_sync)
        assert site.sync.status(mac).notified_at is not None
        await phone.stop_listening()


async def test_mac_placeholders_in_the_pnp_url(make_server):
    server = await make_server()
    await import_org(server, ORG)

    def url_for(vendor, model, mac):
        return site.base + ("{mac}.xml" if vendor == "snom" else "$mac.cfg")

    async with Site(server, url_for) as site:
        snom = Phone(PROFILES["snom"]())
        state = await site.pnp_boot(snom)
        # A Snom given a file URL reads that file (MAC uppercase, as in its file names) alone.
        assert state.requested[0] == "000413AA0001.xml" and state.accounts[1].registered, state.requested
        yealink = Phone(PROFILES["yealink"]())
        state = await site.pnp_boot(yealink)
        assert state.accounts[1].registered and not state.errors
        # A reboot goes the same way again.
        again = await yealink.reboot()
        assert again.requested == state.requested


async def test_grandstream_ignores_a_file_url(make_server):
    server = await make_server()
    await import_org(server, ORG)
    async with Site(server, lambda vendor, model, mac: site.base + "cfg$mac.xml") as site:
        phone = Phone(PROFILES["grandstream"]())
        assert await site.pnp_boot(phone) is None
        assert phone.pnp.url.endswith("cfg$mac.xml") and phone.state is None


async def test_no_pnp_server_means_no_url():
    phone = Phone(PROFILES["snom"]())
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind((LO, 0))
    port = probe.getsockname()[1]  # a port nobody answers on
    try:
        assert await phone.boot_pnp(port=port, group=LO, timeout=0.5) is None
    finally:
        probe.close()
    assert phone.pnp.subscribes_sent >= 1 and phone.pnp.url is None
