"""End to end: simulated Poly phones (VVX 450 on UCS 6.4, SoundPoint IP 450 on UCS 4.0) boot against
the real server over HTTP and TFTP; uploads are real HTTP PUTs.

The simulator (simulators/poly.py) reads what it gets with its own XML parser, never the server's.

Parameter names were checked against these Polycom documents (found with the search tool):
- SIP 3.1 admin guide, "Master Configuration Files" (``<mac>.cfg`` then ``000000000000.cfg``,
  APP_FILE_PATH/CONFIG_FILES/...): http://audio.manualsonline.com/manuals/mfg/polycom/sip_31.html?p=156
- SoundPoint IP admin guide 1.4, 2.2.2.1.2.2 (CONFIG_FILES order: the first file that sets a
  parameter wins): https://azmanual.top/manuals/183764/polycom-version-14x-17.html?page=20
- SIP 3.0.2 admin guide, "Local Contact Directory" (item/fn/ln/ct/sd):
  https://manualsbrain.com/de/manuals/988802/?page=59
- VVX Expansion Module Administrator's Guide Addendum, UCS 4.1.6, p. 31 (``^`` action strings,
  ``!`` macro names in the directory) and p. 37 (lineKey.x.category BLF/Line/SpeedDial/
  Presence/Unassigned, BLF index 0, SpeedDial = favourites index, 16 + 3 x 84 keys):
  http://38.142.81.21:8001/manual/polycom/2200-46350-025/user-s-guide-english/page-37.html
- UCS 5.8 admin guide, "Macro Actions" ($Tinvite$/$Tdtmf$/$Trefer$/$Tintercom$):
  https://documents.polycom.com/bundle/ucs-ag-5-8/page/r-ucs-ag-macro-actions.html
- Poly community FAQ on polling (prov.polling.enabled/mode/period; dir.local.readonly):
  https://community.polycom.com/t5/VoIP-SIP-Phones/FAQ-Automatically-check-for-configuration-changes-or-new/td-p/68444
- SIP 2.2 admin guide p. A-53 (tcpIpApp.sntp.gmtOffset, daylightSavings.start/stop.*):
  https://azmanual.top/manuals/189944/polycom-soundpoint-sip-220.html?page=165
Not verified there (taken from public configurations): reg.x.* names beyond those in the guides'
examples, msg.mwi.x.callBack(Mode), lcl.ml.lang values, call.directedCallPickup*, the
"automata" resource type for park orbits, device.net.vlanId and device.auth.localAdminPassword.
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
from simulators.poly import PolyProfile

GOLDEN = Path(__file__).parent / "golden"
VVX_MAC, SPIP_MAC = "0004f2aabb01", "0004f2aabb02"
VVX_UA = "FileTransport PolycomVVX-VVX_450-UA/6.4.0.1234 Type/Application"

ORG = """
organization:
  name: Polyfonen AB
  tftp_secret_networks: [127.0.0.0/8]  # the lab's TFTP boots come from loopback
  sip_domain: poly.sip.example.net
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
      - {name: Zeta & Co Service, number: "+46855512345"}
phones:
  - mac: "00:04:F2:AA:BB:01"
    model: Poly VVX 450
    user: "+46854689901"
    sip: {username: anna450, password: "s3cret-Anna-450"}
    keys:
      - {slot: 1, type: line}
      - {slot: 2, type: blf, target: "202", label: Bertil}
      - {slot: 3, type: speed_dial, number: "+46812345678", label: Support}
      - {slot: 4, type: park, target: "701", label: Park 1}
      - {slot: 5, type: dtmf, target: "*3", label: Rec}
      - {slot: 6, type: voicemail, label: Röstbrevlåda}
      - {slot: 7, type: group_toggle, label: Växel in/ut}
      - {module: 1, slot: 1, type: blf, target: "203", label: Cecilia}
      - {module: 2, slot: 84, type: speed_dial, number: "+46855512345", label: Zeta}
  - mac: "00:04:F2:AA:BB:02"
    model: Polycom SoundPoint IP 450
    user: "+46854689902"
    keys:
      - {slot: 1, type: line}
      - {slot: 3, type: blf, target: "201", label: Anna}
"""


async def _import(server, text: str = ORG) -> None:
    async with server.sessions() as session:
        await import_text(session, text)


def _http(server) -> str:
    return f"http://127.0.0.1:{server.http_port}/"


def vvx(mac: str = VVX_MAC, **kw) -> Phone:
    return Phone(PolyProfile("VVX450", mac, "6.4.0.1234", updater="6.4.0.100", **kw))


def spip(mac: str = SPIP_MAC) -> Phone:
    return Phone(PolyProfile("SPIP450", mac, "4.0.15.1009", updater="4.3.1.0079"))


def boot_order(mac: str) -> list[str]:
    return [f"{mac}.cfg", "sip.ld", f"{mac}.cfg", f"{mac}-deskprov.cfg", "deskprov-poly.cfg",
            f"{mac}-phone.cfg", f"{mac}-web.cfg", f"{mac}-directory.xml"]


def assert_annas_vvx(state) -> None:
    assert not state.errors, state.errors
    anna = state.accounts[1]
    assert anna.registered
    assert (anna.display_name, anna.user_name, anna.auth_name, anna.password) == (
        "Anna Andersson", "46854689901", "anna450", "s3cret-Anna-450")
    assert (anna.server, anna.port, anna.transport) == ("poly.sip.example.net", 5060, "udp")
    keys = {where: (k.type, k.value, k.label) for where, k in state.keys.items()}
    assert state.keys[(0, 1)].type == "line" and state.keys[(0, 1)].line == 1
    assert keys[(0, 2)] == ("blf", "202", "Bertil") and state.keys[(0, 2)].extension == "*8"
    assert keys[(0, 3)] == ("speed_dial", "+46812345678", "Support")
    assert keys[(0, 4)] == ("park", "701", "Park 1")
    assert keys[(0, 5)] == ("dtmf", "*3", "Rec")
    assert keys[(0, 6)] == ("speed_dial", "*97", "Röstbrevlåda")  # the voicemail number
    assert keys[(0, 7)] == ("speed_dial", "*45", "Växel in/ut")  # the group toggle code
    assert keys[(1, 1)] == ("blf", "203", "Cecilia")
    assert keys[(2, 84)] == ("speed_dial", "+46855512345", "Zeta")
    assert (0, 8) not in state.keys  # unprogrammed slots are Unassigned
    names = {c["name"]: c["numbers"] for c in state.contacts}
    assert names["Leverantören AB"] == ["+46812345678"]
    assert names["Leverantören AB (mobil)"] == ["+46701234567"]
    assert names["Zeta & Co Service"] == ["+46855512345"]
    # Stockholm: UTC+1, summer time from the last Sunday of March 02:00 to the last of October 03:00.
    assert (state.timezone, state.timezone_name) == ("+1", "M3.5.0/2,M10.5.0/3")
    assert state.language == "Swedish_Sweden"
    assert state.settings["device.auth.localAdminPassword"] == "Adm1n-Secret!"
    assert state.settings["prov.polling.mode"] == "rel"
    assert 1296 * 60 <= int(state.settings["prov.polling.period"]) <= 1584 * 60  # 1440 min +-10 %


async def test_vvx450_current_firmware_boots_over_http(sqlite_server):
    await _import(sqlite_server)
    state = await vvx().boot_http(_http(sqlite_server))
    assert state.requested == boot_order(VVX_MAC)
    assert_annas_vvx(state)


async def test_vvx450_boots_over_tftp(sqlite_server):
    await _import(sqlite_server)
    state = await vvx().boot_tftp("127.0.0.1", sqlite_server.tftp_port)
    assert state.requested == boot_order(VVX_MAC)
    assert_annas_vvx(state)


@pytest.mark.parametrize("transport", ["http", "tftp"])
async def test_old_soundpoint_ucs4_boots(sqlite_server, transport):
    await _import(sqlite_server)
    phone = spip()
    assert phone.profile.user_agent() == "FileTransport PolycomSoundPointIP-SPIP_450-UA/4.0.15.1009"
    state = await (phone.boot_http(_http(sqlite_server)) if transport == "http"
                   else phone.boot_tftp("127.0.0.1", sqlite_server.tftp_port))
    assert not state.errors and state.requested == boot_order(SPIP_MAC)
    assert state.accounts[1].registered and state.accounts[1].display_name == "Bertil Berg"
    assert state.keys[(0, 1)].type == "line"
    assert (state.keys[(0, 3)].type, state.keys[(0, 3)].value, state.keys[(0, 3)].extension) == ("blf", "201", "*8")
    assert (0, 2) not in state.keys
    assert {c["name"] for c in state.contacts} >= {"Leverantören AB", "Zeta & Co Service"}


async def test_registered_by_mac_alone_is_identified_by_its_first_request(sqlite_server, caplog):
    """Over HTTP the User-Agent (which carries no MAC) names the model; over TFTP only the vendor is known."""
    await _import(sqlite_server, ORG.split("phones:")[0] + """phones:
  - mac: "00:04:F2:AA:BB:01"
    user: "+46854689901"
    keys:
      - {slot: 1, type: line}
      - {slot: 2, type: blf, target: "202", label: Bertil}
  - {mac: "00:04:F2:AA:BB:02", user: "+46854689902"}
""")
    caplog.set_level(logging.INFO, "deskprov.serve")
    state = await vvx().boot_http(_http(sqlite_server))
    assert state.accounts[1].registered and state.keys[(0, 2)].type == "blf"
    over_tftp = await spip().boot_tftp("127.0.0.1", sqlite_server.tftp_port)
    assert over_tftp.accounts[1].registered  # the generic profile still registers the line
    async with sqlite_server.sessions() as session:
        devices = {d.mac: d for d in (await session.execute(select(Device))).scalars()}
    assert (devices[VVX_MAC].vendor, devices[VVX_MAC].model) == ("poly", "VVX450")
    assert (devices[SPIP_MAC].vendor, devices[SPIP_MAC].model) == ("poly", None)
    assert any("learnt 0004f2aabb01 is a Poly VVX450" in r.getMessage() for r in caplog.records)
    assert any("unknown model None, serving the generic Poly profile" in r.getMessage() for r in caplog.records)


async def test_unknown_poly_model_gets_the_generic_profile(sqlite_server, caplog):
    await _import(sqlite_server, ORG.split("phones:")[0] + """phones:
  - mac: "00:04:F2:AA:BB:09"
    model: Poly VVX 999
    user: "+46854689903"
    keys:
      - {slot: 2, type: blf, target: "201", label: Anna}
""")
    caplog.set_level(logging.WARNING, "deskprov.serve")
    state = await Phone(PolyProfile("VVX999", "0004f2aabb09", "6.4.0.1", line_keys=2)).boot_http(_http(sqlite_server))
    assert not state.errors and state.accounts[1].registered
    assert state.keys[(0, 2)].type == "blf"
    assert any("unknown model 'VVX 999', serving the generic Poly profile" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("phone, expected", [
    ('{mac: "00:04:F2:AA:BB:0A", model: Poly VVX 101, keys: [{slot: 2, type: line}]}',
     "key 2: Poly VVX101 has keys 1-1 there"),
    ('{mac: "00:04:F2:AA:BB:0B", model: Poly VVX 201, keys: [{module: 1, slot: 1, type: blf, target: "201"}]}',
     "Poly VVX201 has no expansion module 1"),
    ('{mac: "00:04:F2:AA:BB:0C", model: Poly VVX 450, keys: [{module: 4, slot: 1, type: blf, target: "201"}]}',
     "Poly VVX450 has no expansion module 4"),
    ('{mac: "00:04:F2:AA:BB:0D", model: Poly VVX 450, keys: [{module: 1, slot: 85, type: blf, target: "201"}]}',
     "expansion module 1 key 85: Poly VVX450 has keys 1-84 there"),
])
async def test_keys_the_model_does_not_have_are_refused_at_import(sqlite_server, phone, expected):
    with pytest.raises(OrgFileError) as err:
        await _import(sqlite_server, ORG.split("phones:")[0] + f"phones:\n  - {phone}\n")
    assert expected in str(err.value)


def test_resync_and_reboot_events():
    poly = BY_NAME["poly"]
    assert (poly.resync_event, poly.reboot_event) == ("check-sync", "check-sync")


# -- uploads: the phone PUTs local settings and logs, stored per device, read back only by it --------


async def _put(server, name: str, body: bytes, ua: str = VVX_UA, source: str = "127.0.0.1") -> int:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0))) as http:
        async with http.put(_http(server) + name, data=body, headers={"User-Agent": ua}) as resp:
            return resp.status


async def _get(server, name: str, ua: str = VVX_UA, source: str = "127.0.0.1") -> tuple[int, bytes]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0))) as http:
        async with http.get(_http(server) + name, headers={"User-Agent": ua}) as resp:
            return resp.status, await resp.read()


async def test_uploads_are_stored_per_device_and_read_back_by_it(sqlite_server):
    await _import(sqlite_server)
    local = b'<PHONE_CONFIG><OVERRIDES up.backlight.idleIntensity="1"/></PHONE_CONFIG>'
    # The phone's User-Agent names no MAC: before it has provisioned from an address, nobody can
    # plant an override file (a new registrar) for it, and afterwards only from that address.
    assert await _put(sqlite_server, f"{VVX_MAC}-phone.cfg", local) == 404
    assert (await vvx().boot_http(_http(sqlite_server))).accounts[1].registered
    assert await _put(sqlite_server, f"{VVX_MAC}-phone.cfg", local, source="127.0.0.2") == 404
    assert await _put(sqlite_server, f"{VVX_MAC}-phone.cfg", local) == 204
    assert await _put(sqlite_server, f"{VVX_MAC}-app.log", b"0101000000|sip  |1|00|boot\n") == 204
    assert await _put(sqlite_server, f"{VVX_MAC}-boot.log", b"boot log\n") == 204
    assert await _put(sqlite_server, f"{VVX_MAC}-web.cfg", b"<PHONE_CONFIG/>") == 204
    assert await _get(sqlite_server, f"{VVX_MAC}-phone.cfg") == (200, local)
    assert (await _get(sqlite_server, f"{VVX_MAC}-phone.cfg", source="127.0.0.2"))[0] == 404
    # Another device's name never yields this device's file, and nothing crosses devices.
    assert (await _get(sqlite_server, f"{SPIP_MAC}-phone.cfg"))[0] == 404
    assert (await _get(sqlite_server, f"{SPIP_MAC}-app.log"))[0] == 404
    # Refused: unknown device, unbound device's MAC case variants, files that are not uploads,
    # another vendor's User-Agent, and anything bigger than max_upload_bytes.
    assert await _put(sqlite_server, "0004f2aabb99-phone.cfg", local) == 404
    assert await _put(sqlite_server, f"{VVX_MAC.upper()}-phone.cfg", local) == 404
    assert await _put(sqlite_server, f"{VVX_MAC}-deskprov.cfg", local) == 404
    assert await _put(sqlite_server, f"{VVX_MAC}.cfg", local) == 404
    assert await _put(sqlite_server, f"{VVX_MAC}-directory.xml", b"<directory/>") == 404
    assert await _put(sqlite_server, f"{VVX_MAC}-phone.cfg", local,
                      ua="Cisco-CP-8841-3PCC/11.3.7 (00562b043615)") == 404
    big = b"x" * (sqlite_server.settings.max_upload_bytes + 1)
    assert await _put(sqlite_server, f"{VVX_MAC}-app.log", big) == 413
    assert await _get(sqlite_server, f"{VVX_MAC}-phone.cfg") == (200, local)


async def test_a_phones_own_changes_come_back_on_its_next_boot(sqlite_server):
    await _import(sqlite_server)
    first = await vvx(local_changes={"up.backlight.idleIntensity": "1", "lcl.ml.lang": "English_United_Kingdom"}
                      ).boot_http(_http(sqlite_server))
    assert first.requested[-1] == f"PUT {VVX_MAC}-phone.cfg" and first.fetched[-1].ok
    again = await vvx().boot_http(_http(sqlite_server))
    assert not again.errors and f"{VVX_MAC}-phone.cfg" in again.applied
    assert again.settings["up.backlight.idleIntensity"] == "1"
    assert again.language == "English_United_Kingdom"  # the user's own choice wins over the server's
    assert again.accounts[1].registered  # and the accounts are untouched


async def test_wrong_case_and_secrets_in_shared_files(sqlite_server):
    await _import(sqlite_server)
    for name in (f"{VVX_MAC.upper()}.cfg", f"{VVX_MAC.upper()}-deskprov.cfg", f"{VVX_MAC.upper()}-directory.xml"):
        assert (await _get(sqlite_server, name))[0] == 404, name
    for name in ("000000000000.cfg", "deskprov-poly.cfg"):
        status, body = await _get(sqlite_server, name)
        assert status == 200 and b"s3cret" not in body and b"Adm1n" not in body and b"password" not in body
    status, master = await _get(sqlite_server, "000000000000.cfg")
    assert b'CONFIG_FILES="[PHONE_MAC_ADDRESS]-deskprov.cfg, deskprov-poly.cfg"' in master


async def test_golden_vvx450(sqlite_server):
    """Byte-for-byte: the VVX 450's configuration and directory from the fixed organisation above.

    Parameter names checked against the guides listed in this module's docstring.
    """
    await _import(sqlite_server)
    await fix_device_credentials(sqlite_server)  # the golden files carry them
    bodies = {}
    for name in (f"{VVX_MAC}-deskprov.cfg", f"{VVX_MAC}-directory.xml"):
        status, bodies[name] = await _get(sqlite_server, name)
        assert status == 200
    for name, golden in ((f"{VVX_MAC}-deskprov.cfg", "poly-VVX450.xml"),
                         (f"{VVX_MAC}-directory.xml", "poly-VVX450-directory.xml")):
        path = GOLDEN / golden
        if os.environ.get("DESKPROV_UPDATE_GOLDEN"):
            path.write_bytes(bodies[name])
        assert bodies[name] == path.read_bytes(), golden


@pytest.mark.parametrize("ua, model, firmware", [
    ("FileTransport PolycomSoundPointIP-SPIP_335-UA/3.2.1.0078", "SPIP335", "3.2.1.0078"),
    ("FileTransport PolycomSoundPointIP-SPIP_450-UA/3.2.3.1734", "SPIP450", "3.2.3.1734"),
    ("FileTransport PolycomSoundStationIP-SSIP_6000-UA/4.0.4.2906 Type/Application", "SSIP6000", "4.0.4.2906"),
    ("FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application", "VVX400", "4.1.4.7430"),
    ("FileTransport PolycomVVX-VVX_101-UA/5.4.3.1014 Type/Application", "VVX101", "5.4.3.1014"),
    ("FileTransport PolycomVVX-VVX_450-UA/6.4.0.100 Type/Updater", "VVX450", None),
    ("FileTransport PolycomVVX-VVX_999-UA/6.4.0.1 Type/Application", "VVX999", "6.4.0.1"),
])
def test_user_agents(ua, model, firmware):
    info = BY_NAME["poly"].match_user_agent(ua)
    assert (info.vendor, info.model, info.firmware, info.mac) == ("poly", model, firmware, None)
    assert BY_NAME["yealink"].match_user_agent(ua) is None and BY_NAME["cisco"].match_user_agent(ua) is None


async def test_vlan_is_written_when_the_organisation_has_one(sqlite_server):
    zone = "  timezone: Europe/Stockholm\n"
    await _import(sqlite_server, ORG.replace(zone, zone + "  vlan: 20\n"))
    state = await vvx().boot_http(_http(sqlite_server))
    assert state.settings["device.net.vlanId"] == "20" and not state.errors
