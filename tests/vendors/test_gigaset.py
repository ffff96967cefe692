"""End to end: simulated Gigaset devices (N870, N670, N510 DECT; P82x desk) boot against the real server.

The simulator (simulators/gigaset.py) reads what it gets with its own parsers, never the server's.

Formats and parameter names, checked with the search tool against the Gigaset pro wiki:
- "The XML provisioning file" https://teamwork.gigaset.com/gigawiki/display/GPPPO/The+XML+provisioning+file
  (N510 ProviderFrame: MAC_ADDRESS, VERSION DDMMYYHHMM, PROFILE_NAME, I_PHONE_SYSTEM, S_SIP_LOGIN_ID_n,
  S_SIP_PASSWORD_n, S_SIP_USER_ID_n, S_SIP_DISPLAYNAME_n, S_SIP_DOMAIN_n, S_SIP_SERVER_n,
  I_SIP_SERVER_PORT_n, S_SIP_REGISTRAR_n);
- "SIP multicast" https://teamwork.gigaset.com/gigawiki/plugins/viewsource/viewpagesrc.action?pageId=1049428309
  (the Nx70 ``<provisioning version="1.1" productID="e2"><nvm><param .../>`` format);
- N510 file names https://teamwork.gigaset.com/gigawiki/plugins/viewsource/viewpagesrc.action?pageId=785974523;
- P82x file names (pro-wiki "Server URL/DHCP") and its Snom-format settings ("Configuration files"
  https://teamwork.gigaset.com/gigawiki/x/jIdYWg, "Provisioning polling"
  https://teamwork.gigaset.com/gigawiki/display/GPPPO/Provisioning+polling, "Local Phonebook - XML format"
  https://teamwork.gigaset.com/gigawiki/display/GPPPO/Local+Phonebook+-+XML+format);
- User-Agents https://teamwork.gigaset.com/gigawiki/pages/viewpage.action?pageId=995885350 and resync
  https://teamwork.gigaset.com/gigawiki/pages/viewpage.action?pageId=1348174511.
NOT verified against the wiki (names as Wazo's Nx70 plugin writes them): SipProvider.N.*,
SipAccount.<handset>.*, DmGlobal.0.NtpServer/TimeZone and the add_hs operation; nor the P82x
User-Agent and key counts.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import aiohttp
import pytest

from conftest import fix_device_credentials  # tests/ is on sys.path
from sqlalchemy import select

from provisioning.model import Device
from provisioning.orgfile import OrgFileError, import_text
from provisioning.vendors import BY_NAME
from simulators.gigaset import GigasetProfile
from simulators.phone import Phone

GOLDEN = Path(__file__).parent / "golden"
N870_MAC, N670_MAC, N510_MAC, P82X_MAC = "7C2F80870001", "589EC6670001", "7C2F80510001", "589EC6820001"

ORG = """
organization:
  name: Gigantisk AB
  tftp_secret_networks: [127.0.0.0/8]  # the lab's TFTP boots come from loopback
  sip_domain: giga.sip.example.net
  timezone: Europe/Stockholm
  device_admin_password: "Adm1n-Secret!"
users:
  - {name: Anna Andersson, number: "+46854689901", extension: "201"}
  - {name: Bertil Berg, number: "+46854689902", extension: "202"}
  - {name: Cecilia Carlsson, number: "+46854689903", extension: "203"}
phonebooks:
  - name: Kunder
    members: all
    contacts:
      - {name: Leverantören AB, number: "+46812345678"}
phones:
  - mac: "7C:2F:80:87:00:01"
    model: Gigaset N870 IP PRO
    user: "+46854689901"
    sip: {username: anna870, password: "s3cret-Anna-870"}
    lines:
      - {index: 2, user: "+46854689902", sip: {username: bertil870, password: "s3cret-Bertil-870"}}
  - mac: "58:9E:C6:67:00:01"
    model: Gigaset N670
    user: "+46854689903"
  - mac: "7C:2F:80:51:00:01"
    model: Gigaset N510
    user: "+46854689902"
    sip: {username: bertil510, password: "s3cret-Bertil-510"}
    lines:
      - {index: 2, user: "+46854689903", sip: {username: cecilia510, password: "s3cret-Cecilia-510"}}
  - mac: "58:9E:C6:82:00:01"
    model: Gigaset P82x
    user: "+46854689903"
    sip: {username: cecilia82x, password: "s3cret-Cecilia-82x"}
    keys:
      - {slot: 1, type: line}
      - {slot: 2, type: blf, target: "201", label: Anna}
      - {slot: 3, type: speed_dial, number: "+46812345678", label: Support}
"""


async def _import(server, text: str = ORG) -> None:
    async with server.sessions() as session:
        await import_text(session, text)


def _http(server) -> str:
    return f"http://127.0.0.1:{server.http_port}/"


def n870(firmware: str = "83.V2.43.0+build.5f0a106", mac: str = N870_MAC) -> Phone:
    return Phone(GigasetProfile("N870", mac, firmware))


def assert_n870(state) -> None:
    assert not state.errors, state.errors
    assert state.requested == [f"{N870_MAC}.xml"]
    assert [(a.index, a.display_name, a.auth_name, a.password, a.registered) for a in state.accounts.values()] == [
        (1, "Anna Andersson", "anna870", "s3cret-Anna-870", True),
        (2, "Bertil Berg", "bertil870", "s3cret-Bertil-870", True),
    ]
    anna = state.accounts[1]
    assert (anna.user_name, anna.server, anna.port, anna.transport) == \
        ("46854689901", "giga.sip.example.net", 5060, "udp")
    assert state.timezone == "Europe/Stockholm"
    assert state.settings["SipAccount.00001.VoiceMailMailbox"] == "*97"
    assert state.keys == {} and not state.warnings


async def test_n870_current_software_boots_over_http(sqlite_server):
    await _import(sqlite_server)
    phone = n870()
    assert phone.profile.user_agent() == f"Gigaset N870 IP PRO/83.V2.43.0+build.5f0a106;{N870_MAC};Handset=250"
    assert_n870(await phone.boot_http(_http(sqlite_server)))


async def test_n870_old_software_without_mac_in_user_agent(sqlite_server):
    await _import(sqlite_server)
    phone = n870(firmware="83.V2.11.0+build.a546b25")
    assert N870_MAC not in phone.profile.user_agent()
    assert_n870(await phone.boot_http(_http(sqlite_server)))


async def test_n870_boots_over_tftp(sqlite_server):
    await _import(sqlite_server)
    assert_n870(await n870().boot_tftp("127.0.0.1", sqlite_server.tftp_port))


async def test_n670_and_n510(sqlite_server):
    await _import(sqlite_server)
    state = await Phone(GigasetProfile("N670", N670_MAC, "83.V2.23.0+build.f68eeed")).boot_http(_http(sqlite_server))
    assert not state.errors and state.accounts[1].registered and state.accounts[1].display_name == "Cecilia Carlsson"
    for boot in ("http", "tftp"):
        phone = Phone(GigasetProfile("N510", N510_MAC, "42.250"))
        state = await (phone.boot_http(_http(sqlite_server)) if boot == "http"
                       else phone.boot_tftp("127.0.0.1", sqlite_server.tftp_port))
        assert not state.errors, state.errors
        assert state.requested == [f"{N510_MAC}.xml"]
        assert [(a.index, a.display_name, a.registered) for a in state.accounts.values()] == \
            [(1, "Bertil Berg", True), (2, "Cecilia Carlsson", True)]
        assert state.accounts[1].server == "giga.sip.example.net"


P82X_FILES = ["GigasetP82x.htm", "GigasetP82x.xml", f"GigasetP82x-{P82X_MAC}.htm", f"{P82X_MAC}.xml",
              f"Gigaset-{P82X_MAC}-tbook.xml"]


@pytest.mark.parametrize("transport", ["http", "tftp"])
async def test_p82x_desk_phone(sqlite_server, transport):
    await _import(sqlite_server)
    phone = Phone(GigasetProfile("P82x", P82X_MAC, "10.1.54.2"))
    state = await (phone.boot_http(_http(sqlite_server)) if transport == "http"
                   else phone.boot_tftp("127.0.0.1", sqlite_server.tftp_port))
    assert not state.errors, state.errors
    assert state.requested == P82X_FILES
    cecilia = state.accounts[1]
    assert cecilia.registered and (cecilia.auth_name, cecilia.password) == ("cecilia82x", "s3cret-Cecilia-82x")
    assert (state.keys[(0, 2)].type, state.keys[(0, 2)].value, state.keys[(0, 2)].extension) == ("blf", "201", "*8")
    assert (state.keys[(0, 3)].type, state.keys[(0, 3)].value) == ("speed_dial", "+46812345678")
    assert state.contacts == [{"name": "Leverantören AB", "numbers": ["+46812345678"], "book": "tbook"}]
    assert state.timezone == "SWE+1" and state.language == "Svenska"


async def test_wrong_mac_case_and_foreign_names_are_not_served(sqlite_server):
    await _import(sqlite_server)
    ua = {"User-Agent": f"Gigaset N870 IP PRO/83.V2.43.0+build.5f0a106;{N870_MAC};Handset=250"}
    async with aiohttp.ClientSession() as http:
        for name in (f"{N870_MAC.lower()}.xml", f"snomD785-{N870_MAC}.htm", f"{N670_MAC}.xml"):
            async with http.get(_http(sqlite_server) + name, headers=ua) as resp:
                assert resp.status == 404, name
    gigaset = BY_NAME["gigaset"]
    assert gigaset.match_path("GigasetP82x-firmware.htm") is None
    assert gigaset.match_user_agent("Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 x 000413922D24)") is None
    assert gigaset.match_user_agent("Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01") is None
    info = gigaset.match_user_agent("N720-DM-PRO/70.040.00.000.000")
    assert (info.vendor, info.model, info.mac) == ("gigaset", "N720", None)


NO_MODEL = """
organization: {tftp_secret_networks: [127.0.0.0/8], name: Lärande AB, sip_domain: l.example.net}
users:
  - {name: Cecilia, number: "+46854689931", extension: "301"}
phones:
  - {mac: "7C:2F:80:AA:00:01", user: "+46854689931"}
  - {mac: "7C:2F:80:AA:00:02", user: "+46854689931"}
  - {mac: "7C:2F:80:AA:00:03", user: "+46854689931"}
"""


async def _device(server, mac: str) -> Device:
    async with server.sessions() as session:
        return (await session.execute(select(Device).where(Device.mac == mac))).scalar_one()


async def test_registered_by_mac_alone_learns_model_from_first_request(sqlite_server):
    await _import(sqlite_server, NO_MODEL)
    state = await n870(mac="7C2F80AA0001").boot_http(_http(sqlite_server))
    assert state.accounts[1].registered and not state.errors
    device = await _device(sqlite_server, "7c2f80aa0001")
    assert (device.vendor, device.model, device.firmware) == ("gigaset", "N870", "83.V2.43.0+build.5f0a106")
    # No MAC in the User-Agent: the MAC comes from the path.
    state = await n870(mac="7C2F80AA0002", firmware="83.V2.11.0+build.a546b25").boot_http(_http(sqlite_server))
    assert state.accounts[1].registered
    assert (await _device(sqlite_server, "7c2f80aa0002")).model == "N870"


async def test_unknown_gigaset_model_gets_the_generic_profile(sqlite_server, caplog):
    caplog.set_level(logging.INFO, "deskprov.serve")
    await _import(sqlite_server, NO_MODEL)
    phone = Phone(GigasetProfile("N999", "7C2F80AA0003", "83.V2.70.0"))
    state = await phone.boot_http(_http(sqlite_server))
    assert not state.errors and state.accounts[1].registered
    assert (await _device(sqlite_server, "7c2f80aa0003")).model == "N999"
    assert any("unknown model 'N999'" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("phone, expected", [
    ('{mac: "7C:2F:80:87:00:09", model: Gigaset N870, user: "+46854689901", '
     'keys: [{slot: 1, type: blf, target: "202"}]}', "is a DECT base: its handsets have no programmable keys"),
    ('{mac: "58:9E:C6:82:00:09", model: Gigaset P82x, user: "+46854689901", keys: [{slot: 13, type: line}]}',
     "has keys 1-12"),
])
async def test_keys_the_model_does_not_have_are_refused_at_import(sqlite_server, phone, expected):
    text = ORG.split("phones:")[0] + "phones:\n  - " + phone + "\n"
    with pytest.raises(OrgFileError) as err:
        await _import(sqlite_server, text)
    assert expected in str(err.value)


def test_resync_and_reboot_events():
    gigaset = BY_NAME["gigaset"]
    assert gigaset.resync_event == "check-sync;reboot=false"
    assert gigaset.reboot_event == "check-sync;reboot=true"


@pytest.mark.parametrize("model, mac, ua", [
    ("N870", N870_MAC, f"Gigaset N870 IP PRO/83.V2.43.0+build.5f0a106;{N870_MAC};Handset=250"),
    ("N510", N510_MAC, "Gigaset N510 IP PRO/42.250"),
    ("P82x", P82X_MAC, f"Mozilla/4.0 (compatible; GigasetP82x-SIP 10.1.54.2 {P82X_MAC})"),
])
async def test_golden(golden_server, model, mac, ua):
    sqlite_server = golden_server
    """Byte-for-byte: each device's own file from the fixed organisation above."""
    await _import(sqlite_server)
    await fix_device_credentials(sqlite_server)  # the golden files carry them
    async with aiohttp.ClientSession() as http:
        async with http.get(_http(sqlite_server) + f"{mac}.xml", headers={"User-Agent": ua}) as resp:
            assert resp.status == 200
            body = await resp.read()
    golden = GOLDEN / f"gigaset-{model}.xml"
    if os.environ.get("DESKPROV_UPDATE_GOLDEN"):
        golden.write_bytes(body)
    assert body == golden.read_bytes()


@pytest.mark.parametrize("ua, model, firmware, mac", [
    ("Gigaset N870 IP PRO/83.V2.43.0+build.5f0a106;7C2F80ABCDEF;Handset=250", "N870", "83.V2.43.0+build.5f0a106",
     "7c2f80abcdef"),
    ("Gigaset N670 IP PRO/83.V2.23.0+build.f68eeed;589EC600C8A9", "N670", "83.V2.23.0+build.f68eeed", "589ec600c8a9"),
    ("Gigaset N610 IP PRO/83.V2.64.0-160-g758db0bf;589EC67C2479;Handset=20", "N610", "83.V2.64.0-160-g758db0bf",
     "589ec67c2479"),
    ("Gigaset N720 DM PRO/70.089.00.000.000;7C2F80CA21E4", "N720", "70.089.00.000.000", "7c2f80ca21e4"),
    ("N720-DM-PRO/70.040.00.000.000", "N720", "70.040.00.000.000", None),
    ("Gigaset N510 IP PRO/42.250", "N510", "42.250", None),
    ("Mozilla/4.0 (compatible; GigasetP82x-SIP 10.1.54.2 589EC6820001)", "P82x", "10.1.54.2", "589ec6820001"),
])
def test_user_agents(ua, model, firmware, mac):
    info = BY_NAME["gigaset"].match_user_agent(ua)
    assert (info.vendor, info.model, info.firmware, info.mac) == ("gigaset", model, firmware, mac)
    assert BY_NAME["snom"].match_user_agent(ua) is None


async def test_dect_bases_get_no_phonebook_file_and_desk_phones_no_dect_file(sqlite_server):
    await _import(sqlite_server)
    async with aiohttp.ClientSession() as http:
        for name, ua in ((f"Gigaset-{N870_MAC}-tbook.xml", f"Gigaset N870 IP PRO/83.V2.43.0;{N870_MAC}"),
                         (f"GigasetP82x-{N870_MAC}.htm", f"Gigaset N870 IP PRO/83.V2.43.0;{N870_MAC}"),
                         ("GigasetN870.htm", f"Gigaset N870 IP PRO/83.V2.43.0;{N870_MAC}")):
            async with http.get(_http(sqlite_server) + name, headers={"User-Agent": ua}) as resp:
                assert resp.status == 404, name
