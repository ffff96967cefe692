"""Cisco: Small Business SPA3xx/5xx phones, SPA112/122 and ATA191/192 adapters, and the
68xx/78xx/88xx Multiplatform (MPP, "3PCC") phones.

Facts (shared/reference/vendors.md section 3, checked against Cisco's guides cited here):

- Profile rules. A factory SPA asks for ``/spa$PSN.cfg`` (``$PSN`` = the series number, ``504G``
  for a SPA504G, "G is uppercase"), an ATA191/192 for ``/ata$PSN.cfg`` and an MPP phone for
  ``/$PSN.xml`` (ATA 191/192 MPP provisioning guide, Voice Parameters, <Profile_Rule> "Default
  setting /ata$PSN.cfg"; 7832/8832 MPP admin guide, Provisioning Methods, "Profile Rule ...
  Default: /$PSN.xml", https://www.cisco.com/c/en/us/td/docs/voice_ip_comm/cuipph/MPP/common/ag_conf_7832_8832/tpcc_b_cisco-ip-conference-phone-multipl/cs88_m_provisioning-methods-mpp1133.html).
  That MPP file name is ``8841-3PCC.xml`` is inferred from Wazo (vendors.md 3b); the ATA's
  ``ata191.cfg`` likewise (inferred). "Profile Rule B, C, D ... are executed sequentially after
  the primary Profile Rule": the shared file points Profile_Rule_B at the device's ``$MA.xml``
  ("$MA expands to the unit 12-digit MAC address (using lower case hex digits)", same guide).
- ``<flat-profile>`` XML, element = web field name with ``_n_`` for line n; unknown elements are
  ignored and the last occurrence wins. ATAs nest their router settings, the clock among them,
  in ``<router-configuration><Time_Setup>`` inside the flat profile (ATA 191/192 guide, Router
  Configuration Parameters, "Time_Setup": ``Time_Zone`` "+01 2 2" for Germany,
  ``Daylight_Saving_Time_Rule`` "start=month/day/weekday/hh:mm:ss;end=...;save=hours", example
  ``start=3/-1/7/2;end=11/-1/7/2;save=1``; it "takes precedence" over the zone's own rule).
- Line keys: ``Extension_n_`` (n or Disabled), ``Short_Name_n_``, ``Extended_Function_n_`` with
  ``fnc=type;name=value`` strings: ``fnc=sd;ext=9999@$PROXY;vid=n;nme=xxxx`` speed dial,
  ``fnc=blf+sd+cp;sub=...`` BLF with speed dial and call pickup, ``fnc=prk;sub=...`` call park.
  Key expansion modules: ``<Unit_n_Key_m_>``; the 8800 KEM has 18 line keys x 2 pages = 36
  buttons, two on an 8851, three on an 8861/8865 (8800 MPP admin guide, "Cisco IP Phone Key
  Expansion Module", https://www.cisco.com/c/en/us/td/docs/voice_ip_comm/cuipph/MPP/8800/english/AG/p881_b_8800-mpp-ag_new/p881_m_kem-module-mpp-1100.html;
  MPP XML reference, Extended_Function_n_, https://www.cisco.com/c/en/us/td/docs/voice_ip_comm/cuipph/MPP/common/xml_ref_guide/tpcc_b_xml-command-ref.html).
  SPA sidecars (SPA500S, SPA932: 32 keys, two units) use ``<Unit_n_Key_m>`` (Wazo, vendors.md 3a).
- User-Agent: SPA ``Cisco/SPA508G-7.4.8a (0002FDFF2103)(CBT141400UK)`` (MAC uppercase, or only a
  serial), MPP ``Cisco-CP-8841-3PCC/11.0 (00562b043615)`` (MAC lowercase).
- Resync by SIP: "the proxy can request a resync by sending a SIP NOTIFY message containing the
  Event: resync header" (Resync From SIP, same 7832 guide). vendors.md section 8 lists
  ``check-sync`` (what Wazo/FreePBX send); Cisco's own guide says ``resync``, which is used here.
"""

from __future__ import annotations

import re

from provisioning import config_crypto
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

SPA500S = ExpansionModule("SPA500S", keys=32, max_modules=2)
SPA932 = ExpansionModule("SPA932", keys=32, max_modules=2)
KEM_8851 = ExpansionModule("CP-8800 Key Expansion Module", keys=36, max_modules=2)
KEM_8861 = ExpansionModule("CP-8800 Key Expansion Module", keys=36, max_modules=3)

# name, family, lines, programmable line keys, expansion module, kind
_CATALOGUE = [
    ("SPA301", "SPA", 1, 0, None, "desk"),
    ("SPA303", "SPA", 3, 3, None, "desk"),
    ("SPA501G", "SPA", 8, 8, SPA500S, "desk"),
    ("SPA502G", "SPA", 1, 1, None, "desk"),
    ("SPA504G", "SPA", 4, 4, SPA500S, "desk"),
    ("SPA508G", "SPA", 8, 8, SPA500S, "desk"),
    ("SPA509G", "SPA", 12, 12, SPA500S, "desk"),
    ("SPA512G", "SPA", 1, 1, None, "desk"),
    ("SPA514G", "SPA", 4, 4, SPA500S, "desk"),
    ("SPA525G", "SPA", 5, 5, SPA500S, "desk"),
    ("SPA525G2", "SPA", 5, 5, SPA500S, "desk"),
    ("SPA942", "SPA", 4, 4, None, "desk"),
    ("SPA962", "SPA", 6, 6, SPA932, "desk"),
    ("SPA112", "ATA", 2, 0, None, "ata"),
    ("SPA122", "ATA", 2, 0, None, "ata"),
    ("ATA191", "ATA-MPP", 2, 0, None, "ata"),
    ("ATA192", "ATA-MPP", 2, 0, None, "ata"),
    ("6821", "MPP", 2, 2, None, "desk"),
    ("6841", "MPP", 4, 4, None, "desk"),
    ("6851", "MPP", 4, 4, None, "desk"),
    ("6861", "MPP", 4, 4, None, "desk"),
    ("6871", "MPP", 6, 6, None, "desk"),
    ("7811", "MPP", 1, 0, None, "desk"),
    ("7821", "MPP", 2, 2, None, "desk"),
    ("7832", "MPP", 1, 0, None, "desk"),
    ("7841", "MPP", 4, 4, None, "desk"),
    ("7861", "MPP", 16, 16, None, "desk"),
    ("8811", "MPP", 10, 10, None, "desk"),
    ("8832", "MPP", 1, 0, None, "desk"),
    ("8841", "MPP", 10, 10, None, "desk"),
    ("8845", "MPP", 10, 10, None, "desk"),
    ("8851", "MPP", 10, 10, KEM_8851, "desk"),
    ("8861", "MPP", 10, 10, KEM_8861, "desk"),
    ("8865", "MPP", 10, 10, KEM_8861, "desk"),
]


def _common_file(name: str, family: str) -> str:
    if family == "MPP":
        return f"{name}-3PCC.xml"
    if family == "ATA-MPP":
        return f"ata{name.removeprefix('ATA')}.cfg"
    return f"spa{name.removeprefix('SPA')}.cfg"


MODELS: dict[str, PhoneModel] = {
    name: PhoneModel("cisco", name, family, lines, keys, exp, _common_file(name, family), kind=kind)
    for name, family, lines, keys, exp, kind in _CATALOGUE
}
#: Unknown Cisco models get an MPP-style profile with one line and no programmable keys.
MODELS["generic"] = PhoneModel("cisco", "generic", "MPP", lines=1, line_keys=1, generic=True)

_COMMON_FILES = {m.common_file: m.name for m in MODELS.values() if m.common_file}
#: Shared-file names of models not in the catalogue: served a generic profile of the family.
_OTHER_COMMON = [(re.compile(r"^\d{4}-3PCC\.xml\Z"), "MPP"), (re.compile(r"^ata19\d\.cfg\Z"), "ATA-MPP"),
                 (re.compile(r"^spa\d{3}[A-Z0-9]*\.cfg\Z"), "SPA")]
_MAC_FILE = re.compile(r"^(?P<mac>[0-9a-f]{12})(?P<suffix>\.xml|-xmldirectory\.xml)\Z")
DIRECTORY_SUFFIX = "-xmldirectory.xml"

_UA_SPA = re.compile(
    r"^(?P<brand>Cisco|Linksys|Sipura)/(?P<model>[A-Za-z]+-?\d+[A-Za-z0-9]*)-(?P<firmware>\S+)(?P<rest>.*)\Z")
_UA_MPP = re.compile(r"^Cisco-(?P<model>[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*?)/(?P<firmware>\S+)(?P<rest>.*)\Z")
_PAREN = re.compile(r"\(([^()]*)\)")

_TRANSPORT = {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}
#: Language_Selection (SPA) / Locale (MPP) values. (unverified: the phone also needs the
#: language's dictionary file from Dictionary_Server_Script, which deskprov does not serve)
_LANGUAGES = {"sv": ("Swedish", "sv-SE"), "en": ("English", "en-GB"), "da": ("Danish", "da-DK"),
              "nb": ("Norwegian", "nb-NO"), "no": ("Norwegian", "nb-NO"), "fi": ("Finnish", "fi-FI"),
              "de": ("German", "de-DE")}
_FNC_UNSAFE = re.compile(r"[;=\s]+")


def cisco_model_key(name: str) -> str:
    """``Cisco CP-8841-3PCC``/``8841`` -> ``8841``; ``Cisco SPA-504G`` -> ``spa504g``; ``ATA191-MPP`` -> ``ata191``."""
    key = re.sub(r"[^0-9a-z]", "", name.lower())
    for prefix in ("cisco", "linksys", "sipura"):
        key = key.removeprefix(prefix)
    key = key.removeprefix("ipphone")
    if re.match(r"^cp\d", key):
        key = key[2:]
    for suffix in ("3pcc", "mpp"):
        key = key.removesuffix(suffix)
    return key


class Cisco(VendorPlugin):
    name = "cisco"
    display_name = "Cisco"
    # Cisco/Linksys OUIs seen on SPA and MPP units (vendors.md 3, the guides' examples).
    ouis = frozenset({"000e08", "0002fd", "8843e1", "00562b", "0021a0", "30e4db", "c4b9cd", "0018f8",
                      "e05fb9", "5006ab", "7426ac"})
    models = MODELS
    # Neutral type -> the fnc= function. No DTMF line key: the guides only give DTMF for soft keys.
    key_codes = {"line": "line", "blf": "blf+sd+cp", "speed_dial": "sd", "voicemail": "sd",
                 "group_toggle": "sd", "park": "prk"}
    resync_event = "resync"
    # (unverified: by analogy with the documented "resync" and "report" events)
    reboot_event = "reboot"

    def find_model(self, name: str | None) -> PhoneModel | None:
        if not name:
            return None
        wanted = cisco_model_key(name)
        return next((m for m in self.models.values() if cisco_model_key(m.name) == wanted), None)

    def validate_keys(self, model, keys):
        keys = list(keys)
        # The base check words a keyless phone (an ATA) as "no expansion module 0".
        keyless = [k for k in keys if k[0] == 0 and model.line_keys == 0]
        problems = [f"key {slot}: {self.display_name} {model.name} has no programmable keys" for _, slot, _ in keyless]
        problems += super().validate_keys(model, [k for k in keys if k not in keyless])
        for module, slot, key_type in keys:
            if module > 0 and key_type == "line":
                problems.append(f"expansion module {module} key {slot}: {self.display_name} key expansion "
                                f"modules have no line keys")
        return problems

    # -- identification ------------------------------------------------------------------------
    def match_user_agent(self, user_agent: str) -> UserAgentInfo | None:
        text = user_agent.strip()
        match = _UA_MPP.match(text) or _UA_SPA.match(text)
        if match is None:
            return UserAgentInfo(vendor=self.name) if text.lower().startswith(("cisco", "linksys/spa")) else None
        raw = match["model"].upper()
        model = self.find_model(raw)
        groups = [g.strip() for g in _PAREN.findall(match["rest"])]
        mac = next((m for g in groups if len(g) == 12 and (m := mac_or_none(g))), None)
        return UserAgentInfo(vendor=self.name, model=model.name if model else raw,
                             firmware=match["firmware"], mac=mac)

    def match_path(self, filename: str) -> FileRequest | None:
        if filename in _COMMON_FILES:
            return FileRequest(self.name, FileKind.common, filename, model=_COMMON_FILES[filename])
        if any(pattern.match(filename) for pattern, _ in _OTHER_COMMON):
            return FileRequest(self.name, FileKind.common, filename)
        match = _MAC_FILE.match(filename)
        if match and mac_or_none(match["mac"]):
            return FileRequest(self.name, FileKind.device, filename, mac=match["mac"])
        return None

    def content_type(self, request: FileRequest) -> str:
        return "text/xml; charset=utf-8"

    # -- config encryption: the profile is openssl-encrypted under the secret its Profile_Rule
    # names with [--key "..."]. The plain <mac>.xml bootstraps it: it moves the device's own
    # (encrypted) profile to Profile_Rule and the common file to Profile_Rule_B, so every later
    # resync reads the profile with the key, whatever the common file says. Catalogued models
    # only: the common file's name must be known.
    def config_cipher(self, model: PhoneModel):
        return None if model.generic or not model.common_file else config_crypto.OPENSSL

    def encrypts(self, request: FileRequest, ctx: DeviceContext) -> bool:
        return request.name == f"{ctx.mac}.xml" and self.config_cipher(ctx.model) is not None

    # -- rendering -----------------------------------------------------------------------------
    def render_common(self, request: FileRequest, ctx: CommonContext, templates) -> bytes | None:
        if request.model is not None:
            model = self.models[request.model]
        else:
            family = next((f for pattern, f in _OTHER_COMMON if pattern.match(request.name)), None)
            if family is None:
                return None
            model = PhoneModel(self.name, "generic", family, lines=1, line_keys=0, generic=True,
                               kind="ata" if family == "ATA-MPP" else "desk")
        return templates.render("cisco/common.xml.j2", model=model, **self._common_values(ctx, model))

    def render_device(self, request: FileRequest, ctx: DeviceContext, templates) -> bytes | None:
        model = ctx.model
        if request.name == f"{ctx.mac}.xml":
            template = "cisco/ata.xml.j2" if model.kind == "ata" else "cisco/phone.xml.j2"
            return templates.render(template, **self._device_values(ctx))
        if request.name == ctx.mac + DIRECTORY_SUFFIX and model.kind != "ata":
            return templates.render("cisco/directory.xml.j2", ctx=ctx, entries=_directory(ctx))
        return None

    def _common_values(self, ctx: CommonContext, model: PhoneModel) -> dict:
        offset = standard_offset(ctx.timezone)
        minutes = int(offset.total_seconds() // 60)
        sign = "-" if minutes < 0 else "+"
        hours, mins = divmod(abs(minutes), 60)
        language, locale = _LANGUAGES.get(ctx.language, ("English", "en-GB"))
        return {
            "ctx": ctx,
            "mpp": model.family in ("MPP", "ATA-MPP"),
            "time_zone": f"GMT{sign}{hours:02d}:{mins:02d}",
            # ATA router clock: only the guide's UTC+1 value is known. (unverified for others)
            "ata_time_zone": "+01 2 2" if minutes == 60 else None,
            "dst_rule": _dst_rule(ctx.timezone),
            "language": language,
            "locale": locale,
            "profile_rule_b": ctx.provisioning_url + "$MA.xml",
            "common_rule": ctx.provisioning_url + (model.common_file or ""),
        }

    def _device_values(self, ctx: DeviceContext) -> dict:
        model = ctx.model
        lines = {line.index: line for line in ctx.lines}
        programmed = {(k.module, k.slot): k for k in ctx.keys}
        slots = []
        for slot in range(1, model.line_keys + 1):
            key = programmed.get((0, slot))
            if key is None:
                # Without any programmed key the phone keeps its layout: key n shows line n.
                default = slot if not ctx.keys and slot in lines else None
                slots.append({"slot": slot, "extension": default or "Disabled",
                              "short_name": lines[slot].label if default else "", "function": ""})
            elif key.type == "line":
                line = lines.get(key.line_index)
                slots.append({"slot": slot, "extension": key.line_index,
                              "short_name": key.label or (line.label if line else "$USER"), "function": ""})
            else:
                slots.append({"slot": slot, "extension": "Disabled", "short_name": key.label,
                              "function": _function(key)})
        modules_in_use = max((k.module for k in ctx.keys), default=0)
        units = [
            (module, slot, _function(programmed[(module, slot)]) if (module, slot) in programmed else "")
            for module in range(1, modules_in_use + 1)
            for slot in range(1, model.key_capacity(module) + 1)
        ]
        pickup = next((k.pickup_code for k in ctx.keys if k.type == "blf" and k.pickup_code), "")
        return {
            **self._common_values(ctx, model),
            "model": model,
            "lines": [
                {"index": i, "line": lines.get(i), "transport": _TRANSPORT.get(lines[i].transport, "UDP")
                 if i in lines else "UDP"}
                for i in range(1, max([model.lines, *lines]) + 1)
            ],
            "voicemail": ctx.lines[0].voicemail_number if ctx.lines else "",
            "station_name": ctx.lines[0].display_name if ctx.lines else "",
            "slots": slots,
            "units": units,
            "unit_suffix": "_" if model.family == "MPP" else "",
            "pickup_code": pickup,
            "resync_seconds": jittered_minutes(ctx.mac, ctx.resync_minutes) * 60,
            "directory_url": ctx.provisioning_url + ctx.mac + DIRECTORY_SUFFIX,
        }


def _clean(value: str) -> str:
    """A value inside a fnc= string: ; and = would start a new field."""
    return _FNC_UNSAFE.sub(" ", value).strip()


def _function(key) -> str:
    value, label, vid = _clean(key.value), _clean(key.label), key.line_index
    if key.type == "blf":
        return f"fnc=blf+sd+cp;sub={value}@$PROXY;ext={value}@$PROXY;vid={vid};nme={label}"
    if key.type == "park":
        return f"fnc=prk;sub={value}@$PROXY;vid={vid};nme={label}"
    if key.type in ("speed_dial", "voicemail", "group_toggle"):
        return f"fnc=sd;ext={value}@$PROXY;vid={vid};nme={label}"
    return ""


def _directory(ctx: DeviceContext) -> list[tuple[str, str]]:
    entries = []
    for contact in ctx.contacts:
        entries.append((contact.name, contact.number))
        if contact.mobile:
            entries.append((f"{contact.name} (mobil)", contact.mobile))
    return entries


def _dst_rule(zone: str) -> str | None:
    """``start=3/-1/7/2;end=10/-1/7/3;save=1`` from the zone's POSIX rule (Cisco weekday 7 = Sunday)."""
    switches = dst_switches(zone)
    if switches is None:
        return None
    start, end = (f"{s.month}/{-1 if s.last_in_month else 1 + 7 * (s.week - 1)}/{s.weekday or 7}/{s.hour}"
                  for s in switches)
    return f"start={start};end={end};save=1"



plugin = Cisco()
