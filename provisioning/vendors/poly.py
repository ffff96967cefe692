"""Poly / Polycom desk phones: SoundPoint IP, SoundStation IP and VVX on UC Software (UCS) 4.x-6.x.

Facts (shared/reference/vendors.md section 2, checked against the Polycom guides cited here):

- Boot: the BootROM/Updater and then the SIP application ask for ``<mac>.cfg``, else the default
  master ``000000000000.cfg`` (SIP 3.1 admin guide, "Master Configuration Files",
  http://audio.manualsonline.com/manuals/mfg/polycom/sip_31.html?p=156). The master file is one
  ``<APPLICATION APP_FILE_PATH=... CONFIG_FILES=... .../>`` element; ``CONFIG_FILES`` is a comma
  list fetched left to right and "the parameter found first in the list of files will be the one
  that is effective" (SoundPoint IP admin guide 1.4, section 2.2.2.1.2.2,
  https://azmanual.top/manuals/183764/polycom-version-14x-17.html?page=20).
- The application then GETs its override files ``<mac>-phone.cfg``/``<mac>-web.cfg`` (which it
  also PUTs when the user changes settings on the phone or its web UI), its contact directory
  ``<mac>-directory.xml`` (else ``000000000000-directory.xml``) and PUTs ``<mac>-app.log`` /
  ``<mac>-boot.log`` (Poly community FAQ, file list for UCS 4.1). MACs in names are lowercase.
- HTTP User-Agent ``FileTransport PolycomVVX-VVX_450-UA/6.4.0.1234 Type/Application``; the first
  requests carry the BootROM/Updater version (``Type/Updater``); there is no MAC in it.
- Config files are XML whose element attributes are the parameters (``reg.1.address="..."``).
- Local contact directory ``<directory><item_list><item><fn/><ln/><ct/><sd/>...`` where ``sd`` is
  the speed-dial index (SIP 3.0.2 admin guide, "Local Contact Directory",
  https://manualsbrain.com/de/manuals/988802/?page=59).
- Flexible line keys: ``lineKey.reassignment.enabled``, ``lineKey.x.category`` = BLF, Line,
  SpeedDial, Presence or Unassigned; for BLF ``lineKey.x.index`` is 0 (contacts are assigned to
  BLF keys automatically, in resource-list order), for Line it is the registration, for
  SpeedDial the favourites (directory ``sd``) index. x counts on over the expansion modules:
  "VVX 600 + 3 LCD EMs = 16 + 252 = 268 lines", i.e. 84 keys (28 keys x 3 pages) per VVX Color
  Expansion Module (VVX Expansion Module Administrator's Guide Addendum, UCS 4.1.6, p. 37,
  http://38.142.81.21:8001/manual/polycom/2200-46350-025/user-s-guide-english/page-37.html).
- Enhanced feature keys: a directory contact ``^<action string>`` is an expanded macro, action
  types ``$Tinvite$``/``$Tdtmf$``/``$Trefer$``/``$Tintercom$``, gated by
  ``feature.enhancedFeatureKeys.enabled`` (same addendum p. 31; UCS 5.8 admin guide "Macro
  Actions", https://documents.polycom.com/bundle/ucs-ag-5-8/page/r-ucs-ag-macro-actions.html).
- Polling: ``prov.polling.enabled``, ``prov.polling.mode`` = rel, ``prov.polling.period`` in
  seconds (> 3600); "standard polling does not download a <mac>-directory.xml if
  dir.local.readonly is not set to 1" (Poly community FAQ "Automatically check for configuration
  changes", https://community.polycom.com/t5/VoIP-SIP-Phones/FAQ-Automatically-check-for-configuration-changes-or-new/td-p/68444).
- Time: ``tcpIpApp.sntp.gmtOffset`` (seconds) and ``tcpIpApp.sntp.daylightSavings.*`` where with
  ``fixedDayEnable=0`` the date 1/8/15/22 means the 1st..4th weekday of the month and
  ``dayOfWeek.lastInMonth=1`` the last; dayOfWeek 1 = Sunday (SIP 2.2 admin guide p. A-53,
  https://azmanual.top/manuals/189944/polycom-soundpoint-sip-220.html?page=165).
"""

from __future__ import annotations

import re

from provisioning.timezones import dst_switches, standard_offset
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

COLOR_EM = ExpansionModule("VVX Color Expansion Module", keys=84, max_modules=3)
#: The SoundPoint IP 650/670 backlit expansion module: 14 keys, up to three. (unverified: the
#: flexible-line-key numbering over these modules was only read for the VVX modules)
SPIP_EM = ExpansionModule("SoundPoint IP Expansion Module", keys=14, max_modules=3)

# name, family, lines (registrations), programmable line keys, expansion module.
_CATALOGUE = [
    ("SPIP321", "SoundPoint IP", 2, 2, None),
    ("SPIP331", "SoundPoint IP", 2, 2, None),
    ("SPIP335", "SoundPoint IP", 2, 2, None),
    ("SPIP450", "SoundPoint IP", 3, 3, None),
    ("SPIP550", "SoundPoint IP", 4, 4, None),
    ("SPIP560", "SoundPoint IP", 4, 4, None),
    ("SPIP650", "SoundPoint IP", 6, 6, SPIP_EM),
    ("SPIP670", "SoundPoint IP", 6, 6, SPIP_EM),
    ("SSIP5000", "SoundStation IP", 1, 0, None),
    ("SSIP6000", "SoundStation IP", 1, 0, None),
    ("SSIP7000", "SoundStation IP", 1, 0, None),
    ("VVX101", "VVX", 1, 1, None),
    ("VVX201", "VVX", 2, 2, None),
    ("VVX300", "VVX", 6, 6, COLOR_EM),
    ("VVX301", "VVX", 6, 6, COLOR_EM),
    ("VVX310", "VVX", 6, 6, COLOR_EM),
    ("VVX311", "VVX", 6, 6, COLOR_EM),
    ("VVX400", "VVX", 12, 12, COLOR_EM),
    ("VVX401", "VVX", 12, 12, COLOR_EM),
    ("VVX410", "VVX", 12, 12, COLOR_EM),
    ("VVX411", "VVX", 12, 12, COLOR_EM),
    ("VVX450", "VVX", 12, 12, COLOR_EM),
    ("VVX500", "VVX", 12, 12, COLOR_EM),
    ("VVX501", "VVX", 12, 12, COLOR_EM),
    ("VVX600", "VVX", 16, 16, COLOR_EM),
    ("VVX601", "VVX", 16, 16, COLOR_EM),
    ("VVX1500", "VVX", 6, 6, None),
]

MODELS: dict[str, PhoneModel] = {
    name: PhoneModel("poly", name, family, lines, keys, exp) for name, family, lines, keys, exp in _CATALOGUE
}
MODELS["generic"] = PhoneModel("poly", "generic", "generic", lines=1, line_keys=2, generic=True)

MASTER_DEFAULT = "000000000000.cfg"
COMMON_FILE = "deskprov-poly.cfg"
#: The per-device configuration file the master lists; ours, not a Poly-defined name.
DEVICE_SUFFIX = "-deskprov.cfg"
_MAC_FILE = re.compile(
    r"^(?P<mac>[0-9a-f]{12})(?P<suffix>\.cfg|-deskprov\.cfg|-directory\.xml"
    r"|-phone\.cfg|-web\.cfg|-app\.log|-boot\.log)\Z"
)
_UPLOADS = {"-phone.cfg", "-web.cfg", "-app.log", "-boot.log"}

_UA = re.compile(
    r"^FileTransport\s+Poly(?:com)?(?P<family>[A-Za-z]+)-(?P<model>[A-Za-z0-9_]+)-UA/(?P<firmware>[0-9][0-9A-Za-z.]*)"
    r"(?:\s+Type/(?P<type>\w+))?",
)

_TRANSPORT = {"udp": "UDPOnly", "tcp": "TCPOnly", "tls": "TLS"}
#: lcl.ml.lang values (from FusionPBX's Polycom language list; unverified against the guide).
_LANGUAGES = {"sv": "Swedish_Sweden", "en": "English_United_Kingdom", "da": "Danish_Denmark",
              "nb": "Norwegian_Norway", "no": "Norwegian_Norway", "de": "German_Germany",
              "fr": "French_France", "es": "Spanish_Spain", "nl": "Dutch_Netherlands",
              "pl": "Polish_Poland", "it": "Italian_Italy"}


def poly_model_key(name: str) -> str:
    """``Polycom SoundPoint IP 335``, ``IP335``, ``SPIP_335`` -> ``spip335``; ``VVX 450`` -> ``vvx450``."""
    key = re.sub(r"[^0-9a-z]", "", name.lower())
    for prefix in ("polycom", "poly"):
        if key.startswith(prefix) and key != prefix:
            key = key[len(prefix):]
            break
    key = key.replace("soundpointip", "spip").replace("soundstationip", "ssip")
    if re.match(r"^ip\d", key):
        key = "sp" + key
    return key


class Poly(VendorPlugin):
    name = "poly"
    display_name = "Poly"
    # Polycom OUIs (vendors.md 2.1: Wazo 00:04:f2, 64:16:7f, 48:25:67; FusionPBX 00:90:7a).
    ouis = frozenset({"0004f2", "64167f", "482567", "00907a"})
    models = MODELS
    # Neutral type -> lineKey.x.category. Park is a BLF key whose resource is "automata";
    # voicemail, group toggle and DTMF are speed dials (DTMF through a ^...$Tdtmf$ macro).
    key_codes = {"line": "Line", "blf": "BLF", "park": "BLF", "speed_dial": "SpeedDial",
                 "voicemail": "SpeedDial", "group_toggle": "SpeedDial", "dtmf": "SpeedDial"}
    # vendors.md section 8: FreePBX and Wazo send check-sync for both.
    resync_event = "check-sync"
    reboot_event = "check-sync"

    def find_model(self, name: str | None) -> PhoneModel | None:
        if not name:
            return None
        wanted = poly_model_key(name)
        return next((m for m in self.models.values() if poly_model_key(m.name) == wanted), None)

    # -- identification ------------------------------------------------------------------------
    def match_user_agent(self, user_agent: str) -> UserAgentInfo | None:
        text = user_agent.strip()
        if not text.startswith("FileTransport Poly"):
            return None
        match = _UA.match(text)
        if not match:
            return UserAgentInfo(vendor=self.name)
        model = self.find_model(match["model"])
        # Updater requests carry the updater's version, not the application's.
        firmware = None if (match["type"] or "").lower() == "updater" else match["firmware"]
        return UserAgentInfo(vendor=self.name, model=model.name if model else match["model"].replace("_", ""),
                             firmware=firmware, mac=None)

    def match_path(self, filename: str) -> FileRequest | None:
        if filename in (MASTER_DEFAULT, COMMON_FILE):
            return FileRequest(self.name, FileKind.common, filename)
        match = _MAC_FILE.match(filename)
        if not match or not mac_or_none(match["mac"]):
            return None
        kind = FileKind.upload if match["suffix"] in _UPLOADS else FileKind.device
        return FileRequest(self.name, kind, filename, mac=match["mac"])

    def content_type(self, request: FileRequest) -> str:
        return "application/xml; charset=utf-8"

    # -- rendering -----------------------------------------------------------------------------
    def render_common(self, request: FileRequest, ctx: CommonContext, templates) -> bytes | None:
        if request.name == MASTER_DEFAULT:
            return templates.render("poly/master.xml.j2", device_file="[PHONE_MAC_ADDRESS]" + DEVICE_SUFFIX,
                                    common_file=COMMON_FILE, mac=None)
        if request.name == COMMON_FILE:
            return templates.render("poly/common.xml.j2", **self._common_values(ctx, ctx.resync_minutes))
        return None

    def render_device(self, request: FileRequest, ctx: DeviceContext, templates) -> bytes | None:
        name = request.name
        if name == f"{ctx.mac}.cfg":
            return templates.render("poly/master.xml.j2", device_file=ctx.mac + DEVICE_SUFFIX,
                                    common_file=COMMON_FILE, mac=ctx.mac)
        if name == ctx.mac + DEVICE_SUFFIX:
            return templates.render("poly/device.xml.j2", **self._device_values(ctx))
        if name == f"{ctx.mac}-directory.xml":
            return templates.render("poly/directory.xml.j2", ctx=ctx, entries=_layout(ctx)["directory"])
        return None

    def _common_values(self, ctx: CommonContext, resync_minutes: int) -> dict:
        return {
            "ctx": ctx,
            "gmt_offset": int(standard_offset(ctx.timezone).total_seconds()),
            "dst": _dst_rules(ctx.timezone),
            "language": _LANGUAGES.get(ctx.language, "English_United_Kingdom"),
            # "integer > 3600" (Trio/UCS guides): never below 61 minutes.
            "polling_seconds": max(3660, resync_minutes * 60),
        }

    def _device_values(self, ctx: DeviceContext) -> dict:
        layout = _layout(ctx)
        lines = []
        for line in ctx.lines:
            proxy, _, proxy_port = (line.outbound_proxy or "").partition(":")
            lines.append({"line": line, "transport": _TRANSPORT.get(line.transport, "DNSnaptr"),
                          "proxy": proxy, "proxy_port": proxy_port})
        return {
            **self._common_values(ctx, jittered_minutes(ctx.mac, ctx.resync_minutes)),
            "lines": lines,
            "slots": layout["slots"],
            "resources": layout["resources"],
            "pickup_code": layout["pickup_code"],
            "macros": layout["macros"],
            "reassign": bool(ctx.keys),
        }


def _layout(ctx: DeviceContext) -> dict:
    """Line keys, BLF resource list and directory entries (with speed-dial indexes) of a device.

    Every slot of the phone and of each expansion module in use is written, so a key deleted in
    deskprov goes back to Unassigned. BLF keys take resources in key order (the phone hands the
    resource list out to BLF keys in that order); speed dials number the directory's ``sd``.
    """
    model = ctx.model
    exp_keys = model.expansion.keys if model.expansion else 0
    programmed = {(k.module, k.slot): k for k in ctx.keys}
    modules_in_use = max((k.module for k in ctx.keys), default=0)
    directory: list[dict] = []
    by_number: dict[str, dict] = {}

    def add_entry(name: str, number: str, label: str = "") -> dict | None:
        if not number or number in by_number:  # ct may be neither empty nor duplicated
            return by_number.get(number)
        first, _, rest = name.strip().partition(" ")
        entry = {"fn": first if rest else "", "ln": rest or first, "ct": number, "sd": None, "lb": label or name}
        by_number[number] = entry
        directory.append(entry)
        return entry

    for contact in ctx.contacts:
        add_entry(contact.name, contact.number)
        if contact.mobile:
            add_entry(f"{contact.name} (mobil)", contact.mobile)

    slots, resources, pickup_code, macros, speed_dials = [], [], "", False, 0
    for module in range(0, modules_in_use + 1):
        for slot in range(1, model.key_capacity(module) + 1):
            index = slot if module == 0 else model.line_keys + (module - 1) * exp_keys + slot
            key = programmed.get((module, slot))
            if key is None:
                slots.append({"index": index, "category": "Unassigned", "value": 0})
            elif key.type == "line":
                slots.append({"index": index, "category": "Line", "value": key.line_index})
            elif key.type in ("blf", "park"):
                resources.append({"address": key.value, "label": key.label,
                                  "type": "automata" if key.type == "park" else "normal"})
                pickup_code = pickup_code or key.pickup_code
                slots.append({"index": index, "category": "BLF", "value": 0})
            else:
                number = key.value
                if key.type == "dtmf":
                    number, macros = f"^{key.value}$Tdtmf$", True
                entry = add_entry(key.label or key.value, number, key.label)
                if entry is None:
                    slots.append({"index": index, "category": "Unassigned", "value": 0})
                    continue
                if entry["sd"] is None:
                    speed_dials += 1
                    entry["sd"] = speed_dials
                    entry["lb"] = key.label or entry["lb"]
                slots.append({"index": index, "category": "SpeedDial", "value": entry["sd"]})
    return {"slots": slots, "resources": resources, "pickup_code": pickup_code, "macros": macros,
            "directory": directory}


def _dst_rules(zone: str) -> dict | None:
    """The zone's DST switches in Poly's terms, read from the tz database's POSIX rule."""
    switches = dst_switches(zone)
    if switches is None:
        return None
    return {name: {
        "month": switch.month,
        "date": 1 if switch.last_in_month else 1 + 7 * (switch.week - 1),
        "day_of_week": switch.weekday + 1,  # Poly: 1 = Sunday; POSIX: 0 = Sunday
        "last_in_month": int(switch.last_in_month),
        "time": switch.hour,
    } for name, switch in zip(("start", "stop"), switches)}



plugin = Poly()
