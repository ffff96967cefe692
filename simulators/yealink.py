"""Yealink phone profile for the simulator.

Follows the researched vendor facts in ``shared/reference/vendors.md`` section 1:

* HTTP User-Agent ``Yealink SIP-<model> <firmware> <mac, lowercase, colons>``
  (with the known exceptions of DECT bases, CP860, VP530 and very old firmware).
* Boot order: firmware 81+ tries ``<mac>.boot``, then ``y000000000000.boot``,
  fetching the ``include:config`` files of the first one found, in order;
  failing both (or on older firmware) it fetches the per-model common file
  ``y0000000000XX.cfg`` and then ``<mac>.cfg``.  Later files override earlier.
* Files are flat ``key = value`` text whose first line must be
  ``#!version:1.0.0.1``; ``%NULL%`` resets a parameter to its default.
* After the configuration files, the phone loads each remote phone book
  ``remote_phonebook.data.N.url`` (N = 1..5, absolute URL) and parses it as a
  Yealink remote XML phone book: ``<YealinkIPPhoneDirectory>`` with
  ``<DirectoryEntry><Name/><Telephone/>...</DirectoryEntry>`` (or the menu form
  ``<YealinkIPPhoneBook><Menu Name><Unit Name Phone1 Phone2 Phone3/>``).
  Entries land in ``PhoneState.contacts`` as ``{"name", "numbers", "book"}``.
* DECT bases (W-series): account N belongs to handset M when M's
  ``handset.M.incoming_lines`` lists N; the profile checks each handset only
  uses enabled accounts and warns otherwise.
* Capacities: keys programmed beyond the model's line keys, on a module the
  model cannot drive, or beyond a module's keys are reported as warnings (the
  phone ignores them).

The parser is our own and deliberately strict where a real phone would reject
a file, so server bugs show up as ``PhoneState.errors``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from simulators.config_decrypt import DecryptError, yealink_decrypt
from simulators.phone import Account, BootContext, Key, PhoneProfile, PhoneState, register_profile

__all__ = [
    "COMMON_CODES",
    "ConfigError",
    "ParsedFile",
    "YealinkProfile",
    "parse_config",
    "parse_phonebook",
]

VERSION_LINE = "#!version:1.0.0.1"
NULL_VALUE = "%NULL%"
COMMON_BOOT = "y000000000000.boot"
BOOT_FILES_SINCE = 81  # firmware "major" (second dotted field) that introduced .boot files

#: Model -> code of the per-model common file ``y0000000000XX.cfg``
#: (vendors.md 1.2, from FusionPBX's template directory names).  The code is not
#: the firmware prefix: T41S/T42S/T46S/T48S all run 66.x firmware.
COMMON_CODES: dict[str, int] = {
    "T28P": 0, "T26P": 4, "T22P": 5, "T20P": 7, "VP530": 23, "VP530P": 23,
    "W52P": 25, "W56P": 25, "T46G": 28, "T42G": 29, "T32G": 32, "T48G": 35,
    "T41P": 36, "CP860": 37, "T38G": 38, "T23P": 44, "T23G": 44, "T27P": 45,
    "T29G": 46, "T49G": 51, "T21P_E2": 52, "T19P_E2": 53, "T40P": 54, "T56A": 56,
    "T58A": 58, "T58V": 58, "T48S": 65, "T46S": 66, "T42S": 67, "T41S": 68,
    "T27G": 69, "T54S": 70, "CP960": 73, "T52S": 74, "T40G": 76, "W60B": 77,
    "CP920": 78, "VP59": 91, "T53": 95, "T53W": 95, "T54W": 96, "T57W": 97,
    "T43U": 107, "T46U": 108, "T48U": 109, "T42U": 116,
    "T31G": 123,  # FPBX says 123; Wazo shows T31G firmware as 124.x (unverified)
    "T33G": 124, "CP965": 143, "W70B": 146, "CP925": 148, "T58W": 150,
    "T34W": 171, "T31W": 172, "T44W": 174, "AX83H": 180, "AX86R": 182,
    "T73W": 183, "T74W": 184, "T73U": 186, "T74U": 187, "T77U": 188,
    "T88V": 192, "T88W": 192, "T85W": 196, "T87W": 197,
    # W80/W90 DECT managers and bases: the firmware prefix of their User-Agents (inferred)
    "W80B": 103, "W80DM": 103, "W90": 130, "W90DM": 130, "W90B": 130,
}  # fmt: skip

#: Programmable line keys per model (Yealink admin guide ``linekey.X`` ranges):
#: models missing here are not checked.
LINE_KEYS: dict[str, int] = {
    "T19P_E2": 0, "T21P_E2": 2, "T23P": 3, "T23G": 3, "T27P": 21, "T27G": 21, "T29G": 27,
    "T31G": 2, "T33G": 4, "T40P": 3, "T40G": 3, "T41P": 15, "T41S": 15, "T42G": 15, "T42S": 15,
    "T42U": 15, "T43U": 21, "T46G": 27, "T46S": 27, "T46U": 27, "T48G": 29, "T48S": 29, "T48U": 29,
    "T52S": 21, "T53": 21, "T53W": 21, "T54S": 27, "T54W": 27, "T57W": 29, "T58A": 27,
    "CP860": 0, "CP920": 0, "CP925": 0, "CP960": 0, "CP965": 0,
    "W52P": 0, "W56P": 0, "W60B": 0, "W70B": 0, "W80B": 0, "W80DM": 0, "W90": 0, "W90DM": 0,
}  # fmt: skip

#: Expansion module a model drives: (module name, keys per module, modules at most, keys that
#: cannot be programmed).  EXP20 key 21 switches pages ("Ext key 21 cannot be configured").
_EXP20 = ("EXP20", 40, 6, frozenset({21}))
_EXP40 = ("EXP40", 40, 6, frozenset())
_EXP43 = ("EXP43", 60, 3, frozenset())
_EXP50 = ("EXP50", 60, 3, frozenset())
EXPANSION: dict[str, tuple[str, int, int, frozenset[int]]] = {
    "T27P": _EXP20, "T27G": _EXP20, "T29G": _EXP20,
    "T46G": _EXP40, "T46S": _EXP40, "T48G": _EXP40, "T48S": _EXP40,
    "T43U": _EXP43, "T46U": _EXP43, "T48U": _EXP43,
    "T52S": _EXP50, "T53": _EXP50, "T53W": _EXP50, "T54S": _EXP50, "T54W": _EXP50, "T57W": _EXP50,
    "T58A": _EXP50,
}  # fmt: skip

#: SIP accounts per model; models missing here are not checked.
ACCOUNTS: dict[str, int] = {
    "T19P_E2": 1, "T21P_E2": 2, "T23G": 3, "T27G": 6, "T29G": 16, "T31G": 2, "T33G": 4,
    "T40P": 3, "T40G": 3, "T41P": 6, "T41S": 6, "T42G": 12, "T42S": 12, "T42U": 12, "T43U": 12,
    "T46G": 16, "T46S": 16, "T46U": 16, "T48G": 16, "T48S": 16, "T48U": 16,
    "T52S": 12, "T53": 12, "T53W": 12, "T54S": 16, "T54W": 16, "T57W": 16, "T58A": 16,
    "CP920": 1, "W52P": 5, "W56P": 5, "W60B": 8, "W70B": 10,
}  # fmt: skip

#: How many remote phone books a phone takes (``remote_phonebook.data.X``, X = 1..5).
REMOTE_PHONEBOOKS = 5

#: ``linekey.N.type`` codes -> neutral key types (vendors.md 1.4).
KEY_TYPE_CODES: dict[int, str] = {
    0: "none",
    10: "park",
    11: "dtmf",
    12: "voicemail",
    13: "speed_dial",
    15: "line",
    16: "blf",
}

#: ``account.N.sip_server.M.transport_type`` codes.
TRANSPORTS = {"0": "udp", "1": "tcp", "2": "tls"}

_INCLUDE_RE = re.compile(r'^include:config\s+(?:"([^"]*)"|<([^>]*)>|(\S+))\s*$')
_ACCOUNT_RE = re.compile(r"^account\.(\d+)\.(.+)$")
_LINEKEY_RE = re.compile(r"^(linekey|memorykey)\.(\d+)\.([a-z_]+)$")
_EXPKEY_RE = re.compile(r"^expansion_module\.(\d+)\.key\.(\d+)\.([a-z_]+)$")
_HANDSET_RE = re.compile(r"^handset\.(\d+)\.([a-z_]+)$")


class ConfigError(ValueError):
    """A file the phone would reject outright (e.g. missing version line)."""


@dataclass
class ParsedFile:
    settings: list[tuple[str, str]] = field(default_factory=list)  # in file order, duplicates kept
    includes: list[str] = field(default_factory=list)  # boot files only
    warnings: list[str] = field(default_factory=list)


def decode(data: bytes) -> tuple[str, list[str]]:
    """Bytes -> text.  Config files should be UTF-8; anything else is flagged, not fatal."""
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        return data.decode("latin-1"), [f"not valid UTF-8 ({exc.reason} at byte {exc.start}); read as latin-1"]


def parse_config(text: str, *, boot: bool = False) -> ParsedFile:
    """Parse a Yealink ``.cfg`` or (``boot=True``) ``.boot`` file.

    Raises :class:`ConfigError` when the first line is not the version line,
    because the phone refuses such files.  Everything after ``=`` is the value
    (no inline comments: ``#`` is legal in DTMF strings and passwords).
    """
    lines = text.splitlines()
    if not lines or lines[0].strip() != VERSION_LINE:
        first = lines[0][:60] if lines else ""
        raise ConfigError(f"first line must be {VERSION_LINE!r}, got {first!r}")
    out = ParsedFile()
    for lineno, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("include:"):
            m = _INCLUDE_RE.match(line)
            if not boot:
                out.warnings.append(f"line {lineno}: include outside a boot file ignored")
            elif not m:
                out.warnings.append(f"line {lineno}: malformed include {line!r}")
            else:
                target = next(g for g in m.groups() if g is not None).strip()
                if target:
                    out.includes.append(target)
                else:
                    out.warnings.append(f"line {lineno}: empty include")
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key or any(c.isspace() for c in key):
            out.warnings.append(f"line {lineno}: not a 'key = value' line: {line[:80]!r}")
            continue
        out.settings.append((key, value.strip()))
    return out


class PhonebookError(ValueError):
    """A remote phone book the phone cannot read (not XML, or not a Yealink phone book)."""


def parse_phonebook(data: bytes) -> list[dict[str, object]]:
    """Parse a Yealink remote XML phone book into ``[{"name", "numbers"}]``.

    Two forms exist: the directory object ``<YealinkIPPhoneDirectory>`` with
    ``<DirectoryEntry><Name>..</Name><Telephone>..</Telephone>*</DirectoryEntry>``
    and the menu form ``<YealinkIPPhoneBook><Menu Name=".."><Unit Name=".." Phone1=".."
    Phone2=".." Phone3=".."/></Menu></YealinkIPPhoneBook>``.  Element names are
    case-sensitive, as on the phone; an entry without a name or a number is
    skipped (the phone would show nothing useful for it).
    """
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise PhonebookError(f"not well-formed XML: {exc}") from None
    entries: list[dict[str, object]] = []
    if root.tag == "YealinkIPPhoneDirectory":
        for entry in root.findall("DirectoryEntry"):
            name = (entry.findtext("Name") or "").strip()
            numbers = [t.text.strip() for t in entry.findall("Telephone") if t.text and t.text.strip()]
            if name and numbers:
                entries.append({"name": name, "numbers": numbers})
    elif root.tag == "YealinkIPPhoneBook":
        for unit in root.iter("Unit"):
            name = (unit.get("Name") or "").strip()
            numbers = [v.strip() for k in ("Phone1", "Phone2", "Phone3") if (v := unit.get(k)) and v.strip()]
            if name and numbers:
                entries.append({"name": name, "numbers": numbers})
    else:
        raise PhonebookError(f"root element <{root.tag}> is not a Yealink phone book")
    return entries


@register_profile
class YealinkProfile(PhoneProfile):
    """A Yealink phone: ``YealinkProfile("T46S", "80:5E:C0:AA:BB:01", "66.86.0.15")``.

    ``common_code`` overrides the common-file code for models missing from
    :data:`COMMON_CODES`; ``hardware_version`` (e.g. ``"28.1.0.128.0.0.0"``)
    switches pre-72 firmware to the old ``Yealink-<model> <fw> <hw>`` UA.
    """

    vendor = "yealink"
    credential_settings = ("static.auto_provision.server.username", "static.auto_provision.server.password")

    def __init__(
        self,
        model: str,
        mac: str,
        firmware: str,
        *,
        user_agent: str | None = None,
        common_code: int | None = None,
        hardware_version: str | None = None,
        aes_key: str | None = None,
    ):
        model = model.strip().upper()
        if model.startswith("SIP-"):
            model = model[4:]
        super().__init__(model, mac, firmware, user_agent=user_agent)
        self.common_code = common_code if common_code is not None else COMMON_CODES.get(model)
        self.hardware_version = hardware_version
        #: the MAC-oriented AES key in the phone's flash (static.auto_provision.aes_key.mac):
        #: given here, or learnt from a config file; it survives reboots like a real phone's
        self.aes_key = aes_key

    # --- identity --------------------------------------------------------

    @property
    def firmware_major(self) -> int | None:
        """The second dotted field of the firmware: 86 in ``66.86.0.15``."""
        parts = self.firmware.split(".")
        if len(parts) >= 2 and parts[1].isdigit():
            return int(parts[1])
        return None

    def user_agent(self) -> str:
        if self._user_agent_override:
            return self._user_agent_override
        m, fw, mac = self.model, self.firmware, self.mac_colons
        major = self.firmware_major
        if m.startswith("VP530"):
            return f"VP530P {fw} {mac}"  # no vendor word at all
        if m == "T18":
            return f"yealink SIP-{m} {fw} {mac}"  # lowercase on that old firmware
        if self.hardware_version and major is not None and major < 72:
            return f"Yealink-{m} {fw} {self.hardware_version}"  # no MAC on 71.x
        if m.startswith("W") or m == "CP860":
            return f"Yealink {m} {fw} {mac}"  # DECT bases and CP860 have no "SIP-"
        return f"Yealink SIP-{m} {fw} {mac}"

    def common_file(self) -> str | None:
        if self.common_code is None:
            return None
        return f"y{self.common_code:012d}.cfg"

    # --- boot sequence ---------------------------------------------------

    async def boot(self, ctx: BootContext) -> None:
        await self._configure(ctx)
        await self._load_phonebooks(ctx)

    async def _configure(self, ctx: BootContext) -> None:
        major = self.firmware_major
        if major is None:
            ctx.error(f"cannot read firmware version {self.firmware!r}; using the legacy boot order")
        elif major >= BOOT_FILES_SINCE:
            for boot_name in (f"{self.mac}.boot", COMMON_BOOT):
                if await self._boot_via(ctx, boot_name):
                    return
        await self._legacy_boot(ctx)

    async def _load_phonebooks(self, ctx: BootContext) -> None:
        """Fetch and parse every configured remote phone book, in index order."""
        settings = ctx.state.settings
        for index in range(1, REMOTE_PHONEBOOKS + 1):
            url = settings.get(f"remote_phonebook.data.{index}.url", "").strip()
            if not url:
                continue
            if "://" not in url:
                ctx.warn(f"remote_phonebook.data.{index}.url {url!r} is not an absolute URL; fetched anyway")
            book = settings.get(f"remote_phonebook.data.{index}.name", "") or f"Remote Phone Book {index}"
            data = await ctx.fetch(url)
            if data is None:
                ctx.error(f"remote phone book {index} ({url}) could not be loaded")
                continue
            try:
                entries = parse_phonebook(data)
            except PhonebookError as exc:
                ctx.error(f"remote phone book {index} ({url}): {exc}")
                continue
            ctx.state.contacts.extend({**entry, "book": book} for entry in entries)
            ctx.state.applied.append(url)

    async def _boot_via(self, ctx: BootContext, boot_name: str) -> bool:
        """Fetch a boot file and its includes; False if it is missing or unusable."""
        data = await ctx.fetch(boot_name)
        if data is None:
            return False
        parsed = self._parse(ctx, boot_name, data, boot=True)
        if parsed is None:
            return False
        for key, value in parsed.settings:
            ctx.state.boot_settings[key] = value
        ctx.state.applied.append(boot_name)
        if not parsed.includes:
            ctx.warn(f"{boot_name}: lists no config files")
        for name in parsed.includes:
            body = await ctx.fetch(name)
            if body is not None:
                self._apply_cfg(ctx, name, body)
        return True

    async def _legacy_boot(self, ctx: BootContext) -> None:
        common = self.common_file()
        if common is None:
            ctx.error(f"no common-file code known for model {self.model!r}; skipping y0000000000XX.cfg")
        else:
            body = await ctx.fetch(common)
            if body is not None:
                self._apply_cfg(ctx, common, body)
        name = f"{self.mac}.cfg"
        body = await ctx.fetch(name)
        if body is not None:
            self._apply_cfg(ctx, name, body)

    def _parse(self, ctx: BootContext, name: str, data: bytes, *, boot: bool) -> ParsedFile | None:
        text, problems = decode(data)
        for p in problems:
            ctx.warn(f"{name}: {p}")
        try:
            parsed = parse_config(text, boot=boot)
        except ConfigError as exc:
            ctx.error(f"{name}: rejected: {exc}")
            return None
        for w in parsed.warnings:
            ctx.warn(f"{name}: {w}")
        return parsed

    def _apply_cfg(self, ctx: BootContext, name: str, data: bytes) -> None:
        """Merge one .cfg into the raw settings; later files win, ``%NULL%`` resets."""
        if not data.lstrip().startswith(b"#!version"):  # not a plain config: an encrypted one
            if not self.aes_key:
                ctx.error(f"{name}: encrypted and this phone has no AES key")
                return
            try:
                data = yealink_decrypt(data, self.aes_key)
            except DecryptError as exc:
                ctx.error(f"{name}: cannot decrypt: {exc}")
                return
            ctx.state.boot_settings[f"decrypted:{name}"] = "aes-128-ecb"
        parsed = self._parse(ctx, name, data, boot=False)
        if parsed is None:
            return
        settings = ctx.state.settings
        for key, value in parsed.settings:
            if value == NULL_VALUE:
                settings.pop(key, None)
            else:
                settings[key] = value
        ctx.state.applied.append(name)

    # --- interpretation --------------------------------------------------

    def finalize(self, state: PhoneState) -> None:
        key = state.settings.get("static.auto_provision.aes_key.mac") \
            or state.settings.get("static.auto_provision.aes_key_16.mac")
        if key:
            self.aes_key = key  # written to flash: the next boot decrypts with it
        """Turn the merged raw settings into accounts, keys, time zone and language."""
        s = state.settings
        self._accounts(state)
        self._keys(state)
        self._check_capacity(state)
        self._check_handsets(state)
        state.timezone = s.get("local_time.time_zone")
        state.timezone_name = s.get("local_time.time_zone_name")
        state.language = s.get("lang.gui")
        state.web_language = s.get("lang.wui")

    def _check_capacity(self, state: PhoneState) -> None:
        """Warn about accounts and keys the model does not have (the phone ignores them)."""
        accounts = ACCOUNTS.get(self.model)
        if accounts is not None:
            for index, acc in state.accounts.items():
                if index > accounts and acc.enabled:
                    state.warnings.append(f"account.{index}: a {self.model} has accounts 1-{accounts}")
        line_keys = LINE_KEYS.get(self.model)
        expansion = EXPANSION.get(self.model)
        for (module, slot), key in state.keys.items():
            if key.type == "none" or key.source.startswith("memorykey"):
                continue
            if module == 0:
                if line_keys is not None and slot > line_keys:
                    state.warnings.append(f"{key.source}: a {self.model} has line keys 1-{line_keys}")
            elif line_keys is not None or expansion is not None:
                if expansion is None:
                    state.warnings.append(f"{key.source}: a {self.model} drives no expansion module")
                    continue
                name, keys, modules, unusable = expansion
                if module > modules:
                    state.warnings.append(f"{key.source}: a {self.model} drives at most {modules} {name}")
                elif slot > keys or slot in unusable:
                    state.warnings.append(f"{key.source}: an {name} has no programmable key {slot}")

    @staticmethod
    def _check_handsets(state: PhoneState) -> None:
        """DECT: each handset may only use accounts that exist and are enabled."""
        handsets: dict[int, dict[str, str]] = {}
        for key, value in state.settings.items():
            m = _HANDSET_RE.match(key)
            if m:
                handsets.setdefault(int(m.group(1)), {})[m.group(2)] = value
        for number, p in sorted(handsets.items()):
            lines: dict[str, list[int]] = {}
            for field_name in ("incoming_lines", "dial_out_lines"):
                raw = p.get(field_name, "")
                parts = [x.strip() for x in raw.split(",") if x.strip()]
                if any(not x.isdigit() for x in parts):
                    state.warnings.append(f"handset.{number}.{field_name}: not a list of accounts: {raw!r}")
                    parts = [x for x in parts if x.isdigit()]
                lines[field_name] = [int(x) for x in parts]
                for index in lines[field_name]:
                    acc = state.accounts.get(index)
                    if acc is None or not acc.enabled:
                        state.warnings.append(f"handset.{number}.{field_name}: account {index} is not enabled")
            default = p.get("dial_out_default_line", "")
            if default and lines["dial_out_lines"] and (not default.isdigit()
                                                       or int(default) not in lines["dial_out_lines"]):
                state.warnings.append(f"handset.{number}.dial_out_default_line {default!r} is not one of its "
                                      f"dial-out lines")

    @staticmethod
    def _accounts(state: PhoneState) -> None:
        per_account: dict[int, dict[str, str]] = {}
        for key, value in state.settings.items():
            m = _ACCOUNT_RE.match(key)
            if m:
                per_account.setdefault(int(m.group(1)), {})[m.group(2)] = value
        for index, p in sorted(per_account.items()):
            acc = Account(index=index)
            acc.enabled = p.get("enable", "0") == "1"
            acc.label = p.get("label", "")
            acc.display_name = p.get("display_name", "")
            acc.auth_name = p.get("auth_name", "")
            acc.user_name = p.get("user_name", "")
            acc.password = p.get("password", "")
            # Current syntax, falling back to the pre-v80 single-server names.
            acc.server = p.get("sip_server.1.address", p.get("sip_server_host", ""))
            port = p.get("sip_server.1.port", p.get("sip_server_port", ""))
            if port:
                if port.isdigit():
                    acc.port = int(port)
                else:
                    state.warnings.append(f"account.{index}: bad port {port!r}")
            transport = p.get("sip_server.1.transport_type", p.get("transport"))
            if transport is not None and transport != "":
                acc.transport = TRANSPORTS.get(transport, f"other:{transport}")
            state.accounts[index] = acc

    @staticmethod
    def _keys(state: PhoneState) -> None:
        # (bank, module, slot) -> attributes; bank keeps linekey and memorykey apart.
        groups: dict[tuple[str, int, int], dict[str, str]] = {}
        for key, value in state.settings.items():
            m = _LINEKEY_RE.match(key)
            if m:
                groups.setdefault((m.group(1), 0, int(m.group(2))), {})[m.group(3)] = value
                continue
            m = _EXPKEY_RE.match(key)
            if m:
                groups.setdefault(("expansion_module", int(m.group(1)), int(m.group(2))), {})[m.group(3)] = value
        # Line keys first so that, on the rare model with both banks, a
        # memorykey never silently replaces a line key in the (module, slot) map.
        order = {"linekey": 0, "expansion_module": 1, "memorykey": 2}
        for (bank, module, slot), attrs in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1:])):
            source = f"expansion_module.{module}.key.{slot}" if bank == "expansion_module" else f"{bank}.{slot}"
            raw_type = attrs.get("type")
            if raw_type is None or raw_type == "":
                ktype = "none"
            elif raw_type.isdigit():
                ktype = KEY_TYPE_CODES.get(int(raw_type), f"other:{int(raw_type)}")
            else:
                ktype = f"other:{raw_type}"
            line_raw = attrs.get("line", "")
            line = int(line_raw) if line_raw.isdigit() else None
            if line_raw and line is None:
                state.warnings.append(f"{source}.line: not a number: {line_raw!r}")
            k = Key(
                module=module,
                slot=slot,
                type=ktype,
                value=attrs.get("value", ""),
                label=attrs.get("label", ""),
                line=line,
                extension=attrs.get("extension") or attrs.get("pickup_value", ""),
                raw_type=raw_type,
                source=source,
            )
            if (module, slot) in state.keys:
                state.warnings.append(f"{source} collides with {state.keys[(module, slot)].source}; kept the latter")
                continue
            state.keys[(module, slot)] = k
