"""Yealink end to end: simulated T46G (legacy firmware), T54W (boot files), W60B/W52P (DECT bases).

Each phone boots against the real server over HTTP and TFTP and is read back by the simulator's
own Yealink parser (simulators/yealink.py), never by the server's code.

Parameter names were checked against Yealink's admin guides (mirrors of the vendor PDFs):

- Administrator's Guide for SIP-T2/T4/T5 Series IP Phones: boot files and the legacy pair
  (https://www.easymanua.ls/yealink/sip-t2-series/manual?p=150), ``linekey.X.*`` and
  ``expansion_module.X.key.Y.*`` ranges per model, EXP20 key 21 not configurable
  (https://www.easymanua.ls/yealink/sip-t2-series/manual?p=617), per-model account counts
  (https://manualshive.com/en/manual/yealink/sip-t5-series/3909785?page=323), ``<MAC>.cfg`` /
  ``<MAC>-local.cfg`` naming and upload (https://www.easymanua.ls/yealink/t40g/manual/289184?p=78).
- DECT number assignment (handset N <-> account N): W56P user guide "Account->Number Assignment"
  (http://38.142.81.21:8001/manual/yealink/w56p-ip-dect/operation-manual-english/page-68.html); the
  ``handset.X.incoming_lines`` / ``dial_out_lines`` / ``dial_out_default_line`` / ``name`` names
  as in Yealink's W52P/W60B configuration templates.
- ``check-sync;reboot=false|true`` and ``sip.notify_reboot_enable``: vendors.md 1.5 (Yealink CP969
  guide https://manualshive.com/en/manual/yealink/cp969/909068?page=779).
- Remote phone book ``remote_phonebook.data.X.url|name`` and the ``<YealinkIPPhoneDirectory>``
  format (``DirectoryEntry``/``Name``/``Telephone``): Yealink's XML phone book format as used by
  FusionPBX's and others' Yealink templates; the guide page itself was not reachable (unverified).
- VLAN ``static.network.vlan.internet_port_enable|vid`` and ``static.security.user_password =
  admin:<password>``: Yealink configuration template names (Wazo's Yealink templates use the same).

Golden files: ``tests/vendors/golden/yealink-*``; regenerate with ``DESKPROV_UPDATE_GOLDEN=1``
after checking the difference by hand.
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
from provisioning.vendors.base import FileKind
from simulators.phone import Phone
from simulators.yealink import YealinkProfile, parse_phonebook

GOLDEN = Path(__file__).parent / "golden"
YEALINK = BY_NAME["yealink"]

ORG = """
organization:
  name: Exempel AB
  tftp_secret_networks: [127.0.0.0/8]  # the lab's TFTP boots come from loopback
  sip_domain: exempel.sip.example.net
  timezone: Europe/Stockholm
  vlan: 20
  device_admin_password: "Adm1n-Hemligt!"
users:
  - {name: Anna Andersson, number: "+46854689901", extension: "201"}
  - {name: Bertil Berg, number: "+46854689902", extension: "202"}
  - {name: Cecilia Ceder, number: "+46854689903", extension: "203"}
  - {name: David Dahl, number: "+46854689904", extension: "204"}
phonebooks:
  - name: Kunder
    members: all
    contacts:
      - {name: "Åkeri & Söner AB", number: "+46812345678", mobile: "+46701234567"}
      - {name: "Zeta <Konsult>", number: "+46855512345"}
phones:
  - mac: "80:5E:C0:AA:BB:01"
    model: Yealink T46G
    user: "+46854689901"
    sip: {username: anna-t46g, password: "AnnaHemligt-0001"}
    keys:
      - {slot: 1, type: line}
      - {slot: 2, type: blf, target: "202", label: Bertil}
      - {slot: 3, type: speed_dial, number: "+46812345678", label: Support}
      - {slot: 4, type: park, target: "*85", label: Parkera}
      - {slot: 5, type: dtmf, target: "*1#", label: Ton}
      - {slot: 6, type: voicemail, label: Röstbrevlåda}
      - {slot: 7, type: group_toggle, label: Grupp}
      - {module: 1, slot: 40, type: blf, target: "203"}
  - mac: "80:5E:C0:AA:BB:02"
    model: Yealink T54W
    user: "+46854689902"
    sip: {username: bertil-t54w, password: "BertilHemligt-0002"}
    lines:
      - {index: 2, user: "+46854689903", sip: {username: cecilia-t54w, password: "CeciliaHemligt-03"}}
    keys:
      - {slot: 1, type: line}
      - {slot: 2, type: line, line: 2}
      - {slot: 27, type: blf, target: "201", label: Anna}
      - {module: 2, slot: 60, type: speed_dial, number: "+46855512345", label: Zeta}
      - {module: 1, slot: 1, type: group_toggle, label: Kö}
  - mac: "80:5E:C0:AA:BB:03"
    model: Yealink W60B
    user: "+46854689903"
    sip: {username: cecilia-w60b, password: "CeciliaHemligt-w60"}
    lines:
      - {index: 2, user: "+46854689904", sip: {username: david-w60b, password: "DavidHemligt-w60b"}}
      - {index: 3, user: "+46854689901", sip: {username: anna-w60b, password: "AnnaHemligt-w60b3"}}
  - mac: "00:15:65:B8:60:05"
    model: Yealink W56P
    user: "+46854689904"
    sip: {username: david-w56p, password: "DavidHemligt-w56p"}
"""


@pytest.fixture
async def yl_server(sqlite_server):
    return sqlite_server


@pytest.fixture
async def org_server(yl_server):
    await _import(yl_server, ORG)
    return yl_server


async def _import(server, text: str) -> None:
    async with server.sessions() as session:
        await import_text(session, text)


def url(server) -> str:
    return f"http://127.0.0.1:{server.http_port}/"


async def boot(server, profile: YealinkProfile, transport: str):
    phone = Phone(profile)
    if transport == "http":
        return await phone.boot_http(url(server))
    return await phone.boot_tftp("127.0.0.1", server.tftp_port)


def contacts(state) -> list[tuple[str, tuple[str, ...], str]]:
    return [(c["name"], tuple(c["numbers"]), c["book"]) for c in state.contacts]


EXPECTED_CONTACTS = [
    ("Zeta <Konsult>", ("+46855512345",), "Exempel AB"),
    ("Åkeri & Söner AB", ("+46812345678", "+46701234567"), "Exempel AB"),
]


def assert_swedish_time(state) -> None:
    assert (state.timezone, state.timezone_name) == ("+1", "Sweden(Stockholm)")
    assert state.settings["local_time.summer_time"] == "2"  # automatic DST
    assert state.language == "Swedish"


# -- desk phones -------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["http", "tftp"])
async def test_t46g_legacy_firmware(org_server, transport):
    """Firmware 80: only the legacy pair, then the remote phone book the device file links."""
    state = await boot(org_server, YealinkProfile("T46G", "80:5E:C0:AA:BB:01", "28.80.0.95"), transport)
    assert state.errors == [] and state.warnings == []
    phonebook = f"{url(org_server)}805ec0aabb01-phonebook.xml"
    assert state.requested == ["y000000000028.cfg", "805ec0aabb01.cfg", phonebook]
    anna = state.accounts[1]
    assert anna.registered and (anna.auth_name, anna.password) == ("anna-t46g", "AnnaHemligt-0001")
    assert (anna.display_name, anna.user_name, anna.server, anna.port) == (
        "Anna Andersson", "46854689901", "exempel.sip.example.net", 5060)
    assert not any(a.enabled for i, a in state.accounts.items() if i > 1)  # unused accounts off
    keys = {where: (k.type, k.value, k.label) for where, k in state.keys.items()}
    assert keys == {
        (0, 1): ("line", "", ""),
        (0, 2): ("blf", "202", "Bertil"),
        (0, 3): ("speed_dial", "+46812345678", "Support"),
        (0, 4): ("park", "*85", "Parkera"),
        (0, 5): ("dtmf", "*1#", "Ton"),
        (0, 6): ("voicemail", "*97", "Röstbrevlåda"),
        (0, 7): ("speed_dial", "*45", "Grupp"),  # group toggle: a speed dial to the toggle code
        (1, 40): ("blf", "203", "Cecilia Ceder"),  # EXP40, last key of page 2
    }
    assert state.keys[(0, 2)].extension == "*8" and state.keys[(1, 40)].extension == "*8"
    assert contacts(state) == EXPECTED_CONTACTS
    assert_swedish_time(state)
    assert state.settings["static.network.vlan.internet_port_enable"] == "1"
    assert state.settings["static.network.vlan.internet_port_vid"] == "20"
    assert state.settings["static.security.user_password"] == "admin:Adm1n-Hemligt!"
    assert state.settings["sip.notify_reboot_enable"] == "0"


@pytest.mark.parametrize("transport", ["http", "tftp"])
async def test_t54w_current_firmware(org_server, transport):
    """Firmware 86: <mac>.boot and its includes; two accounts; keys on two EXP50 modules."""
    state = await boot(org_server, YealinkProfile("T54W", "80:5E:C0:AA:BB:02", "96.86.0.100"), transport)
    assert state.errors == [] and state.warnings == []
    assert state.requested == ["805ec0aabb02.boot", "y000000000096.cfg", "805ec0aabb02.cfg",
                               f"{url(org_server)}805ec0aabb02-phonebook.xml"]
    assert state.accounts[1].registered and state.accounts[1].auth_name == "bertil-t54w"
    cecilia = state.accounts[2]
    assert cecilia.registered and (cecilia.user_name, cecilia.password) == ("46854689903", "CeciliaHemligt-03")
    assert (state.keys[(0, 2)].type, state.keys[(0, 2)].line) == ("line", 2)
    assert (state.keys[(0, 27)].type, state.keys[(0, 27)].value) == ("blf", "201")
    exp = state.keys[(2, 60)]
    assert (exp.type, exp.value, exp.label, exp.source) == ("speed_dial", "+46855512345", "Zeta",
                                                             "expansion_module.2.key.60")
    assert (state.keys[(1, 1)].type, state.keys[(1, 1)].value) == ("speed_dial", "*45")
    assert contacts(state) == EXPECTED_CONTACTS
    assert_swedish_time(state)


# -- DECT bases ----------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["http", "tftp"])
async def test_w60b_handsets_are_accounts(org_server, transport):
    state = await boot(org_server, YealinkProfile("W60B", "80:5E:C0:AA:BB:03", "77.83.0.25"), transport)
    assert state.errors == [] and state.warnings == []
    assert state.requested[:3] == ["805ec0aabb03.boot", "y000000000077.cfg", "805ec0aabb03.cfg"]
    registered = {i: (a.auth_name, a.display_name) for i, a in state.accounts.items() if a.registered}
    assert registered == {1: ("cecilia-w60b", "Cecilia Ceder"), 2: ("david-w60b", "David Dahl"),
                          3: ("anna-w60b", "Anna Andersson")}
    assert sorted(state.accounts) == list(range(1, 9))  # a W60B has 8; 4-8 disabled
    for handset in (1, 2, 3):
        for field in ("incoming_lines", "dial_out_lines", "dial_out_default_line"):
            assert state.settings[f"handset.{handset}.{field}"] == str(handset)
    assert state.settings["handset.2.name"] == "David Dahl"
    assert state.keys == {}
    assert contacts(state) == EXPECTED_CONTACTS
    assert_swedish_time(state)


async def test_w56p_old_firmware_legacy_pair(org_server):
    state = await boot(org_server, YealinkProfile("W56P", "00:15:65:B8:60:05", "25.80.0.15"), "http")
    assert state.user_agent == "Yealink W56P 25.80.0.15 00:15:65:b8:60:05"
    assert state.errors == [] and state.warnings == []
    assert state.requested[:2] == ["y000000000025.cfg", "001565b86005.cfg"]
    assert state.accounts[1].registered and state.settings["handset.1.incoming_lines"] == "1"
    assert sorted(state.accounts) == [1, 2, 3, 4, 5]


# -- identification --------------------------------------------------------------------------------

MAC_ONLY = """
organization: {tftp_secret_networks: [127.0.0.0/8], name: Lärande AB, sip_domain: l.example.net}
users:
  - {name: Erik, number: "+46854689931"}
phones:
  - {mac: "80:5E:C0:AA:BB:31", user: "+46854689931"}
  - {mac: "80:5E:C0:AA:BB:32", user: "+46854689931"}
  - {mac: "80:5E:C0:AA:BB:33", user: "+46854689931"}
  - {mac: "80:5E:C0:AA:BB:34", user: "+46854689931"}
"""


async def _learnt(server, mac: str) -> tuple:
    async with server.sessions() as session:
        device = (await session.execute(select(Device).where(Device.mac == mac))).scalar_one()
    return device.vendor, device.model


@pytest.mark.parametrize("mac, profile, transport, requested", [
    # UA with MAC, boot files: the first request (<mac>.boot) tells the model.
    ("805ec0aabb31", YealinkProfile("T54W", "80:5E:C0:AA:BB:31", "96.86.0.100"), "http",
     ["805ec0aabb31.boot", "y000000000096.cfg", "805ec0aabb31.cfg"]),
    # Firmware 71 UA: no MAC, hardware version last; the MAC comes from the path.
    ("805ec0aabb32", YealinkProfile("T46G", "80:5E:C0:AA:BB:32", "28.71.0.81", hardware_version="28.1.0.128.0.0.0"),
     "http", ["y000000000028.cfg", "805ec0aabb32.cfg"]),
    # A SIP-style UA without MAC on current firmware.
    ("805ec0aabb33", YealinkProfile("T54W", "80:5E:C0:AA:BB:33", "96.86.0.100",
                                    user_agent="Yealink SIP-T54W 96.86.0.100"), "http",
     ["805ec0aabb33.boot", "y000000000096.cfg", "805ec0aabb33.cfg"]),
    # TFTP, legacy firmware, no UA: the per-model common file comes first and names the model.
    ("805ec0aabb34", YealinkProfile("T46G", "80:5E:C0:AA:BB:34", "28.80.0.95"), "tftp",
     ["y000000000028.cfg", "805ec0aabb34.cfg"]),
])
async def test_registered_by_mac_alone(yl_server, mac, profile, transport, requested):
    await _import(yl_server, MAC_ONLY)
    state = await boot(yl_server, profile, transport)
    assert state.requested == requested
    assert state.errors == [] and state.accounts[1].registered
    assert await _learnt(yl_server, mac) == ("yealink", profile.model)
    assert state.settings["static.network.vlan.internet_port_enable"] == "0"  # organisation without VLAN
    assert "remote_phonebook.data.1.url" not in state.settings and state.contacts == []


async def test_registered_by_mac_alone_boot_files_over_tftp(yl_server):
    """Firmware 81+ over TFTP, no UA: the first request (<mac>.boot) says nothing about the model.
    The plugin then serves no boot file, so the phone takes the legacy pair, whose per-model
    common file names the model before <mac>.cfg. The phone registers either way."""
    await _import(yl_server, MAC_ONLY)
    profile = YealinkProfile("W60B", "80:5E:C0:AA:BB:34", "77.83.0.25")
    state = await boot(yl_server, profile, "tftp")
    assert state.requested == ["805ec0aabb34.boot", "y000000000000.boot", "y000000000077.cfg", "805ec0aabb34.cfg"]
    assert state.errors == [] and state.accounts[1].registered


async def test_model_learnt_from_common_file_after_boot_file_over_tftp(yl_server):
    await _import(yl_server, MAC_ONLY)
    profile = YealinkProfile("W60B", "80:5E:C0:AA:BB:34", "77.83.0.25")
    await boot(yl_server, profile, "tftp")
    assert await _learnt(yl_server, "805ec0aabb34") == ("yealink", "W60B")
    again = await boot(yl_server, profile, "tftp")  # the next boot gets the W60B boot file
    assert again.requested == ["805ec0aabb34.boot", "y000000000077.cfg", "805ec0aabb34.cfg"]
    assert again.settings["handset.1.incoming_lines"] == "1"


async def test_unknown_model_gets_generic_profile(yl_server, caplog):
    caplog.set_level(logging.INFO, "deskprov.serve")
    await _import(yl_server, MAC_ONLY.replace('{mac: "80:5E:C0:AA:BB:31",',
                                              '{mac: "80:5E:C0:AA:BB:31", model: Yealink T99X,'))
    profile = YealinkProfile("T99X", "80:5E:C0:AA:BB:31", "199.86.0.1", common_code=199)
    state = await boot(yl_server, profile, "http")
    assert state.errors == []
    assert state.requested == ["805ec0aabb31.boot", "y000000000000.boot", "y000000000199.cfg", "805ec0aabb31.cfg"]
    assert state.accounts[1].registered and state.timezone == "+1"
    assert any("unknown model 'T99X'" in r.getMessage() and "generic" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("model, key, problem", [
    ("T46S", "{slot: 28, type: blf, target: '+46854689902'}", "Yealink T46S has keys 1-27 there"),
    ("T41S", "{module: 1, slot: 1, type: line}", "has no expansion module 1"),
    ("T48S", "{module: 7, slot: 1, type: line}", "has no expansion module 7"),
    ("T54W", "{module: 1, slot: 61, type: line}", "expansion module 1 key 61: Yealink T54W has keys 1-60"),
    ("T27G", "{module: 1, slot: 21, type: line}", "key 21 of the EXP20 switches pages"),
    ("W60B", "{slot: 1, type: line}", "Yealink W60B has no programmable keys"),
    ("T99X", "{slot: 11, type: line}", "Yealink generic has keys 1-10"),
])
def test_key_the_model_lacks_is_refused_at_import(model, key, problem):
    text = f"""
organization: {{tftp_secret_networks: [127.0.0.0/8], name: Fel AB, sip_domain: f.example.net}}
users: [{{name: Anna, number: "+46854689901"}}, {{name: Bertil, number: "+46854689902"}}]
phones:
  - {{mac: "80:5E:C0:AA:BB:41", model: Yealink {model}, user: "+46854689901", keys: [{key}]}}
"""
    from provisioning.orgfile import parse

    with pytest.raises(OrgFileError) as err:
        parse(text)
    assert problem.lower() in str(err.value).lower()


def test_expansion_keys_within_capacity_are_accepted():
    model = YEALINK.find_model("T27G")
    assert YEALINK.validate_keys(model, [(6, 40, "blf"), (1, 20, "park"), (1, 22, "dtmf")]) == []
    assert YEALINK.find_model("T46G").lines == 16 and YEALINK.find_model("T41P").lines == 6


@pytest.mark.parametrize("user_agent, expected", [
    ("Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01", ("T46S", "66.86.0.15", "805ec0aabb01")),
    ("yealink SIP-T18 18.0.0.80 00:15:65:27:3e:05", ("T18", "18.0.0.80", "001565273e05")),
    ("Yealink SIP-T21P_E2 52.80.0.3 00:15:65:5e:16:7c", ("T21P_E2", "52.80.0.3", "0015655e167c")),
    ("Yealink SIP-T54W 96.86.0.100 805EC0AABB02", ("T54W", "96.86.0.100", "805ec0aabb02")),
    ("Yealink SIP-CP920 78.85.0.5 00:15:65:5e:16:7c", ("CP920", "78.85.0.5", "0015655e167c")),
    ("Yealink CP860 37.72.0.5 00:15:65:8a:37:86", ("CP860", "37.72.0.5", "0015658a3786")),
    ("Yealink W52P 25.80.0.15 00:15:65:b8:60:05", ("W52P", "25.80.0.15", "001565b86005")),
    ("Yealink W56P 25.81.0.10 00:15:65:b8:60:05", ("W52P", "25.81.0.10", "001565b86005")),
    ("Yealink W70B 146.87.0.15 80:5e:0c:1d:65:4e", ("W70B", "146.87.0.15", "805e0c1d654e")),
    ("Yealink W90DM 130.87.0.10 80:5e:c0:d9:c7:44", ("W90", "130.87.0.10", "805ec0d9c744")),
    ("Yealink-T46G 28.71.0.81 28.1.0.128.0.0.0", ("T46G", "28.71.0.81", None)),
    ("Yealink SIP-T27G 69.86.0.15", ("T27G", "69.86.0.15", None)),
    ("VP530P 23.70.0.40 00:15:65:31:4b:c0", ("VP530P", "23.70.0.40", "001565314bc0")),
])
def test_user_agents(user_agent, expected):
    info = YEALINK.match_user_agent(user_agent)
    assert (info.vendor, info.model, info.firmware, info.mac) == ("yealink", *expected)


def test_file_names_and_kinds():
    kinds = {name: (r.kind, r.model, r.mac) if (r := YEALINK.match_path(name)) else None for name in [
        "805ec0aabb01.boot", "805ec0aabb01.cfg", "805ec0aabb01-phonebook.xml", "805ec0aabb01-local.cfg",
        "805ec0aabb01-contact.xml", "805EC0AABB01.cfg", "y000000000066.cfg", "y000000000000.boot",
        "y000000000199.cfg", "y000000000077.cfg", "foo.cfg"]}
    assert kinds == {
        "805ec0aabb01.boot": (FileKind.device, None, "805ec0aabb01"),
        "805ec0aabb01.cfg": (FileKind.device, None, "805ec0aabb01"),
        "805ec0aabb01-phonebook.xml": (FileKind.device, None, "805ec0aabb01"),
        "805ec0aabb01-local.cfg": (FileKind.upload, None, "805ec0aabb01"),
        "805ec0aabb01-contact.xml": (FileKind.upload, None, "805ec0aabb01"),
        "805EC0AABB01.cfg": None,  # Yealink MACs in file names are lowercase
        "y000000000066.cfg": (FileKind.common, "T46S", None),
        "y000000000000.boot": (FileKind.common, None, None),
        "y000000000199.cfg": (FileKind.common, None, None),
        "y000000000077.cfg": (FileKind.common, "W60B", None),
        "foo.cfg": None,
    }


async def test_uploads_are_kept_for_the_phone_that_wrote_them(org_server):
    ua = {"User-Agent": "Yealink SIP-T54W 96.86.0.100 80:5e:c0:aa:bb:02"}
    other = {"User-Agent": "Yealink SIP-T46G 28.80.0.95 80:5e:c0:aa:bb:01"}
    local = b"#!version:1.0.0.1\nlinekey.5.label = Min egen\n"
    async with aiohttp.ClientSession() as http:
        async with http.get(url(org_server) + "805ec0aabb02.cfg", headers=ua) as resp:
            assert resp.status == 200  # the phone provisions first; uploads come from its address
        for name, body in (("805ec0aabb02-local.cfg", local), ("805ec0aabb02-contact.xml", b"<root_contact/>")):
            async with http.put(url(org_server) + name, data=body, headers=ua) as resp:
                assert resp.status in (200, 201, 204)
            async with http.get(url(org_server) + name, headers=ua) as resp:
                assert resp.status == 200 and await resp.read() == body
            async with http.get(url(org_server) + name, headers=other) as resp:
                assert resp.status == 404


def test_resync_events():
    assert YEALINK.resync_event == "check-sync;reboot=false"
    assert YEALINK.reboot_event == "check-sync;reboot=true"


def test_phonebook_parser_reads_both_yealink_forms():
    directory = ("<YealinkIPPhoneDirectory><DirectoryEntry><Name>A &amp; B</Name><Telephone>1</Telephone>"
                 "<Telephone>2</Telephone></DirectoryEntry></YealinkIPPhoneDirectory>").encode()
    menu = b'<YealinkIPPhoneBook><Menu Name="x"><Unit Name="C" Phone1="3" Phone2="" Phone3="4"/></Menu></YealinkIPPhoneBook>'
    assert parse_phonebook(directory) == [{"name": "A & B", "numbers": ["1", "2"]}]
    assert parse_phonebook(menu) == [{"name": "C", "numbers": ["3", "4"]}]


# -- golden files ------------------------------------------------------------------------------------


@pytest.fixture
async def golden_server(make_server):
    """Fixed public URL, so the rendered files do not depend on the test's ports."""
    srv = await make_server(public_url="http://prov.example.se/")
    await _import(srv, ORG)
    await fix_device_credentials(srv)  # the golden files carry them
    return srv


GOLDEN_FILES = [
    # (golden name, requested file, User-Agent)
    ("yealink-T54W.boot", "805ec0aabb02.boot", "Yealink SIP-T54W 96.86.0.100 80:5e:c0:aa:bb:02"),
    ("yealink-T54W.cfg", "805ec0aabb02.cfg", "Yealink SIP-T54W 96.86.0.100 80:5e:c0:aa:bb:02"),
    ("yealink-T54W-common.cfg", "y000000000096.cfg", "Yealink SIP-T54W 96.86.0.100 80:5e:c0:aa:bb:02"),
    ("yealink-T54W-phonebook.xml", "805ec0aabb02-phonebook.xml", "Yealink SIP-T54W 96.86.0.100 80:5e:c0:aa:bb:02"),
    ("yealink-T46G.cfg", "805ec0aabb01.cfg", "Yealink SIP-T46G 28.80.0.95 80:5e:c0:aa:bb:01"),
    ("yealink-W60B.cfg", "805ec0aabb03.cfg", "Yealink W60B 77.83.0.25 80:5e:c0:aa:bb:03"),
]


async def test_golden_files(golden_server):
    """Byte-for-byte against tests/vendors/golden/ (parameter names: see the module docstring)."""
    mismatched = []
    async with aiohttp.ClientSession() as http:
        for golden, name, ua in GOLDEN_FILES:
            async with http.get(f"http://127.0.0.1:{golden_server.http_port}/{name}",
                                headers={"User-Agent": ua}) as resp:
                assert resp.status == 200, name
                body = await resp.read()
            path = GOLDEN / golden
            if os.environ.get("DESKPROV_UPDATE_GOLDEN"):
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(body)
            elif not path.exists() or path.read_bytes() != body:
                mismatched.append(golden)
    assert mismatched == []
