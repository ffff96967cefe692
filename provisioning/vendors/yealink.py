"""Yealink desk phones (T2x/T3x/T4x/T5x, CP) and W-series DECT bases (W52P/W56P, W60B, W70B, W80, W90).

Facts (shared/reference/vendors.md section 1, checked against Yealink's admin guides where the
search tool reached them; the guide is cited next to each fact):

- User-Agent ``Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01`` (MAC lowercase with colons; old
  firmware spells ``yealink``; DECT bases and CP860 have no ``SIP-``; firmware 71 and older send
  ``Yealink-T46G 28.71.0.81 28.1.0.128.0.0.0``, the hardware version instead of a MAC; some T5x
  send the MAC without colons; the SIP User-Agent carries no MAC at all).
- Firmware 81 and later ask for ``<mac>.boot``, then ``y000000000000.boot``, then the legacy pair
  ``y0000000000XX.cfg`` (per-model code) and ``<mac>.cfg``; older firmware only the legacy pair
  (Admin Guide for SIP-T2/T4/T5/CP920 V84, "Boot Files",
  https://www.easymanua.ls/yealink/sip-t2-series/manual?p=150). MACs in file names are lowercase
  hex without separators ("the name of MAC-Oriented CFG file is 00156574b150.cfg (lowercase), and
  the name of MAC-local CFG file is 00156574b150-local.cfg (lowercase)",
  https://www.easymanua.ls/yealink/t40g/manual/289184?p=78).
- ``<mac>-local.cfg`` is written by the phone (web/phone UI changes) and uploaded to the
  provisioning server when the provisioning priority mechanism is on (same page), and
  ``<mac>-contact.xml`` is the phone's local-directory backup: both are uploads, read back only by
  the phone that wrote them. We never switch those mechanisms on (deskprov is the source of truth
  for keys and accounts), but a phone an admin set up that way keeps working.
- Flat ``key = value`` files whose first line is ``#!version:1.0.0.1``; ``%NULL%`` resets.
"""

from __future__ import annotations

import re
from typing import Iterable

from provisioning import config_crypto
from provisioning.timezones import observes_dst, offset_hours
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
    _model_key,
    mac_or_none,
)

# Expansion modules: keys per module (all pages) and how many one phone drives.
# EXP20/EXP40: 20 keys x 2 pages, up to 6 modules. The admin guide's ext-key ranges: "For
# SIP-T48G/T48S/T46G/T46S: X ranges from 1 to 6, Y ranges from 1 to 40. For SIP-T29G/T27P/T27G:
# X ranges from 1 to 6, Y ranges from 1 to 20, 22 to 40 (Ext key 21 cannot be configured)"
# (https://www.easymanua.ls/yealink/sip-t2-series/manual?p=617). The old table said 20 keys for
# the EXP20: wrong, it has 40 with key 21 unusable.
# EXP43 (T4xU) and EXP50 (T5x): 20 keys x 3 pages = 60, up to 3 modules (Yealink datasheets;
# the guide page with the T5x ranges was not reachable: unverified here).
EXP20 = ExpansionModule("EXP20", keys=40, max_modules=6)
EXP40 = ExpansionModule("EXP40", keys=40, max_modules=6)
EXP43 = ExpansionModule("EXP43", keys=60, max_modules=3)
EXP50 = ExpansionModule("EXP50", keys=60, max_modules=3)
#: (module, slot) positions a module has but that cannot be programmed.
_UNPROGRAMMABLE = {"EXP20": frozenset({21})}

# name, family, accounts, programmable line keys, expansion module, common-file code, kind.
# Line keys: "X ranges from 1 to 29 (for SIP-T48G/S), 1 to 27 (SIP-T46G/T46S/T29G), 1 to 15
# (SIP-T42G/T42S/T41P/T41S), 1 to 21 (SIP-T27P/T27G), 1 to 3 (SIP-T40P/T40G/T23P/T23G), 1 to 2
# (SIP-T21(P) E2)" (guide p.617 above); T4xU/T5x/T3x from Wazo's per-model tables (vendors.md 1.4).
# Accounts: the local-contact "line" ranges per model, "T57W/T54W/T48U/T48S/T48G/T46U/T46S/T46G/
# T29G: 0~15; T53W/T53/T43U/T42U/T42S/T42G: 0~11; T41P/T41S/T27G: 0~5; T40P/T40G/T23P/T23G: 0~2;
# T21(P) E2: 0~1" (https://manualshive.com/en/manual/yealink/sip-t5-series/3909785?page=323).
# The old table gave the T41P 3, T42G 3, T46G 6 and T48G 6 accounts: wrong, they have 6/12/16/16.
# Codes: FusionPBX's template directory names (vendors.md 1.2). W80/W90 codes are the firmware
# prefix of their User-Agents (103, 130) **(inferred)**, like W60B 77 and W70B 146.
# DECT accounts: W52P/W56P 5 handsets, W60B 8, W70B 10, W80 100, W90 250 (one account per handset
# on W80/W90: https://twistedvoip.com/knowledge-base/public/dect-handset-account-registration).
_CATALOGUE = [
    ("T19P_E2", "T1x", 1, 0, None, 53, "desk"),
    ("T21P_E2", "T2x", 2, 2, None, 52, "desk"),
    ("T23G", "T2x", 3, 3, None, 44, "desk"),
    ("T27G", "T2x", 6, 21, EXP20, 69, "desk"),
    ("T29G", "T2x", 16, 27, EXP20, 46, "desk"),
    ("T31G", "T3x", 2, 2, None, 123, "desk"),  # FPBX 123; Wazo shows T31G firmware 124.x (unverified)
    ("T33G", "T3x", 4, 4, None, 124, "desk"),
    ("T40P", "T4x", 3, 3, None, 54, "desk"),
    ("T40G", "T4x", 3, 3, None, 76, "desk"),
    ("T41P", "T4x", 6, 15, None, 36, "desk"),
    ("T42G", "T4x", 12, 15, None, 29, "desk"),
    ("T46G", "T4x", 16, 27, EXP40, 28, "desk"),
    ("T48G", "T4x", 16, 29, EXP40, 35, "desk"),
    ("T41S", "T4xS", 6, 15, None, 68, "desk"),
    ("T42S", "T4xS", 12, 15, None, 67, "desk"),
    ("T46S", "T4xS", 16, 27, EXP40, 66, "desk"),
    ("T48S", "T4xS", 16, 29, EXP40, 65, "desk"),
    ("T42U", "T4xU", 12, 15, None, 116, "desk"),
    ("T43U", "T4xU", 12, 21, EXP43, 107, "desk"),
    ("T46U", "T4xU", 16, 27, EXP43, 108, "desk"),
    ("T48U", "T4xU", 16, 29, EXP43, 109, "desk"),
    ("T52S", "T5x", 12, 21, EXP50, 74, "desk"),
    ("T54S", "T5x", 16, 27, EXP50, 70, "desk"),
    ("T53W", "T5x", 12, 21, EXP50, 95, "desk"),
    ("T53", "T5x", 12, 21, EXP50, 95, "desk"),
    ("T54W", "T5x", 16, 27, EXP50, 96, "desk"),
    ("T57W", "T5x", 16, 29, EXP50, 97, "desk"),
    ("T58A", "T5x", 16, 27, EXP50, 58, "desk"),
    ("CP860", "CP", 1, 0, None, 37, "desk"),
    ("CP920", "CP", 1, 0, None, 78, "desk"),
    ("CP925", "CP", 1, 0, None, 148, "desk"),
    ("CP960", "CP", 1, 0, None, 73, "desk"),
    ("CP965", "CP", 1, 0, None, 143, "desk"),
    ("W52P", "W-DECT", 5, 0, None, 25, "dect"),
    ("W60B", "W-DECT", 8, 0, None, 77, "dect"),
    ("W70B", "W-DECT", 10, 0, None, 146, "dect"),
    ("W80B", "W-DECT", 100, 0, None, 103, "dect"),
    ("W90", "W-DECT", 250, 0, None, 130, "dect"),
]

MODELS: dict[str, PhoneModel] = {
    name: PhoneModel("yealink", name, family, lines, keys, exp, f"y{code:012d}.cfg", kind=kind)
    for name, family, lines, keys, exp, code, kind in _CATALOGUE
}
MODELS["generic"] = PhoneModel("yealink", "generic", "generic", lines=1, line_keys=10, generic=True)

#: Other names the same hardware reports (User-Agent or order): W56P is a W52P base with a
#: W56H handset; the W80/W90 DECT managers report themselves as W80DM/W90DM, the bases W80B/W90B.
_ALIASES = {"w56p": "W52P", "w52b": "W52P", "w60p": "W60B", "w70p": "W70B", "w80dm": "W80B",
            "w90dm": "W90", "w90b": "W90", "t58v": "T58A", "t23p": "T23G", "t19e2": "T19P_E2",
            "t21e2": "T21P_E2"}

#: Common file name -> catalogue model (the first model listed for a shared code).
_COMMON_FILES: dict[str, str] = {}
for _model in MODELS.values():
    if _model.common_file:
        _COMMON_FILES.setdefault(_model.common_file, _model.name)

_UA = re.compile(
    r"^(?:yealink[ -](?:sip[- ])?)?(?P<model>(?:SIP-)?[A-Z]{1,3}\d{2,3}[A-Z0-9_]*)"
    r"[ /](?P<firmware>\d+(?:\.\d+){3})"
    r"(?:\s+(?P<mac>(?:[0-9a-f]{2}:){5}[0-9a-f]{2}|[0-9a-f]{12}))?(?:\s|$)",
    re.IGNORECASE,
)
_MAC_FILE = re.compile(r"^(?P<mac>[0-9a-f]{12})(?P<suffix>\.boot|\.cfg|-local\.cfg|-contact\.xml|-phonebook\.xml)\Z")
_ANY_COMMON_CFG = re.compile(r"^y\d{12}\.cfg\Z")
_COMMON_BOOT = "y000000000000.boot"
_UPLOADS = ("-local.cfg", "-contact.xml")
PHONEBOOK_SUFFIX = "-phonebook.xml"

#: Yealink's own zone names for the zones its customers use. (unverified against every model's list)
_ZONE_NAMES = {
    "Europe/Stockholm": "Sweden(Stockholm)",
    "Europe/Oslo": "Norway(Oslo)",
    "Europe/Copenhagen": "Denmark(Kopenhagen)",
    "Europe/Helsinki": "Finland(Helsinki)",
    "Europe/Berlin": "Germany(Berlin)",
    "Europe/London": "United Kingdom(London)",
    "UTC": "UTC",
}
_LANGUAGES = {"sv": "Swedish", "en": "English", "nb": "Norwegian", "no": "Norwegian", "da": "Danish",
              "fi": "Finnish", "de": "German"}
_TRANSPORT = {"udp": 0, "tcp": 1, "tls": 2}
#: Accounts written (enabled or explicitly disabled) at most: deskprov lines go up to 64.
_MAX_ACCOUNTS = 64


class Yealink(VendorPlugin):
    name = "yealink"
    display_name = "Yealink"
    ouis = frozenset({"001565", "e434d7", "805ec0", "805e0c", "249ad8", "44dbd2", "644f56", "ec1da9",
                      "3497d7", "b061a9", "c4fc22", "f01653"})
    models = MODELS
    # linekey.N.type codes (vendors.md 1.4, FusionPBX app_config.php; Wazo uses 10/11/13/15/16):
    # 10 call park, 11 DTMF, 12 voicemail, 13 speed dial, 15 line, 16 BLF. Yealink has no group
    # login/logout key: group_toggle is a speed dial to the organisation's toggle feature code.
    key_codes = {"line": "15", "blf": "16", "speed_dial": "13", "park": "10", "dtmf": "11", "voicemail": "12",
                 "group_toggle": "13"}
    # NOTIFY Event strings (vendors.md 1.5/8); the config sets sip.notify_reboot_enable = 0 so a
    # resync never reboots and only reboot=true does.
    resync_event = "check-sync;reboot=false"
    reboot_event = "check-sync;reboot=true"

    # -- identification ------------------------------------------------------------------------
    def match_user_agent(self, user_agent: str) -> UserAgentInfo | None:
        text = user_agent.strip()
        if not (text.lower().startswith("yealink") or text.upper().startswith("VP530")):
            return None
        match = _UA.match(text)
        if not match:
            return UserAgentInfo(vendor=self.name)
        model = self.find_model(match["model"])
        raw_model = match["model"].upper().removeprefix("SIP-")
        return UserAgentInfo(
            vendor=self.name,
            model=model.name if model else raw_model,
            firmware=match["firmware"],
            mac=mac_or_none(match["mac"]),
        )

    def find_model(self, name: str | None) -> PhoneModel | None:
        if not name:
            return None
        alias = _ALIASES.get(_model_key(name))
        return self.models[alias] if alias else super().find_model(name)

    def match_path(self, filename: str) -> FileRequest | None:
        if filename == _COMMON_BOOT:
            return FileRequest(self.name, FileKind.common, filename)
        if filename in _COMMON_FILES:
            return FileRequest(self.name, FileKind.common, filename, model=_COMMON_FILES[filename])
        if _ANY_COMMON_CFG.match(filename):
            # A model we have no entry for: it still gets the shared settings (generic).
            return FileRequest(self.name, FileKind.common, filename)
        match = _MAC_FILE.match(filename)
        if match and mac_or_none(match["mac"]):
            kind = FileKind.upload if match["suffix"] in _UPLOADS else FileKind.device
            return FileRequest(self.name, kind, filename, mac=match["mac"])
        return None

    def content_type(self, request: FileRequest) -> str:
        if request.name.endswith(".xml"):
            return "text/xml; charset=utf-8"
        return "text/plain; charset=utf-8"

    # -- keys ----------------------------------------------------------------------------------
    def validate_keys(self, model: PhoneModel, keys: Iterable[tuple[int, int, str]]) -> list[str]:
        keys = list(keys)
        problems = []
        for module, slot, key_type in keys:
            if module == 0 and model.line_keys == 0:
                problems.append(f"key {slot}: {self.display_name} {model.name} has no programmable keys")
                if key_type not in self.key_codes:
                    problems.append(f"key {slot}: {self.display_name} phones have no {key_type} key")
                continue
            problems += super().validate_keys(model, [(module, slot, key_type)])
            if module and model.expansion and slot in _UNPROGRAMMABLE.get(model.expansion.name, ()):
                problems.append(f"expansion module {module} key {slot}: key {slot} of the "
                                f"{model.expansion.name} switches pages and cannot be programmed")
        return problems

    # -- rendering -----------------------------------------------------------------------------
    def _common_values(self, ctx: CommonContext) -> dict:
        return {
            "ctx": ctx,
            "time_zone": offset_hours(ctx.timezone),
            "time_zone_name": _ZONE_NAMES.get(ctx.timezone, ""),
            # 2 = automatic DST by the named zone's rules, 0 = no DST (Yealink local_time.summer_time).
            "summer_time": 2 if observes_dst(ctx.timezone) else 0,
            "language": _LANGUAGES.get(ctx.language, "English"),
        }

    def render_common(self, request: FileRequest, ctx: CommonContext, templates) -> bytes | None:
        # The common boot file is deliberately not served: a phone without a <mac>.boot then
        # falls back to the legacy pair and still asks for its own <mac>.cfg.
        if not request.name.endswith(".cfg"):
            return None
        model = self.models[request.model] if request.model else self.generic_model()
        return templates.render("yealink/common.cfg.j2", model=model, **self._common_values(ctx))

    def render_device(self, request: FileRequest, ctx: DeviceContext, templates) -> bytes | None:
        if request.name == f"{ctx.mac}.boot":
            if ctx.model.generic:
                # Model not known yet (registered by MAC alone, asked over TFTP) or not in the
                # catalogue: no boot file, so the phone falls back to the legacy pair and its
                # per-model y0000000000XX.cfg request tells us the model before <mac>.cfg.
                return None
            return templates.render("yealink/mac.boot.j2", mac=ctx.mac, common_file=ctx.model.common_file)
        if request.name == f"{ctx.mac}.cfg":
            return templates.render("yealink/mac.cfg.j2", **self._device_values(ctx))
        if request.name == f"{ctx.mac}{PHONEBOOK_SUFFIX}":
            return templates.render("yealink/phonebook.xml.j2", ctx=ctx)
        return None

    # -- config encryption: <mac>.cfg only (it carries the secrets and the key); the common file
    # is shared and secret-free, the boot file and phonebook carry nothing secret.
    def config_cipher(self, model: PhoneModel):
        return config_crypto.YEALINK

    def encrypts(self, request: FileRequest, ctx: DeviceContext) -> bool:
        return request.name == f"{ctx.mac}.cfg"

    def _device_values(self, ctx: DeviceContext) -> dict:
        model = ctx.model
        programmed = {(k.module, k.slot): k for k in ctx.keys}
        # Every slot of the phone and of each module in use is written: slots without a key are
        # reset to the phone's default, so a key deleted in deskprov disappears from the phone.
        modules_in_use = max((k.module for k in ctx.keys), default=0)
        skip = _UNPROGRAMMABLE.get(model.expansion.name, frozenset()) if model.expansion else frozenset()
        slots = [
            (module, slot, programmed.get((module, slot)))
            for module in range(0, modules_in_use + 1)
            for slot in range(1, model.key_capacity(module) + 1)
            if module == 0 or slot not in skip
        ]
        used = {line.index for line in ctx.lines}
        return {
            **self._common_values(ctx),
            "model": model,
            "lines": [(line, _split_host_port(line.outbound_proxy)) for line in ctx.lines],
            # Accounts the device has but deskprov does not use: disabled and their secrets
            # cleared, so a line removed in deskprov stops registering even on legacy firmware.
            "unused_accounts": [i for i in range(1, min(model.lines, _MAX_ACCOUNTS) + 1) if i not in used],
            "slots": slots,
            "codes": self.key_codes,
            "transport": _TRANSPORT,
            "resync_minutes": jittered_minutes(ctx.mac, ctx.resync_minutes),
            "phonebook_url": f"{ctx.provisioning_url}{ctx.mac}{PHONEBOOK_SUFFIX}" if ctx.contacts else None,
        }


def _split_host_port(value: str | None) -> tuple[str, str] | None:
    """``proxy.example.net:5070`` -> (``proxy.example.net``, ``5070``); port ``""`` when absent."""
    if not value:
        return None
    host, _, port = value.partition(":")
    return host, port



plugin = Yealink()
