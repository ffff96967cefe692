"""End to end: simulated Snom phones (D785, 320, M700) boot against the real server over HTTP and TFTP.

The simulator (simulators/snom.py) reads what it gets with its own XML parser, never the server's.

Parameter names were checked against the Snom service wiki with the search tool:
- "Desk Phone Configuration Files" https://service.snom.com/display/wiki/Desk+Phone+Configuration+Files
  (user_active, user_realname, user_name, user_pass, user_host, language, web_language, timezone
  ``GER+1``, admin_mode_password, http_user, http_pass, setting_server, <functionKeys>/<fkey>);
- "<phone-settings> tag" https://service.snom.com/display/wiki/%3Cphone-settings%3E+tag (idx, perm);
- "Provisioning Polling for desk phones" https://service.snom.com/display/wiki/Provisioning+Polling+for+desk+phones
  (prov_polling_enabled, prov_polling_mode=rel, prov_polling_period);
- "Function Key Types" https://service.snom.com/display/wiki/Function+Key+Types (line, blf, speed, orbit,
  dtmf, keyevent, none); Snom D7 user manual p. 20-21 (fkey idx numbering with expansion modules);
- "<tbook>, <phone-book> tag" https://service.snom.com/display/wiki/%3Ctbook%3E%2C%3Cphone-book%3E+tag;
- Setting files containers http://wiki.snom.com/Features/Mass_Deployment/Setting_Files/XML;
- M300/M700 provisioning guide p. 6 (User-Agent of the DECT bases).
Not verified there: user_mailbox, user_outbound's "host:port;transport=" form, vlan_id, the
F_RETRIEVE key event name, the per-model key counts and the D7 key count (see provisioning/vendors/snom.py).
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
from simulators.phone import Phone
from simulators.snom import SnomProfile

GOLDEN = Path(__file__).parent / "golden"
D785_MAC, D320_MAC, M700_MAC = "000413922D24", "000413320001", "000413700001"

ORG = """
organization:
  name: Snömakarna AB
  tftp_secret_networks: [127.0.0.0/8]  # the lab's TFTP boots come from loopback
  sip_domain: snom.sip.example.net
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
      - {name: Leverantören AB, number: "+46812345678", mobile: "+46701234567"}
      - {name: Zeta Service, number: "+46855512345"}
phones:
  - mac: "00:04:13:92:2D:24"
    model: Snom D785
    user: "+46854689901"
    sip: {username: anna785, password: "s3cret-Anna-785"}
    keys:
      - {slot: 1, type: line}
      - {slot: 2, type: blf, target: "202", label: Bertil}
      - {slot: 3, type: speed_dial, number: "+46812345678", label: Support}
      - {slot: 4, type: park, target: "701", label: Park 1}
      - {slot: 5, type: dtmf, target: "*3", label: Rec}
      - {slot: 6, type: voicemail, label: Röstbrevlåda}
      - {slot: 7, type: group_toggle, label: Växel in/ut}
      - {module: 1, slot: 1, type: blf, target: "203", label: Cecilia}
  - mac: "00:04:13:32:00:01"
    model: Snom 320
    user: "+46854689902"
    keys:
      - {slot: 12, type: blf, target: "201", label: Anna}
  - mac: "00:04:13:70:00:01"
    model: Snom M700
    user: "+46854689902"
    lines:
      - {index: 2, user: "+46854689903"}
"""


async def _import(server, text: str = ORG) -> None:
    async with server.sessions() as session:
        await import_text(session, text)


def _http(server) -> str:
    return f"http://127.0.0.1:{server.http_port}/"


def assert_annas_d785(state) -> None:
    assert not state.errors, state.errors
    anna = state.accounts[1]
    assert anna.registered
    assert (anna.display_name, anna.user_name, anna.auth_name, anna.password) == \
        ("Anna Andersson", "46854689901", "anna785", "s3cret-Anna-785")
    assert (anna.server, anna.port, anna.transport) == ("snom.sip.example.net", 5060, "udp")
    keys = state.keys
    assert keys[(0, 1)].type == "line"
    assert (keys[(0, 2)].type, keys[(0, 2)].value, keys[(0, 2)].label, keys[(0, 2)].extension) == \
        ("blf", "202", "Bertil", "*8")
    assert (keys[(0, 3)].type, keys[(0, 3)].value) == ("speed_dial", "+46812345678")
    assert (keys[(0, 4)].type, keys[(0, 4)].value) == ("park", "701")
    assert (keys[(0, 5)].type, keys[(0, 5)].value) == ("dtmf", "*3")
    assert keys[(0, 6)].type == "voicemail" and state.settings["user_mailbox[1]"] == "*97"
    assert (keys[(0, 7)].type, keys[(0, 7)].value) == ("speed_dial", "*45")  # group toggle = feature code
    module_key = keys[(1, 1)]
    assert (module_key.type, module_key.value, module_key.label, module_key.source) == \
        ("blf", "203", "Cecilia", "fkey[24]")
    assert keys[(0, 8)].type == "line"  # unprogrammed phone keys go back to the default
    assert state.contacts == [
        {"name": "Leverantören AB", "numbers": ["+46812345678", "+46701234567"], "book": "tbook"},
        {"name": "Zeta Service", "numbers": ["+46855512345"], "book": "tbook"},
    ]
    assert state.timezone == "SWE+1"
    assert state.language == state.web_language == "Svenska"
    assert state.settings["admin_mode_password"] == "Adm1n-Secret!"
    assert state.settings["prov_polling_mode"] == "rel" and int(state.settings["prov_polling_period"]) > 0


D785_FILES = ["snomD785.htm", "snomD785.xml", f"snomD785-{D785_MAC}.htm", f"{D785_MAC}.xml", f"{D785_MAC}-tbook.xml"]


def d785(firmware: str = "10.1.33.33", mac: str = D785_MAC) -> Phone:
    return Phone(SnomProfile("D785", mac, firmware, modules=1))


async def test_d785_current_firmware_boots_over_http(sqlite_server):
    await _import(sqlite_server)
    phone = d785()
    assert phone.profile.user_agent().endswith(f"{D785_MAC} SXM:1 UXM:0)")
    state = await phone.boot_http(_http(sqlite_server))
    assert state.requested == D785_FILES
    assert_annas_d785(state)


async def test_d785_boots_over_tftp(sqlite_server):
    await _import(sqlite_server)
    state = await d785().boot_tftp("127.0.0.1", sqlite_server.tftp_port)
    assert state.requested == D785_FILES
    assert_annas_d785(state)


@pytest.mark.parametrize("transport", ["http", "tftp"])
async def test_old_320_firmware_without_mac_in_user_agent(sqlite_server, transport):
    await _import(sqlite_server)
    phone = Phone(SnomProfile("320", D320_MAC, "8.4.18"))
    assert "0004" not in phone.profile.user_agent()
    state = await (phone.boot_http(_http(sqlite_server)) if transport == "http"
                   else phone.boot_tftp("127.0.0.1", sqlite_server.tftp_port))
    assert not state.errors, state.errors
    assert state.requested[:3] == ["snom320.htm", "snom320.xml", f"snom320-{D320_MAC}.htm"]
    assert state.accounts[1].registered and state.accounts[1].display_name == "Bertil Berg"
    blf = state.keys[(0, 12)]
    assert (blf.type, blf.value, blf.extension, blf.label) == ("blf", "201", "*8", "Anna")
    assert state.timezone == "SWE+1" and len(state.contacts) == 2


async def test_m700_dect_base_gets_one_account_per_handset(sqlite_server):
    await _import(sqlite_server)
    phone = Phone(SnomProfile("M700", M700_MAC, "03.23.0005"))
    assert phone.profile.user_agent() == f"snomM700/03.23.0005 (MAC={M700_MAC}; SER= 00000; HW=255)"
    state = await phone.boot_http(_http(sqlite_server))
    assert not state.errors, state.errors
    assert state.requested == [f"{M700_MAC}.xml"]
    assert [(a.index, a.display_name, a.registered) for a in state.accounts.values()] == \
        [(1, "Bertil Berg", True), (2, "Cecilia Carlsson", True)]
    assert state.accounts[1].auth_name != state.accounts[2].auth_name
    assert state.keys == {} and state.timezone == "SWE+1"


async def test_wrong_mac_case_and_foreign_names_are_not_served(sqlite_server):
    await _import(sqlite_server)
    ua = {"User-Agent": f"Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 x {D785_MAC} SXM:0 UXM:0)"}
    async with aiohttp.ClientSession() as http:
        for name in (f"snomD785-{D785_MAC.lower()}.htm", f"{D785_MAC.lower()}.xml", f"GigasetP82x-{D785_MAC}.htm",
                     "snomD785-000413922D25.htm"):
            async with http.get(_http(sqlite_server) + name, headers=ua) as resp:
                assert resp.status == 404, name
    snom, gigaset = BY_NAME["snom"], BY_NAME["gigaset"]
    assert snom.match_path("GigasetP82x.htm") is None and gigaset.match_path("snomD785.htm") is None
    assert snom.match_path("snomD785-firmware.htm") is None  # firmware comes from tftp_root
    assert snom.match_user_agent("Gigaset N870 IP PRO/83.V2.43.0+build.5f0a106;7C2F80123456;Handset=250") is None


NO_MODEL = """
organization: {tftp_secret_networks: [127.0.0.0/8], name: Lärande AB, sip_domain: l.example.net}
users:
  - {name: Cecilia, number: "+46854689931", extension: "301"}
  - {name: David, number: "+46854689932", extension: "302"}
phones:
  - {mac: "00:04:13:AA:00:01", user: "+46854689931"}
  - {mac: "00:04:13:AA:00:02", user: "+46854689932"}
  - {mac: "00:04:13:AA:00:03", user: "+46854689932"}
  - {mac: "00:04:13:AA:00:04", user: "+46854689932"}
"""


async def _device(server, mac: str) -> Device:
    async with server.sessions() as session:
        return (await session.execute(select(Device).where(Device.mac == mac))).scalar_one()


async def test_registered_by_mac_alone_learns_model_from_first_request(sqlite_server):
    await _import(sqlite_server, NO_MODEL)
    # Current firmware: model and MAC in the User-Agent.
    state = await d785(mac="000413AA0001").boot_http(_http(sqlite_server))
    assert state.accounts[1].registered and not state.errors
    device = await _device(sqlite_server, "000413aa0001")
    assert (device.vendor, device.model, device.firmware) == ("snom", "D785", "10.1.33.33")
    # Old firmware, no MAC in the User-Agent: the MAC comes from the path, the model from the UA.
    state = await Phone(SnomProfile("320", "000413AA0002", "8.4.18")).boot_http(_http(sqlite_server))
    assert state.accounts[1].registered
    assert ((await _device(sqlite_server, "000413aa0002")).model) == "320"
    # TFTP (no User-Agent at all): the model comes from the per-model container asked for first.
    state = await Phone(SnomProfile("D715", "000413AA0003", "10.1.33.33")).boot_tftp("127.0.0.1",
                                                                                       sqlite_server.tftp_port)
    assert state.accounts[1].registered
    device = await _device(sqlite_server, "000413aa0003")
    assert (device.vendor, device.model) == ("snom", "D715")


async def test_unknown_snom_model_gets_the_generic_profile(sqlite_server, caplog):
    caplog.set_level(logging.INFO, "deskprov.serve")
    await _import(sqlite_server, NO_MODEL)
    state = await Phone(SnomProfile("D999", "000413AA0004", "10.1.40.1")).boot_http(_http(sqlite_server))
    assert not state.errors and state.accounts[1].registered and state.timezone == "SWE+1"
    assert (await _device(sqlite_server, "000413aa0004")).model == "D999"
    assert any("unknown model 'D999'" in r.getMessage() and "generic" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("phone, expected", [
    ('{mac: "00:04:13:92:2D:30", model: Snom D785, user: "+46854689901", keys: [{slot: 25, type: line}]}',
     "has keys 1-24"),
    ('{mac: "00:04:13:92:2D:31", model: Snom D785, user: "+46854689901", '
     'keys: [{module: 4, slot: 1, type: blf, target: "202"}]}', "has no expansion module 4"),
    ('{mac: "00:04:13:92:2D:32", model: Snom 320, user: "+46854689901", '
     'keys: [{module: 1, slot: 1, type: blf, target: "202"}]}', "has no expansion module 1"),
    ('{mac: "00:04:13:92:2D:33", model: Snom M700, user: "+46854689901", '
     'keys: [{slot: 1, type: blf, target: "202"}]}', "is a DECT base"),
])
async def test_keys_the_model_does_not_have_are_refused_at_import(sqlite_server, phone, expected):
    text = ORG.split("phones:")[0] + "phones:\n  - " + phone + "\n"
    with pytest.raises(OrgFileError) as err:
        await _import(sqlite_server, text)
    assert expected in str(err.value)


def test_resync_and_reboot_events():
    snom = BY_NAME["snom"]
    assert snom.resync_event == "check-sync;reboot=false"
    assert snom.reboot_event == "check-sync;reboot=true"


async def test_golden_d785(golden_server):
    sqlite_server = golden_server
    """Byte-for-byte: the D785's settings file from the fixed organisation above."""
    await _import(sqlite_server)
    await fix_device_credentials(sqlite_server)  # the golden files carry them
    ua = {"User-Agent": f"Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 x {D785_MAC} SXM:1 UXM:0)"}
    async with aiohttp.ClientSession() as http:
        bodies = {}
        for name in (f"{D785_MAC}.xml", f"snomD785-{D785_MAC}.htm", f"{D785_MAC}-tbook.xml"):
            async with http.get(_http(sqlite_server) + name, headers=ua) as resp:
                assert resp.status == 200
                bodies[name] = await resp.read()
    golden = GOLDEN / "snom-D785.xml"
    if os.environ.get("DESKPROV_UPDATE_GOLDEN"):
        golden.write_bytes(bodies[f"{D785_MAC}.xml"])
    assert bodies[f"{D785_MAC}.xml"] == golden.read_bytes()
    assert b"<file url=\"000413922D24-tbook.xml\"/>" in bodies[f"snomD785-{D785_MAC}.htm"]
    assert b'<tbook e="2" complete="true">' in bodies[f"{D785_MAC}-tbook.xml"]


@pytest.mark.parametrize("ua, model, firmware, mac", [
    ("Mozilla/4.0 (compatible; snom lid 3605)", None, None, None),
    ("Mozilla/4.0 (compatible; snom320-SIP 6.5.20; snom320 jffs2 v3.36; snom320 linux 3.38)", "320", "6.5.20", None),
    ("Mozilla/4.0 (compatible; snom320-SIP 8.4.18 1.1.3-s)", "320", "8.4.18", None),
    ("Mozilla/4.0 (compatible; snom710-SIP 8.7.3.19 1.1.5-IFX-05.01.12)", "710", "8.7.3.19", None),
    ("Mozilla/4.0 (compatible; snom710-SIP 8.7.5.35 1.1.5-IFX-05.01.12 000413741767)", "710", "8.7.5.35",
     "000413741767"),
    ("Mozilla/4.0 (compatible; snom760-SIP 8.7.3.19 2010.06)", "760", "8.7.3.19", None),
    ("Mozilla/4.0 (compatible; snom870-SIP 8.4.35 SPEAr300 SNOM 1.4)", "870", "8.4.35", None),
    ("Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)", "D785",
     "10.1.33.33", "000413922d24"),
    ("snomD120/10.1.39.11", "D120", "10.1.39.11", None),
    ("snomM700/03.23.0005 (MAC=000413123456; SER= 00000; HW=255)", "M700", "03.23.0005", "000413123456"),
])
def test_user_agents(ua, model, firmware, mac):
    info = BY_NAME["snom"].match_user_agent(ua)
    assert (info.vendor, info.model, info.firmware, info.mac) == ("snom", model, firmware, mac)
    assert BY_NAME["gigaset"].match_user_agent(ua) is None and BY_NAME["yealink"].match_user_agent(ua) is None


async def test_vlan_is_written_when_the_organisation_has_one(sqlite_server):
    await _import(sqlite_server, ORG.replace("  timezone: Europe/Stockholm\n", "  timezone: Europe/Stockholm\n  vlan: 20\n"))
    state = await d785().boot_http(_http(sqlite_server))
    assert state.settings["vlan_id"] == "20" and not state.errors
