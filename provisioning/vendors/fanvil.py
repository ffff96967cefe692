"""Fanvil desk phones (X, V, C, H series).

Facts (shared/reference/vendors.md section 6; each checked where the search tool reached a source):

- Files: a per-model common file, then ``<mac>.cfg`` (lowercase MAC). The common file names are
  Fanvil's own (``f0X4hw1.100.cfg``, ``F0V00X600000.cfg``, ``fanvil_x210_v2_hwv2_0.txt`` ...), listed
  per model in Wazo's ``wazo_fanvil/serie_*/entry.py`` ``COMMON_FILES`` (vendors.md table). The
  common-then-MAC order is **(inferred)** from Wazo detecting the model from the first.
  ``<mac>.cfg`` is also what Yealink and Poly ask for: this plugin claims it only for MACs with a
  Fanvil OUI, so with no User-Agent (TFTP) a Fanvil MAC goes to Fanvil and nothing else does.
- User-Agent ``Fanvil X4 2.10.2.6887 0c383e07e16c`` (MAC lowercase, no separators; the model may
  contain a space: ``Fanvil X6U Pro 0.0.10 0c383e2cd782``) (Wazo ``common.py``).
- Two formats. Current models: XML ``<sysConf>`` with ``<sip><line index="N">`` (PhoneNumber,
  DisplayName, RegisterAddr, RegisterPort, RegisterUser, RegisterPswd, EnableReg, Transport 0 UDP /
  1 TCP / 3 TLS, MWINum, ProxyAddr, ProxyPort), ``<phone><date>`` (SNTPServer, EnableSNTP, TimeZone
  in quarter hours, TimeZoneName ``UTC+1``, EnableDST, DSTFixedType, DSTMinOffset,
  DST{Start,End}{Mon,Week,Wday,Hour}), ``<phone><display><DefaultLanguage>``, ``<web><account
  index="1">`` (admin password), ``<qos>`` (EnableVLAN, VLANID), ``<ap>`` (FlashServerIP,
  FlashFileName, FlashProtocol 4, FlashMode, FlashInterval) and ``<dsskey>``: ``<dssSide
  index="1"><Fkey index="N"><Type/><Value/><Title/>`` and ``<dssSoft>`` Type 21 for the XML phone
  book (all as in Wazo's production template ``wazo_fanvil/common/templates/base-new.tpl``).
  Old models: the text format ``<<VOIP CONFIG FILE>>Version:2.0000000000`` with ``<SIP CONFIG
  MODULE>`` lines ``SIP1 Phone Number  :...`` (key padded to 19 characters) and ``<AUTOUPDATE CONFIG
  MODULE>`` (Elastix ``Fanvil_local.tpl``), time/DST names ``Time Zone``, ``Enable Daylight``,
  ``DayLight Start Mon/Week/Wday/Hour`` (week 5 = last, weekday 0 = Sunday) as in a Fanvil-format
  OEM template (Elastix ``VOPTech_reference.tpl``); ``<<END OF FILE>>`` ends it.
- Function keys: Type 0 none, 1 memory key, 2 line (Value ``SIP<n>``). A memory key's Value is
  ``<number>@<line>/<mode>``: ``f`` speed dial, ``ba`` BLF (attended transfer; Wazo appends the
  pickup code and the number: ``1002@1/ba*81002``), ``c`` call park, ``m`` MWI (FusionPBX's Fanvil
  key table).
- Remote phone book: ``<FanvilIPPhoneDirectory><DirectoryEntry><Name/><Telephone/><Mobile/>`` (Fanvil
  XML phonebook spec, https://www.fanvil.com/Uploads/Temp/download/20191226/5e0454ec2e7f0.pdf
  pages 8-9, as cited by public Fanvil phone book generators), linked by a ``<dssSoft>`` Type 21 key.
- Resync ``check-sync``, reboot ``check-sync;reboot=true`` (vendors.md section 8).

**(unverified)**: DTMF keys as Type 4, the expansion module keys ``<dssExt index="M">`` and the
EXT20 size (20 keys x 3 pages, 3 modules), FlashInterval in hours, the old format's DSS, QOS and
MMI module lines, FlashProtocol/Download Protocol 4 = HTTP, the per-model key counts (Fanvil
datasheets and Wazo's per-page tables, not an admin guide), and Swedish: Fanvil's language codes
(Wazo: en cn tc ru it fr de he es cat eus tr hr slo cz nl ko ua pt pl ar) have no Swedish, so
Swedish organisations get English.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

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

EXT20 = ExpansionModule("EXT20", keys=60, max_modules=3)

# name, family, format, accounts, DSS keys, expansion, common files (first = canonical).
_CATALOGUE: list[tuple[str, str, str, int, int, ExpansionModule | None, tuple[str, ...]]] = [
    ("X3", "X-old", "old", 2, 2, None, ("F0V00X300000.cfg",)),
    ("X5", "X-old", "old", 6, 6, None, ("f0X5hw1.100.cfg",)),
    ("C58", "C", "old", 2, 0, None, ("f0C00580000.cfg",)),
    ("C62", "C", "old", 6, 6, None, ("f0C00620000.cfg",)),
    ("X2", "X", "new", 2, 2, None, ("f0X2hw1.100.cfg",)),
    ("X3S", "X", "new", 2, 2, None, ("f0X3shw1.100.cfg",)),
    ("X3SG", "X", "new", 2, 2, None, ("f0X3sghw1.100.cfg",)),
    ("X4", "X", "new", 4, 3, None, ("f0X4hw1.100.cfg",)),
    ("X4U", "X-U", "new", 12, 30, None, ()),
    ("X4U-V2", "X-U", "new", 12, 30, None, ("fanvil_x4u_v2_hwv2_0.txt",)),
    ("X5S", "X", "new", 6, 32, None, ("F0V00X5S0000.cfg",)),
    ("X5U", "X-U", "new", 16, 30, EXT20, ()),
    ("X5U-V2", "X-U", "new", 16, 30, EXT20, ("F0V5UV200000.cfg", "fanvil_x5u_v2_hwv2_0.txt")),
    ("X6", "X", "new", 6, 32, None, ("F0V00X600000.cfg",)),
    ("X6V2", "X", "new", 6, 32, None, ("F0000X600000.cfg",)),
    ("X6U", "X-U", "new", 20, 60, EXT20, ()),
    ("X210", "X210", "new", 20, 42, EXT20, ("F0V00X200000.cfg",)),
    ("X210-V2", "X210", "new", 20, 42, EXT20, ("fanvil_x210_v2_hwv2_0.txt",)),
    ("X210-Pro", "X210", "new", 20, 42, EXT20, ("fanvil_x210_pro_hwv2_0.txt",)),
    ("V61G", "V6x", "new", 2, 2, None, ("F0VV61G00000.cfg",)),
    ("V62", "V6x", "new", 4, 4, None, ("F0VV6200000.cfg",)),
    ("V62Pro", "V6x", "new", 4, 4, None, ("F0V0V6210000.cfg",)),
    ("V63", "V6x", "new", 6, 6, None, ("F0V0V6300000.cfg",)),
    ("V64", "V6x", "new", 12, 24, None, ("F0V0V6400000.cfg",)),
    ("V65", "V6x", "new", 20, 40, None, ("F0V0V6500000.cfg",)),
    ("V66", "V6x", "new", 20, 48, None, ("F0V0V6600000.cfg",)),
    ("V66Pro", "V6x", "new", 20, 48, None, ("F0V0V6610000.cfg",)),
    ("V67", "V6x", "new", 20, 48, None, ("F0V0V6700000.cfg", "fanvil_v67_hw1_1.txt")),
    ("H2U-V2", "H", "new", 2, 0, None, ("F0V2UV200000.cfg",)),
]

FORMATS: dict[str, str] = {name: fmt for name, _, fmt, *_ in _CATALOGUE}
FORMATS["generic"] = "new"

MODELS: dict[str, PhoneModel] = {
    name: PhoneModel("fanvil", name, family, lines, keys, exp, files[0] if files else None)
    for name, family, _, lines, keys, exp, files in _CATALOGUE
}
MODELS["generic"] = PhoneModel("fanvil", "generic", "generic", lines=1, line_keys=2, generic=True)

_COMMON_FILES = {f: name for name, *_, files in _CATALOGUE for f in files}
_UA = re.compile(r"^Fanvil (?P<model>[A-Za-z0-9]+(?:[- ](?:V\d+|Pro))*) (?P<firmware>\d+(?:\.\d+)+)"
                 r"(?: (?P<mac>[0-9a-fA-F]{12}))?\s*\Z")
_MAC_CFG = re.compile(r"^(?P<mac>[0-9a-f]{12})\.cfg\Z")
_PHONEBOOK = re.compile(r"^fv(?P<mac>[0-9a-f]{12})-phonebook\.xml\Z")

_TRANSPORT = {"udp": 0, "tcp": 1, "tls": 3}
#: Fanvil's DefaultLanguage codes for current models (Wazo's list); no Swedish: English instead.
_LANGUAGES = {"en": "en", "de": "de", "fr": "fr", "es": "es", "it": "it", "nl": "nl", "pl": "pl", "pt": "pt",
              "ru": "ru", "tr": "tr", "cs": "cz", "hr": "hr", "sk": "slo", "uk": "ua", "ko": "ko"}
def fanvil_timezone(zone: str) -> dict:
    """TimeZone (quarter hours), TimeZoneName and the DST switch rules of an IANA zone."""
    quarters = int(standard_offset(zone).total_seconds() // 900)
    hours = quarters / 4
    if quarters == 0:
        name = "UCT"
    elif quarters % 4 == 0:
        name = f"UTC{int(hours):+d}" if hours > 0 else f"UTC-{abs(int(hours)):02d}"
    else:
        name = f"UTC{hours:+g}"
    start, end = dst_switches(zone) or (None, None)
    return {"quarters": quarters, "name": name, "start": start, "end": end}


class Fanvil(VendorPlugin):
    name = "fanvil"
    display_name = "Fanvil"
    ouis = frozenset({"00a859", "0c383e"})
    models = MODELS
    key_codes = {"line": "2", "blf": "1/ba", "speed_dial": "1/f", "park": "1/c", "voicemail": "1/m",
                 "dtmf": "4", "group_toggle": "1/f"}
    resync_event = "check-sync"
    reboot_event = "check-sync;reboot=true"

    # -- identification ------------------------------------------------------------------------
    def match_user_agent(self, user_agent: str) -> UserAgentInfo | None:
        text = user_agent.strip()
        if not text.lower().startswith("fanvil"):
            return None
        match = _UA.match(text)
        if not match:
            return UserAgentInfo(vendor=self.name)
        raw = match["model"].replace(" ", "-")
        model = self.find_model(raw)
        return UserAgentInfo(vendor=self.name, model=model.name if model else raw, firmware=match["firmware"],
                             mac=mac_or_none(match["mac"]))

    def match_path(self, filename: str) -> FileRequest | None:
        if filename in _COMMON_FILES:
            return FileRequest(self.name, FileKind.common, filename, model=_COMMON_FILES[filename])
        match = _MAC_CFG.match(filename)
        # <mac>.cfg is Yealink's and Poly's name too: claim it only for Fanvil MACs.
        if match and match["mac"] != "0" * 12 and self.owns_mac(match["mac"]):
            return FileRequest(self.name, FileKind.device, filename, mac=match["mac"])
        match = _PHONEBOOK.match(filename)
        if match and mac_or_none(match["mac"]):
            return FileRequest(self.name, FileKind.device, filename, mac=match["mac"])
        return None

    # -- rendering -----------------------------------------------------------------------------
    def content_type(self, request: FileRequest) -> str:
        if request.name.endswith(".xml"):
            return "application/xml; charset=utf-8"
        return "text/plain; charset=utf-8"

    def render_common(self, request: FileRequest, ctx: CommonContext, templates) -> bytes | None:
        model = self.models[request.model]
        template = "fanvil/common-old.cfg.j2" if FORMATS[model.name] == "old" else "fanvil/common.xml.j2"
        return templates.render(template, model=model, **self._common_values(ctx, ctx.resync_minutes, ""))

    def render_device(self, request: FileRequest, ctx: DeviceContext, templates) -> bytes | None:
        if request.name == f"{ctx.mac}.cfg":
            fmt = FORMATS.get(ctx.model.name, "new")
            template = "fanvil/mac-old.cfg.j2" if fmt == "old" else "fanvil/mac.xml.j2"
            return templates.render(template, **self._device_values(ctx))
        if request.name == f"fv{ctx.mac}-phonebook.xml":
            return templates.render("fanvil/phonebook.xml.j2", contacts=ctx.contacts)
        return None

    def _common_values(self, ctx: CommonContext, minutes: int, mac: str) -> dict:
        url = urlsplit(ctx.provisioning_url)
        return {
            "ctx": ctx,
            "tz": fanvil_timezone(ctx.timezone),
            "language": _LANGUAGES.get(ctx.language, "en"),
            "server": ctx.provisioning_url,
            "protocol": 2 if url.scheme == "tftp" else 4,
            "interval_hours": max(1, round(minutes / 60)),
            "config_file": f"{mac}.cfg" if mac else "$mac.cfg",
        }

    def _device_values(self, ctx: DeviceContext) -> dict:
        model = ctx.model
        programmed = {(k.module, k.slot): k for k in ctx.keys}
        modules_in_use = max((k.module for k in ctx.keys), default=0)
        slots = [
            (module, slot, _fkey(programmed.get((module, slot))))
            for module in range(0, modules_in_use + 1)
            for slot in range(1, model.key_capacity(module) + 1)
        ]
        lines = []
        for line in ctx.lines:
            if line.index > model.lines:
                continue
            proxy_host, _, proxy_port = (line.outbound_proxy or "").partition(":")
            lines.append((line, proxy_host, proxy_port or (str(line.port) if proxy_host else "")))
        return {
            **self._common_values(ctx, jittered_minutes(ctx.mac, ctx.resync_minutes), ctx.mac),
            "mac": ctx.mac,
            "model": model,
            "lines": lines,
            "transport": _TRANSPORT,
            "slots": slots,
            "phonebook_url": f"{ctx.provisioning_url}fv{ctx.mac}-phonebook.xml" if ctx.contacts else "",
        }


def _fkey(key) -> dict:
    """Type/Value/Title of one function key."""
    if key is None:
        return {"type": 0, "value": "", "title": ""}
    line = key.line_index
    if key.type == "line":
        return {"type": 2, "value": f"SIP{line}", "title": key.label}
    if key.type == "dtmf":
        return {"type": 4, "value": key.value, "title": key.label}
    mode = {"blf": "ba", "speed_dial": "f", "group_toggle": "f", "park": "c", "voicemail": "m"}[key.type]
    value = f"{key.value}@{line}/{mode}"
    if key.type == "blf" and key.pickup_code:
        value += f"{key.pickup_code}{key.value}"
    return {"type": 1, "value": value, "title": key.label}



plugin = Fanvil()
