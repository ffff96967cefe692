"""End to end: simulated Cisco phones and ATAs (MPP 8851 on 11.3, SPA504G on 7.5.5, SPA112 and ATA191)
boot against the real server over HTTP and TFTP.

The simulator (simulators/cisco.py) reads what it gets with its own flat-profile parser.

Parameter names were checked against these Cisco documents (found with the search tool):
- Cisco IP Conference Phone 7832/8832 MPP admin guide, Provisioning Methods (Profile_Rule default
  /$PSN.xml, Profile_Rule_B..D run after the primary rule, $MA lowercase, Resync_Periodic,
  Resync_From_SIP "Event: resync"):
  https://www.cisco.com/c/en/us/td/docs/voice_ip_comm/cuipph/MPP/common/ag_conf_7832_8832/tpcc_b_cisco-ip-conference-phone-multipl/cs88_m_provisioning-methods-mpp1133.html
- XML Reference Guide for Cisco IP Phone Multiplatform Phones (Extended_Function_n_ with
  fnc=prk;sub=...;nme=..., Extension_n_ n|Disabled, fnc=sd;ext=...;vid=n;nme=...):
  https://www.cisco.com/c/en/us/td/docs/voice_ip_comm/cuipph/MPP/common/xml_ref_guide/tpcc_b_xml-command-ref.html
- Cisco IP Phone 8800 MPP admin guide, Key Expansion Module (18 keys x 2 pages, 2 modules on an
  8851, <Unit_n_Key_m_>, fnc=blf+sd+cp, Number_of_Units):
  https://www.cisco.com/c/en/us/td/docs/voice_ip_comm/cuipph/MPP/8800/english/AG/p881_b_8800-mpp-ag_new/p881_m_kem-module-mpp-1100.html
- Cisco ATA 191/192 MPP provisioning guide, Voice Parameters (Profile_Rule default /ata$PSN.cfg,
  Line_Enable_n_ per FXS port) and Router Configuration Parameters (<router-configuration>
  nested in <flat-profile>, Time_Setup/Time_Zone "+01 2 2", Daylight_Saving_Time_Rule
  start=month/day/weekday/hh;end=...;save=hours, Web_Login_Admin_Password):
  https://www.cisco.com/c/en/us/td/docs/voice_ip_comm/cata/19x/3PCC/english/provguide/at1x_b_ata191-ata192-mpp-prov/at1x_b_ata191-ata192-mpp-prov_chapter_0101.html
Not verified there (taken from Wazo's templates, vendors.md 3a/3b): the 8841-3PCC.xml and
ata191.cfg names, Time_Zone "GMT+01:00" on phones, Language_Selection/Locale values,
Admin_Passwd/Admin_Password, Enable_VLAN/VLAN_ID, Call_Pickup_Code, the SPA sidecar's
<Unit_n_Key_m> (without trailing underscore) and 32 keys per unit, the reboot event name.
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
from simulators.cisco import CiscoProfile
from simulators.phone import Phone

GOLDEN = Path(__file__).parent / "golden"
MPP_MAC, SPA_MAC, ATA_MAC, ATA191_MAC = "00562b043615", "0002fdff2103", "000e08aabb02", "000e08aabb03"

ORG = """
organization:
  name: Ciscoverket AB
  tftp_secret_networks: [127.0.0.0/8]  # the lab's TFTP boots come from loopback
  sip_domain: cisco.sip.example.net
  timezone: Europe/Stockholm
  device_admin_password: "Adm1n-Secret!"
users:
  - {name: Anna Andersson, number: "+46854689901", extension: "201"}
  - {name: Bertil Berg, number: "+46854689902", extension: "202"}
  - {name: Cecilia Carlsson, number: "+46854689903", extension: "203"}
  - {name: David Dahl, number: "+46854689904", extension: "204"}
phonebooks:
  - name: Kunder
    members: all
    contacts:
      - {name: Leverantören AB, number: "+46812345678", mobile: "+46701234567"}
      - {name: Zeta & Co Service, number: "+46855512345"}
phones:
  - mac: "00:56:2B:04:36:15"
    model: Cisco CP-8851-3PCC
    user: "+46854689901"
    sip: {username: anna8851, password: "s3cret-Anna-8851"}
    keys:
      - {slot: 1, type: line}
      - {slot: 2, type: blf, target: "202", label: Bertil}
      - {slot: 3, type: speed_dial, number: "+46812345678", label: Support}
      - {slot: 4, type: park, target: "701", label: Park 1}
      - {slot: 5, type: voicemail, label: Röstbrevlåda}
      - {slot: 6, type: group_toggle, label: Växel in/ut}
      - {module: 2, slot: 36, type: blf, target: "203", label: Cecilia}
  - mac: "00:02:FD:FF:21:03"
    model: Cisco SPA504G
    user: "+46854689902"
    keys:
      - {slot: 1, type: line}
      - {slot: 4, type: blf, target: "201", label: Anna}
      - {module: 1, slot: 1, type: speed_dial, number: "+46855512345", label: Zeta}
  - mac: "00:0E:08:AA:BB:02"
    model: Cisco SPA112
    user: "+46854689903"
    sip: {username: cecilia-fxs1, password: "s3cret-Fxs-Port1"}
    lines: [{index: 2, user: "+46854689904", sip: {username: david-fxs2, password: "s3cret-Fxs-Port2"}}]
  - mac: "00:0E:08:AA:BB:03"
    model: Cisco ATA191
    user: "+46854689904"
"""


async def _import(server, text: str = ORG) -> None:
    async with server.sessions() as session:
        await import_text(session, text)


def _http(server) -> str:
    return f"http://127.0.0.1:{server.http_port}/"


def _public_url(server, url: str | None = None) -> str:
    """The URL the server writes into profiles; a fixed one where golden files need it."""
    if url:
        server.provisioner.use_settings(server.provisioner.settings.replace(public_url=url))
    return url or _http(server)


def mpp(mac: str = MPP_MAC, model: str = "8851", **kw) -> Phone:
    return Phone(CiscoProfile(model, mac, "11.3.7", **kw))


def spa(mac: str = SPA_MAC, **kw) -> Phone:
    return Phone(CiscoProfile("SPA504G", mac, "7.5.5", **kw))


def assert_annas_8851(state) -> None:
    assert not state.errors, state.errors
    anna = state.accounts[1]
    assert anna.registered
    assert (anna.display_name, anna.user_name, anna.auth_name, anna.password) == (
        "Anna Andersson", "46854689901", "anna8851", "s3cret-Anna-8851")
    assert (anna.server, anna.port, anna.transport) == ("cisco.sip.example.net", 5060, "udp")
    assert not any(a.registered for i, a in state.accounts.items() if i != 1)
    keys = {where: (k.type, k.value, k.label) for where, k in state.keys.items()}
    assert state.keys[(0, 1)].type == "line" and state.keys[(0, 1)].line == 1
    assert keys[(0, 2)] == ("blf", "202", "Bertil") and state.keys[(0, 2)].extension == "*8"
    assert keys[(0, 3)] == ("speed_dial", "+46812345678", "Support")
    assert keys[(0, 4)] == ("park", "701", "Park 1")
    assert keys[(0, 5)] == ("speed_dial", "*97", "Röstbrevlåda")
    assert keys[(0, 6)] == ("speed_dial", "*45", "Växel in/ut")
    assert keys[(2, 36)] == ("blf", "203", "Cecilia")
    assert (0, 7) not in state.keys and (1, 1) not in state.keys
    assert {c["name"]: c["numbers"] for c in state.contacts} == {
        "Leverantören AB": ["+46812345678"], "Leverantören AB (mobil)": ["+46701234567"],
        "Zeta & Co Service": ["+46855512345"]}
    assert (state.timezone, state.timezone_name) == ("GMT+01:00", "start=3/-1/7/2;end=10/-1/7/3;save=1")
    assert state.language == "sv-SE"
    assert state.settings["Admin_Password"] == "Adm1n-Secret!"
    assert 1296 * 60 <= int(state.settings["Resync_Periodic"]) <= 1584 * 60


async def test_8851_current_firmware_boots_over_http(sqlite_server):
    await _import(sqlite_server)
    base = _public_url(sqlite_server)
    state = await mpp().boot_http(_http(sqlite_server))
    assert state.requested == ["8851-3PCC.xml", f"{base}{MPP_MAC}.xml", f"{base}{MPP_MAC}-xmldirectory.xml"]
    assert state.user_agent == f"Cisco-CP-8851-3PCC/11.3.7 ({MPP_MAC})"
    assert_annas_8851(state)


async def test_8851_bootstraps_over_tftp(sqlite_server):
    """Over TFTP the phone gets the shared file, whose Profile_Rule_B sends it on to HTTP."""
    await _import(sqlite_server)
    base = _public_url(sqlite_server)
    state = await mpp().boot_tftp("127.0.0.1", sqlite_server.tftp_port)
    assert [f.transport for f in state.fetched] == ["tftp", "http", "http"]
    assert state.requested == ["8851-3PCC.xml", f"{base}{MPP_MAC}.xml", f"{base}{MPP_MAC}-xmldirectory.xml"]
    assert_annas_8851(state)


@pytest.mark.parametrize("transport", ["http", "tftp"])
async def test_old_spa504g_firmware_boots(sqlite_server, transport):
    await _import(sqlite_server)
    base = _public_url(sqlite_server)
    phone = spa()
    assert phone.profile.user_agent() == "Cisco/SPA504G-7.5.5 (0002FDFF2103)(CBT1234ABCD)"
    state = await (phone.boot_http(_http(sqlite_server)) if transport == "http"
                   else phone.boot_tftp("127.0.0.1", sqlite_server.tftp_port))
    assert not state.errors, state.errors
    assert state.requested == ["spa504G.cfg", f"{base}{SPA_MAC}.xml", f"{base}{SPA_MAC}-xmldirectory.xml"]
    assert state.accounts[1].registered and state.accounts[1].display_name == "Bertil Berg"
    assert state.keys[(0, 1)].type == "line" and (0, 2) not in state.keys
    assert (state.keys[(0, 4)].type, state.keys[(0, 4)].value, state.keys[(0, 4)].extension) == ("blf", "201", "*8")
    sidecar = state.keys[(1, 1)]  # SPA500S: <Unit_1_Key_1>
    assert (sidecar.type, sidecar.value, sidecar.label, sidecar.source) == (
        "speed_dial", "+46855512345", "Zeta", "Unit_1_Key_1")
    assert state.language == "Swedish" and state.timezone == "GMT+01:00"
    assert state.settings["Admin_Passwd"] == "Adm1n-Secret!"
    assert {c["name"] for c in state.contacts} >= {"Leverantören AB", "Zeta & Co Service"}


@pytest.mark.parametrize("model, mac, first", [("SPA112", ATA_MAC, "spa112.cfg"), ("ATA191", ATA191_MAC, "ata191.cfg")])
async def test_atas_get_one_account_per_fxs_port(sqlite_server, model, mac, first):
    await _import(sqlite_server)
    base = _public_url(sqlite_server)
    state = await Phone(CiscoProfile(model, mac, "1.4.1")).boot_tftp("127.0.0.1", sqlite_server.tftp_port)
    assert not state.errors, state.errors
    assert state.requested == [first, f"{base}{mac}.xml"]  # no directory on an ATA
    if model == "SPA112":
        assert [(a.index, a.display_name, a.registered) for a in state.accounts.values()] == [
            (1, "Cecilia Carlsson", True), (2, "David Dahl", True)]
    else:
        assert [(a.index, a.registered) for a in state.accounts.values()] == [(1, True), (2, False)]
    assert state.keys == {}
    assert (state.timezone, state.timezone_name) == ("+01 2 2", "start=3/-1/7/2;end=10/-1/7/3;save=1")
    assert state.settings["Web_Login_Admin_Password"] == "Adm1n-Secret!"
    assert state.settings["Time_Server"] == "pool.ntp.org"


async def test_registered_by_mac_alone_is_identified_by_its_first_request(sqlite_server, caplog):
    """MPP User-Agents carry the MAC; this SPA firmware sends only its serial; over TFTP the
    shared file's name tells the model."""
    await _import(sqlite_server, ORG.split("phones:")[0] + """phones:
  - {mac: "00:56:2B:04:36:15", user: "+46854689901"}
  - {mac: "00:02:FD:FF:21:03", user: "+46854689902"}
  - {mac: "00:0E:08:AA:BB:02", user: "+46854689903"}
""")
    _public_url(sqlite_server)
    caplog.set_level(logging.INFO, "deskprov.serve")
    assert (await mpp().boot_http(_http(sqlite_server))).accounts[1].registered
    no_mac = spa(with_mac=False)
    assert "(0002FDFF2103)" not in no_mac.profile.user_agent()
    assert (await no_mac.boot_http(_http(sqlite_server))).accounts[1].registered
    ata = await Phone(CiscoProfile("SPA112", ATA_MAC, "1.4.1")).boot_tftp(
        "127.0.0.1", sqlite_server.tftp_port)
    assert ata.accounts[1].registered
    async with sqlite_server.sessions() as session:
        devices = {d.mac: (d.vendor, d.model) for d in (await session.execute(select(Device))).scalars()}
    assert devices == {MPP_MAC: ("cisco", "8851"), SPA_MAC: ("cisco", "SPA504G"), ATA_MAC: ("cisco", "SPA112")}


async def test_unknown_cisco_model_gets_the_generic_profile(sqlite_server, caplog):
    await _import(sqlite_server, ORG.split("phones:")[0] + """phones:
  - {mac: "00:56:2B:04:36:99", model: Cisco 9999, user: "+46854689903"}
""")
    base = _public_url(sqlite_server)
    caplog.set_level(logging.WARNING, "deskprov.serve")
    state = await mpp(mac="00562b043699", model="9999").boot_http(_http(sqlite_server))
    assert not state.errors and state.accounts[1].registered
    assert state.requested[:2] == ["9999-3PCC.xml", f"{base}00562b043699.xml"]
    assert any("unknown model '9999', serving the generic Cisco profile" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("phone, expected", [
    ('{mac: "00:56:2B:04:36:20", model: Cisco 8841, keys: [{slot: 2, type: dtmf, target: "1234"}]}',
     "key 2: Cisco phones have no dtmf key"),
    ('{mac: "00:56:2B:04:36:21", model: Cisco 8841, keys: [{slot: 11, type: line}]}',
     "key 11: Cisco 8841 has keys 1-10 there"),
    ('{mac: "00:56:2B:04:36:22", model: Cisco 8841, keys: [{module: 1, slot: 1, type: blf, target: "201"}]}',
     "Cisco 8841 has no expansion module 1"),
    ('{mac: "00:56:2B:04:36:23", model: Cisco 8851, keys: [{module: 3, slot: 1, type: blf, target: "201"}]}',
     "Cisco 8851 has no expansion module 3"),
    ('{mac: "00:56:2B:04:36:24", model: Cisco 8861, keys: [{module: 1, slot: 37, type: blf, target: "201"}]}',
     "expansion module 1 key 37: Cisco 8861 has keys 1-36 there"),
    ('{mac: "00:56:2B:04:36:25", model: Cisco 8861, keys: [{module: 1, slot: 1, type: line}]}',
     "Cisco key expansion modules have no line keys"),
    ('{mac: "00:0E:08:AA:BB:26", model: Cisco SPA112, keys: [{slot: 1, type: line}]}',
     "key 1: Cisco SPA112 has no programmable keys"),
])
async def test_keys_the_model_does_not_have_are_refused_at_import(sqlite_server, phone, expected):
    with pytest.raises(OrgFileError) as err:
        await _import(sqlite_server, ORG.split("phones:")[0] + f"phones:\n  - {phone}\n")
    assert expected in str(err.value)


def test_resync_and_reboot_events():
    cisco = BY_NAME["cisco"]
    assert (cisco.resync_event, cisco.reboot_event) == ("resync", "reboot")


async def _get(server, name: str, ua: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http:
        async with http.get(_http(server) + name, headers={"User-Agent": ua}) as resp:
            return resp.status, await resp.read()


async def test_refusals_and_shared_files_without_secrets(sqlite_server):
    await _import(sqlite_server)
    ua = f"Cisco-CP-8851-3PCC/11.3.7 ({MPP_MAC})"
    assert (await _get(sqlite_server, f"{MPP_MAC.upper()}.xml", ua))[0] == 404  # wrong case
    assert (await _get(sqlite_server, f"{SPA_MAC}.xml", ua))[0] == 404  # not the UA's MAC
    assert (await _get(sqlite_server, "00562b049999.xml", "Cisco-CP-8851-3PCC/11.3.7 (00562b049999)"))[0] == 404
    assert (await _get(sqlite_server, f"{ATA_MAC}-xmldirectory.xml", "Cisco/SPA112-1.4.1 (000E08AABB02)(X)"))[0] == 404
    for name in ("8851-3PCC.xml", "spa504G.cfg", "spa112.cfg", "ata191.cfg", "9999-3PCC.xml"):
        status, body = await _get(sqlite_server, name, "")
        assert status == 200 and b"s3cret" not in body and b"Adm1n" not in body and b"Password" not in body, name
    assert (await _get(sqlite_server, "spa504g.cfg", ""))[0] == 404  # "G is uppercase"


async def test_golden_8851_and_spa112(sqlite_server):
    """Byte-for-byte: the 8851's and the SPA112's profiles from the fixed organisation above.

    Parameter names checked against the Cisco guides listed in this module's docstring.
    """
    await _import(sqlite_server)
    await fix_device_credentials(sqlite_server)  # the golden files carry them
    _public_url(sqlite_server, "https://prov.example.net/")
    for name, ua, golden in (
        (f"{MPP_MAC}.xml", f"Cisco-CP-8851-3PCC/11.3.7 ({MPP_MAC})", "cisco-8851.xml"),
        (f"{MPP_MAC}-xmldirectory.xml", f"Cisco-CP-8851-3PCC/11.3.7 ({MPP_MAC})", "cisco-8851-directory.xml"),
        (f"{ATA_MAC}.xml", "Cisco/SPA112-1.4.1 (000E08AABB02)(CCQ1)", "cisco-SPA112.xml"),
    ):
        status, body = await _get(sqlite_server, name, ua)
        assert status == 200, name
        path = GOLDEN / golden
        if os.environ.get("DESKPROV_UPDATE_GOLDEN"):
            path.write_bytes(body)
        assert body == path.read_bytes(), golden


@pytest.mark.parametrize("ua, model, firmware, mac", [
    ("Cisco/SPA501G-7.4.4 (8843E157DDCC)(CBT141100HR)", "SPA501G", "7.4.4", "8843e157ddcc"),
    ("Cisco/SPA508G-7.4.8a (0002FDFF2103)(CBT141400UK)", "SPA508G", "7.4.8a", "0002fdff2103"),
    ("Cisco/SPA504G-7.5.5 (CBT1234ABCD)", "SPA504G", "7.5.5", None),
    ("Linksys/SPA-962-6.1.5(a) (4MM00F903042)", "SPA962", "6.1.5(a)", None),
    ("Cisco/SPA112-1.4.1(SR1) (000E08AABB02)(CCQ1234)", "SPA112", "1.4.1(SR1)", "000e08aabb02"),
    ("Cisco-CP-8841-3PCC/11.0 (00562b043615)", "8841", "11.0", "00562b043615"),
    ("Cisco-CP-6841-3PCC/11.3.1 (00562b043616)", "6841", "11.3.1", "00562b043616"),
    ("Cisco-ATA191-MPP/11.2.1 (000e08aabb03)", "ATA191", "11.2.1", "000e08aabb03"),
    ("Cisco-CP-9999-3PCC/12.0.1 (00562b043699)", "CP-9999-3PCC", "12.0.1", "00562b043699"),
])
def test_user_agents(ua, model, firmware, mac):
    info = BY_NAME["cisco"].match_user_agent(ua)
    assert (info.vendor, info.model, info.firmware, info.mac) == ("cisco", model, firmware, mac)
    assert BY_NAME["poly"].match_user_agent(ua) is None and BY_NAME["yealink"].match_user_agent(ua) is None


async def test_vlan_is_written_when_the_organisation_has_one(sqlite_server):
    zone = "  timezone: Europe/Stockholm\n"
    await _import(sqlite_server, ORG.replace(zone, zone + "  vlan: 20\n"))
    _public_url(sqlite_server)
    state = await mpp().boot_http(_http(sqlite_server))
    assert (state.settings["Enable_VLAN"], state.settings["VLAN_ID"]) == ("Yes", "20") and not state.errors
