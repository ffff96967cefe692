"""Fanvil phone profile for the simulator (X, V, C series; current XML and old text formats).

Follows shared/reference/vendors.md section 6 and the sources cited in
``provisioning/vendors/fanvil.py``, with its own parsers:

* HTTP User-Agent ``Fanvil <model> <firmware> <mac lowercase, no separators>`` (``X6U Pro``
  with a space).
* Boot: the model's common file (Fanvil's own per-model name, e.g. ``f0X4hw1.100.cfg``), then
  ``<mac>.cfg``; later files override earlier ones.
* Two formats: ``<sysConf>`` XML (current models) and the ``<<VOIP CONFIG FILE>>`` text format
  (old models: ``<MODULE>`` headers, ``Key   :Value`` lines, ``<<END OF FILE>>``).
* A ``<dssSoft>`` key of Type 21 names the XML phone book; the phone loads it
  (``<FanvilIPPhoneDirectory><DirectoryEntry>``) into ``PhoneState.contacts`` as
  ``{"name", "numbers", "book"}``.
* Function keys: Type 0 none, 1 memory key ``<number>@<line>/<mode>`` (``f`` speed dial, ``ba``
  BLF with the pickup code and number appended, ``c`` park, ``m`` MWI/voicemail), 2 line
  (``SIP<n>``), 4 DTMF.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from simulators.phone import Account, BootContext, Key, PhoneProfile, PhoneState, register_profile

__all__ = ["FanvilProfile", "ConfigError", "parse_config", "parse_phonebook", "COMMON_FILES"]

#: The per-model common file each model asks for first.
COMMON_FILES = {
    "X2": "f0X2hw1.100.cfg", "X210": "F0V00X200000.cfg", "X210-V2": "fanvil_x210_v2_hwv2_0.txt",
    "X210-PRO": "fanvil_x210_pro_hwv2_0.txt", "X3": "F0V00X300000.cfg", "X3S": "f0X3shw1.100.cfg",
    "X3SG": "f0X3sghw1.100.cfg", "X4": "f0X4hw1.100.cfg", "X4U-V2": "fanvil_x4u_v2_hwv2_0.txt",
    "X5": "f0X5hw1.100.cfg", "X5U-V2": "F0V5UV200000.cfg", "X5S": "F0V00X5S0000.cfg", "X6": "F0V00X600000.cfg",
    "X6V2": "F0000X600000.cfg", "V67": "F0V0V6700000.cfg", "V61G": "F0VV61G00000.cfg", "V62": "F0VV6200000.cfg",
    "V62PRO": "F0V0V6210000.cfg", "V63": "F0V0V6300000.cfg", "V64": "F0V0V6400000.cfg", "V65": "F0V0V6500000.cfg",
    "V66": "F0V0V6600000.cfg", "V66PRO": "F0V0V6610000.cfg", "H2U-V2": "F0V2UV200000.cfg",
    "C58": "f0C00580000.cfg", "C62": "f0C00620000.cfg",
}
_TEXT_MAGIC = "<<VOIP CONFIG FILE>>"
_TRANSPORTS = {"0": "udp", "1": "tcp", "3": "tls"}
_MODES = {"f": "speed_dial", "c": "park", "m": "voicemail"}
_MEMORY = re.compile(r"^(?P<number>[^@]*)@(?P<line>\d+)/(?P<mode>bc|bb|ba|bf|f|c|m|a|i)(?P<rest>.*)$")


class ConfigError(ValueError):
    """A file the phone would reject."""


def _flatten(element: ET.Element, prefix: str, out: dict[str, str]) -> None:
    for child in element:
        name = f"{prefix}{child.tag}"
        if child.get("index") is not None:
            name += f".{child.get('index')}"
        if len(child):
            _flatten(child, name + ".", out)
        else:
            out[name] = (child.text or "").strip()


def parse_config(data: bytes) -> tuple[str, dict[str, str]]:
    """A Fanvil file -> (format "xml"|"text", {name: value}).

    XML paths join tags with dots and add ``index`` attributes: ``sip.line.1.PhoneNumber``;
    text lines become ``<MODULE NAME>.<key>``: ``SIP CONFIG MODULE.SIP1 Phone Number``.
    """
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    if text.startswith(_TEXT_MAGIC):
        if "<<END OF FILE>>" not in text:
            raise ConfigError("text config without <<END OF FILE>>")
        values: dict[str, str] = {}
        module = ""
        for raw in text.splitlines()[1:]:
            line = raw.strip()
            if not line or line == "<<END OF FILE>>":
                continue
            if line.startswith("<") and line.endswith(">"):
                module = line[1:-1]
                continue
            key, sep, value = raw.partition(":")
            if not sep:
                continue
            values[f"{module}.{key.strip()}"] = value.strip()
        return "text", values
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ConfigError(f"neither XML nor a text config: {exc}") from None
    if root.tag != "sysConf":
        raise ConfigError(f"root element is <{root.tag}>, not <sysConf>")
    values = {}
    _flatten(root, "", values)
    return "xml", values


def parse_phonebook(data: bytes) -> list[dict[str, object]]:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ConfigError(f"phone book is not XML: {exc}") from None
    if not root.tag.endswith("IPPhoneDirectory"):
        raise ConfigError(f"phone book root is <{root.tag}>")
    entries = []
    for entry in root.iter("DirectoryEntry"):
        numbers = [(entry.findtext(tag) or "").strip() for tag in ("Telephone", "Mobile", "Other")]
        entries.append({"name": (entry.findtext("Name") or "").strip(), "numbers": [n for n in numbers if n]})
    return entries


@register_profile
class FanvilProfile(PhoneProfile):
    """``FanvilProfile("X4U", "0C:38:3E:AA:BB:01", "2.12.16.17")``."""

    vendor = "fanvil"

    def provisioning_credentials(self, state: PhoneState) -> tuple[str, str] | None:
        """The Auto Provision User/Password (XML ``ap`` section or the text format's module)."""
        for user_key, password_key in (("sysConf.ap.FlashUserName", "sysConf.ap.FlashPassword"),
                                       ("AUTOUPDATE CONFIG MODULE.Download Username",
                                        "AUTOUPDATE CONFIG MODULE.Download password")):
            user, password = state.settings.get(user_key, ""), state.settings.get(password_key, "")
            if user and password:
                return user, password
        return None

    def __init__(self, model: str, mac: str, firmware: str, *, user_agent: str | None = None):
        super().__init__(model.strip(), mac, firmware, user_agent=user_agent)

    def user_agent(self) -> str:
        if self._user_agent_override:
            return self._user_agent_override
        return f"Fanvil {self.model.replace('-Pro', ' Pro')} {self.firmware} {self.mac}"

    async def boot(self, ctx: BootContext) -> None:
        common = COMMON_FILES.get(self.model.upper())
        if common:
            await self._apply(ctx, common)
        await self._apply(ctx, f"{self.mac}.cfg")
        await self._load_phonebook(ctx)

    async def _apply(self, ctx: BootContext, name: str) -> None:
        data = await ctx.fetch(name)
        if data is None:
            return
        try:
            fmt, values = parse_config(data)
        except ConfigError as exc:
            ctx.error(f"{name}: rejected: {exc}")
            return
        ctx.state.settings.update(values)
        ctx.state.boot_settings[f"format:{name}"] = fmt
        ctx.state.applied.append(name)

    async def _load_phonebook(self, ctx: BootContext) -> None:
        s = ctx.state.settings
        for index in range(1, 10):
            if s.get(f"dsskey.dssSoft.{index}.Type") != "21":
                continue
            url = s.get(f"dsskey.dssSoft.{index}.Value", "")
            data = await ctx.fetch(url)
            if data is None:
                ctx.error(f"phone book {url} could not be loaded")
                continue
            try:
                entries = parse_phonebook(data)
            except ConfigError as exc:
                ctx.error(f"phone book {url}: {exc}")
                continue
            book = s.get(f"dsskey.dssSoft.{index}.Title", "") or "XML Phonebook"
            ctx.state.contacts.extend({**e, "book": book} for e in entries)

    # --- interpretation --------------------------------------------------

    def finalize(self, state: PhoneState) -> None:
        s = state.settings
        if any(k.startswith("SIP CONFIG MODULE.") for k in s):
            self._finalize_text(state)
        else:
            self._finalize_xml(state)

    def _finalize_xml(self, state: PhoneState) -> None:
        s = state.settings
        lines: dict[int, dict[str, str]] = {}
        keys: dict[tuple[int, int], dict[str, str]] = {}
        for name, value in s.items():
            if m := re.match(r"^sip\.line\.(\d+)\.(\w+)$", name):
                lines.setdefault(int(m.group(1)), {})[m.group(2)] = value
            elif m := re.match(r"^dsskey\.(dssSide|dssExt)\.(\d+)\.Fkey\.(\d+)\.(\w+)$", name):
                module = 0 if m.group(1) == "dssSide" else int(m.group(2))
                keys.setdefault((module, int(m.group(3))), {})[m.group(4)] = value
        for index, p in sorted(lines.items()):
            self._account(state, index, p.get("EnableReg"), p.get("DisplayName"), p.get("PhoneNumber"),
                          p.get("RegisterUser"), p.get("RegisterPswd"), p.get("RegisterAddr"),
                          p.get("RegisterPort"), p.get("Transport"))
        for (module, slot), attrs in sorted(keys.items()):
            source = f"{'dssSide.1' if module == 0 else f'dssExt.{module}'}.Fkey.{slot}"
            self._key(state, module, slot, attrs.get("Type", "0"), attrs.get("Value", ""), attrs.get("Title", ""),
                      source)
        state.timezone = s.get("phone.date.TimeZoneName")
        state.timezone_name = s.get("phone.date.TimeZone")
        state.language = s.get("phone.display.DefaultLanguage")

    def _finalize_text(self, state: PhoneState) -> None:
        s = state.settings
        sip = "SIP CONFIG MODULE."
        for index in range(1, 17):
            p = f"{sip}SIP{index} "
            if f"{p}Phone Number" not in s:
                continue
            self._account(state, index, s.get(f"{p}Enable Reg"), s.get(f"{p}Display Name"),
                          s.get(f"{p}Phone Number"), s.get(f"{p}Register User"), s.get(f"{p}Register Pswd"),
                          s.get(f"{p}Register Addr"), s.get(f"{p}Register Port"), s.get(f"{p}Transport"))
        for name in list(s):
            if m := re.match(r"^DSS CONFIG MODULE\.Fkey(\d+) Type$", name):
                n = int(m.group(1))
                base = f"DSS CONFIG MODULE.Fkey{n} "
                self._key(state, 0, n, s[name], s.get(base + "Value", ""), s.get(base + "Title", ""), f"Fkey{n}")
        quarters = s.get("GLOBAL CONFIG MODULE.Time Zone", "")
        if quarters.lstrip("-").isdigit():
            hours = int(quarters) / 4
            state.timezone = "UCT" if hours == 0 else (f"UTC{int(hours):+d}" if hours == int(hours) else f"UTC{hours:+g}")
        state.timezone_name = quarters or None

    @staticmethod
    def _account(state: PhoneState, index: int, enable, display, number, user, password, server, port,
                 transport) -> None:
        acc = Account(index=index)
        acc.enabled = enable == "1"
        acc.display_name = display or ""
        acc.label = display or ""
        acc.user_name = number or ""
        acc.auth_name = user or ""
        acc.password = password or ""
        acc.server = server or ""
        if port:
            if port.isdigit():
                acc.port = int(port)
            else:
                state.warnings.append(f"line {index}: bad port {port!r}")
        acc.transport = _TRANSPORTS.get(transport or "0", f"other:{transport}")
        state.accounts[index] = acc

    @staticmethod
    def _key(state: PhoneState, module: int, slot: int, ktype: str, value: str, title: str, source: str) -> None:
        key = Key(module=module, slot=slot, label=title, raw_type=ktype, source=source)
        if ktype == "0":
            key.type = "none"
        elif ktype == "2":
            key.type = "line"
            key.line = int(value[3:]) if value.startswith("SIP") and value[3:].isdigit() else None
        elif ktype == "4":
            key.type, key.value = "dtmf", value
        elif ktype == "1":
            m = _MEMORY.match(value)
            if not m:
                key.type = f"other:1:{value}"
            else:
                key.value, key.line = m["number"], int(m["line"])
                mode = m["mode"]
                if mode.startswith("b"):
                    key.type = "blf"
                    rest = m["rest"]
                    key.extension = rest[: -len(key.value)] if key.value and rest.endswith(key.value) else rest
                else:
                    key.type = _MODES.get(mode, f"other:{mode}")
        else:
            key.type = f"other:{ktype}"
        state.keys[(module, slot)] = key
