"""Fanvil end to end: an X5U-V2 on current firmware (XML ``<sysConf>``, DSS keys, EXT20 module,
XML phone book) and an X3 on old firmware (the ``<<VOIP CONFIG FILE>>`` text format) boot against
the real server over HTTP and TFTP and are read back by the simulator's own Fanvil parsers
(simulators/fanvil.py), never by the server's code.

Parameter names were checked with the search tool against (details and the unverified rest in
provisioning/vendors/fanvil.py):

- Wazo's production Fanvil plugin: ``wazo_fanvil/common/templates/base-new.tpl`` (``<sysConf>``:
  ``<sip><line>``, ``<phone><date>``, ``<ap>``, ``<web><account>``, ``<qos>``, ``<dsskey><dssSide>
  <Fkey>``, ``<dssSoft>`` Type 21), ``common/common.py`` (User-Agents, transport 0/1/3, memory-key
  values ``<n>@<line>/f`` and ``/ba<pickup><n>``, TimeZone in quarter hours) and
  ``serie_*/entry.py`` (per-model common file names).
- The old text format: Elastix ``Fanvil_local.tpl`` (``<<VOIP CONFIG FILE>>``, ``<SIP CONFIG
  MODULE>`` keys, ``<AUTOUPDATE CONFIG MODULE>``) and ``VOPTech_reference.tpl`` (DayLight keys).
- Fanvil XML phonebook spec (``<FanvilIPPhoneDirectory>``/``<DirectoryEntry>``),
  https://www.fanvil.com/Uploads/Temp/download/20191226/5e0454ec2e7f0.pdf pages 8-9.
- vendors.md sections 6 and 8 (``check-sync`` / ``check-sync;reboot=true``).

Golden files: ``tests/vendors/golden/fanvil-*``; regenerate with ``DESKPROV_UPDATE_GOLDEN=1`` after
checking the difference by hand.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import aiohttp
import pytest

from sqlalchemy import select

from provisioning.model import Device
from provisioning.orgfile import OrgFileError, import_text, parse
from provisioning.server import Server
from provisioning.vendors import BY_NAME
from provisioning.vendors.base import FileKind
from provisioning.vendors.fanvil import fanvil_timezone
from simulators.fanvil import FanvilProfile, parse_config
from simulators.phone import Phone
from conftest import fix_device_credentials, make_settings  # tests/ is on sys.path (rootdir conftest)

GOLDEN = Path(__file__).parent / "golden"
FV = BY_NAME["fanvil"]
X5U_MAC, X3_MAC = "0c383eaabb01", "0c383eaabb02"

ORG = """
organization:
  name: Fläkten AB
  tftp_secret_networks: [127.0.0.0/8]  # the lab's TFTP boots come from loopback
  sip_domain: fv.sip.example.net
  timezone: Europe/Stockholm
  vlan: 40
  outbound_proxy: sbc.example.net:5070
  device_admin_password: "Adm1n-Fanvil!"
users:
  - {name: Anna Andersson, number: "+46854689901", extension: "201"}
  - {name: Bertil Berg, number: "+46854689902", extension: "202"}
  - {name: Cecilia Carlsson, number: "+46854689903", extension: "203"}
phonebooks:
  - name: Kunder
    members: all
    contacts:
      - {name: Åkeri & Söner AB, number: "+46812345678", mobile: "+46701234567"}
      - {name: Zeta <Konsult>, number: "+46855512345"}
phones:
  - mac: "0C:38:3E:AA:BB:01"
    model: Fanvil X5U-V2
    user: "+46854689901"
    sip: {username: anna5u, password: "s3cret-Anna-X5U"}
    lines:
      - {index: 2, user: "+46854689903", sip: {username: cecilia5u, password: "s3cret-Cecilia-X5U"}}
    keys:
      - {slot: 1, type: line}
      - {slot: 2, type: blf, target: "202", label: Bertil}
      - {slot: 3, type: speed_dial, number: "+46812345678", label: Support}
      - {slot: 4, type: park, target: "701", label: Park 1}
      - {slot: 5, type: dtmf, target: "*3", label: Rec}
      - {slot: 6, type: voicemail, label: Röstbrevlåda}
      - {slot: 7, type: group_toggle, label: Växel}
      - {slot: 8, type: line, line: 2, label: Cecilia}
      - {module: 1, slot: 2, type: blf, target: "203", label: Cecilia}
  - mac: "0C:38:3E:AA:BB:02"
    model: Fanvil X3
    user: "+46854689902"
    sip: {username: bertilx3, password: "s3cret-Bertil-X3"}
    keys:
      - {slot: 1, type: line}
      - {slot: 2, type: blf, target: "201", label: Anna}
"""

CONTACTS = [  # the server sorts by name: Z before Å
    ("Zeta <Konsult>", ("+46855512345",), "Kontakter"),
    ("Åkeri & Söner AB", ("+46812345678", "+46701234567"), "Kontakter"),
]




async def _start(tmp_path, **overrides) -> Server:
    from api.app import make_admin_app

    import socket
    if "public_url" not in overrides:
        with socket.socket() as sock:  # a known port: the config links the phone book by absolute URL
            sock.bind(("127.0.0.1", 0))
            overrides["http_port"] = sock.getsockname()[1]
    srv = Server(make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'deskprov.sqlite3'}", **overrides),
                 admin_app=make_admin_app)
    await srv.start()
    return srv


@pytest.fixture
async def fv_server(tmp_path):
    srv = await _start(tmp_path)
    yield srv
    await srv.stop()


@pytest.fixture
async def org_server(fv_server):
    await _import(fv_server, ORG)
    return fv_server


async def _import(server, text: str) -> None:
    async with server.sessions() as session:
        await import_text(session, text)


async def boot(server, profile: FanvilProfile, transport: str):
    phone = Phone(profile)
    if transport == "http":
        return await phone.boot_http(f"http://127.0.0.1:{server.http_port}/")
    return await phone.boot_tftp("127.0.0.1", server.tftp_port)


# -- desk phones ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["http", "tftp"])
async def test_x5u_v2_current_firmware(org_server, transport):
    profile = FanvilProfile("X5U-V2", X5U_MAC, "2.12.16.17")
    assert profile.user_agent() == f"Fanvil X5U-V2 2.12.16.17 {X5U_MAC}"
    state = await boot(org_server, profile, transport)
    assert state.errors == []
    assert state.requested == ["F0V5UV200000.cfg", f"{X5U_MAC}.cfg",
                               f"http://127.0.0.1:{org_server.http_port}/fv{X5U_MAC}-phonebook.xml"]
    assert state.boot_settings[f"format:{X5U_MAC}.cfg"] == "xml"
    anna, cecilia = state.accounts[1], state.accounts[2]
    assert anna.registered and cecilia.registered
    assert (anna.display_name, anna.user_name, anna.auth_name, anna.password) == \
        ("Anna Andersson", "46854689901", "anna5u", "s3cret-Anna-X5U")
    assert (anna.server, anna.port, anna.transport) == ("fv.sip.example.net", 5060, "udp")
    assert (cecilia.display_name, cecilia.auth_name) == ("Cecilia Carlsson", "cecilia5u")
    s = state.settings
    assert (s["sip.line.1.ProxyAddr"], s["sip.line.1.ProxyPort"], s["sip.line.1.MWINum"]) == \
        ("sbc.example.net", "5070", "*97")
    keys = state.keys
    assert (keys[(0, 1)].type, keys[(0, 1)].line) == ("line", 1)
    blf = keys[(0, 2)]
    assert (blf.type, blf.value, blf.label, blf.extension, blf.line) == ("blf", "202", "Bertil", "*8", 1)
    assert (keys[(0, 3)].type, keys[(0, 3)].value) == ("speed_dial", "+46812345678")
    assert (keys[(0, 4)].type, keys[(0, 4)].value) == ("park", "701")
    assert (keys[(0, 5)].type, keys[(0, 5)].value) == ("dtmf", "*3")
    assert (keys[(0, 6)].type, keys[(0, 6)].value) == ("voicemail", "*97")
    assert (keys[(0, 7)].type, keys[(0, 7)].value) == ("speed_dial", "*45")  # group toggle = feature code
    assert (keys[(0, 8)].type, keys[(0, 8)].line) == ("line", 2)
    assert keys[(0, 9)].type == "none"  # unprogrammed keys are cleared
    ext = keys[(1, 2)]
    assert (ext.type, ext.value, ext.label, ext.source) == ("blf", "203", "Cecilia", "dssExt.1.Fkey.2")
    assert [(c["name"], tuple(c["numbers"]), c["book"]) for c in state.contacts] == CONTACTS
    assert (state.timezone, state.timezone_name) == ("UTC+1", "4")
    assert (s["phone.date.EnableDST"], s["phone.date.DSTStartMon"], s["phone.date.DSTStartWeek"],
            s["phone.date.DSTStartWday"], s["phone.date.DSTStartHour"], s["phone.date.DSTEndMon"],
            s["phone.date.DSTEndHour"]) == ("2", "3", "-1", "0", "2", "10", "3")
    assert state.language == "en"  # Fanvil has no Swedish
    assert (s["web.account.1.Password"], s["qos.VLANID"]) == ("Adm1n-Fanvil!", "40")
    assert 22 <= int(s["ap.FlashInterval"]) <= 26  # 24 h +-10 %, fixed per MAC


@pytest.mark.parametrize("transport", ["http", "tftp"])
async def test_x3_old_firmware_text_format(org_server, transport):
    state = await boot(org_server, FanvilProfile("X3", X3_MAC, "1.4.0.2090"), transport)
    assert state.errors == []
    assert state.requested == ["F0V00X300000.cfg", f"{X3_MAC}.cfg"]
    assert state.boot_settings[f"format:{X3_MAC}.cfg"] == "text"
    bertil = state.accounts[1]
    assert bertil.registered
    assert (bertil.display_name, bertil.user_name, bertil.auth_name, bertil.password, bertil.server) == \
        ("Bertil Berg", "46854689902", "bertilx3", "s3cret-Bertil-X3", "fv.sip.example.net")
    assert state.keys[(0, 1)].type == "line"
    blf = state.keys[(0, 2)]
    assert (blf.type, blf.value, blf.label, blf.extension) == ("blf", "201", "Anna", "*8")
    assert state.timezone == "UTC+1"
    s = state.settings
    assert (s["GLOBAL CONFIG MODULE.Enable Daylight"], s["GLOBAL CONFIG MODULE.DayLight Start Week"],
            s["GLOBAL CONFIG MODULE.DayLight End Hour"]) == ("1", "5", "3")
    assert s["AUTOUPDATE CONFIG MODULE.Config File Name"] == f"{X3_MAC}.cfg"


# -- identification -----------------------------------------------------------------------------

NO_MODEL = """
organization: {tftp_secret_networks: [127.0.0.0/8], name: Lärande AB, sip_domain: l.example.net}
users:
  - {name: Cecilia, number: "+46854689931", extension: "301"}
  - {name: David, number: "+46854689932", extension: "302"}
phones:
  - {mac: "0C:38:3E:CC:00:01", user: "+46854689931"}
  - {mac: "0C:38:3E:CC:00:02", user: "+46854689932"}
  - {mac: "00:A8:59:CC:00:03", user: "+46854689932"}
  - {mac: "0C:38:3E:CC:00:04", model: Fanvil X9, user: "+46854689932"}
"""


async def _device(server, mac: str) -> Device:
    async with server.sessions() as session:
        return (await session.execute(select(Device).where(Device.mac == mac))).scalar_one()


async def test_registered_by_mac_alone(fv_server):
    await _import(fv_server, NO_MODEL)
    # HTTP, MAC and model in the User-Agent.
    state = await boot(fv_server, FanvilProfile("X4U", "0c383ecc0001", "2.12.16.17"), "http")
    assert state.accounts[1].registered and state.errors == []
    device = await _device(fv_server, "0c383ecc0001")
    assert (device.vendor, device.model, device.firmware) == ("fanvil", "X4U", "2.12.16.17")
    # A User-Agent without MAC: the MAC comes from the path.
    profile = FanvilProfile("X4", "0c383ecc0002", "2.10.2.6887", user_agent="Fanvil X4 2.10.2.6887")
    state = await boot(fv_server, profile, "http")
    assert state.accounts[1].registered and state.errors == []
    assert (await _device(fv_server, "0c383ecc0002")).model == "X4"
    # TFTP, no User-Agent, <mac>.cfg (also Yealink's and Poly's name) with Fanvil's other OUI: the
    # OUI picks Fanvil, and the common file asked for first names the model.
    state = await boot(fv_server, FanvilProfile("X3S", "00a859cc0003", "2.10.2.6887"), "tftp")
    assert state.accounts[1].registered and state.errors == []
    device = await _device(fv_server, "00a859cc0003")
    assert (device.vendor, device.model) == ("fanvil", "X3S")


async def test_unknown_model_gets_the_generic_profile(fv_server, caplog):
    caplog.set_level(logging.INFO, "deskprov.serve")
    await _import(fv_server, NO_MODEL)
    state = await boot(fv_server, FanvilProfile("X9", "0c383ecc0004", "3.0.1"), "http")
    assert state.accounts[1].registered and state.errors == [] and state.timezone == "UTC+1"
    assert (await _device(fv_server, "0c383ecc0004")).model == "X9"
    assert any("unknown model 'X9'" in r.getMessage() and "generic" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("phone, expected", [
    ('{mac: "0C:38:3E:AA:00:10", model: Fanvil X3, user: "+46854689901", keys: [{slot: 3, type: line}]}',
     "has keys 1-2"),
    ('{mac: "0C:38:3E:AA:00:11", model: Fanvil X5U-V2, user: "+46854689901", '
     'keys: [{module: 4, slot: 1, type: blf, target: "202"}]}', "has no expansion module 4"),
    ('{mac: "0C:38:3E:AA:00:12", model: Fanvil X5U-V2, user: "+46854689901", '
     'keys: [{module: 1, slot: 61, type: blf, target: "202"}]}', "has keys 1-60"),
    ('{mac: "0C:38:3E:AA:00:13", model: Fanvil X3, user: "+46854689901", '
     'keys: [{module: 1, slot: 1, type: blf, target: "202"}]}', "has no expansion module 1"),
])
def test_keys_the_model_does_not_have_are_refused_at_import(phone, expected):
    text = ORG.split("phones:")[0] + "phones:\n  - " + phone + "\n"
    with pytest.raises(OrgFileError) as err:
        parse(text)
    assert expected in str(err.value)


@pytest.mark.parametrize("user_agent, expected", [
    ("Fanvil X4 2.10.2.6887 0c383e07e16c", ("X4", "2.10.2.6887", "0c383e07e16c")),
    ("Fanvil X6U Pro 0.0.10 0c383e2cd782", ("X6U-Pro", "0.0.10", "0c383e2cd782")),
    ("Fanvil V67 2.6.6.187 0c383e2b29e6", ("V67", "2.6.6.187", "0c383e2b29e6")),
    ("Fanvil H2U-V2 2.12.0 0c383e32342e", ("H2U-V2", "2.12.0", "0c383e32342e")),
    ("Fanvil X5U-V2 2.12.16.17 0c383e557eb1", ("X5U-V2", "2.12.16.17", "0c383e557eb1")),
    ("Fanvil X4 2.10.2.6887", ("X4", "2.10.2.6887", None)),
])
def test_user_agents(user_agent, expected):
    info = FV.match_user_agent(user_agent)
    assert (info.vendor, info.model, info.firmware, info.mac) == ("fanvil", *expected)
    assert FV.match_user_agent("Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01") is None


def test_file_names_and_kinds():
    assert FV.match_path(f"{X5U_MAC}.cfg").kind is FileKind.device
    assert FV.match_path("00a859cc0003.cfg").mac == "00a859cc0003"
    # <mac>.cfg of another vendor's MAC, a wrong-case name, the all-zero MAC: not Fanvil's.
    for other in ("805ec0aabb01.cfg", "0004f2aabb01.cfg", f"{X5U_MAC.upper()}.cfg", "000000000000.cfg",
                  "y000000000066.cfg", f"cfg{X5U_MAC}.xml", f"{X5U_MAC}-phonebook.xml"):
        assert FV.match_path(other) is None, other
    common = FV.match_path("f0X4hw1.100.cfg")
    assert (common.kind, common.model) == (FileKind.common, "X4")
    assert FV.match_path("fanvil_x5u_v2_hwv2_0.txt").model == "X5U-V2"
    assert FV.match_path("F0X4HW1.100.CFG") is None
    assert FV.match_path(f"fv{X5U_MAC}-phonebook.xml").mac == X5U_MAC


async def test_tftp_mac_file_of_a_yealink_is_not_fanvils(org_server):
    """Over TFTP there is no User-Agent: the Fanvil OUI decides, and a Yealink MAC never reaches Fanvil."""
    from provisioning.serving import Provisioner

    candidates = Provisioner._candidates(f"{X5U_MAC}.cfg")
    assert "fanvil" in {c.vendor for c in candidates}
    assert "fanvil" not in {c.vendor for c in Provisioner._candidates("805ec0aabb01.cfg")}


async def test_common_file_carries_no_secret(org_server):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{org_server.http_port}/F0V5UV200000.cfg",
                            headers={"User-Agent": f"Fanvil X5U-V2 2.12.16.17 {X5U_MAC}"}) as resp:
            assert resp.status == 200
            body = await resp.read()
    assert b"s3cret" not in body and b"Adm1n" not in body and b"RegisterPswd" not in body
    fmt, values = parse_config(body)
    assert fmt == "xml" and values["ap.FlashFileName"] == "$mac.cfg"


def test_time_zones():
    tz = fanvil_timezone("Europe/Stockholm")
    assert (tz["quarters"], tz["name"], tz["start"].month, tz["start"].week, tz["end"].hour) == (4, "UTC+1", 3, 5, 3)
    assert fanvil_timezone("Asia/Kolkata")["quarters"] == 22 and fanvil_timezone("Asia/Kolkata")["start"] is None
    assert fanvil_timezone("America/New_York")["name"] == "UTC-05"


def test_resync_events():
    assert (FV.resync_event, FV.reboot_event) == ("check-sync", "check-sync;reboot=true")


# -- golden files --------------------------------------------------------------------------------

GOLDEN_FILES = [
    ("fanvil-X5U-V2.cfg", f"{X5U_MAC}.cfg", f"Fanvil X5U-V2 2.12.16.17 {X5U_MAC}"),
    ("fanvil-X5U-V2-common.cfg", "F0V5UV200000.cfg", f"Fanvil X5U-V2 2.12.16.17 {X5U_MAC}"),
    ("fanvil-X5U-V2-phonebook.xml", f"fv{X5U_MAC}-phonebook.xml", f"Fanvil X5U-V2 2.12.16.17 {X5U_MAC}"),
    ("fanvil-X3.cfg", f"{X3_MAC}.cfg", f"Fanvil X3 1.4.0.2090 {X3_MAC}"),
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
