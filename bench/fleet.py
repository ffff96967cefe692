"""The simulated fleet: a realistic vendor mix of phones, their organisations, users and keys.

Every phone is one simulator profile (its vendor's real boot sequence and User-Agent) with a
model from that vendor plugin's catalogue, its own MAC (a real OUI of the vendor) and its own
source address in 127.0.0.0/8, as real phones each have their own address. The same fleet is
written as organisation YAML (``deskprov import``, the real import path) or bulk-inserted with
SQLAlchemy Core (100,000 devices in seconds).

Only vendors with both a server plugin and a simulator profile take part; vendors added later
join automatically once both exist (weights below, or 5 % for one not listed).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from provisioning.vendors import BY_NAME
from provisioning.vendors.base import PhoneModel, VendorPlugin
from simulators.phone import PhoneProfile, get_profile_class

#: The office LAN of every organisation here is loopback: TFTP may serve secrets to it (device
#: authentication serves TFTP clients elsewhere secret-free bootstrap files only).
TFTP_SECRET_NETWORKS = "127.0.0.0/8"

#: Share of the installed base per vendor (a European hosted-PBX customer base: an assumption,
#: not a statistic; the point is that every vendor's boot path is exercised in proportion).
VENDOR_WEIGHTS = {"yealink": 35, "snom": 12, "poly": 10, "cisco": 10, "grandstream": 12, "fanvil": 9,
                  "gigaset": 12}

#: Per vendor: (catalogue model, firmware, simulator profile kwargs, weight within the vendor).
#: Firmware strings are ones the vendor tests use; models the catalogue or simulator lacks are
#: skipped at run time.
MODELS: dict[str, list[tuple[str, str, dict, int]]] = {
    "yealink": [("T46S", "66.86.0.15", {}, 20), ("T48S", "66.86.0.15", {}, 8), ("T54W", "96.86.0.70", {}, 15),
                ("T42S", "66.86.0.110", {}, 12), ("T31G", "124.86.0.40", {}, 10), ("T33G", "124.86.0.40", {}, 8),
                ("T46U", "108.86.0.20", {}, 10), ("T53W", "95.86.0.70", {}, 7), ("T57W", "97.86.0.70", {}, 4),
                ("W60B", "77.83.0.25", {}, 6)],
    "snom": [("D785", "10.1.33.33", {}, 20), ("D735", "10.1.33.33", {}, 15), ("D715", "10.1.33.33", {}, 15),
             ("D385", "10.1.33.33", {}, 10), ("D345", "10.1.33.33", {}, 10), ("D120", "10.1.33.33", {}, 10),
             ("710", "8.9.3.80", {}, 8), ("320", "8.4.18", {}, 4), ("M700", "03.23.0005", {}, 8)],
    "poly": [("VVX450", "6.4.0.1234", {"updater": "6.4.0.100"}, 30), ("VVX411", "6.4.0.1234", {"updater": "6.4.0.100"}, 20),
             ("VVX311", "6.4.0.1234", {"updater": "6.4.0.100"}, 20), ("VVX601", "6.4.0.1234", {"updater": "6.4.0.100"}, 10),
             ("VVX201", "6.4.0.1234", {"updater": "6.4.0.100"}, 10),
             ("SPIP450", "4.0.15.1009", {"updater": "4.3.1.0079"}, 10)],
    "cisco": [("8841", "11.3.7", {}, 25), ("8851", "11.3.7", {}, 15), ("7841", "11.3.7", {}, 20), ("7821", "11.3.7", {}, 10),
              ("6841", "11.3.7", {}, 10), ("SPA504G", "7.5.5", {}, 12), ("SPA112", "1.4.1", {}, 8)],
    "grandstream": [("GXP2160", "1.0.11.6", {}, 20), ("GXP2170", "1.0.11.6", {}, 15), ("GRP2614", "1.0.5.15", {}, 20),
                    ("GRP2612W", "1.0.5.67", {}, 15), ("GXP1625", "1.0.7.13", {}, 20), ("HT802", "1.0.43.11", {}, 10)],
    "fanvil": [("X3S", "2.10.2.6887", {}, 20), ("X4U", "2.12.16.17", {}, 20), ("X5U-V2", "2.12.16.17", {}, 15),
               ("X6", "2.12.16.17", {}, 15), ("V64", "2.12.16.17", {}, 15), ("X210", "2.12.16.17", {}, 15)],
    "gigaset": [("N870", "83.V2.43.0+build.5f0a106", {}, 30), ("N670", "83.V2.43.0+build.5f0a106", {}, 30),
                ("N510", "42.250", {}, 20), ("P82x", "10.1.54.2", {}, 20)],
}

#: The OUI each vendor's simulated MACs carry (one of the plugin's own).
OUIS = {"yealink": "805ec0", "snom": "000413", "poly": "0004f2", "cisco": "00562b", "grandstream": "000b82",
        "fanvil": "0c383e", "gigaset": "7c2f80"}


@dataclass(frozen=True)
class ModelChoice:
    vendor: str
    model: PhoneModel          # the catalogue entry (what the org file names)
    sim_model: str             # the model as the simulator profile spells it
    firmware: str
    kwargs: dict
    weight: int


@dataclass
class FleetPhone:
    index: int
    org: int
    vendor: str
    model: PhoneModel
    sim_model: str
    firmware: str
    kwargs: dict
    mac: str                   # 12 lowercase hex digits
    ip: str                    # the phone's own source address
    users: list[int]           # fleet-wide user index per line (line 1 first)
    sip_username: str
    sip_password: str
    keys: list[dict] = field(default_factory=list)
    #: The device's HTTP digest credentials (username, password) as the server issued them: a
    #: phone provisioned long ago holds them (bench/provisioned.py reads them back).
    credentials: tuple[str, str] | None = None

    def profile(self) -> PhoneProfile:
        return get_profile_class(self.vendor)(self.sim_model, self.mac, self.firmware, **self.kwargs)

    @property
    def multi_line(self) -> bool:
        return self.model.kind in ("dect", "ata")


@dataclass
class Org:
    index: int
    name: str
    sip_domain: str
    phones: list[FleetPhone] = field(default_factory=list)
    users: list[int] = field(default_factory=list)


@dataclass
class Fleet:
    phones: list[FleetPhone]
    orgs: list[Org]
    vendors: dict[str, list[ModelChoice]]

    def vendor_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for p in self.phones:
            counts[p.vendor] = counts.get(p.vendor, 0) + 1
        return counts


def available_vendors() -> dict[str, list[ModelChoice]]:
    """Vendors with a plugin and a simulator profile, each with its usable model choices."""
    out: dict[str, list[ModelChoice]] = {}
    for name, plugin in sorted(BY_NAME.items()):
        try:
            get_profile_class(name)
        except ValueError:
            continue
        choices = []
        for sim_model, firmware, kwargs, weight in MODELS.get(name, []):
            model = plugin.find_model(sim_model)
            if model is not None and not model.generic:
                choices.append(ModelChoice(name, model, sim_model, firmware, kwargs, weight))
        if not choices:  # a vendor this file does not know yet: its first few desk models
            desk = [m for m in plugin.models.values() if not m.generic and m.kind == "desk"][:3]
            choices = [ModelChoice(name, m, m.name, "1.0.0.1", {}, 1) for m in desk]
        if choices:
            out[name] = choices
    return out


def source_ip(index: int) -> str:
    """A distinct loopback address per phone (127.16.0.1 ...), never .0 or .255."""
    a, rest = divmod(index, 254 * 254)
    b, c = divmod(rest, 254)
    return f"127.{16 + a}.{b + 1}.{c + 1}"


def user_number(user: int) -> str:
    return f"+4640{user:07d}"


def _oui(vendor: str, plugin: VendorPlugin) -> str:
    oui = OUIS.get(vendor)
    return oui if oui in plugin.ouis else sorted(plugin.ouis)[0]


def _keys(plugin: VendorPlugin, model: PhoneModel, colleague: str | None) -> list[dict]:
    """A typical desk phone: its line, a BLF on a colleague, a speed dial, voicemail, a park key."""
    if model.kind != "desk":
        return []
    wanted = [
        {"slot": 1, "type": "line"},
        {"slot": 2, "type": "blf", "target": colleague, "label": "Colleague"} if colleague else None,
        {"slot": 3, "type": "speed_dial", "number": "+46812345678", "label": "Support"},
        {"slot": 4, "type": "voicemail", "label": "Voicemail"},
        {"slot": 5, "type": "park", "target": "701", "label": "Park 1"},
    ]
    keys = []
    for key in filter(None, wanted):
        if not plugin.validate_keys(model, [(0, key["slot"], key["type"])]):
            keys.append(key)
    return keys


def org_sizes(phones: int, rng: random.Random) -> list[int]:
    """One large customer (40 % of the phones: the org-wide change re-renders it), the rest
    split into small and mid-sized companies of 5-300 phones."""
    if phones <= 20:
        return [phones]
    big = int(phones * 0.4)
    sizes, left = [big], phones - big
    while left > 0:
        size = min(left, rng.choice((5, 10, 20, 40, 80, 150, 300)))
        sizes.append(size)
        left -= size
    return sizes


def build(phones: int, *, seed: int = 7, vendors: list[str] | None = None) -> Fleet:
    rng = random.Random(seed)
    choices = available_vendors()
    if vendors:
        choices = {v: c for v, c in choices.items() if v in vendors}
    if not choices:
        raise SystemExit("no vendor has both a plugin and a simulator profile")
    names = sorted(choices)
    weights = [VENDOR_WEIGHTS.get(v, 5) for v in names]
    out: list[FleetPhone] = []
    orgs: list[Org] = []
    user = 0
    index = 0
    for o, size in enumerate(org_sizes(phones, rng)):
        org = Org(o, f"Storm {o:05d} AB", f"org{o}.storm.example.net")
        orgs.append(org)
        for _ in range(size):
            vendor = rng.choices(names, weights)[0]
            choice = rng.choices(choices[vendor], [c.weight for c in choices[vendor]])[0]
            plugin = BY_NAME[vendor]
            mac = _oui(vendor, plugin) + f"{index:06x}"
            lines = 2 if choice.model.kind in ("dect", "ata") and choice.model.lines >= 2 else 1
            users = list(range(user, user + lines))
            user += lines
            org.users.extend(users)
            phone = FleetPhone(index, o, vendor, choice.model, choice.sim_model, choice.firmware, choice.kwargs,
                               mac, source_ip(index), users, f"sip{mac}", f"pw-{mac}-{rng.getrandbits(40):010x}")
            org.phones.append(phone)
            out.append(phone)
            index += 1
        for i, phone in enumerate(org.phones):
            colleague = org.phones[(i + 1) % len(org.phones)].users[0] if len(org.phones) > 1 else None
            phone.keys = _keys(BY_NAME[phone.vendor], phone.model,
                               user_number(colleague) if colleague is not None else None)
    return Fleet(out, orgs, choices)


CONTACTS = 20


def contact_number(j: int) -> str:
    return f"+46855{j:06d}"


def org_document(org: Org, *, ntp_server: str | None = None) -> dict[str, Any]:
    """The organisation as an import document (the org YAML format)."""
    organization: dict[str, Any] = {"name": org.name, "sip_domain": org.sip_domain, "timezone": "Europe/Stockholm",
                                    "device_admin_password": "Bench-Adm1n-Secret",
                                    "tftp_secret_networks": [TFTP_SECRET_NETWORKS]}
    if ntp_server:
        organization["ntp_server"] = ntp_server
    users = [{"name": f"User {u}", "number": user_number(u), "extension": str(1000 + i)}
             for i, u in enumerate(org.users)]
    phones = []
    for p in org.phones:
        entry: dict[str, Any] = {"mac": p.mac, "model": f"{BY_NAME[p.vendor].display_name} {p.model.name}",
                                 "user": user_number(p.users[0]),
                                 "sip": {"username": p.sip_username, "password": p.sip_password}}
        if len(p.users) > 1:
            entry["lines"] = [{"index": i + 1, "user": user_number(u)} for i, u in enumerate(p.users) if i]
        if p.keys:
            entry["keys"] = p.keys
        phones.append(entry)
    book = {"name": "Kunder", "members": "all",
            "contacts": [{"name": f"Kund {j:02d} AB", "number": contact_number(j)} for j in range(CONTACTS)]}
    return {"organization": organization, "users": users, "phonebooks": [book], "phones": phones}


def org_yaml(org: Org, **kw) -> str:
    """JSON is YAML: fast to write, and parsed by the real import like any organisation file."""
    return json.dumps(org_document(org, **kw), ensure_ascii=False, indent=0)
