"""Grandstream desk phones (GXP14xx/16xx/21xx, GRP26xx) and HandyTone ATAs (HT80x/HT81x).

Facts (shared/reference/vendors.md section 5; each checked where the search tool reached a source):

- Files: lowercase MAC, no separators. Current firmware asks for ``cfg<mac>`` (the proprietary
  binary file, also spelt ``cfg<mac>.bin``), then ``cfg<mac>.xml``, then ``cfg<model>.xml`` and
  ``cfg.xml`` only when the per-MAC XML failed (Grandstream "SIP Device Provisioning Guide",
  https://documentation.grandstream.com/knowledge-base/sip-device-provisioning-guide/). Older GXP21xx
  firmware asks for ``cfg<mac>.xml`` first, then ``cfg<mac>``, then ``cfg.xml`` ("it will issue a
  request to download a configuration XML file named cfgxxxxxxxxxxxx.xml followed by a file named
  cfgxxxxxxxxxxxx ... If the download of cfgxxxxxxxxxxxx.xml file is not successful, the provision
  program will download a generic cfg.xml file. The configuration file name should be in lower case
  letters", GXP2130/2140/2160 User Manual fw 1.0.1.14 p.81,
  http://38.142.81.21:8001/manual/grandstream-networks/gxp2130/user-s-manual-german-english/page-81.html).
  We answer the binary name with 404 and serve XML.
- User-Agent ``Grandstream Model HW GXP2135 SW 1.0.7.97 DevId 000b828aa872`` (DevId = lowercase MAC;
  some carry a hardware revision ``HW GXP2200 V2.2A``); the GXP2000 sent
  ``Grandstream GXP2000 (gxp2000e.bin:1.2.5.3/boot55e.bin:1.1.6.9) DevId 000b822726c8`` and the SIP
  UA of PnP is ``Grandstream GRP2612W 1.0.5.67`` (no MAC).
- Two XML formats in one envelope ``<gs_provision version="1">``: ``<config version="1">`` with
  P-values, ``<config version="2">`` with ``<item name="...">``. GRP26xx accept both (GS-TOOLS
  ``provisioning/Notes.txt``, copied from a GRP2612W); Wazo's production templates write v2 for the
  GXP2130/GXP2135 (``wazo_grandstream/common/templates/base_v2.tpl``) and v1 for the rest. We write:
  * v1 (P-values) for GXP14xx/16xx, GXP2140/2160/2170 (classic line keys + MPKs + GXP2200EXT) and
    the HT ATAs. P-value numbers are those of Grandstream's "Configuration Template For GXP21xx
    Firmware Version 1.0.5.32" as kept in FusionPBX ``grandstream/gxp21xx/{$mac}.xml``:
    account 1 ``P271`` active, ``P270`` account name, ``P47`` SIP server, ``P48`` outbound proxy,
    ``P35`` SIP user ID, ``P36`` authenticate ID, ``P34`` password, ``P3`` display name, ``P33``
    voicemail, ``P31`` SIP registration, ``P130`` transport (0 UDP, 1 TCP, 2 TLS/TCP), ``P1347`` BLF
    call-pickup prefix; accounts 2, 3, 4, 5, 6 use the blocks ``P4xx``, ``P5xx``, ``P6xx``,
    ``P17xx``, ``P18xx`` with the same offsets (01 active, 17 account name, 02 server, 03 outbound
    proxy, 04 user ID, 05 auth ID, 06 password, 07 display name, 26 voicemail, 10 registration,
    48 transport, 81 pickup prefix). Line keys ``P1363+2(k-1)`` mode / ``P1364+2(k-1)`` account /
    ``P1465+2(k-1)`` name / ``P1466+2(k-1)`` value (modes 0 Line, 10 Speed Dial, 11 BLF, 15 Dial
    DTMF, 16 Voicemail, 19 CallPark); multi-purpose keys 1-7 ``P323+(k-1)`` mode and
    ``P301/P302/P303 + 3(k-1)`` account/name/value, keys 8-18 ``P353+4(k-8)`` mode then +1 account,
    +2 name, +3 value (modes 0 Speed Dial, 1 BLF, 5 DialDTMF, 6 Voicemail, 9 CallPark); extension
    board keys "mode 23000, line 23001, label 23002, value 23003", five P-values per key (same
    modes as MPKs). Global: ``P2`` admin password, ``P30`` NTP server, ``P64`` time zone, ``P1362``
    display language, ``P51``/``P87`` VLAN tag/priority, ``P237`` config server path ("host/path"),
    ``P212`` upgrade/provision via (0 TFTP, 1 HTTP, 2 HTTPS), ``P194`` automatic upgrade and ``P193``
    "check for new firmware every () minutes", ``P330`` phonebook XML download (0 no, 1 HTTP,
    2 TFTP, 3 HTTPS), ``P331`` phonebook XML server path ("MUST be in the host/path format"), ``P332``
    download interval in minutes (5-720).
  * v2 (item names) for GXP2135 and GRP26xx, with the names of Wazo's ``base_v2.tpl``:
    ``account.N.sip.server.1.address``, ``account.N.sip.userid``, ``account.N.sip.subscriber.userid``
    / ``.password`` / ``.name``, ``account.N.name``, ``account.N.sip.transport`` (UDP, TCP,
    TlsOrTcp), ``account.N.sip.voicemail.number``, ``account.N.sip.blf.callPickup.prefix``,
    ``users.admin.password``, ``dateTime.ntp.server.1``, ``dateTime.timezone``, ``language.gui``,
    ``network.port.eth.1.vlan.tag``, ``provisioning.auto.*`` and keys ``pks.vpk.N.*`` /
    ``pks.mpk.N.*`` (keyMode ``Line``, ``SpeedDial``, ``BLF``, ``CallPark``, ``None``).
    **(unverified)**: ``account.N.sip.outboundProxy.1.address``, keyModes ``DialDTMF`` and
    ``VoiceMail`` (named after the v1 mode names), the ``phonebook.download.*`` names.
- Time zone: ``P64`` / ``dateTime.timezone`` take Grandstream's own zone strings; Wazo's production
  table maps Europe/Paris to ``CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00`` and we use it for
  every zone sharing the CET rule (the tz database's POSIX rule ``CET-1CEST,M3.5.0,M10.5.0/3``). Other
  zones get ``customize`` plus the POSIX rule in ``P246`` "Self-Defined Time Zone", whose syntax is
  "std offset dst [offset], start [/time], end [/time]" (Grandstream UCM6100 manual p.32,
  https://www.manualshelf.com/manual/grandstream-networks/gxe5102/user-s-manual-english/page-33.html;
  the P-value number is **(unverified)** for phones).
- Phonebook: ``<AddressBook><Contact><FirstName/><LastName/><Phone><phonenumber/><accountindex/>``
  (GXP21xx XML Phonebook Guide fw 1.0.5.15 p.12-13,
  https://grandstream.manymanuals.es/phones/xml-application-guide/user-manual-40227/12). The phone
  fetches ``phonebook.xml`` under the ``P331`` folder, so each device gets the folder
  ``pb<mac>/`` (FusionPBX's deployed scheme) and asks for ``pb<mac>/phonebook.xml``.
- Resync: FusionPBX sends ``Event: resync``; reboot ``check-sync;reboot=true`` (vendors.md section 8).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import urlsplit

from provisioning import config_crypto
from provisioning.timezones import posix_tz
from provisioning.vendors.base import (
    jittered_minutes,
    CommonContext,
    DeviceContext,
    ExpansionModule,
    FileKind,
    FileRequest,
    PhoneModel,
    UserAgentInfo,
    VendorPlugin,
    mac_or_none,
)

# GXP2200EXT: 20 keys x 2 pages, up to 4 modules on GXP2140/2160/2170 (Grandstream datasheet;
# the module count is **(unverified)** against an admin guide).
GXP2200EXT = ExpansionModule("GXP2200EXT", keys=40, max_modules=4)
EXT_KEYS_PER_MODULE = 40


@dataclass(frozen=True)
class _Layout:
    """How a model's programmable keys are numbered: the slots 1..N of module 0 in order."""

    fmt: str            # "v1" (P-values) or "v2" (item names)
    line_keys: int = 0  # v1: line keys P1363..
    mpk: int = 0        # v1: multi-purpose keys P323.. / v2: pks.mpk.N
    vpk: int = 0        # v2: virtual multi-purpose keys pks.vpk.N


# name, family, accounts, layout, expansion, kind.
# Account counts and key counts: Grandstream datasheets; VPK/MPK counts of the v2 models from
# Wazo's MODEL_FKEYS (GRP2612 16 VPK, GRP2613 24, GRP2614 16 + 24 MPK, GRP2615 40, GRP2616
# 16 + 24, GXP2135 32). GXP2160's 24 MPKs: P-values exist for MPK 1-18 only in the template, so 18.
_CATALOGUE: list[tuple[str, str, int, _Layout, ExpansionModule | None, str]] = [
    ("GXP1400", "GXP14xx", 2, _Layout("v1", line_keys=2), None, "desk"),
    ("GXP1405", "GXP14xx", 2, _Layout("v1", line_keys=2), None, "desk"),
    ("GXP1450", "GXP14xx", 2, _Layout("v1", line_keys=2, mpk=7), None, "desk"),
    ("GXP1610", "GXP16xx", 1, _Layout("v1"), None, "desk"),
    ("GXP1615", "GXP16xx", 1, _Layout("v1"), None, "desk"),
    ("GXP1620", "GXP16xx", 2, _Layout("v1", line_keys=2), None, "desk"),
    ("GXP1625", "GXP16xx", 2, _Layout("v1", line_keys=2), None, "desk"),
    ("GXP1628", "GXP16xx", 2, _Layout("v1", line_keys=2), None, "desk"),
    ("GXP1630", "GXP16xx", 3, _Layout("v1", line_keys=3), None, "desk"),
    ("GXP2140", "GXP21xx", 4, _Layout("v1", line_keys=4), GXP2200EXT, "desk"),
    ("GXP2160", "GXP21xx", 6, _Layout("v1", line_keys=6, mpk=18), GXP2200EXT, "desk"),
    ("GXP2170", "GXP21xx", 6, _Layout("v1", line_keys=12), GXP2200EXT, "desk"),
    ("GXP2135", "GXP2135", 8, _Layout("v2", vpk=32), None, "desk"),
    ("GRP2612", "GRP26xx", 2, _Layout("v2", vpk=16), None, "desk"),
    ("GRP2612P", "GRP26xx", 2, _Layout("v2", vpk=16), None, "desk"),
    ("GRP2612W", "GRP26xx", 2, _Layout("v2", vpk=16), None, "desk"),
    ("GRP2613", "GRP26xx", 3, _Layout("v2", vpk=24), None, "desk"),
    ("GRP2614", "GRP26xx", 4, _Layout("v2", vpk=16, mpk=24), None, "desk"),
    ("GRP2615", "GRP26xx", 5, _Layout("v2", vpk=40), None, "desk"),
    ("GRP2616", "GRP26xx", 6, _Layout("v2", vpk=16, mpk=24), None, "desk"),
    # ATAs: one account per FXS port (HT802 ports 1-2, HT812 1-2, HT814 1-4).
    ("HT801", "HT80x", 1, _Layout("v1"), None, "ata"),
    ("HT802", "HT80x", 2, _Layout("v1"), None, "ata"),
    ("HT812", "HT81x", 2, _Layout("v1"), None, "ata"),
    ("HT814", "HT81x", 4, _Layout("v1"), None, "ata"),
]

LAYOUTS: dict[str, _Layout] = {name: layout for name, _, _, layout, _, _ in _CATALOGUE}
LAYOUTS["generic"] = _Layout("v1", line_keys=2)

MODELS: dict[str, PhoneModel] = {
    name: PhoneModel("grandstream", name, family, lines, layout.line_keys + layout.mpk + layout.vpk, exp,
                     f"cfg{name.lower()}.xml", kind=kind)
    for name, family, lines, layout, exp, kind in _CATALOGUE
}
# Unknown Grandstream models: one account, two line keys, the v1 format every family accepts.
MODELS["generic"] = PhoneModel("grandstream", "generic", "generic", lines=1, line_keys=2, generic=True)

_COMMON_FILES = {m.common_file: m.name for m in MODELS.values() if m.common_file}
_COMMON_ANY = "cfg.xml"

_UA_MODEL = re.compile(
    r"^Grandstream Model HW\s+(?P<model>[A-Za-z0-9_-]+)(?:\s+V[0-9A-Za-z.]+)?\s+SW\s+(?P<firmware>\S+)"
    r"(?:\s+DevId\s+(?P<mac>[0-9A-Fa-f:]{12,17}))?", re.IGNORECASE)
_UA_GXP2000 = re.compile(r"^Grandstream (?P<model>GXP\d+) \([^:/]*:(?P<firmware>[0-9.]+)/.*?\)(?: DevId (?P<mac>[0-9a-f]{12}))?")
_UA_SHORT = re.compile(r"^Grandstream (?P<model>[A-Z]{2,4}\d{3,4}[A-Z]*) (?P<firmware>\d+(?:\.\d+)+)\Z")
_MAC_FILE = re.compile(r"^cfg(?P<mac>[0-9a-f]{12})(?P<suffix>|\.bin|\.xml)\Z")
_PHONEBOOK = re.compile(r"(?:^|/)pb(?P<mac>[0-9a-f]{12})/phonebook\.xml\Z")
PHONEBOOK_FILE = "phonebook.xml"

#: Zones whose rule is the central European one, written as Grandstream's own zone string.
_CET_ZONES = frozenset({"Europe/Stockholm", "Europe/Oslo", "Europe/Copenhagen", "Europe/Berlin",
                        "Europe/Paris", "Europe/Amsterdam", "Europe/Brussels", "Europe/Vienna",
                        "Europe/Zurich", "Europe/Madrid", "Europe/Rome", "Europe/Warsaw",
                        "Europe/Prague", "Europe/Budapest", "Europe/Luxembourg"})
GS_CET = "CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00"
# P1362 codes of the 1.0.5.32 template: ar cz de en es fr he hr hu it ja ko nl pl pt ru sl tr zh
# zh-tw auto. Swedish is not in that list; newer firmware lists more languages and "sv" is the
# code we expect there **(unverified)**; the phone keeps its language when it does not know a code.
_LANGUAGES = {"sv": "sv", "en": "en", "de": "de", "fr": "fr", "es": "es", "it": "it", "nl": "nl",
              "pl": "pl", "pt": "pt", "ru": "ru", "cs": "cz", "hu": "hu", "tr": "tr", "fi": "fi",
              "nb": "no", "no": "no", "da": "da"}
_TRANSPORT_V1 = {"udp": 0, "tcp": 1, "tls": 2}
_TRANSPORT_V2 = {"udp": "UDP", "tcp": "TCP", "tls": "TlsOrTcp"}

#: P-value block of accounts 2-6 (account 1 has its own historic numbers).
_ACCOUNT_BLOCK = {2: 400, 3: 500, 4: 600, 5: 1700, 6: 1800}
_ACCOUNT1 = {"active": 271, "name": 270, "server": 47, "proxy": 48, "userid": 35, "authid": 36,
             "password": 34, "display": 3, "voicemail": 33, "register": 31, "transport": 130,
             "pickup": 1347}
_ACCOUNT_OFFSETS = {"active": 1, "name": 17, "server": 2, "proxy": 3, "userid": 4, "authid": 5,
                    "password": 6, "display": 7, "voicemail": 26, "register": 10, "transport": 48,
                    "pickup": 81}

# Key modes. Line keys (P1363 series), MPK/extension board, v2 keyMode strings.
_LINE_KEY_MODES = {"line": 0, "speed_dial": 10, "blf": 11, "dtmf": 15, "voicemail": 16, "park": 19,
                   "group_toggle": 10}
_MPK_MODES = {"speed_dial": 0, "blf": 1, "dtmf": 5, "voicemail": 6, "park": 9, "group_toggle": 0}
_V2_MODES = {"line": "Line", "speed_dial": "SpeedDial", "blf": "BLF", "park": "CallPark",
             "dtmf": "DialDTMF", "voicemail": "VoiceMail", "group_toggle": "SpeedDial"}


def account_pvalues(index: int) -> dict[str, str]:
    """P-value names of account ``index`` (1-6): {"server": "P402", ...}."""
    if index == 1:
        return {k: f"P{v}" for k, v in _ACCOUNT1.items()}
    base = _ACCOUNT_BLOCK[index]
    return {k: f"P{base + off}" for k, off in _ACCOUNT_OFFSETS.items()}


def line_key_pvalues(k: int) -> tuple[str, str, str, str]:
    return f"P{1363 + 2 * (k - 1)}", f"P{1364 + 2 * (k - 1)}", f"P{1465 + 2 * (k - 1)}", f"P{1466 + 2 * (k - 1)}"


def mpk_pvalues(k: int) -> tuple[str, str, str, str]:
    if k <= 7:
        return f"P{323 + k - 1}", f"P{301 + 3 * (k - 1)}", f"P{302 + 3 * (k - 1)}", f"P{303 + 3 * (k - 1)}"
    base = 353 + 4 * (k - 8)
    return f"P{base}", f"P{base + 1}", f"P{base + 2}", f"P{base + 3}"


def ext_pvalues(module: int, k: int) -> tuple[str, str, str, str]:
    # Keys of module 2 follow those of module 1 in the same series (inferred from the template's
    # single "Extension Board" block).
    base = 23000 + 5 * ((module - 1) * EXT_KEYS_PER_MODULE + (k - 1))
    return f"P{base}", f"P{base + 1}", f"P{base + 2}", f"P{base + 3}"


class Grandstream(VendorPlugin):
    name = "grandstream"
    display_name = "Grandstream"
    ouis = frozenset({"000b82", "c074ad", "ec74d7"})
    models = MODELS
    key_codes = {"line": "Line", "blf": "BLF", "speed_dial": "SpeedDial", "park": "CallPark",
                 "dtmf": "DialDTMF", "voicemail": "VoiceMail", "group_toggle": "SpeedDial"}
    resync_event = "resync"
    reboot_event = "check-sync;reboot=true"

    # -- identification ------------------------------------------------------------------------
    def match_user_agent(self, user_agent: str) -> UserAgentInfo | None:
        text = user_agent.strip()
        if not text.lower().startswith("grandstream"):
            return None
        for pattern in (_UA_MODEL, _UA_GXP2000, _UA_SHORT):
            match = pattern.match(text)
            if match:
                model = self.find_model(match["model"])
                return UserAgentInfo(
                    vendor=self.name,
                    model=model.name if model else match["model"].upper(),
                    firmware=match["firmware"],
                    mac=mac_or_none(match.groupdict().get("mac")),
                )
        return UserAgentInfo(vendor=self.name)

    def match_path(self, filename: str) -> FileRequest | None:
        if filename == _COMMON_ANY:
            return FileRequest(self.name, FileKind.common, filename)
        if filename in _COMMON_FILES:
            return FileRequest(self.name, FileKind.common, filename, model=_COMMON_FILES[filename])
        match = _MAC_FILE.match(filename)
        if match and mac_or_none(match["mac"]):
            return FileRequest(self.name, FileKind.device, filename, mac=match["mac"])
        # The phonebook lives in a per-device folder: only a caller that passes the path with its
        # folder (not just the last segment) can match it.
        match = _PHONEBOOK.search(filename)
        if match and mac_or_none(match["mac"]):
            return FileRequest(self.name, FileKind.device, f"pb{match['mac']}/{PHONEBOOK_FILE}", mac=match["mac"])
        return None

    # -- keys ----------------------------------------------------------------------------------
    def validate_keys(self, model: PhoneModel, keys: Iterable[tuple[int, int, str]]) -> list[str]:
        keys = list(keys)
        if model.kind == "ata" and keys:
            return [f"{model.vendor} {model.name} is an ATA: it has no programmable keys"]
        problems = super().validate_keys(model, keys)
        layout = LAYOUTS.get(model.name, LAYOUTS["generic"])
        for module, slot, key_type in keys:
            if key_type != "line":
                continue
            if module > 0:
                problems.append(f"expansion module {module} key {slot}: {model.vendor} {model.name} "
                                f"expansion keys cannot be line keys")
            elif layout.fmt == "v1" and layout.line_keys < slot <= layout.line_keys + layout.mpk:
                problems.append(f"key {slot}: on a {model.vendor} {model.name} keys "
                                f"{layout.line_keys + 1}-{layout.line_keys + layout.mpk} are multi-purpose "
                                f"keys, which cannot be line keys")
        return problems

    # -- rendering -----------------------------------------------------------------------------
    def content_type(self, request: FileRequest) -> str:
        return "application/xml; charset=utf-8"

    # -- config encryption: cfg<mac>.xml in the P-value (v1) format, openssl-encrypted under P1359
    # ("XML Config File Password"), which the plain file delivers. The v2 format's item name for
    # that password is not documented where we could read it: v2 models stay plain.
    def config_cipher(self, model: PhoneModel):
        return config_crypto.OPENSSL if LAYOUTS.get(model.name, LAYOUTS["generic"]).fmt == "v1" else None

    def encrypts(self, request: FileRequest, ctx: DeviceContext) -> bool:
        return request.name == f"cfg{ctx.mac}.xml" and self.config_cipher(ctx.model) is not None

    def render_common(self, request: FileRequest, ctx: CommonContext, templates) -> bytes | None:
        return templates.render("grandstream/common.xml.j2", **self._common_values(ctx))

    def render_device(self, request: FileRequest, ctx: DeviceContext, templates) -> bytes | None:
        if request.name == f"cfg{ctx.mac}.xml":
            layout = LAYOUTS.get(ctx.model.name, LAYOUTS["generic"])
            values = self._device_values(ctx, layout)
            template = "grandstream/cfg-v2.xml.j2" if layout.fmt == "v2" else "grandstream/cfg-v1.xml.j2"
            return templates.render(template, **values)
        if request.name == f"pb{ctx.mac}/{PHONEBOOK_FILE}" and ctx.model.kind == "desk":
            return templates.render("grandstream/phonebook.xml.j2", contacts=[_split_name(c) for c in ctx.contacts])
        return None  # cfg<mac> / cfg<mac>.bin: the binary format is not served

    def _common_values(self, ctx: CommonContext) -> dict:
        zone, custom = gs_timezone(ctx.timezone)
        url = urlsplit(ctx.provisioning_url)
        return {
            "ctx": ctx,
            "timezone": zone,
            "custom_timezone": custom,
            "language": _LANGUAGES.get(ctx.language, "en"),
            "config_path": (url.netloc + url.path).rstrip("/"),
            "config_via": {"tftp": 0, "http": 1, "https": 2}.get(url.scheme, 1),
        }

    def _device_values(self, ctx: DeviceContext, layout: _Layout) -> dict:
        model = ctx.model
        lines = [line for line in ctx.lines if line.index <= min(model.lines, 6 if layout.fmt == "v1" else 16)]
        pickup = next((k.pickup_code for k in ctx.keys if k.type == "blf" and k.pickup_code), "")
        programmed = {(k.module, k.slot): k for k in ctx.keys}
        slots = []
        for slot in range(1, model.key_capacity(0) + 1):
            slots.append(self._slot(layout, 0, slot, programmed.get((0, slot))))
        modules_in_use = max((k.module for k in ctx.keys), default=0)
        for module in range(1, modules_in_use + 1):
            for slot in range(1, model.key_capacity(module) + 1):
                slots.append(self._slot(layout, module, slot, programmed.get((module, slot))))
        url = urlsplit(ctx.provisioning_url)
        phonebook = bool(ctx.contacts) and model.kind == "desk"
        return {
            **self._common_values(ctx),
            "mac": ctx.mac,
            "model": model,
            "lines": [(line, account_pvalues(line.index) if layout.fmt == "v1" else None) for line in lines],
            "transport_v1": _TRANSPORT_V1,
            "transport_v2": _TRANSPORT_V2,
            "pickup": pickup,
            "slots": slots,
            "resync_minutes": jittered_minutes(ctx.mac, ctx.resync_minutes),
            "resync_hour": 1 + zlib.crc32(ctx.mac.encode()) % 4,
            "phonebook_path": f"{(url.netloc + url.path).rstrip('/')}/pb{ctx.mac}" if phonebook else "",
            "phonebook_via": {"tftp": 2, "http": 1, "https": 3}.get(url.scheme, 1),
            "phonebook_minutes": max(5, min(720, jittered_minutes(ctx.mac, 720))),
            "ata": model.kind == "ata",
        }

    def _slot(self, layout: _Layout, module: int, slot: int, key) -> dict:
        """One key position: its parameter names and what to write there."""
        account = str(key.line_index - 1) if key else "0"
        label, value = (key.label, key.value) if key else ("", "")
        if layout.fmt == "v2":
            section, number = ("vpk", slot) if slot <= layout.vpk else ("mpk", slot - layout.vpk)
            mode = _V2_MODES[key.type] if key else "None"
            if section == "mpk":
                account = f"Account{key.line_index if key else 1}"
            return {"v2": True, "section": section, "number": number, "mode": mode, "account": account,
                    "label": label, "value": value}
        if module > 0:
            names = ext_pvalues(module, slot)
            mode = _MPK_MODES[key.type] if key else 0
        elif slot <= layout.line_keys:
            names = line_key_pvalues(slot)
            mode = _LINE_KEY_MODES[key.type] if key else 0
        else:
            names = mpk_pvalues(slot - layout.line_keys)
            mode = _MPK_MODES[key.type] if key else 0
        return {"v2": False, "names": names, "mode": mode, "account": account, "label": label, "value": value}


def gs_timezone(zone: str) -> tuple[str, str]:
    """(P64 value, P246 value): Grandstream's CET string, or ``customize`` plus the POSIX rule."""
    if zone in _CET_ZONES or posix_tz(zone) == "CET-1CEST,M3.5.0,M10.5.0/3":
        return GS_CET, ""
    return "customize", posix_tz(zone)


def _split_name(contact) -> dict:
    first, _, last = contact.name.rpartition(" ")
    if not first:
        first, last = last, ""
    return {"first": first, "last": last, "number": contact.number, "mobile": contact.mobile or ""}



plugin = Grandstream()
