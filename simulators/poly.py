"""Poly / Polycom phone profile for the simulator (SoundPoint IP, SoundStation IP, VVX; UCS 4-6).

Follows ``shared/reference/vendors.md`` section 2 and the Polycom guides cited in
``provisioning/vendors/poly.py``, but shares no code with the server:

* HTTP User-Agent ``FileTransport Polycom<family>-<MODEL_TOKEN>-UA/<version>[ Type/...]``
  without a MAC; the updater (or BootROM) requests carry the updater version and, on VVX,
  ``Type/Updater``, the application's requests its own version and ``Type/Application``.
* Boot: the updater asks for ``<mac>.cfg`` (else ``000000000000.cfg``) and the application image
  it names; then the application asks for the master file again, every ``CONFIG_FILES`` entry
  left to right (``[PHONE_MAC_ADDRESS]`` replaced by the lowercase MAC), its override files
  ``<mac>-phone.cfg`` / ``<mac>-web.cfg`` and its directory ``<mac>-directory.xml`` (else
  ``000000000000-directory.xml``). A phone given ``local_changes`` PUTs them as ``<mac>-phone.cfg``
  (HTTP only), the way a user's change on the phone is saved on the server.
* Precedence: among ``CONFIG_FILES`` the first file that sets a parameter wins; override files
  win over all of them (``-web.cfg`` over ``-phone.cfg``: unverified ordering).
* Keys are the flexible line keys (``lineKey.N.category``/``.index``); BLF keys take the
  attendant resource list in key order, SpeedDial keys the directory entry with that ``sd``.
  N counts on over the expansion modules (84 keys per VVX Color Expansion Module).

Contacts land in ``PhoneState.contacts`` as ``{"name", "numbers", "book"}`` plus the directory's
``label`` (``lb``) and ``speed_dial`` (``sd``, None when not a favourite).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import aiohttp

from simulators.phone import Account, BootContext, Fetch, Key, PhoneProfile, PhoneState, register_profile

__all__ = ["PolyProfile", "parse_master", "parse_config", "parse_directory", "PolyFileError"]

DEFAULT_MASTER = "000000000000.cfg"
DEFAULT_DIRECTORY = "000000000000-directory.xml"

#: The simulator's own model knowledge: family word and UA token, phone line keys, keys per
#: expansion module (VVX Color EM: 28 keys x 3 pages; SoundPoint IP backlit EM: 14).
_FAMILIES = {"SPIP": ("SoundPointIP", 14), "SSIP": ("SoundStationIP", 0), "VVX": ("VVX", 84)}
_LINE_KEYS = {
    "SPIP321": 2, "SPIP331": 2, "SPIP335": 2, "SPIP450": 3, "SPIP550": 4, "SPIP560": 4,
    "SPIP650": 6, "SPIP670": 6, "SSIP5000": 0, "SSIP6000": 0, "SSIP7000": 0,
    "VVX101": 1, "VVX201": 2, "VVX300": 6, "VVX301": 6, "VVX310": 6, "VVX311": 6,
    "VVX400": 12, "VVX401": 12, "VVX410": 12, "VVX411": 12, "VVX450": 12, "VVX500": 12,
    "VVX501": 12, "VVX600": 16, "VVX601": 16, "VVX1500": 6,
}  # fmt: skip
_TRANSPORTS = {"UDPOnly": "udp", "TCPOnly": "tcp", "TLS": "tls", "DNSnaptr": "udp"}
_REG = re.compile(r"^reg\.(\d+)\.(.+)$")
_LINEKEY = re.compile(r"^lineKey\.(\d+)\.(category|index)$")
_RESOURCE = re.compile(r"^attendant\.resourceList\.(\d+)\.(address|label|type)$")
_DTMF_MACRO = re.compile(r"^\^([0-9*#+]+)\$Tdtmf\$$")


class PolyFileError(ValueError):
    """A file the phone could not use (not XML, wrong root element)."""


def _xml(data: bytes, name: str) -> ET.Element:
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise PolyFileError(f"{name}: not well-formed XML: {exc}") from None


def parse_master(data: bytes, name: str = "master") -> dict[str, str]:
    root = _xml(data, name)
    if root.tag != "APPLICATION":
        raise PolyFileError(f"{name}: root element is <{root.tag}>, not <APPLICATION>")
    return dict(root.attrib)


def parse_config(data: bytes, name: str = "config") -> list[tuple[str, str]]:
    """Every attribute of every element, in document order: the phone ignores element names."""
    root = _xml(data, name)
    return [(key, value) for element in root.iter() for key, value in element.attrib.items()]


def parse_directory(data: bytes, name: str = "directory") -> list[dict[str, str]]:
    root = _xml(data, name)
    if root.tag != "directory":
        raise PolyFileError(f"{name}: root element is <{root.tag}>, not <directory>")
    items = []
    for item in root.iter("item"):
        items.append({child.tag: (child.text or "").strip() for child in item})
    return items


@register_profile
class PolyProfile(PhoneProfile):
    """``PolyProfile("VVX450", "00:04:F2:AA:BB:01", "6.4.0.1234")``.

    ``updater`` is the BootROM/Updater version of the first requests (default: the firmware);
    ``local_changes`` are settings "changed on the phone", uploaded as ``<mac>-phone.cfg``;
    ``line_keys`` sets the phone's own key count for models the simulator does not know.
    """

    vendor = "poly"
    credential_settings = ("device.prov.user", "device.prov.password")

    def __init__(self, model: str, mac: str, firmware: str, *, user_agent: str | None = None,
                 updater: str | None = None, local_changes: dict[str, str] | None = None,
                 line_keys: int | None = None):
        model = re.sub(r"[^0-9A-Za-z]", "", model).upper()
        super().__init__(model, mac, firmware, user_agent=user_agent)
        self.line_keys = line_keys if line_keys is not None else _LINE_KEYS.get(model, 0)
        self.updater = updater or firmware
        self.local_changes = local_changes or {}

    # --- identity --------------------------------------------------------
    def _ua(self, version: str, kind: str) -> str:
        prefix = next((p for p in _FAMILIES if self.model.startswith(p)), None)
        if prefix is None:
            family, token = "VVX", self.model
        else:
            family, token = _FAMILIES[prefix][0], f"{prefix}_{self.model[len(prefix):]}"
        ua = f"FileTransport Polycom{family}-{token}-UA/{version}"
        # SoundPoint IP application requests carry no Type (vendors.md 2.3 examples).
        if prefix != "SPIP":
            ua += f" Type/{kind}"
        return ua

    def user_agent(self) -> str:
        return self._user_agent_override or self._ua(self.firmware, "Application")

    def updater_user_agent(self) -> str:
        return self._user_agent_override or self._ua(self.updater, "Updater")

    # --- boot --------------------------------------------------------------
    async def boot(self, ctx: BootContext) -> None:
        ctx.user_agent = self.updater_user_agent()
        master = await self._master(ctx)
        if master is None:
            ctx.error("no master configuration file")
            return
        if master.get("APP_FILE_PATH"):
            await ctx.fetch(master["APP_FILE_PATH"])  # the updater checks the application image

        ctx.user_agent = self.user_agent()
        master = await self._master(ctx)
        if master is None:
            ctx.error("master configuration file vanished between updater and application")
            return
        ctx.state.boot_settings.update(master)
        merged: dict[str, str] = {}
        for name in [n.strip() for n in master.get("CONFIG_FILES", "").split(",") if n.strip()]:
            name = name.replace("[PHONE_MAC_ADDRESS]", self.mac)
            body = await ctx.fetch(name)
            if body is None:
                continue
            for key, value in self._parse(ctx, name, body):
                merged.setdefault(key, value)  # the first file that sets it wins
        overrides = master.get("OVERRIDES_DIRECTORY", "")
        for suffix in ("-phone.cfg", "-web.cfg"):
            name = _join(overrides, f"{self.mac}{suffix}")
            body = await ctx.fetch(name)
            if body is not None:
                merged.update(self._parse(ctx, name, body))
        ctx.state.settings.update(merged)

        contacts = master.get("CONTACTS_DIRECTORY", "")
        for name in (_join(contacts, f"{self.mac}-directory.xml"), _join(contacts, DEFAULT_DIRECTORY)):
            body = await ctx.fetch(name)
            if body is None:
                continue
            try:
                items = parse_directory(body, name)
                ctx.state.applied.append(name)
                ctx.state.contacts = [{
                    "name": " ".join(filter(None, (item.get("fn"), item.get("ln")))) or item.get("lb", ""),
                    "numbers": [item.get("ct", "")],
                    "book": name,
                    "label": item.get("lb", ""),
                    "speed_dial": item.get("sd") or None,
                } for item in items]
            except PolyFileError as exc:
                ctx.error(str(exc))
            break

        if self.local_changes:
            await self._upload(ctx, _join(overrides, f"{self.mac}-phone.cfg"), self._override_file())

    async def _master(self, ctx: BootContext) -> dict[str, str] | None:
        for name in (f"{self.mac}.cfg", DEFAULT_MASTER):
            body = await ctx.fetch(name)
            if body is None:
                continue
            try:
                master = parse_master(body, name)
            except PolyFileError as exc:
                ctx.error(str(exc))
                continue
            ctx.state.applied.append(name)
            return master
        return None

    def _parse(self, ctx: BootContext, name: str, body: bytes) -> list[tuple[str, str]]:
        try:
            settings = parse_config(body, name)
        except PolyFileError as exc:
            ctx.error(str(exc))
            return []
        ctx.state.applied.append(name)
        return settings

    def _override_file(self) -> bytes:
        root = ET.Element("PHONE_CONFIG")
        ET.SubElement(root, "OVERRIDES", {k: str(v) for k, v in self.local_changes.items()})
        return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + ET.tostring(root)

    async def _upload(self, ctx: BootContext, name: str, body: bytes) -> None:
        url = ctx.resolve(name)
        if not url.startswith(("http://", "https://")) or ctx.session is None:
            ctx.warn(f"{name}: not uploaded (only HTTP uploads are simulated)")
            return
        try:
            async with ctx.session.put(url, data=body, headers={"User-Agent": ctx.user_agent}) as resp:
                result = "ok" if resp.status in (200, 201, 204) else "error"
                record = Fetch("http", f"PUT {name}", url, result, resp.status, len(body),
                               error=None if result == "ok" else f"HTTP {resp.status}")
        except (aiohttp.ClientError, OSError) as exc:
            record = Fetch("http", f"PUT {name}", url, "error", error=str(exc))
        ctx.state.fetched.append(record)
        if record.result != "ok":
            ctx.warn(f"upload {name}: {record.error}")

    # --- interpretation ----------------------------------------------------
    def finalize(self, state: PhoneState) -> None:
        s = state.settings
        self._accounts(state)
        self._keys(state)
        if "tcpIpApp.sntp.gmtOffset" in s:
            hours = int(s["tcpIpApp.sntp.gmtOffset"]) / 3600
            state.timezone = "0" if hours == 0 else f"{hours:+.2f}".rstrip("0").rstrip(".")
        state.timezone_name = _dst_description(s)
        state.language = s.get("lcl.ml.lang")

    @staticmethod
    def _accounts(state: PhoneState) -> None:
        per_reg: dict[int, dict[str, str]] = {}
        for key, value in state.settings.items():
            m = _REG.match(key)
            if m:
                per_reg.setdefault(int(m.group(1)), {})[m.group(2)] = value
        for index, p in sorted(per_reg.items()):
            acc = Account(index=index)
            acc.user_name = p.get("address", "")
            acc.enabled = bool(acc.user_name)
            acc.label = p.get("label", "")
            acc.display_name = p.get("displayName", "")
            acc.auth_name = p.get("auth.userId", "")
            acc.password = p.get("auth.password", "")
            acc.server = p.get("server.1.address", "")
            port = p.get("server.1.port", "")
            if port.isdigit():
                acc.port = int(port)
            elif port:
                state.warnings.append(f"reg.{index}: bad port {port!r}")
            transport = p.get("server.1.transport", "")
            if transport:
                acc.transport = _TRANSPORTS.get(transport, f"other:{transport}")
            state.accounts[index] = acc

    def _position(self, index: int) -> tuple[int, int]:
        phone_keys = self.line_keys
        if index <= phone_keys:
            return 0, index
        prefix = next((p for p in _FAMILIES if self.model.startswith(p)), "VVX")
        per_module = _FAMILIES[prefix][1] or 1
        rest = index - phone_keys - 1
        return rest // per_module + 1, rest % per_module + 1

    def _keys(self, state: PhoneState) -> None:
        s = state.settings
        if s.get("lineKey.reassignment.enabled") != "1":
            return
        categories: dict[int, dict[str, str]] = {}
        resources: dict[int, dict[str, str]] = {}
        for key, value in s.items():
            if m := _LINEKEY.match(key):
                categories.setdefault(int(m.group(1)), {})[m.group(2)] = value
            elif m := _RESOURCE.match(key):
                resources.setdefault(int(m.group(1)), {})[m.group(2)] = value
        blf_pool = [resources[i] for i in sorted(resources)]
        favourites = {c["speed_dial"]: c for c in state.contacts if c.get("speed_dial")}
        pickup = s.get("call.directedCallPickupString", "")
        for index in sorted(categories):
            category = categories[index].get("category", "Unassigned")
            value = categories[index].get("index", "")
            module, slot = self._position(index)
            key = Key(module=module, slot=slot, raw_type=category, source=f"lineKey.{index}")
            if category == "Line":
                key.type, key.line = "line", int(value) if value.isdigit() else None
            elif category == "BLF":
                if not blf_pool:
                    state.warnings.append(f"lineKey.{index}: BLF key without a resource")
                    continue
                res = blf_pool.pop(0)
                key.type = "park" if res.get("type") == "automata" else "blf"
                key.value, key.label = res.get("address", ""), res.get("label", "")
                key.extension = pickup if key.type == "blf" else ""
            elif category == "SpeedDial":
                entry = favourites.get(value)
                if entry is None:
                    state.warnings.append(f"lineKey.{index}: no directory entry with sd={value}")
                    continue
                contact = entry["numbers"][0]
                if m := _DTMF_MACRO.match(contact):
                    key.type, key.value = "dtmf", m.group(1)
                else:
                    key.type, key.value = "speed_dial", contact
                key.label = entry.get("label") or entry["name"]
            elif category == "Unassigned":
                continue
            else:
                key.type = f"other:{category}"
            state.keys[(module, slot)] = key


def _dst_description(s: dict[str, str]) -> str | None:
    """``M3.5.0/2,M10.5.0/3``-style summary of the phone's DST settings, or None without DST."""
    prefix = "tcpIpApp.sntp.daylightSavings."
    if s.get(prefix + "enable") != "1":
        return None
    parts = []
    for edge in ("start", "stop"):
        p = {k[len(prefix) + len(edge) + 1:]: v for k, v in s.items() if k.startswith(f"{prefix}{edge}.")}
        try:
            last = p.get("dayOfWeek.lastInMonth") == "1"
            week = 5 if last else (int(p["date"]) - 1) // 7 + 1
            parts.append(f"M{int(p['month'])}.{week}.{int(p['dayOfWeek']) - 1}/{int(p['time'])}")
        except (KeyError, ValueError):
            return "invalid"
    return ",".join(parts)


def _join(directory: str, name: str) -> str:
    if not directory:
        return name
    return directory.rstrip("/") + "/" + name
