"""Grandstream phone and ATA profile for the simulator (GXP, GRP, HT80x/HT81x).

Follows shared/reference/vendors.md section 5 and the Grandstream guides cited in
``provisioning/vendors/grandstream.py`` (this module reads the server's output with its own
parser and its own copy of the P-value numbers, the way the phone does):

* HTTP User-Agent ``Grandstream Model HW <model>[ <hw rev>] SW <firmware> DevId <mac lowercase>``.
* Boot order, current firmware: ``cfg<mac>`` (binary), ``cfg<mac>.xml``; only if that XML failed,
  ``cfg<model>.xml`` and then ``cfg.xml``. GXP21xx/GXP14xx firmware before 1.0.8 asks for
  ``cfg<mac>.xml`` first, then ``cfg<mac>``, then ``cfg.xml`` if the XML failed. HT ATAs:
  ``cfg<mac>``, ``cfg<mac>.xml``, ``cfg.xml``.
* XML ``<gs_provision version="1">``: optional ``<mac>`` (must be ours, else the file is
  rejected), ``<config version="1">`` with ``<Pnnn>`` elements or ``<config version="2">`` with
  ``<item name="...">``.
* After the configuration, a phone with phonebook download on (``P330`` 1/2/3, or the v2
  ``phonebook.download.*`` items) fetches ``<P331>/phonebook.xml`` (``P331`` is "host/path",
  the scheme comes from the mode) and parses ``<AddressBook><Contact>``; entries land in
  ``PhoneState.contacts`` as ``{"name", "numbers", "book"}``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from simulators.config_decrypt import DecryptError, is_openssl_salted, openssl_decrypt
from simulators.phone import Account, BootContext, Key, PhoneProfile, PhoneState, register_profile

__all__ = ["GrandstreamProfile", "ConfigError", "parse_config", "parse_phonebook"]

#: P-values of account 1 and the P-value blocks of accounts 2-6 (GXP21xx configuration template).
_ACCOUNT1 = {"active": 271, "name": 270, "server": 47, "proxy": 48, "userid": 35, "authid": 36,
             "password": 34, "display": 3, "voicemail": 33, "transport": 130, "pickup": 1347}
_BLOCKS = {2: 400, 3: 500, 4: 600, 5: 1700, 6: 1800}
_OFFSETS = {"active": 1, "name": 17, "server": 2, "proxy": 3, "userid": 4, "authid": 5, "password": 6,
            "display": 7, "voicemail": 26, "transport": 48, "pickup": 81}
_TRANSPORTS_V1 = {"0": "udp", "1": "tcp", "2": "tls"}
_TRANSPORTS_V2 = {"udp": "udp", "tcp": "tcp", "tlsortcp": "tls", "tls": "tls"}
_LINE_KEY_MODES = {0: "line", 1: "line", 10: "speed_dial", 11: "blf", 15: "dtmf", 16: "voicemail", 19: "park"}
_MPK_MODES = {0: "speed_dial", 1: "blf", 5: "dtmf", 6: "voicemail", 9: "park"}
_V2_MODES = {"line": "line", "speeddial": "speed_dial", "blf": "blf", "callpark": "park", "dialdtmf": "dtmf",
             "voicemail": "voicemail", "none": "none"}

#: What each phone knows about its own keys: (format, line keys or VPKs, MPKs).
_HARDWARE = {
    "GXP1620": ("v1", 2, 0), "GXP1625": ("v1", 2, 0), "GXP1628": ("v1", 2, 0), "GXP1630": ("v1", 3, 0),
    "GXP1400": ("v1", 2, 0), "GXP1405": ("v1", 2, 0), "GXP1450": ("v1", 2, 7),
    "GXP2140": ("v1", 4, 0), "GXP2160": ("v1", 6, 18), "GXP2170": ("v1", 12, 0),
    "GXP2135": ("v2", 32, 0), "GRP2612": ("v2", 16, 0), "GRP2612P": ("v2", 16, 0), "GRP2612W": ("v2", 16, 0),
    "GRP2613": ("v2", 24, 0), "GRP2614": ("v2", 16, 24), "GRP2615": ("v2", 40, 0), "GRP2616": ("v2", 16, 24),
}
_EXT_KEYS = 40
_P = re.compile(r"^P(\d+)$")
_FIRMWARE = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


class ConfigError(ValueError):
    """A file the phone would reject (not XML, not a gs_provision file, another device's MAC)."""


def parse_config(data: bytes, mac: str) -> tuple[str, dict[str, str]]:
    """Parse a ``gs_provision`` file into (format "v1"|"v2", {name: value})."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ConfigError(f"not XML: {exc}") from None
    if root.tag != "gs_provision":
        raise ConfigError(f"root element is <{root.tag}>, not <gs_provision>")
    target = root.findtext("mac")
    if target is not None and target.strip() and target.strip().lower() != mac:
        raise ConfigError(f"file is for MAC {target.strip()!r}, not {mac}")
    config = root.find("config")
    if config is None:
        raise ConfigError("no <config> element")
    version = config.get("version", "1")
    values: dict[str, str] = {}
    if version == "2":
        for item in config.iter("item"):
            name = item.get("name")
            if name:
                values[name] = (item.text or "").strip()
        return "v2", values
    for element in config:
        if _P.match(element.tag):
            values[element.tag] = (element.text or "").strip()
    return "v1", values


def parse_phonebook(data: bytes) -> list[dict[str, object]]:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ConfigError(f"phonebook is not XML: {exc}") from None
    if root.tag != "AddressBook":
        raise ConfigError(f"phonebook root is <{root.tag}>, not <AddressBook>")
    entries = []
    for contact in root.iter("Contact"):
        name = " ".join(filter(None, [(contact.findtext("FirstName") or "").strip(),
                                      (contact.findtext("LastName") or "").strip()]))
        numbers = [(p.findtext("phonenumber") or "").strip() for p in contact.iter("Phone")]
        entries.append({"name": name, "numbers": [n for n in numbers if n]})
    return entries


@register_profile
class GrandstreamProfile(PhoneProfile):
    """``GrandstreamProfile("GXP2160", "00:0B:82:AA:BB:01", "1.0.5.32")``; ``hardware`` adds a
    hardware revision to the User-Agent (``V2.2A``), as some models send."""

    vendor = "grandstream"

    def provisioning_credentials(self, state: PhoneState) -> tuple[str, str] | None:
        """P1360/P1361 (legacy P-value files) or their alias in v2 files."""
        for user_key, password_key in (("P1360", "P1361"),
                                       ("provisioning.config.httpUsername", "provisioning.config.httpPassword")):
            user, password = state.settings.get(user_key, ""), state.settings.get(password_key, "")
            if user and password:
                return user, password
        return None

    def __init__(self, model: str, mac: str, firmware: str, *, user_agent: str | None = None,
                 hardware: str | None = None, xml_password: str | None = None):
        super().__init__(model.strip().upper(), mac, firmware, user_agent=user_agent)
        self.hardware = hardware
        #: P1359 as stored in the phone: given here, or learnt from a config file (kept across boots)
        self.xml_password = xml_password

    def user_agent(self) -> str:
        if self._user_agent_override:
            return self._user_agent_override
        hw = f" {self.hardware}" if self.hardware else ""
        return f"Grandstream Model HW {self.model}{hw} SW {self.firmware} DevId {self.mac}"

    @property
    def is_ata(self) -> bool:
        return self.model.startswith("HT")

    @property
    def legacy_order(self) -> bool:
        """GXP14xx/GXP21xx before 1.0.8 ask for the XML before the binary file."""
        m = _FIRMWARE.match(self.firmware)
        version = tuple(int(x) for x in m.groups()) if m else (9, 9, 9)
        return self.model.startswith(("GXP21", "GXP14")) and version < (1, 0, 8)

    # --- boot ------------------------------------------------------------

    async def boot(self, ctx: BootContext) -> None:
        mac_xml, binary = f"cfg{self.mac}.xml", f"cfg{self.mac}"
        if self.legacy_order:
            ok = await self._apply(ctx, mac_xml)
            await ctx.fetch(binary)
            if not ok:
                await self._apply(ctx, "cfg.xml")
        else:
            await ctx.fetch(binary)  # the binary format: this simulator does not read it
            if not await self._apply(ctx, mac_xml):
                if self.is_ata or not await self._apply(ctx, f"cfg{self.model.lower()}.xml"):
                    await self._apply(ctx, "cfg.xml")
        await self._load_phonebook(ctx)

    async def _apply(self, ctx: BootContext, name: str) -> bool:
        data = await ctx.fetch(name)
        if data is None:
            return False
        if is_openssl_salted(data):  # an encrypted XML file: P1359, the XML config file password
            if not self.xml_password:
                ctx.error(f"{name}: encrypted and no XML config file password (P1359) is set")
                return False
            try:
                data = openssl_decrypt(data, self.xml_password)
            except DecryptError as exc:
                ctx.error(f"{name}: cannot decrypt with P1359: {exc}")
                return False
            ctx.state.boot_settings[f"decrypted:{name}"] = "aes-256-cbc"
        try:
            fmt, values = parse_config(data, self.mac)
        except ConfigError as exc:
            ctx.error(f"{name}: rejected: {exc}")
            return False
        ctx.state.settings.update(values)
        ctx.state.boot_settings[f"format:{name}"] = fmt
        ctx.state.applied.append(name)
        return True

    async def _load_phonebook(self, ctx: BootContext) -> None:
        s = ctx.state.settings
        if "P330" in s:
            mode, path = s.get("P330", "0"), s.get("P331", "")
            scheme = {"1": "http", "2": "tftp", "3": "https"}.get(mode)
        else:
            mode = s.get("phonebook.download.mode", "")
            path = s.get("phonebook.download.server", "")
            scheme = {"http": "http", "tftp": "tftp", "https": "https"}.get(mode.lower())
        if not scheme or not path or self.is_ata:
            return
        path = path.split("://", 1)[-1].rstrip("/")
        url = f"{scheme}://{path}/phonebook.xml"
        data = await ctx.fetch(url)
        if data is None:
            ctx.error(f"phonebook {url} could not be loaded")
            return
        try:
            entries = parse_phonebook(data)
        except ConfigError as exc:
            ctx.error(f"phonebook {url}: {exc}")
            return
        ctx.state.contacts.extend({**entry, "book": "phonebook.xml"} for entry in entries)

    # --- interpretation --------------------------------------------------

    def finalize(self, state: PhoneState) -> None:
        s = state.settings
        if s.get("P1359"):
            self.xml_password = s["P1359"]
        v2 = any(k.startswith(("account.", "pks.")) for k in s)
        if v2:
            pickups = self._accounts_v2(state)
            self._keys_v2(state, pickups)
            zone = s.get("dateTime.timezone")
            custom = s.get("dateTime.timezone.custom")
            state.language = s.get("language.gui")
        else:
            pickups = self._accounts_v1(state)
            self._keys_v1(state, pickups)
            zone = s.get("P64")
            custom = s.get("P246")
            state.language = s.get("P1362")
        state.timezone_name = zone
        state.timezone = custom if zone == "customize" else zone

    @staticmethod
    def _server(account: Account, text: str, state: PhoneState) -> None:
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
        account.server = host
        if port:
            if port.isdigit():
                account.port = int(port)
            else:
                state.warnings.append(f"account {account.index}: bad port {port!r}")

    def _accounts_v1(self, state: PhoneState) -> dict[int, str]:
        s, pickups = state.settings, {}
        for index in range(1, 7):
            names = ({k: f"P{v}" for k, v in _ACCOUNT1.items()} if index == 1 else
                     {k: f"P{_BLOCKS[index] + off}" for k, off in _OFFSETS.items()})
            if names["active"] not in s and names["userid"] not in s:
                continue
            acc = Account(index=index)
            acc.enabled = s.get(names["active"], "1") == "1"
            acc.label = s.get(names["name"], "")
            acc.display_name = s.get(names["display"], "")
            acc.user_name = s.get(names["userid"], "")
            acc.auth_name = s.get(names["authid"], "") or acc.user_name
            acc.password = s.get(names["password"], "")
            self._server(acc, s.get(names["server"], ""), state)
            acc.transport = _TRANSPORTS_V1.get(s.get(names["transport"], "0"), "other")
            state.accounts[index] = acc
            pickups[index] = s.get(names["pickup"], "")
        return pickups

    def _accounts_v2(self, state: PhoneState) -> dict[int, str]:
        per: dict[int, dict[str, str]] = {}
        pickups = {}
        for key, value in state.settings.items():
            m = re.match(r"^account\.(\d+)\.(.+)$", key)
            if m:
                per.setdefault(int(m.group(1)), {})[m.group(2)] = value
        for index, p in sorted(per.items()):
            acc = Account(index=index)
            acc.enabled = p.get("enable", "No").lower() == "yes"
            acc.label = p.get("name", "")
            acc.display_name = p.get("sip.subscriber.name", "")
            acc.user_name = p.get("sip.userid", "")
            acc.auth_name = p.get("sip.subscriber.userid", "") or acc.user_name
            acc.password = p.get("sip.subscriber.password", "")
            self._server(acc, p.get("sip.server.1.address", ""), state)
            acc.transport = _TRANSPORTS_V2.get(p.get("sip.transport", "UDP").lower(), "other")
            state.accounts[index] = acc
            pickups[index] = p.get("sip.blf.callPickup.prefix", "")
        return pickups

    @staticmethod
    def _add_key(state: PhoneState, pickups: dict[int, str], module: int, slot: int, ktype: str, raw: str,
                 account: str, label: str, value: str, source: str) -> None:
        line = int(account) + 1 if account.isdigit() else None
        state.keys[(module, slot)] = Key(
            module=module, slot=slot, type=ktype, value=value, label=label, line=line,
            extension=pickups.get(line or 1, "") if ktype == "blf" else "", raw_type=raw, source=source)

    def _keys_v1(self, state: PhoneState, pickups: dict[int, str]) -> None:
        s = state.settings
        line_keys = _HARDWARE.get(self.model, ("v1", 0, 0))[1]
        k = 1
        while f"P{1363 + 2 * (k - 1)}" in s:
            mode = s[f"P{1363 + 2 * (k - 1)}"]
            ktype = _LINE_KEY_MODES.get(int(mode), f"other:{mode}") if mode.isdigit() else f"other:{mode}"
            self._add_key(state, pickups, 0, k, ktype, mode, s.get(f"P{1364 + 2 * (k - 1)}", ""),
                          s.get(f"P{1465 + 2 * (k - 1)}", ""), s.get(f"P{1466 + 2 * (k - 1)}", ""),
                          f"P{1363 + 2 * (k - 1)}")
            k += 1
        if not line_keys:
            line_keys = k - 1
        for n in range(1, 19):
            if n <= 7:
                names = (f"P{323 + n - 1}", f"P{301 + 3 * (n - 1)}", f"P{302 + 3 * (n - 1)}", f"P{303 + 3 * (n - 1)}")
            else:
                b = 353 + 4 * (n - 8)
                names = (f"P{b}", f"P{b + 1}", f"P{b + 2}", f"P{b + 3}")
            if names[0] not in s:
                continue
            self._mpk(state, pickups, 0, line_keys + n, names)
        for p in sorted(int(m.group(1)) for key in s if (m := _P.match(key))):
            if p >= 23000 and (p - 23000) % 5 == 0:
                i = (p - 23000) // 5
                self._mpk(state, pickups, i // _EXT_KEYS + 1, i % _EXT_KEYS + 1,
                          (f"P{p}", f"P{p + 1}", f"P{p + 2}", f"P{p + 3}"))

    def _mpk(self, state: PhoneState, pickups: dict[int, str], module: int, slot: int, names: tuple[str, str, str, str]) -> None:
        s = state.settings
        mode, value = s.get(names[0], ""), s.get(names[3], "")
        if mode.isdigit():
            ktype = _MPK_MODES.get(int(mode), f"other:{mode}")
        else:
            ktype = f"other:{mode}"
        if ktype == "speed_dial" and not value:
            ktype = "none"
        self._add_key(state, pickups, module, slot, ktype, mode, s.get(names[1], ""), s.get(names[2], ""), value, names[0])

    def _keys_v2(self, state: PhoneState, pickups: dict[int, str]) -> None:
        s = state.settings
        vpk = _HARDWARE.get(self.model, ("v2", 0, 0))[1]
        found: dict[tuple[str, int], dict[str, str]] = {}
        for key, value in s.items():
            m = re.match(r"^pks\.(vpk|mpk)\.(\d+)\.(\w+)$", key)
            if m:
                found.setdefault((m.group(1), int(m.group(2))), {})[m.group(3)] = value
        if not vpk:
            vpk = max((n for (section, n) in found if section == "vpk"), default=0)
        for (section, n), attrs in sorted(found.items()):
            raw = attrs.get("keyMode", "")
            ktype = _V2_MODES.get(raw.lower(), f"other:{raw}")
            account = attrs.get("account", "")
            if section == "mpk" and account.lower().startswith("account"):
                account = str(int(account[7:]) - 1) if account[7:].isdigit() else ""
            slot = n if section == "vpk" else vpk + n
            self._add_key(state, pickups, 0, slot, ktype, raw, account, attrs.get("description", ""),
                          attrs.get("value", ""), f"pks.{section}.{n}")
