"""mDNS on loopback: deskprov advertises itself, and identifies phones that announce themselves.

Every zeroconf instance here is bound to 127.0.0.1 (IPv4 only): nothing goes to another interface.
"""

from __future__ import annotations

import asyncio

import pytest
from zeroconf import IPVersion, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from provisioning.discovery.mdns import ADVERTISED_SUBTYPE, ADVERTISED_TYPE, MdnsDiscovery, identify_service
from simulators.mdns_phone import MdnsPhone

LO = ["127.0.0.1"]


async def test_deskprov_advertises_its_provisioning_url_under_its_subtype():
    url = "http://127.0.0.1:8080/"
    async with MdnsDiscovery(interfaces=LO, cooperating_responders=True) as mdns:
        await mdns.advertise(url, instance="deskprov test")
        tool = AsyncZeroconf(interfaces=LO, ip_version=IPVersion.V4Only)  # e.g. a technician's tool
        found: asyncio.Queue = asyncio.Queue()

        def on_change(zeroconf, service_type, name, state_change):
            if state_change is ServiceStateChange.Added:
                found.put_nowait((service_type, name))

        browser = AsyncServiceBrowser(tool.zeroconf, [ADVERTISED_SUBTYPE, ADVERTISED_TYPE], handlers=[on_change])
        try:
            seen = {await asyncio.wait_for(found.get(), 5), await asyncio.wait_for(found.get(), 5)}
            assert seen == {(ADVERTISED_SUBTYPE, f"deskprov test.{ADVERTISED_TYPE}"),
                            (ADVERTISED_TYPE, f"deskprov test.{ADVERTISED_TYPE}")}
            info = AsyncServiceInfo(ADVERTISED_TYPE, f"deskprov test.{ADVERTISED_TYPE}")
            assert await info.async_request(tool.zeroconf, 3000)
            assert info.parsed_addresses() == ["127.0.0.1"] and info.port == 8080
            assert info.properties[b"url"] == url.encode() and info.properties[b"path"] == b"/"
            assert info.properties[b"product"] == b"deskprov"
        finally:
            await browser.async_cancel()
            await tool.async_close()


async def _sightings(*phones: MdnsPhone, expect: int, **kwargs):
    got: dict = {}
    done = asyncio.Event()

    def on_sighting(s):
        got[s.name] = s
        if len(got) >= expect:
            done.set()

    async with MdnsDiscovery(interfaces=LO, on_sighting=on_sighting, cooperating_responders=True, **kwargs) as mdns:
        await mdns.advertise("http://127.0.0.1:8080/")  # our own: never reported as a device
        for phone in phones:
            await phone.start()
        try:
            await mdns.browse()
            await asyncio.wait_for(done.wait(), 5)
            await asyncio.sleep(0.2)  # anything else that would (wrongly) show up
        finally:
            for phone in phones:
                await phone.stop()
    return got


async def test_announcing_phones_are_identified():
    phones = [
        MdnsPhone(vendor="Yealink", model="SIP-T46S", mac="80:5e:c0:aa:bb:01", firmware="66.86.0.15"),
        # MAC only in the instance name, no TXT at all: the vendor comes from the name.
        MdnsPhone(vendor=None, model=None, mac=None, instance="snomD785-000413922D24", txt={}, port=443),
        # A SIP UA announcement with an OUI as the only vendor clue.
        MdnsPhone(vendor=None, model=None, mac=None, instance="GXP2160", txt={"mac": "000b82aabb02"},
                  service_types=["_sip._udp.local."], port=5060),
        # Not a phone of ours: ignored.
        MdnsPhone(vendor="Brother", model="HL-L2350DW", mac="3c:2a:f4:00:00:01", instance="Brother HL-L2350DW"),
    ]
    got = await _sightings(*phones, expect=3)
    assert set(got) == {"Yealink SIP-T46S (80:5E:C0:AA:BB:01)", "snomD785-000413922D24", "GXP2160"}
    yealink = got["Yealink SIP-T46S (80:5E:C0:AA:BB:01)"]
    assert (yealink.how, yealink.mac, yealink.ip, yealink.vendor, yealink.model, yealink.firmware) == \
        ("mdns", "805ec0aabb01", "127.0.0.1", "yealink", "SIP-T46S", "66.86.0.15")
    assert yealink.details["service"] == "_http._tcp.local." and yealink.port == 80
    snom = got["snomD785-000413922D24"]
    assert (snom.mac, snom.vendor, snom.model) == ("000413922d24", "snom", "D785")
    gs = got["GXP2160"]
    assert (gs.mac, gs.vendor, gs.port, gs.details["service"]) == ("000b82aabb02", "grandstream", 5060,
                                                                   "_sip._udp.local.")


async def test_unknown_devices_are_reported_when_asked():
    printer = MdnsPhone(vendor="Brother", model="HL-L2350DW", mac="3c:2a:f4:00:00:01", instance="Brother HL")
    got = await _sightings(printer, expect=1, only_known=False)
    assert got["Brother HL"].vendor is None and got["Brother HL"].mac == "3c2af4000001"


@pytest.mark.parametrize(("name", "server", "txt", "expected"), [
    ("Yealink SIP-T54W 805EC0112233._http._tcp.local.", None, {},
     ("yealink", "SIP-T54W", None, "805ec0112233")),
    ("Phone._http._tcp.local.", "SEP0021A0112233.local.", {b"manufacturer": b"Cisco Systems, Inc.",
                                                           b"model": b"CP-8841-3PCC"},
     ("cisco", "CP-8841-3PCC", None, "0021a0112233")),
    ("VVX 450._http._tcp.local.", None, {b"vendor": b"Polycom", b"macaddress": b"64-16-7F-11-22-33",
                                         b"firmware": b"6.4.0.1234"},
     ("poly", "VVX450", "6.4.0.1234", "64167f112233")),
    ("Fanvil X4._sip._udp.local.", None, {b"fw": b"2.10.2.6887"}, ("fanvil", "X4", "2.10.2.6887", None)),
    ("web._http._tcp.local.", None, {b"hwaddr": b"0c:38:3e:07:e1:6c"}, ("fanvil", None, None, "0c383e07e16c")),
    ("printer._http._tcp.local.", None, {b"ty": b"Brother HL"}, (None, None, None, None)),
    ("ff:ff:ff:ff:ff:ff._http._tcp.local.", None, {}, (None, None, None, None)),  # broadcast: no MAC
])
def test_identify_service(name, server, txt, expected):
    type_ = name.split(".", 1)[1] if name.count("._") == 2 else name[name.index("._") + 1:]
    assert identify_service(name, type_, server, txt) == expected


async def test_the_server_advertises_and_puts_announcing_phones_in_the_inbox(make_server):
    from provisioning.discovery.inbox import Inbox

    server = await make_server(mdns_enabled=True)
    phone = MdnsPhone(vendor="Yealink", model="T54W", mac="80:5e:c0:aa:77:01", firmware="96.86.0.70",
                      instance="Yealink T54W 805EC0AA7701", interfaces=LO)
    tool = AsyncZeroconf(interfaces=LO, ip_version=IPVersion.V4Only)
    try:
        info = AsyncServiceInfo(ADVERTISED_TYPE, server.mdns._advertised[0].name)
        assert await info.async_request(tool.zeroconf, 3000)
        assert info.properties[b"url"] == server.settings.provisioning_url.encode()
        await phone.start()
        for _ in range(100):
            await server.inbox.flush()
            async with server.sessions() as session:
                if any(e.mac == "805ec0aa7701" for e in await Inbox.unbound(session)):
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the announcing phone never reached the inbox")
    finally:
        await phone.stop()
        await tool.async_close()
