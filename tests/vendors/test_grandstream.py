"""Grandstream end to end: a GXP2160 on old firmware (XML v1, line keys + MPKs + GXP2200EXT), a
GRP2614 on current firmware (XML v2, VPKs + MPKs) and an HT802 ATA (one account per FXS port) boot
against the real server over HTTP and TFTP and are read back by the simulator's own Grandstream
parser (simulators/grandstream.py), never by the server's code.

Parameter names were checked with the search tool against (details and the unverified rest in
provisioning/vendors/grandstream.py):

- Grandstream "Configuration Template For GXP21xx Firmware Version 1.0.5.32" (kept in FusionPBX
  ``resources/templates/provision/grandstream/gxp21xx/{$mac}.xml``): account P-values of accounts 1-6,
  line keys P1363.., multi-purpose keys P323/P301.. (1-7) and P353.. (8-18), extension board
  P23000.., P2, P30, P51, P193/P194, P212, P237, P330-P333, P1347, P1362.
- Grandstream SIP Device Provisioning Guide (file order, lowercase MAC),
  https://documentation.grandstream.com/knowledge-base/sip-device-provisioning-guide/ and the
  GXP2130/2140/2160 User Manual fw 1.0.1.14 p.81 (old order: cfg<mac>.xml, then cfg<mac>, then cfg.xml).
- XML Based Downloadable Phone Book Guide GXP21xx fw 1.0.5.15 p.12-13 (``<AddressBook>``).
- Wazo's production templates ``wazo_grandstream/common/templates/base.tpl`` / ``base_v2.tpl`` and
  ``common.py`` (P64 zone string, v2 item names, ``pks.vpk``/``pks.mpk`` key modes).
- vendors.md section 8 (``resync`` / ``check-sync;reboot=true``).

Golden files: ``tests/vendors/golden/grandstream-*``; regenerate with ``DESKPROV_UPDATE_GOLDEN=1``
after checking the difference by hand.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import aiohttp
import pytest

from sqlalchemy import select

from provisioning.model import Device
from provisioning.orgfile import OrgFileError, import_text, parse
from provisioning.server import Server
from provisioning.vendors import BY_NAME
from provisioning.vendors.base import FileKind
from provisioning.vendors.grandstream import GS_CET, gs_timezone
from simulators.grandstream import GrandstreamProfile
from simulators.phone import Phone
from conftest import fix_device_credentials, make_settings  # tests/ is on sys.path (rootdir conftest)

GOLDEN = Path(__file__).parent / "golden"
GS = BY_NAME["grandstream"]
GXP_MAC, GRP_MAC, HT_MAC = "000b82aabb01", "c074adaabb02", "c074adaabb03"

ORG = """
organization:
  name: Strömmen AB
  tftp_secret_networks: [127.0.0.0/8]  # the lab's TFTP boots come from loopback
  sip_domain: gs.sip.example.net
  timezone: Europe/Stockholm
  vlan: 30
  outbound_proxy: sbc.example.net:5070
  device_admin_password: "Adm1n-Grand!"
users:
  - {name: Anna Andersson, number: "+46854689901", extension: "201"}
  - {name: Bertil Berg, number: "+46854689902", extension: "202"}
  - {name: Cecilia Carlsson, number: "+46854689903", extension: "203"}
  - {name: David Dahl, number: "+46854689904", extension: "204"}
phonebooks:
  - name: Kunder
    members: all
    contacts:
      - {name: Åkeri & Söner AB, number: "+46812345678", mobile: "+46701234567"}
      - {name: Zeta <Konsult>, number: "+46855512345"}
phones:
  - mac: "00:0B:82:AA:BB:01"
    model: Grandstream GXP2160
    user: "+46854689901"
    sip: {username: anna2160, password: "s3cret-Anna-2160"}
    keys:
      - {slot: 1, type: line}
      - {slot: 2, type: blf, target: "202", label: Bertil}
      - {slot: 3, type: speed_dial, number: "+46812345678", label: Support}
      - {slot: 4, type: park, target: "701", label: Park 1}
      - {slot: 7, type: blf, target: "203", label: Cecilia}
      - {slot: 8, type: dtmf, target: "*3", label: Rec}
      - {slot: 9, type: voicemail, label: Röstbrevlåda}
      - {slot: 16, type: group_toggle, label: Växel}
      - {module: 1, slot: 3, type: blf, target: "204", label: David}
  - mac: "C0:74:AD:AA:BB:02"
    model: Grandstream GRP2614
    user: "+46854689902"
    sip: {username: bertil2614, password: "s3cret-Bertil-2614"}
    keys:
      - {slot: 1, type: line}
      - {slot: 2, type: blf, target: "201", label: Anna}
      - {slot: 3, type: dtmf, target: "*3", label: Rec}
      - {slot: 4, type: park, target: "702", label: Park 2}
      - {slot: 5, type: group_toggle, label: Växel}
      - {slot: 17, type: speed_dial, number: "+46812345678", label: Support}
      - {slot: 18, type: voicemail, label: Röstbrevlåda}
  - mac: "C0:74:AD:AA:BB:03"
    model: Grandstream HT802
    user: "+46854689903"
    sip: {username: cecilia802, password: "s3cret-Port-One"}
    lines:
      - {index: 2, user: "+46854689904", sip: {username: david802, password: "s3cret-Port-Two"}}
"""

CONTACTS = [  # the server sorts by name: Z before Å
    ("Zeta <Konsult>", ("+46855512345",)),
    ("Åkeri & Söner AB", ("+46812345678", "+46701234567")),
]




def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _start(tmp_path, **overrides) -> Server:
    from api.app import make_admin_app

    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'deskprov.sqlite3'}", **overrides)
    srv = Server(settings, admin_app=make_admin_app)
    await srv.start()
    return srv


@pytest.fixture
async def gs_server(tmp_path):
    """Like ``sqlite_server`` but on a known HTTP port: the config names the phonebook folder by
    host:port, and with ``http_port = 0`` the provisioning URL would say port 0."""
    srv = await _start(tmp_path, http_port=_free_port())
    yield srv
    await srv.stop()


@pytest.fixture
async def org_server(gs_server):
    await _import(gs_server, ORG)
    return gs_server


async def _import(server, text: str) -> None:
    async with server.sessions() as session:
        await import_text(session, text)


async def boot(server, profile: GrandstreamProfile, transport: str):
    phone = Phone(profile)
    if transport == "http":
        return await phone.boot_http(f"http://127.0.0.1:{server.http_port}/")
    return await phone.boot_tftp("127.0.0.1", server.tftp_port)


def assert_swedish_time(state) -> None:
    assert state.timezone == state.timezone_name == GS_CET
    assert state.language == "sv"


# -- desk phones and ATA -------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["http", "tftp"])
async def test_gxp2160_old_firmware(org_server, transport):
    profile = GrandstreamProfile("GXP2160", GXP_MAC, "1.0.5.32", hardware="V1.5A")
    assert profile.user_agent() == f"Grandstream Model HW GXP2160 V1.5A SW 1.0.5.32 DevId {GXP_MAC}"
    state = await boot(org_server, profile, transport)
    assert state.errors == []
    # Old firmware: the XML first, then the binary name (404), no cfg.xml since the XML was found.
    assert state.requested[:2] == [f"cfg{GXP_MAC}.xml", f"cfg{GXP_MAC}"]
    assert state.boot_settings[f"format:cfg{GXP_MAC}.xml"] == "v1"
    anna = state.accounts[1]
    assert anna.registered
    assert (anna.display_name, anna.label, anna.user_name, anna.auth_name, anna.password) == \
        ("Anna Andersson", "201", "46854689901", "anna2160", "s3cret-Anna-2160")
    assert (anna.server, anna.port, anna.transport) == ("gs.sip.example.net", 5060, "udp")
    s = state.settings
    assert (s["P48"], s["P33"], s["P1347"]) == ("sbc.example.net:5070", "*97", "*8")
    keys = state.keys
    assert keys[(0, 1)].type == "line" and keys[(0, 1)].source == "P1363"
    assert (keys[(0, 2)].type, keys[(0, 2)].value, keys[(0, 2)].label, keys[(0, 2)].extension) == \
        ("blf", "202", "Bertil", "*8")
    assert (keys[(0, 3)].type, keys[(0, 3)].value) == ("speed_dial", "+46812345678")
    assert (keys[(0, 4)].type, keys[(0, 4)].value) == ("park", "701")
    assert keys[(0, 5)].type == "line"  # unprogrammed line keys go back to line
    mpk1 = keys[(0, 7)]  # first multi-purpose key
    assert (mpk1.type, mpk1.value, mpk1.label, mpk1.source, mpk1.extension) == \
        ("blf", "203", "Cecilia", "P323", "*8")
    assert (keys[(0, 8)].type, keys[(0, 8)].value) == ("dtmf", "*3")
    assert (keys[(0, 9)].type, keys[(0, 9)].value) == ("voicemail", "*97")
    group = keys[(0, 16)]  # MPK 10: the P353 series
    assert (group.type, group.value, group.source) == ("speed_dial", "*45", "P361")
    assert keys[(0, 10)].type == "none"
    ext = keys[(1, 3)]
    assert (ext.type, ext.value, ext.label, ext.source) == ("blf", "204", "David", "P23010")
    assert_swedish_time(state)
    assert (s["P2"], s["P51"], s["P30"]) == ("Adm1n-Grand!", "30", "pool.ntp.org")
    assert 1296 <= int(s["P193"]) <= 1584  # 1440 minutes +-10 %, fixed per MAC
    assert (s["P330"], s["P331"]) == ("1", f"127.0.0.1:{org_server.http_port}/pb{GXP_MAC}")


@pytest.mark.parametrize("transport", ["http", "tftp"])
async def test_grp2614_current_firmware(org_server, transport):
    state = await boot(org_server, GrandstreamProfile("GRP2614", GRP_MAC, "1.0.5.15"), transport)
    assert state.errors == []
    assert state.requested[:2] == [f"cfg{GRP_MAC}", f"cfg{GRP_MAC}.xml"]
    assert state.boot_settings[f"format:cfg{GRP_MAC}.xml"] == "v2"
    bertil = state.accounts[1]
    assert bertil.registered
    assert (bertil.display_name, bertil.user_name, bertil.auth_name, bertil.password) == \
        ("Bertil Berg", "46854689902", "bertil2614", "s3cret-Bertil-2614")
    assert (bertil.server, bertil.port) == ("gs.sip.example.net", 5060)
    keys = state.keys
    assert (keys[(0, 1)].type, keys[(0, 1)].line) == ("line", 1)
    assert (keys[(0, 2)].type, keys[(0, 2)].value, keys[(0, 2)].extension) == ("blf", "201", "*8")
    assert (keys[(0, 3)].type, keys[(0, 3)].value) == ("dtmf", "*3")
    assert (keys[(0, 4)].type, keys[(0, 4)].value) == ("park", "702")
    assert (keys[(0, 5)].type, keys[(0, 5)].value) == ("speed_dial", "*45")
    assert keys[(0, 6)].type == "none"
    mpk = keys[(0, 17)]
    assert (mpk.type, mpk.value, mpk.source, mpk.line) == ("speed_dial", "+46812345678", "pks.mpk.1", 1)
    assert (keys[(0, 18)].type, keys[(0, 18)].value) == ("voicemail", "*97")
    assert_swedish_time(state)
    assert state.settings["users.admin.password"] == "Adm1n-Grand!"


@pytest.mark.parametrize("transport", ["http", "tftp"])
async def test_ht802_fxs_ports_are_accounts(org_server, transport):
    state = await boot(org_server, GrandstreamProfile("HT802", HT_MAC, "1.0.43.11", hardware="V1.1A"), transport)
    assert state.errors == []
    assert state.requested == [f"cfg{HT_MAC}", f"cfg{HT_MAC}.xml"]  # no phone book on an ATA
    assert [(a.index, a.display_name, a.registered) for a in state.accounts.values()] == \
        [(1, "Cecilia Carlsson", True), (2, "David Dahl", True)]
    assert state.settings["P404"] == "46854689904"  # port 2 is the P4xx account block
    assert state.accounts[1].auth_name != state.accounts[2].auth_name
    assert state.keys == {} and state.contacts == []
    assert state.timezone == GS_CET


@pytest.mark.parametrize("transport", ["http", "tftp"])
async def test_phonebook_folder_end_to_end(org_server, transport):
    state = await boot(org_server, GrandstreamProfile("GXP2160", GXP_MAC, "1.0.5.32"), transport)
    assert state.requested[-1] == f"http://127.0.0.1:{org_server.http_port}/pb{GXP_MAC}/phonebook.xml"
    assert state.errors == []
    assert [(c["name"], tuple(c["numbers"])) for c in state.contacts] == CONTACTS


def test_phonebook_file_and_its_parser():
    """The phone book file itself, rendered by the plugin and read by the simulator's parser."""
    from provisioning.templating import PhoneTemplates
    from provisioning.vendors.base import ContactContext, DeviceContext
    from provisioning.settings import Settings
    from simulators.grandstream import parse_phonebook

    ctx = DeviceContext(provisioning_url="http://prov.example.se/", ntp_server="ntp", timezone="Europe/Stockholm",
                        language="sv", resync_minutes=1440, mac=GXP_MAC, model=GS.models["GXP2160"],
                        contacts=(ContactContext("Zeta <Konsult>", "+46855512345"),
                                  ContactContext("Åkeri & Söner AB", "+46812345678", "+46701234567")))
    request = GS.match_path(f"pb{GXP_MAC}/phonebook.xml")
    assert (request.kind, request.mac) == (FileKind.device, GXP_MAC)
    body = GS.render_device(request, ctx, PhoneTemplates(Settings().templates_dir))
    assert [(c["name"], tuple(c["numbers"])) for c in parse_phonebook(body)] == CONTACTS


# -- identification -----------------------------------------------------------------------------

NO_MODEL = """
organization: {tftp_secret_networks: [127.0.0.0/8], name: Lärande AB, sip_domain: l.example.net}
users:
  - {name: Cecilia, number: "+46854689931", extension: "301"}
  - {name: David, number: "+46854689932", extension: "302"}
phones:
  - {mac: "00:0B:82:CC:00:01", user: "+46854689931"}
  - {mac: "00:0B:82:CC:00:02", user: "+46854689932"}
  - {mac: "00:0B:82:CC:00:03", user: "+46854689932"}
  - {mac: "00:0B:82:CC:00:04", model: Grandstream GXP9999, user: "+46854689932"}
"""


async def _device(server, mac: str) -> Device:
    async with server.sessions() as session:
        return (await session.execute(select(Device).where(Device.mac == mac))).scalar_one()


async def test_registered_by_mac_alone(gs_server):
    await _import(gs_server, NO_MODEL)
    # HTTP: the first request (the binary cfg<mac>, answered 404) already teaches model and firmware.
    state = await boot(gs_server, GrandstreamProfile("GXP2170", "000b82cc0001", "1.0.11.6"), "http")
    assert state.accounts[1].registered and state.errors == []
    device = await _device(gs_server, "000b82cc0001")
    assert (device.vendor, device.model, device.firmware) == ("grandstream", "GXP2170", "1.0.11.6")
    # A User-Agent without MAC (the PnP/SIP form): the MAC comes from the path, the model from the UA.
    profile = GrandstreamProfile("GRP2612W", "000b82cc0002", "1.0.5.67",
                                 user_agent="Grandstream GRP2612W 1.0.5.67")
    state = await boot(gs_server, profile, "http")
    assert state.accounts[1].registered and state.errors == []
    device = await _device(gs_server, "000b82cc0002")
    assert (device.vendor, device.model) == ("grandstream", "GRP2612W")
    assert state.boot_settings["format:cfg000b82cc0002.xml"] == "v2"
    # TFTP, no User-Agent at all: the device is found by the MAC of its first file; the model stays
    # unknown (the per-model file is only asked for when the MAC file fails) and the generic
    # profile, written in the v1 format every Grandstream reads, still registers it.
    state = await boot(gs_server, GrandstreamProfile("GXP1625", "000b82cc0003", "1.0.7.13"), "tftp")
    assert state.accounts[1].registered and state.errors == []
    device = await _device(gs_server, "000b82cc0003")
    assert (device.vendor, device.model) == ("grandstream", None)


async def test_unknown_model_gets_the_generic_profile(gs_server, caplog):
    caplog.set_level(logging.INFO, "deskprov.serve")
    await _import(gs_server, NO_MODEL)
    state = await boot(gs_server, GrandstreamProfile("GXP9999", "000b82cc0004", "1.0.1.1"), "http")
    assert state.accounts[1].registered and state.errors == []
    assert state.timezone == GS_CET
    assert (await _device(gs_server, "000b82cc0004")).model == "GXP9999"
    assert any("unknown model 'GXP9999'" in r.getMessage() and "generic" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("phone, expected", [
    ('{mac: "00:0B:82:AA:00:10", model: Grandstream GXP2160, user: "+46854689901", keys: [{slot: 25, type: line}]}',
     "has keys 1-24"),
    ('{mac: "00:0B:82:AA:00:11", model: Grandstream GXP2160, user: "+46854689901", keys: [{slot: 7, type: line}]}',
     "multi-purpose keys"),
    ('{mac: "00:0B:82:AA:00:12", model: Grandstream GXP2160, user: "+46854689901", '
     'keys: [{module: 5, slot: 1, type: blf, target: "202"}]}', "has no expansion module 5"),
    ('{mac: "00:0B:82:AA:00:13", model: Grandstream GXP2160, user: "+46854689901", '
     'keys: [{module: 1, slot: 41, type: blf, target: "202"}]}', "has keys 1-40"),
    ('{mac: "C0:74:AD:AA:00:14", model: Grandstream GRP2614, user: "+46854689901", '
     'keys: [{module: 1, slot: 1, type: blf, target: "202"}]}', "has no expansion module 1"),
    ('{mac: "C0:74:AD:AA:00:15", model: Grandstream HT802, user: "+46854689901", '
     'keys: [{slot: 1, type: blf, target: "202"}]}', "is an ATA"),
])
def test_keys_the_model_does_not_have_are_refused_at_import(phone, expected):
    text = ORG.split("phones:")[0] + "phones:\n  - " + phone + "\n"
    with pytest.raises(OrgFileError) as err:
        parse(text)
    assert expected in str(err.value)


@pytest.mark.parametrize("user_agent, expected", [
    ("Grandstream Model HW GXP2135 SW 1.0.7.97 DevId 000b828aa872", ("GXP2135", "1.0.7.97", "000b828aa872")),
    ("Grandstream Model HW GXP2200 V2.2A SW 1.0.1.33 DevId 000b82462d97", ("GXP2200", "1.0.1.33", "000b82462d97")),
    ("Grandstream Model HW GXV3350  V1.3A SW 1.0.1.8 DevId c074ad150b88", ("GXV3350", "1.0.1.8", "c074ad150b88")),
    ("Grandstream Model HW HT801 V1.1A SW 1.0.17.5 DevId c074ad273a10", ("HT801", "1.0.17.5", "c074ad273a10")),
    ("Grandstream GXP2000 (gxp2000e.bin:1.2.5.3/boot55e.bin:1.1.6.9) DevId 000b822726c8",
     ("GXP2000", "1.2.5.3", "000b822726c8")),
    ("Grandstream GRP2612W 1.0.5.67", ("GRP2612W", "1.0.5.67", None)),
])
def test_user_agents(user_agent, expected):
    info = GS.match_user_agent(user_agent)
    assert (info.vendor, info.model, info.firmware, info.mac) == ("grandstream", *expected)
    assert GS.match_user_agent("Fanvil X4 2.10.2.6887 0c383e07e16c") is None


def test_file_names_and_kinds():
    assert GS.match_path(f"cfg{GXP_MAC}.xml").kind is FileKind.device
    assert GS.match_path(f"cfg{GXP_MAC}").mac == GXP_MAC
    assert GS.match_path(f"cfg{GXP_MAC}.bin").mac == GXP_MAC
    assert GS.match_path(f"cfg{GXP_MAC.upper()}.xml") is None  # lowercase MAC only
    common = GS.match_path("cfggrp2614.xml")
    assert (common.kind, common.model) == (FileKind.common, "GRP2614")
    assert GS.match_path("cfg.xml").kind is FileKind.common and GS.match_path("cfg.xml").model is None
    assert GS.match_path("phonebook.xml") is None  # without its pb<mac>/ folder it names no device
    for other in ("805ec0aabb01.cfg", "y000000000066.cfg", f"{GXP_MAC}.cfg"):
        assert GS.match_path(other) is None
    assert GS.pnp_url("http://prov.example.se") == "http://prov.example.se/"


async def test_binary_file_is_404_and_common_files_carry_no_secret(org_server):
    ua = {"User-Agent": f"Grandstream Model HW GXP2160 SW 1.0.5.32 DevId {GXP_MAC}"}
    async with aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{org_server.http_port}/"
        async with http.get(base + f"cfg{GXP_MAC}", headers=ua) as resp:
            assert resp.status == 404
        for name in ("cfg.xml", "cfggxp2160.xml"):
            async with http.get(base + name, headers=ua) as resp:
                assert resp.status == 200
                body = await resp.read()
            assert b"s3cret" not in body and b"Adm1n" not in body and b"<P34>" not in body
        async with http.get(base + f"cfg{GXP_MAC}.xml",
                            headers={"User-Agent": "Grandstream Model HW GXP2160 SW 1.0.5.32 DevId 000b82aabb77"}) as resp:
            assert resp.status == 404  # MAC in the path is not the User-Agent's


def test_time_zones():
    assert gs_timezone("Europe/Stockholm") == ("CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00", "")
    assert gs_timezone("America/New_York") == ("customize", "EST5EDT,M3.2.0,M11.1.0")
    assert gs_timezone("Europe/Helsinki") == ("customize", "EET-2EEST,M3.5.0/3,M10.5.0/4")


def test_resync_events():
    assert (GS.resync_event, GS.reboot_event) == ("resync", "check-sync;reboot=true")


# -- golden files --------------------------------------------------------------------------------

GOLDEN_FILES = [
    ("grandstream-GXP2160.xml", f"cfg{GXP_MAC}.xml", f"Grandstream Model HW GXP2160 SW 1.0.5.32 DevId {GXP_MAC}"),
    ("grandstream-GRP2614.xml", f"cfg{GRP_MAC}.xml", f"Grandstream Model HW GRP2614 SW 1.0.5.15 DevId {GRP_MAC}"),
    ("grandstream-HT802.xml", f"cfg{HT_MAC}.xml", f"Grandstream Model HW HT802 SW 1.0.43.11 DevId {HT_MAC}"),
    ("grandstream-common.xml", "cfg.xml", f"Grandstream Model HW GRP2614 SW 1.0.5.15 DevId {GRP_MAC}"),
]


async def test_golden_files(tmp_path):
    """Byte-for-byte against tests/vendors/golden/ (parameter names: see the module docstring)."""
    srv = await _start(tmp_path, public_url="http://prov.example.se/")
    try:
        await _import(srv, ORG)
        await fix_device_credentials(srv)  # the golden files carry them
        mismatched = []
        async with aiohttp.ClientSession() as http:
            for golden, name, ua in GOLDEN_FILES:
                async with http.get(f"http://127.0.0.1:{srv.http_port}/{name}", headers={"User-Agent": ua}) as resp:
                    assert resp.status == 200, name
                    body = await resp.read()
                path = GOLDEN / golden
                if os.environ.get("DESKPROV_UPDATE_GOLDEN"):
                    path.write_bytes(body)
                elif not path.exists() or path.read_bytes() != body:
                    mismatched.append(golden)
        assert mismatched == []
    finally:
        await srv.stop()
