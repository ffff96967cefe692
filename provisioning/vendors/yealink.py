"""Yealink desk phones (T2x/T3x/T4x/T5x, CP) and W-series DECT bases.

Facts (shared/reference/vendors.md section 1, from Yealink admin guides, Wazo and FusionPBX):
- User-Agent ``Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01`` (MAC lowercase with colons; old
  firmware spells ``yealink``, some omit the MAC and put the hardware version last).
- Firmware 81 and later ask for ``<mac>.boot``, then ``y000000000000.boot``, then the legacy pair
  ``y0000000000XX.cfg`` (per-model code) and ``<mac>.cfg``; older firmware only the legacy pair.
  MACs in file names are lowercase hex without separators.
- Flat ``key = value`` files whose first line is ``#!version:1.0.0.1``.
"""

from __future__ import annotations

import re
import zlib

from provisioning.timezones import offset_hours
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

EXP40 = ExpansionModule("EXP40", keys=40, max_modules=6)
EXP43 = ExpansionModule("EXP43", keys=60, max_modules=3)
EXP50 = ExpansionModule("EXP50", keys=60, max_modules=3)
EXP20 = ExpansionModule("EXP20", keys=20, max_modules=6)

# name, family, lines (accounts), programmable line keys, expansion module, common-file code.
# Key counts follow Wazo's per-model tables; codes the FusionPBX template file names.
_CATALOGUE = [
    ("T19P_E2", "T1x", 1, 0, None, "53"),
    ("T21P_E2", "T2x", 2, 2, None, "52"),
    ("T23G", "T2x", 3, 3, None, "44"),
    ("T27G", "T2x", 6, 21, EXP20, "69"),
    ("T31G", "T3x", 2, 2, None, "123"),
    ("T33G", "T3x", 4, 4, None, "124"),
    ("T41P", "T4x", 3, 15, None, "36"),
    ("T42G", "T4x", 3, 15, None, "29"),
    ("T46G", "T4x", 6, 27, EXP40, "28"),
    ("T48G", "T4x", 6, 29, EXP40, "35"),
    ("T41S", "T4xS", 6, 15, None, "68"),
    ("T42S", "T4xS", 12, 15, None, "67"),
    ("T46S", "T4xS", 16, 27, EXP40, "66"),
    ("T48S", "T4xS", 16, 29, EXP40, "65"),
    ("T42U", "T4xU", 12, 15, None, "116"),
    ("T43U", "T4xU", 12, 21, EXP43, "107"),
    ("T46U", "T4xU", 16, 27, EXP43, "108"),
    ("T48U", "T4xU", 16, 29, EXP43, "109"),
    ("T52S", "T5x", 12, 21, EXP50, "74"),
    ("T54S", "T5x", 16, 27, EXP50, "70"),
    ("T53W", "T5x", 12, 21, EXP50, "95"),
    ("T54W", "T5x", 16, 27, EXP50, "96"),
    ("T57W", "T5x", 16, 29, EXP50, "97"),
    ("T58A", "T5x", 16, 27, EXP50, "58"),
    ("CP920", "CP", 1, 0, None, "78"),
    ("W60B", "W-DECT", 8, 0, None, "77"),
    ("W70B", "W-DECT", 10, 0, None, "146"),
]

MODELS: dict[str, PhoneModel] = {
    name: PhoneModel("yealink", name, family, lines, keys, exp, f"y{int(code):012d}.cfg",
                     kind="dect" if family == "W-DECT" else "desk")
    for name, family, lines, keys, exp, code in _CATALOGUE
}
MODELS["generic"] = PhoneModel("yealink", "generic", "generic", lines=1, line_keys=10, generic=True)

_COMMON_FILES = {m.common_file: m.name for m in MODELS.values() if m.common_file}

_UA = re.compile(
    r"^(?:yealink[ -](?:sip[- ])?)?(?P<model>(?:SIP-)?[A-Z]{1,3}\d{2,3}[A-Z0-9_]*)"
    r"[ /](?P<firmware>\d+(?:\.\d+){3})"
    r"(?:\s+(?P<mac>(?:[0-9a-f]{2}:){5}[0-9a-f]{2}|[0-9a-f]{12}))?",
    re.IGNORECASE,
)
_MAC_FILE = re.compile(r"^(?P<mac>[0-9a-f]{12})(?P<suffix>\.boot|\.cfg|-local\.cfg|-contact\.xml)$")
_COMMON_BOOT = "y000000000000.boot"

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


class Yealink(VendorPlugin):
    name = "yealink"
    display_name = "Yealink"
    ouis = frozenset({"001565", "e434d7", "805ec0", "805e0c", "249ad8", "44dbd2", "644f56", "ec1da9",
                      "3497d7", "b061a9", "c4fc22", "f01653"})
    models = MODELS
    key_codes = {"line": "15", "blf": "16", "speed_dial": "13", "park": "10", "dtmf": "11", "voicemail": "12"}
    resync_event = "check-sync;reboot=false"
    reboot_event = "check-sync;reboot=true"

    def match_user_agent(self, user_agent: str) -> UserAgentInfo | None:
        text = user_agent.strip()
        if not (text.lower().startswith("yealink") or text.startswith("VP530")):
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

    def match_path(self, filename: str) -> FileRequest | None:
        if filename == _COMMON_BOOT:
            return FileRequest(self.name, FileKind.common, filename)
        if filename in _COMMON_FILES:
            return FileRequest(self.name, FileKind.common, filename, model=_COMMON_FILES[filename])
        match = _MAC_FILE.match(filename)
        if match and mac_or_none(match["mac"]):
            return FileRequest(self.name, FileKind.device, filename, mac=match["mac"])
        return None

    # -- rendering -----------------------------------------------------------------------------
    def _common_values(self, ctx: CommonContext) -> dict:
        return {
            "ctx": ctx,
            "time_zone": offset_hours(ctx.timezone),
            "time_zone_name": _ZONE_NAMES.get(ctx.timezone, ""),
            "language": _LANGUAGES.get(ctx.language, "English"),
        }

    def render_common(self, request: FileRequest, ctx: CommonContext, templates) -> bytes | None:
        # The common boot file is deliberately not served: a phone without a <mac>.boot then
        # falls back to the legacy pair and still asks for its own <mac>.cfg.
        if request.model is None:
            return None
        return templates.render("yealink/common.cfg.j2", model=self.models[request.model],
                                **self._common_values(ctx))

    def render_device(self, request: FileRequest, ctx: DeviceContext, templates) -> bytes | None:
        if request.name.endswith(".boot"):
            return templates.render("yealink/mac.boot.j2", mac=ctx.mac, common_file=ctx.model.common_file)
        if request.name == f"{ctx.mac}.cfg":
            return templates.render("yealink/mac.cfg.j2", **self._device_values(ctx))
        return None

    def _device_values(self, ctx: DeviceContext) -> dict:
        model = ctx.model
        programmed = {(k.module, k.slot): k for k in ctx.keys}
        # Every slot of the phone and of each module in use is written: slots without a key are
        # reset to the phone's default, so a key deleted in deskprov disappears from the phone.
        modules_in_use = max((k.module for k in ctx.keys), default=0)
        slots = [
            (module, slot, programmed.get((module, slot)))
            for module in range(0, modules_in_use + 1)
            for slot in range(1, model.key_capacity(module) + 1)
        ]
        return {
            **self._common_values(ctx),
            "lines": ctx.lines,
            "slots": slots,
            "codes": self.key_codes,
            "transport": _TRANSPORT,
            "resync_minutes": _jittered(ctx.mac, ctx.resync_minutes),
        }


def _jittered(mac: str, minutes: int) -> int:
    """Spread polling over +-10 % per device, stable across renders (same MAC, same minute)."""
    spread = max(1, minutes // 10)
    return max(5, minutes - spread + zlib.crc32(mac.encode()) % (2 * spread + 1))


plugin = Yealink()
