"""Snom desk phones (3xx, 7xx, D1xx-D8xx) and the M-series DECT bases (M300/M400/M700/M900).

Facts (shared/reference/vendors.md section 4; Snom service wiki, checked with the search tool):

- Files. With a directory URL as ``setting_server`` a desk phone asks for the per-model container
  ``snom<model>.htm`` and then the per-device container ``snom<model>-<MAC>.htm``; each is a
  ``<setting-files>`` list of further XML files ("Setting Files Container", http://wiki.snom.com/
  Features/Mass_Deployment/Setting_Files/XML). Wazo names the per-device settings file
  ``<MAC>.xml``; MACs in file names are UPPERCASE hex (vendors.md 4.2). A phone whose setting
  server is a file URL (``.../{mac}.xml``, FreeSWITCH's PnP daemon, vendors.md 9) asks for
  ``<MAC>.xml`` alone, as the M-series DECT bases do (inferred, see simulators/snom.py).
  Firmware files (``snom<model>-firmware.htm``) are not claimed: they come from tftp_root.
- Settings: ``<settings><phone-settings>`` with ``perm`` and, per identity, ``idx``: user_active,
  user_realname, user_name, user_pname, user_pass, user_host, language, web_language, timezone
  (``SWE+1``, Snom's own zone list), admin_mode_password, http_user, http_pass, setting_server
  ("Desk Phone Configuration Files", https://service.snom.com/display/wiki/Desk+Phone+Configuration+Files;
  "<phone-settings> tag", https://service.snom.com/display/wiki/%3Cphone-settings%3E+tag).
  Resync polling: prov_polling_enabled / prov_polling_mode=rel / prov_polling_period in seconds
  ("Provisioning Polling for desk phones", https://service.snom.com/display/wiki/Provisioning+Polling+for+desk+phones).
- Keys: ``<functionKeys><fkey idx="N" context="<identity>" label="..." perm="">type value</fkey>``,
  idx 0-based; expansion-module keys continue the numbering after the phone's own keys, module
  after module ("Function Key Numbering System", Snom D7 user manual p. 20-21,
  https://www.easymanua.ls/snom/d7/manual?p=20). Types ``line, dest, orbit, dtmf, speed, blf,
  keyevent, none`` ("Function Key Types", https://service.snom.com/display/wiki/Function+Key+Types);
  BLF with directed pickup is ``blf <ext>|<pickup code>`` (Wazo, vendors.md 4.4).
- Phonebook: a ``<tbook complete="true">`` file listed in the per-device container ("<tbook>,
  <phone-book> tag", https://service.snom.com/display/wiki/%3Ctbook%3E%2C%3Cphone-book%3E+tag).
- User-Agent ``Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 <build> 000413922D24 SXM:0 UXM:0)``;
  older firmware has no MAC; 6.5 firmware says only ``snom lid 3605``; the DECT bases send
  ``snomM700/03.23.0005 (MAC=000413...; SER=...; HW=255)`` (M300/M700 provisioning guide p. 6,
  https://www.manualshelf.com/manual/snom/m300/operation-manual-english/page-6.html).
"""

from __future__ import annotations

import re
import zlib
from typing import Iterable

from provisioning.timezones import observes_dst, standard_offset
from provisioning.vendors.base import (
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

#: D7: 18 keys per module, up to 3 daisy-chained (Snom D7 user manual; counts unverified). The
#: colour D7C (D717/D735/D765/D785) is not catalogued: a model has one module type here, and the
#: D7C's key count (and so the fkey numbering after the phone's keys) was not found in Snom's docs.
D7 = ExpansionModule("D7", keys=18, max_modules=3)

# name, family, lines (identities), programmable function keys (fkeys on the phone), module, kind.
# Key counts are the self-labelling / SmartLabel keys of each model's data sheet (unverified per model).
_CATALOGUE: list[tuple[str, str, int, int, ExpansionModule | None, str]] = [
    ("300", "3xx", 4, 6, None, "desk"),
    ("320", "3xx", 12, 12, None, "desk"),
    ("360", "3xx", 12, 12, None, "desk"),
    ("370", "3xx", 12, 12, None, "desk"),
    ("710", "7xx", 4, 5, None, "desk"),
    ("715", "7xx", 4, 5, D7, "desk"),
    ("720", "7xx", 12, 18, D7, "desk"),
    ("725", "7xx", 12, 18, D7, "desk"),
    ("760", "7xx", 12, 16, D7, "desk"),
    ("D120", "D1xx", 2, 0, None, "desk"),
    ("D140", "D1xx", 2, 2, None, "desk"),
    ("D150", "D1xx", 2, 2, None, "desk"),
    ("D305", "D3xx", 2, 5, None, "desk"),
    ("D315", "D3xx", 4, 5, None, "desk"),
    ("D345", "D3xx", 12, 48, None, "desk"),
    ("D375", "D3xx", 12, 33, None, "desk"),
    ("D385", "D3xx", 12, 48, None, "desk"),
    ("D712", "D7xx", 4, 4, None, "desk"),
    ("D713", "D7xx", 4, 4, None, "desk"),
    ("D715", "D7xx", 4, 5, D7, "desk"),
    ("D717", "D7xx", 6, 3, D7, "desk"),
    ("D725", "D7xx", 12, 18, D7, "desk"),
    ("D735", "D7xx", 12, 32, D7, "desk"),
    ("D745", "D7xx", 12, 32, D7, "desk"),
    ("D765", "D7xx", 12, 16, D7, "desk"),
    ("D785", "D7xx", 12, 24, D7, "desk"),
    ("D812", "D8xx", 12, 16, None, "desk"),
    ("D815", "D8xx", 12, 16, None, "desk"),
    ("D862", "D8xx", 12, 32, None, "desk"),
    ("D865", "D8xx", 12, 40, None, "desk"),
    # DECT bases: each handset registers its own identity (line N = handset N); no fkeys.
    ("M300", "M-DECT", 6, 0, None, "dect"),
    ("M400", "M-DECT", 6, 0, None, "dect"),
    ("M700", "M-DECT", 30, 0, None, "dect"),
    ("M900", "M-DECT", 100, 0, None, "dect"),
]

MODELS: dict[str, PhoneModel] = {
    name: PhoneModel("snom", name, family, lines, keys, exp,
                     common_file=f"snom{name}.htm" if kind == "desk" else None, kind=kind)
    for name, family, lines, keys, exp, kind in _CATALOGUE
}
MODELS["generic"] = PhoneModel("snom", "generic", "generic", lines=12, line_keys=12, generic=True)

# "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)"
_UA_DESK = re.compile(
    r"\bsnom(?P<model>[A-Za-z]*\d+[A-Za-z0-9]*|MP|PA1)-SIP\s+(?P<firmware>\d+(?:\.\d+)+)"
    r"(?P<rest>[^)]*)", re.IGNORECASE)
# "snomM700/03.23.0005 (MAC=000413123456; SER= 00000; HW=255)" and the SIP UA "snomD120/10.1.39.11"
_UA_SLASH = re.compile(r"\bsnom(?P<model>[A-Za-z]*\d+[A-Za-z0-9]*)/(?P<firmware>\d+(?:\.\d+)+)"
                       r"(?:\s*\((?P<rest>[^)]*)\))?", re.IGNORECASE)
_UA_MAC = re.compile(r"(?:MAC=)?\b(?P<mac>[0-9A-F]{12})\b")
_UA_EXPANSION = re.compile(r"\b(?P<kind>SXM|UXM|UXMC):(?P<count>\d+)")

_MAC_UPPER = r"(?P<mac>[0-9A-F]{12})"
_MODEL_PART = r"(?P<model>[A-Za-z0-9]+?)"
_COMMON_CONTAINER = re.compile(rf"^snom{_MODEL_PART}\.htm\Z")
_COMMON_SETTINGS = re.compile(rf"^snom{_MODEL_PART}\.xml\Z")
_DEVICE_CONTAINER = re.compile(rf"^snom{_MODEL_PART}-{_MAC_UPPER}\.htm\Z")
_DEVICE_SETTINGS = re.compile(rf"^{_MAC_UPPER}\.xml\Z")
_DEVICE_TBOOK = re.compile(rf"^{_MAC_UPPER}-tbook\.xml\Z")

#: Snom's own zone list names zones by country and standard offset (``GER+1``, ``USA-5``); the
#: phone applies that country's DST rule itself. (Only these names are used; others fall back to
#: the standard offset with the Central European rule, see snom_timezone.)
_ZONE_NAMES = {
    "Europe/Stockholm": "SWE+1",
    "Europe/Oslo": "NOR+1",
    "Europe/Copenhagen": "DNK+1",
    "Europe/Helsinki": "FIN+2",
    "Europe/Berlin": "GER+1",
    "Europe/Amsterdam": "NLD+1",
    "Europe/Paris": "FRA+1",
    "Europe/London": "GBR-0",
    "Europe/Dublin": "IRL-0",
    "Atlantic/Faroe": "FRO-0",
    "Europe/Tallinn": "EST+2",
    "Europe/Riga": "LVA+2",
    "Europe/Warsaw": "POL+1",
}
#: ``language`` (phone) and ``web_language`` values: the language's own name.
_LANGUAGES = {"sv": "Svenska", "en": "English", "da": "Dansk", "nb": "Norsk", "no": "Norsk", "fi": "Suomi",
              "de": "Deutsch", "fr": "Francais", "nl": "Nederlands", "es": "Espanol", "it": "Italiano",
              "pl": "Polski"}

#: Neutral key type -> Snom fkey type keyword (with its argument added by the template).
KEY_CODES = {
    "line": "line",
    "blf": "blf",
    "speed_dial": "speed",
    "park": "orbit",
    "dtmf": "dtmf",
    # The Retrieve key event dials the identity's mailbox (user_mailbox). (event name unverified)
    "voicemail": "keyevent F_RETRIEVE",
    # Toggling group membership is dialling the organisation's feature code: a speed dial.
    "group_toggle": "speed",
}


def snom_timezone(zone: str) -> str:
    """Snom's ``timezone`` value for an IANA zone (``Europe/Stockholm`` -> ``SWE+1``)."""
    if zone in _ZONE_NAMES:
        return _ZONE_NAMES[zone]
    hours = standard_offset(zone).total_seconds() / 3600
    text = f"{hours:+g}" if hours else "-0"
    # Without a named zone, use a country that shares the offset and (for UTC+1/+2) the EU rule.
    by_offset = {"+1": "GER+1" if observes_dst(zone) else "CAI+1", "+2": "FIN+2", "-0": "GBR-0"}
    return by_offset.get(text, f"UTC{text}")


def fkey_index(model: PhoneModel, module: int, slot: int) -> int:
    """0-based fkey idx: the phone's keys first, then each module's keys in chain order."""
    if module == 0:
        return slot - 1
    per_module = model.expansion.keys if model.expansion else 0
    return model.line_keys + (module - 1) * per_module + slot - 1


def jittered(mac: str, minutes: int) -> int:
    """Spread polling over +-10 % per device, stable across renders (same MAC, same minute)."""
    spread = max(1, minutes // 10)
    return max(5, minutes - spread + zlib.crc32(mac.encode()) % (2 * spread + 1))


class SnomStyle(VendorPlugin):
    """What Snom and its OEM desk phones (Gigaset P82x) share: the XML setting files."""

    key_codes = KEY_CODES

    def validate_keys(self, model: PhoneModel, keys: Iterable[tuple[int, int, str]]) -> list[str]:
        keys = list(keys)
        if model.kind == "dect" and keys:
            return [f"{self.display_name} {model.name} is a DECT base: its handsets have no programmable keys"]
        return super().validate_keys(model, keys)

    # -- rendering -----------------------------------------------------------------------------
    def _common_values(self, ctx: CommonContext) -> dict:
        return {
            "ctx": ctx,
            "timezone": snom_timezone(ctx.timezone),
            "language": _LANGUAGES.get(ctx.language, "English"),
            "poll_seconds": ctx.resync_minutes * 60,
        }

    def _device_values(self, ctx: DeviceContext) -> dict:
        model = ctx.model
        programmed = {(k.module, k.slot): k for k in ctx.keys}
        modules_in_use = max((k.module for k in ctx.keys), default=0)
        # Every key of the phone and of each module in use is written, so a key removed in
        # deskprov returns to the default (line on the phone, none on a module).
        fkeys = []
        if model.kind != "dect":
            for module in range(0, modules_in_use + 1):
                for slot in range(1, model.key_capacity(module) + 1):
                    key = programmed.get((module, slot))
                    fkeys.append((fkey_index(model, module, slot), module, key, self._fkey_text(key, module)))
        return {
            **self._common_values(ctx),
            "mac_upper": ctx.mac.upper(),
            "lines": ctx.lines,
            "fkeys": fkeys,
            "dect": model.kind == "dect",
            "poll_seconds": jittered(ctx.mac, ctx.resync_minutes) * 60,
        }

    @staticmethod
    def _fkey_text(key, module: int) -> str:
        if key is None:
            return "line" if module == 0 else "none"
        code = KEY_CODES[key.type]
        if key.type == "line":
            return "line"
        if key.type == "voicemail":
            return code
        if key.type == "blf":
            return f"blf {key.value}|{key.pickup_code}" if key.pickup_code else f"blf {key.value}"
        return f"{code} {key.value}"

    def content_type(self, request: FileRequest) -> str:
        return "application/xml; charset=utf-8"


class Snom(SnomStyle):
    name = "snom"
    display_name = "Snom"
    ouis = frozenset({"000413", "00087b"})
    models = MODELS
    resync_event = "check-sync;reboot=false"
    reboot_event = "check-sync;reboot=true"

    # -- identification ------------------------------------------------------------------------
    def match_user_agent(self, user_agent: str) -> UserAgentInfo | None:
        text = user_agent.strip()
        lowered = text.lower()
        if "snom" not in lowered or "gigaset" in lowered:
            return None
        match = _UA_DESK.search(text) or _UA_SLASH.search(text)
        if not match:
            return UserAgentInfo(vendor=self.name)  # e.g. "snom lid 3605" (6.5 firmware)
        raw = match["model"]
        model = self.find_model(raw)
        mac = None
        for candidate in _UA_MAC.finditer(match["rest"] or ""):
            mac = mac_or_none(candidate["mac"]) or mac
        return UserAgentInfo(vendor=self.name, model=model.name if model else raw.upper(),
                             firmware=match["firmware"], mac=mac)

    def match_path(self, filename: str) -> FileRequest | None:
        if match := _COMMON_CONTAINER.match(filename) or _COMMON_SETTINGS.match(filename):
            model = self.find_model(match["model"])
            return FileRequest(self.name, FileKind.common, filename, model=model.name if model else None)
        if match := _DEVICE_CONTAINER.match(filename):
            mac = mac_or_none(match["mac"])
            model = self.find_model(match["model"])
            return FileRequest(self.name, FileKind.device, filename, mac=mac,
                               model=model.name if model else None) if mac else None
        if match := _DEVICE_SETTINGS.match(filename) or _DEVICE_TBOOK.match(filename):
            mac = mac_or_none(match["mac"])
            return FileRequest(self.name, FileKind.device, filename, mac=mac) if mac else None
        return None

    # -- rendering -----------------------------------------------------------------------------
    def render_common(self, request: FileRequest, ctx: CommonContext, templates) -> bytes | None:
        raw_model = (_COMMON_CONTAINER.match(request.name) or _COMMON_SETTINGS.match(request.name))["model"]
        if request.name.endswith(".htm"):
            return templates.render("snom/container.htm.j2", files=[f"snom{raw_model}.xml"])
        return templates.render("snom/common.xml.j2", model_name=raw_model, **self._common_values(ctx))

    def render_device(self, request: FileRequest, ctx: DeviceContext, templates) -> bytes | None:
        mac = ctx.mac.upper()
        if request.name.endswith(".htm"):
            return templates.render("snom/container.htm.j2", files=[f"{mac}.xml", f"{mac}-tbook.xml"])
        if request.name == f"{mac}.xml":
            return templates.render("snom/device.xml.j2", **self._device_values(ctx))
        if request.name == f"{mac}-tbook.xml":
            return templates.render("snom/tbook.xml.j2", contacts=ctx.contacts)
        return None


plugin = Snom()
