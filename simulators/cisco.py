"""Cisco phone and ATA profile for the simulator: SPA3xx/5xx, SPA112/122, ATA191/192, MPP 68xx/78xx/88xx.

Follows ``shared/reference/vendors.md`` section 3 and the Cisco guides cited in
``provisioning/vendors/cisco.py``, with its own parser:

* User-Agent: SPA ``Cisco/SPA504G-7.6.2 (<MAC UPPER>)(<serial>)``, MPP
  ``Cisco-CP-8841-3PCC/11.3.7 (<mac lower>)``; ATAs like their family (the ATA formats are
  inferred). ``with_mac=False`` gives the SPA form with only the serial.
* Boot: the factory Profile_Rule (``/spa$PSN.cfg``, ``/ata$PSN.cfg`` or ``/$PSN.xml``) is fetched
  from the boot server; after each profile the phone runs Profile_Rule_B, _C and _D in order
  (macros ``$MA``, ``$MAU``, ``$MAC``, ``$PN``, ``$PSN`` expanded; a rule without scheme is
  fetched from the boot server). Rules are evaluated once per resync, as the phone does.
* ``<flat-profile>`` files: every leaf element is a parameter (``ua`` attributes ignored,
  ``<router-configuration>`` sections flattened); the last occurrence wins, later profiles win.
* The XML directory named by ``XML_Directory_Service_URL`` is fetched after the profiles (a real
  phone fetches it when the user opens the directory) into ``PhoneState.contacts``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from simulators.config_decrypt import DecryptError, openssl_decrypt
from simulators.phone import Account, BootContext, Key, PhoneProfile, PhoneState, register_profile

__all__ = ["CiscoProfile", "parse_flat_profile", "parse_directory", "CiscoFileError", "parse_function"]

#: The simulator's own knowledge of the models it plays: line keys and sidecar keys per unit.
_LINE_KEYS = {
    "SPA301": 0, "SPA303": 3, "SPA501G": 8, "SPA502G": 1, "SPA504G": 4, "SPA508G": 8, "SPA509G": 12,
    "SPA512G": 1, "SPA514G": 4, "SPA525G": 5, "SPA525G2": 5, "SPA942": 4, "SPA962": 6,
    "6821": 2, "6841": 4, "6851": 4, "6861": 4, "6871": 6, "7811": 0, "7821": 2, "7832": 0,
    "7841": 4, "7861": 16, "8811": 10, "8832": 0, "8841": 10, "8845": 10, "8851": 10, "8861": 10,
    "8865": 10,
}  # fmt: skip
_ATAS = {"SPA112", "SPA122", "ATA191", "ATA192"}
_TRANSPORTS = {"UDP": "udp", "TCP": "tcp", "TLS": "tls", "AUTO": "udp"}
_FNC_TYPES = {"sd": "speed_dial", "blf+sd+cp": "blf", "blf": "blf", "blf+cp": "blf", "blf+sd": "blf", "prk": "park",
              "park": "park"}
_LINE_PARAM = re.compile(r"^(.+)_(\d+)_$")
_UNIT_KEY = re.compile(r"^Unit_(\d+)_Key_(\d+)_?$")


class CiscoFileError(ValueError):
    """A profile the phone would reject."""


def parse_flat_profile(data: bytes, name: str = "profile") -> list[tuple[str, str]]:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise CiscoFileError(f"{name}: not well-formed XML: {exc}") from None
    if root.tag != "flat-profile":
        raise CiscoFileError(f"{name}: root element is <{root.tag}>, not <flat-profile>")
    return [(el.tag, (el.text or "").strip()) for el in root.iter() if el is not root and len(el) == 0]


def parse_directory(data: bytes, name: str = "directory") -> list[dict]:
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise CiscoFileError(f"{name}: not well-formed XML: {exc}") from None
    if root.tag != "CiscoIPPhoneDirectory":
        raise CiscoFileError(f"{name}: root element is <{root.tag}>, not <CiscoIPPhoneDirectory>")
    return [{"name": (e.findtext("Name") or "").strip(), "numbers": [(e.findtext("Telephone") or "").strip()],
             "book": name} for e in root.iter("DirectoryEntry")]


def parse_function(text: str) -> dict[str, str]:
    """``fnc=sd;ext=123@$PROXY;nme=Bob`` -> ``{"fnc": "sd", "ext": "123@$PROXY", "nme": "Bob"}``."""
    fields = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep and name.strip():
            fields[name.strip()] = value.strip()
    return fields


@register_profile
class CiscoProfile(PhoneProfile):
    """``CiscoProfile("8841", "00:56:2B:04:36:15", "11.3.7")`` or ``CiscoProfile("SPA504G", ...)``."""

    vendor = "cisco"

    def __init__(self, model: str, mac: str, firmware: str, *, user_agent: str | None = None,
                 serial: str = "CBT1234ABCD", with_mac: bool = True, fetch_directory: bool = True,
                 profile_rule: str | None = None):
        model = re.sub(r"[^0-9A-Za-z]", "", model).upper()
        model = re.sub(r"^CP(\d{4})(3PCC)?$", r"\1", model)
        super().__init__(model, mac, firmware, user_agent=user_agent)
        self.serial = serial
        self.with_mac = with_mac
        self.fetch_directory = fetch_directory
        #: Profile_Rule as stored in the phone (None: the factory default); a profile that sets
        #: it (with its [--key ...]) changes it for every later resync, as on a real phone
        self.profile_rule = profile_rule

    @property
    def mpp(self) -> bool:
        return self.model.isdigit() or self.model.startswith("ATA19")

    @property
    def psn(self) -> str:
        if self.model.isdigit():
            return f"{self.model}-3PCC"
        return self.model.removeprefix("SPA").removeprefix("ATA")

    @property
    def product_name(self) -> str:
        if self.model.isdigit():
            return f"CP-{self.model}-3PCC"
        return f"{self.model}-MPP" if self.model.startswith("ATA19") else self.model

    def user_agent(self) -> str:
        if self._user_agent_override:
            return self._user_agent_override
        if self.mpp:
            return f"Cisco-{self.product_name}/{self.firmware} ({self.mac})"
        mac = f"({self.mac.upper()})" if self.with_mac else ""
        return f"Cisco/{self.model}-{self.firmware} {mac}({self.serial})"

    def factory_rule(self) -> str:
        if self.model.isdigit():
            return "/$PSN.xml"
        return "/ata$PSN.cfg" if self.model.startswith("ATA19") else "/spa$PSN.cfg"

    def expand(self, text: str) -> str:
        macros = {"$MAU": self.mac.upper(), "$MAC": self.mac_colons, "$MA": self.mac, "$PSN": self.psn,
                  "$PN": self.product_name, "$SN": self.serial}
        return re.sub(r"\$(MAU|MAC|MA|PSN|PN|SN)", lambda m: macros["$" + m.group(1)], text)

    # --- boot --------------------------------------------------------------
    async def boot(self, ctx: BootContext) -> None:
        await self._resync(ctx, "Profile_Rule", self.profile_rule or self.factory_rule())
        for rule in ("Profile_Rule_B", "Profile_Rule_C", "Profile_Rule_D"):
            value = ctx.state.settings.get(rule, "")
            if value:
                await self._resync(ctx, rule, value)
        url = ctx.state.settings.get("XML_Directory_Service_URL", "")
        if url and self.fetch_directory:
            body = await ctx.fetch(url)
            if body is not None:
                try:
                    ctx.state.contacts = parse_directory(body, url.rsplit("/", 1)[-1])
                    ctx.state.applied.append(url)
                except CiscoFileError as exc:
                    ctx.error(str(exc))

    async def _resync(self, ctx: BootContext, rule: str, value: str) -> None:
        target = self.expand(value.strip())
        options = re.match(r"^\[([^\]]*)\]\s*", target)
        target = target[options.end():] if options else target
        key = re.search(r'--key\s+(?:"([^"]*)"|(\S+))', options.group(1)) if options else None
        if "://" not in target:
            target = target.lstrip("/")  # relative: the boot server
        name = target
        body = await ctx.fetch(name)
        if body is None:
            return
        if key is not None:  # --key: the profile must be AES-256-CBC encrypted under that secret
            try:
                body = openssl_decrypt(body, key.group(1) if key.group(1) is not None else key.group(2))
            except DecryptError as exc:
                ctx.error(f"{name}: cannot decrypt with the rule's --key: {exc}")
                return
            ctx.state.boot_settings[f"decrypted:{name.rsplit('/', 1)[-1]}"] = "aes-256-cbc"
        try:
            settings = parse_flat_profile(body, name)
        except CiscoFileError as exc:
            ctx.error(str(exc))
            return
        ctx.state.boot_settings[rule] = value
        for key, text in settings:
            ctx.state.settings[key] = text  # the last occurrence wins
        ctx.state.applied.append(name)

    def provisioning_credentials(self, state: PhoneState) -> tuple[str, str] | None:
        """``[--uid user --pwd password]`` in the stored Profile_Rule: HTTP credentials for it."""
        options = re.match(r"^\s*\[([^\]]*)\]", state.settings.get("Profile_Rule", ""))
        if options is None:
            return None
        uid = re.search(r'--uid\s+(?:"([^"]*)"|(\S+))', options.group(1))
        pwd = re.search(r'--pwd\s+(?:"([^"]*)"|(\S+))', options.group(1))
        if uid is None or pwd is None:
            return None
        return uid.group(1) or uid.group(2), pwd.group(1) or pwd.group(2)

    # --- interpretation ----------------------------------------------------
    def finalize(self, state: PhoneState) -> None:
        s = state.settings
        if s.get("Profile_Rule"):
            self.profile_rule = s["Profile_Rule"]  # stored: the next resync follows it
        self._accounts(state)
        self._keys(state)
        state.timezone = s.get("Time_Zone")
        if s.get("Daylight_Saving_Time_Enable", "").lower() == "yes" or s.get("Auto_Adjust_Clock") == "1":
            state.timezone_name = s.get("Daylight_Saving_Time_Rule") or None
        state.language = s.get("Locale") or s.get("Language_Selection")

    @staticmethod
    def _accounts(state: PhoneState) -> None:
        per_line: dict[int, dict[str, str]] = {}
        for key, value in state.settings.items():
            m = _LINE_PARAM.match(key)
            if m and m.group(1) in ("Line_Enable", "Display_Name", "User_ID", "Auth_ID", "Use_Auth_ID", "Password",
                                    "Proxy", "SIP_Transport", "Short_Name"):
                per_line.setdefault(int(m.group(2)), {})[m.group(1)] = value
        for index, p in sorted(per_line.items()):
            if "Line_Enable" not in p:
                continue
            acc = Account(index=index)
            acc.enabled = p.get("Line_Enable", "").lower() == "yes"
            acc.display_name = p.get("Display_Name", "")
            acc.user_name = p.get("User_ID", "")
            use_auth = p.get("Use_Auth_ID", "").lower() == "yes"
            acc.auth_name = p.get("Auth_ID", "") if use_auth else acc.user_name
            acc.password = p.get("Password", "")
            host, _, port = p.get("Proxy", "").partition(":")
            acc.server = host
            if port.isdigit():
                acc.port = int(port)
            transport = p.get("SIP_Transport", "")
            if transport:
                acc.transport = _TRANSPORTS.get(transport.upper(), f"other:{transport}")
            state.accounts[index] = acc

    def _keys(self, state: PhoneState) -> None:
        s = state.settings
        pickup = s.get("Attendant_Console_Call_Pickup_Code", "")
        for slot in range(1, _LINE_KEYS.get(self.model, 0) + 1):
            extension = s.get(f"Extension_{slot}_", "")
            function = s.get(f"Extended_Function_{slot}_", "")
            label = s.get(f"Short_Name_{slot}_", "")
            source = f"Extended_Function_{slot}_"
            if extension.isdigit() and not function:
                state.keys[(0, slot)] = Key(0, slot, "line", "", label, int(extension), raw_type="line",
                                            source=f"Extension_{slot}_")
            elif function:
                state.keys[(0, slot)] = self._function_key(0, slot, function, pickup, source)
        for key, value in s.items():
            m = _UNIT_KEY.match(key)
            if m and value:
                module, slot = int(m.group(1)), int(m.group(2))
                if key.endswith("_") != self.mpp:  # an MPP reads Unit_n_Key_m_, a SPA Unit_n_Key_m
                    state.warnings.append(f"{key}: not a parameter of a {self.model}; ignored")
                    continue
                state.keys[(module, slot)] = self._function_key(module, slot, value, pickup, key)

    @staticmethod
    def _function_key(module: int, slot: int, function: str, pickup: str, source: str) -> Key:
        fields = parse_function(function)
        fnc = fields.get("fnc", "")
        ktype = _FNC_TYPES.get(fnc, f"other:{fnc}")
        target = fields.get("sub") if ktype in ("blf", "park") else fields.get("ext")
        value = (target or "").split("@", 1)[0]
        vid = fields.get("vid", "")
        return Key(module, slot, ktype, value, fields.get("nme", ""), int(vid) if vid.isdigit() else None,
                   pickup if ktype == "blf" else "", raw_type=fnc, source=source)
