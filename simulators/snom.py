"""Snom phone profile for the simulator: desk phones (3xx, 7xx, D1xx-D8xx) and M-series DECT bases.

Follows ``shared/reference/vendors.md`` section 4 and the Snom wiki:

* HTTP User-Agent ``Mozilla/4.0 (compatible; snom<model>-SIP <fw> <build> [<MAC>] [SXM:n UXM:n])``:
  the MAC (uppercase) appears from firmware 8.7.5 on, the expansion-module counts from 10.x.
  M-series DECT bases send ``snomM700/<fw> (MAC=<MAC>; SER= 00000; HW=255)``.
* Desk phones with a directory setting server fetch the per-model container ``snom<model>.htm``
  and then the per-device container ``snom<model>-<MAC>.htm`` (MAC uppercase); each is a
  ``<setting-files>`` list whose files are fetched and applied in order (later wins), and a
  ``firmware_status`` setting, when present, names the firmware file fetched last.
  The M-series bases fetch ``<MAC>.xml`` alone (inferred).
* Setting files are XML: ``<settings>`` holding ``<phone-settings>`` (tags with ``idx`` and
  ``perm``), ``<functionKeys>`` (``<fkey idx context label perm>type value</fkey>``) and
  ``<tbook>``; each of those may also be a file of its own.

The parser is our own (ElementTree from the standard library) and strict where the phone would
reject a file, so server bugs show up as ``PhoneState.errors``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from urllib.parse import unquote, urlsplit

from simulators.phone import Account, BootContext, Key, PhoneProfile, PhoneState, register_profile

__all__ = ["SnomProfile", "SnomSettings", "parse_setting_file", "FKEY_COUNTS", "MODULE_KEYS"]

#: Programmable function keys on the phone itself (the fkey idx range 0..n-1), per model.
FKEY_COUNTS: dict[str, int] = {
    "300": 6, "320": 12, "360": 12, "370": 12, "710": 5, "715": 5, "720": 18, "725": 18, "760": 16,
    "D120": 0, "D140": 2, "D150": 2, "D305": 5, "D315": 5, "D345": 48, "D375": 33, "D385": 48,
    "D712": 4, "D713": 4, "D715": 5, "D717": 3, "D725": 18, "D735": 32, "D745": 32, "D765": 16, "D785": 24,
    "D812": 16, "D815": 16, "D862": 32, "D865": 40,
}  # fmt: skip
#: Keys per attached expansion module (the D7: 18), for models that take one.
MODULE_KEYS: dict[str, int] = {m: 18 for m in ("715", "720", "725", "760", "D715", "D717", "D725", "D735",
                                               "D745", "D765", "D785")}
DECT_MODELS = {"M300", "M400", "M700", "M900"}
VALID_PERMS = {"", " ", "R", "RW", "!", "&", "$"}

#: fkey type keyword -> neutral key type (the argument follows the keyword).
FKEY_TYPES = {"line": "line", "blf": "blf", "speed": "speed_dial", "orbit": "park", "dtmf": "dtmf", "none": "none"}
KEYEVENT_TYPES = {"F_RETRIEVE": "voicemail"}


class SettingFileError(ValueError):
    """A file the phone would reject (not XML, or an unknown root element)."""


@dataclass
class SnomSettings:
    """What one setting file says."""

    files: list[str] = field(default_factory=list)  # <setting-files> entries, in order
    settings: list[tuple[str, str]] = field(default_factory=list)  # ("user_name[1]", "201")
    fkeys: list[tuple[int, dict[str, str], str]] = field(default_factory=list)  # (idx, attrs, text)
    tbook: list[dict[str, str]] | None = None
    tbook_complete: bool = False
    warnings: list[str] = field(default_factory=list)


def parse_setting_file(data: bytes) -> SnomSettings:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise SettingFileError(f"not well-formed XML: {exc}") from None
    out = SnomSettings()
    if root.tag == "setting-files":
        for child in root:
            if child.tag != "file" or not child.get("url"):
                out.warnings.append(f"<setting-files> entry without url: <{child.tag}>")
                continue
            out.files.append(child.get("url"))
        return out
    if root.tag == "settings":
        sections = list(root)
    elif root.tag in ("phone-settings", "functionKeys", "tbook", "phone-book"):
        sections = [root]
    else:
        raise SettingFileError(f"unknown root element <{root.tag}>")
    for section in sections:
        if section.tag == "phone-settings":
            _phone_settings(section, out)
        elif section.tag == "functionKeys":
            _function_keys(section, out)
        elif section.tag in ("tbook", "phone-book"):
            _tbook(section, out)
        else:
            out.warnings.append(f"ignored section <{section.tag}>")
    return out


def _phone_settings(section: ET.Element, out: SnomSettings) -> None:
    for element in section:
        perm = element.get("perm")
        if perm is not None and perm not in VALID_PERMS:
            out.warnings.append(f"<{element.tag}>: unknown perm {perm!r}")
        name = element.tag if element.get("idx") is None else f"{element.tag}[{element.get('idx')}]"
        out.settings.append((name, (element.text or "").strip()))


def _function_keys(section: ET.Element, out: SnomSettings) -> None:
    for element in section:
        if element.tag != "fkey":
            out.warnings.append(f"<functionKeys>: unexpected <{element.tag}>")
            continue
        idx = element.get("idx", "")
        if not idx.isdigit():
            out.warnings.append(f"fkey without a numeric idx: {idx!r}")
            continue
        out.fkeys.append((int(idx), dict(element.attrib), (element.text or "").strip()))


def _tbook(section: ET.Element, out: SnomSettings) -> None:
    out.tbook_complete = section.get("complete") == "true"
    items = []
    for item in section:
        if item.tag != "item":
            out.warnings.append(f"<tbook>: unexpected <{item.tag}>")
            continue
        entry = {child.tag: (child.text or "").strip() for child in item}
        entry |= {f"@{k}": v for k, v in item.attrib.items()}
        if not entry.get("number"):
            out.warnings.append(f"tbook item without a number: {entry.get('name')!r}")
            continue
        items.append(entry)
    indexes = [i.get("@index") for i in items if i.get("@index") is not None]
    if len(indexes) != len(set(indexes)):
        out.warnings.append("tbook: duplicate item index")
    out.tbook = items


def _parse_fkey(text: str) -> tuple[str, str, str, str]:
    """``blf 202|*8`` -> (neutral type, value, extension, raw keyword)."""
    keyword, _, argument = text.partition(" ")
    argument = argument.strip()
    if keyword == "keyevent":
        return KEYEVENT_TYPES.get(argument, f"other:keyevent {argument}"), "", "", keyword
    ktype = FKEY_TYPES.get(keyword, f"other:{keyword}")
    extension = ""
    if keyword == "blf" and "|" in argument:
        argument, extension = argument.split("|", 1)
    value = re.sub(r"^<?sips?:", "", argument).split("@", 1)[0].rstrip(">")
    return ktype, value, extension, keyword


class SnomStyleProfile(PhoneProfile):
    """The boot logic shared with Snom-based OEM phones (Gigaset P82x): containers, then files."""

    file_prefix = "snom"

    def __init__(self, model: str, mac: str, firmware: str, *, user_agent: str | None = None, modules: int = 0):
        super().__init__(model, mac, firmware, user_agent=user_agent)
        self.modules = modules

    @property
    def mac_upper(self) -> str:
        return self.mac.upper()

    async def boot_desk(self, ctx: BootContext) -> None:
        prefix = f"{self.file_prefix}{self.model}"
        for container in (f"{prefix}.htm", f"{prefix}-{self.mac_upper}.htm"):
            await self._apply_file(ctx, container, container=True)
        firmware = ctx.state.settings.get("firmware_status")
        if firmware:
            await ctx.fetch(firmware)  # firmware settings: not applied by the simulator

    async def _apply_file(self, ctx: BootContext, name: str, *, container: bool = False) -> None:
        data = await ctx.fetch(name)
        if data is None:
            return
        try:
            parsed = parse_setting_file(data)
        except SettingFileError as exc:
            ctx.error(f"{name}: {exc}")
            return
        ctx.state.warnings.extend(f"{name}: {w}" for w in parsed.warnings)
        if container and not parsed.files and (parsed.settings or parsed.fkeys or parsed.tbook is not None):
            ctx.warn(f"{name}: settings where a <setting-files> list was expected")
        ctx.state.applied.append(name)
        self.apply(ctx.state, parsed)
        for file in parsed.files:
            await self._apply_file(ctx, file)

    def apply(self, state: PhoneState, parsed: SnomSettings) -> None:
        for name, value in parsed.settings:
            state.settings[name] = value
        for idx, attrs, text in parsed.fkeys:
            state.settings[f"fkey[{idx}]"] = text
            state.settings[f"fkey[{idx}].context"] = attrs.get("context", "")
            state.settings[f"fkey[{idx}].label"] = attrs.get("label", "")
        if parsed.tbook is not None:
            if parsed.tbook_complete:
                state.contacts.clear()
            for item in parsed.tbook:
                numbers = [item["number"]]
                if state.contacts and state.contacts[-1]["name"] == item.get("name", "") and \
                        state.contacts[-1]["book"] == "tbook":
                    state.contacts[-1]["numbers"].append(item["number"])
                    continue
                state.contacts.append({"name": item.get("name", ""), "numbers": numbers, "book": "tbook"})

    def finalize(self, state: PhoneState) -> None:
        indexes = sorted({int(m.group(1)) for k in state.settings if (m := re.match(r"^user_\w+\[(\d+)\]$", k))})
        for index in indexes:
            get = lambda name: state.settings.get(f"{name}[{index}]", "")  # noqa: E731
            outbound = get("user_outbound")
            port, transport = None, "udp"
            if outbound:
                hostport, _, params = outbound.partition(";")
                if ":" in hostport and hostport.rsplit(":", 1)[1].isdigit():
                    port = int(hostport.rsplit(":", 1)[1])
                m = re.search(r"transport=(\w+)", params)
                transport = m.group(1).lower() if m else "udp"
            state.accounts[index] = Account(
                index=index,
                enabled=get("user_active") == "on",
                label=get("user_realname"),
                display_name=get("user_realname"),
                user_name=get("user_name"),
                auth_name=get("user_pname") or get("user_name"),
                password=get("user_pass"),
                server=get("user_host"),
                port=port,
                transport=transport,
            )
        phone_keys = FKEY_COUNTS.get(self.model.upper(), FKEY_COUNTS.get(self.model))
        per_module = MODULE_KEYS.get(self.model.upper(), 0)
        for name, text in state.settings.items():
            m = re.match(r"^fkey\[(\d+)\]$", name)
            if not m:
                continue
            idx = int(m.group(1))
            module, slot = 0, idx + 1
            if phone_keys is not None and idx >= phone_keys:
                if not per_module:
                    state.warnings.append(f"fkey[{idx}]: the {self.model} has fkeys 0-{phone_keys - 1}")
                    continue
                module, slot = 1 + (idx - phone_keys) // per_module, 1 + (idx - phone_keys) % per_module
            ktype, value, extension, keyword = _parse_fkey(text)
            context = state.settings.get(f"{name}.context", "")
            state.keys[(module, slot)] = Key(
                module=module, slot=slot, type=ktype, value=value, label=state.settings.get(f"{name}.label", ""),
                line=int(context) if context.isdigit() else None, extension=extension, raw_type=keyword,
                source=name,
            )
        state.timezone = state.settings.get("timezone")
        state.language = state.settings.get("language")
        state.web_language = state.settings.get("web_language")


@register_profile
class SnomProfile(SnomStyleProfile):
    """A Snom desk phone or M-series DECT base (``model`` as in ``D785``, ``320``, ``M700``)."""

    vendor = "snom"

    def provisioning_credentials(self, state: PhoneState) -> tuple[str, str] | None:
        """Snom carries the provisioning server's credentials in ``setting_server``'s URL."""
        url = urlsplit(state.settings.get("setting_server", ""))
        return (unquote(url.username), unquote(url.password)) if url.username and url.password else None

    @property
    def dect(self) -> bool:
        return self.model.upper() in DECT_MODELS

    def user_agent(self) -> str:
        if self._user_agent_override:
            return self._user_agent_override
        if self.dect:
            return f"snom{self.model}/{self.firmware} (MAC={self.mac_upper}; SER= 00000; HW=255)"
        version = tuple(int(p) for p in re.findall(r"\d+", self.firmware)[:4])
        text = f"Mozilla/4.0 (compatible; snom{self.model}-SIP {self.firmware} 1.1.5-IFX-05.01.12"
        if version >= (8, 7, 5):
            text += f" {self.mac_upper}"
        if version >= (10,):
            text += f" SXM:{self.modules} UXM:0"
        return text + ")"

    async def boot(self, ctx: BootContext) -> None:
        if self.dect:
            await self._apply_file(ctx, f"{self.mac_upper}.xml")
        else:
            await self.boot_desk(ctx)

    async def boot_file(self, ctx: BootContext, name: str) -> None:
        """A file setting_server (``.../{mac}.xml`` from PnP): that file and the files it lists."""
        await self._apply_file(ctx, name)
