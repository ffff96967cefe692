"""How a device gives its vendor away: MAC OUI, DHCP vendor class (option 60), free-text names.

One table, used by every identifier (SNMP scan, mDNS browse, inbox) and by the DHCP snippet
generator, so that adding an OUI or a vendor class changes all of them at once.

* OUIs are **derived from the vendor plugins** (each plugin's ``ouis``): the plugin that serves a
  MAC's files is, by construction, the vendor discovery reports for it.  An OUI claimed by two
  plugins is ambiguous and identifies nobody (listed in :data:`AMBIGUOUS_OUIS`).
* DHCP vendor classes live here (:data:`VENDOR_CLASSES`) because only the DHCP helper and the
  identifiers need them; each carries its source.  Vendors whose option 60 string we have no
  source for (Yealink, Grandstream, Fanvil; Poly's is RFC 3925-encoded) are matched by OUI.
  They could move to a plugin attribute (``dhcp_vendor_classes``) once a plugin owner wants them.
* Free-text rules (:data:`TEXT_RULES`) read vendor/model/firmware from descriptive strings: SNMP
  ``sysDescr``, mDNS instance names and TXT values, PnP/HTTP User-Agents as a fallback.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from provisioning.mac import MacError, normalize_mac
from provisioning.vendors import PLUGINS

__all__ = [
    "AMBIGUOUS_OUIS", "OUIS", "TEXT_RULES", "VENDOR_CLASSES", "TextRule", "VendorClass",
    "match_text", "ouis_of", "vendor_classes_of", "vendor_for_mac", "vendor_for_vendor_class",
]


# -- OUIs ---------------------------------------------------------------------------------------

def _build_ouis() -> tuple[Mapping[str, str], frozenset[str]]:
    owners: dict[str, set[str]] = {}
    for plugin in PLUGINS:
        for oui in plugin.ouis:
            owners.setdefault(oui.lower(), set()).add(plugin.name)
    unique = {oui: next(iter(names)) for oui, names in owners.items() if len(names) == 1}
    return MappingProxyType(dict(sorted(unique.items()))), frozenset(o for o, n in owners.items() if len(n) > 1)


#: OUI (6 lowercase hex digits) -> vendor plugin name.
OUIS, AMBIGUOUS_OUIS = _build_ouis()


def ouis_of(vendor: str) -> tuple[str, ...]:
    """The OUIs of one vendor, sorted (for DHCP MAC-prefix classes)."""
    return tuple(oui for oui, owner in OUIS.items() if owner == vendor)


def vendor_for_mac(mac: str | None) -> str | None:
    """The vendor whose OUI ``mac`` carries (any spelling), else None.  Never raises."""
    if not mac:
        return None
    try:
        return OUIS.get(normalize_mac(mac)[:6])
    except MacError:
        return None


# -- DHCP vendor classes (option 60) ---------------------------------------------------------------

@dataclass(frozen=True)
class VendorClass:
    """One option-60 pattern.  ``family`` picks the provisioning URL where a vendor has several
    (Cisco SPA / MPP / ATA19x-MPP ask for different default files).  ``how``: ``prefix`` or
    ``suffix`` (ignoring one trailing NUL); case-sensitive, as DHCP servers compare bytes."""

    vendor: str
    family: str
    how: str
    text: str
    source: str

    def matches(self, vendor_class: str) -> bool:
        if self.how == "prefix":
            return vendor_class.startswith(self.text)
        return vendor_class.removesuffix("\0").endswith(self.text)


_W = "vendors.md (Wazo DHCP snippets)"
#: Order matters where patterns overlap: the first match wins.
VENDOR_CLASSES: tuple[VendorClass, ...] = (
    # Snom desk phones send "snom<model>" (snom300 ... snomD785, snomM300 ...) since 7.3.15.
    VendorClass("snom", "snom", "prefix", "snom", _W + " §4.1"),
    # Cisco MPP: "...CP-8841-3PCC" followed by a NUL ("suffix match, NUL-terminated").
    VendorClass("cisco", "mpp", "suffix", "-3PCC", _W + " §3b"),
    VendorClass("cisco", "ata-mpp", "prefix", "CISCO ATA191", _W + " §3b"),
    VendorClass("cisco", "ata-mpp", "prefix", "CISCO ATA192", _W + " §3b"),
    # Cisco Small Business / Linksys: "Cisco SPA504G", "Cisco Systems, Inc. IP Phone SPA504G",
    # "CISCO SPA112", "LINKSYS SPA-942".  (CISCO ATA190 is an enterprise ATA: not ours.)
    VendorClass("cisco", "spa", "prefix", "Cisco SPA", _W + " §3a"),
    VendorClass("cisco", "spa", "prefix", "CISCO SPA", _W + " §3a"),
    VendorClass("cisco", "spa", "prefix", "Cisco Systems, Inc. IP Phone SPA", _W + " §3a"),
    VendorClass("cisco", "spa", "prefix", "LINKSYS SPA", _W + " §3a"),
    # Wazo matches the exact "Gigaset_N720_DM_PRO"; the prefix is our generalisation (inferred).
    VendorClass("gigaset", "gigaset", "prefix", "Gigaset", _W + " §7"),
)


def vendor_classes_of(vendor: str) -> tuple[VendorClass, ...]:
    return tuple(vc for vc in VENDOR_CLASSES if vc.vendor == vendor)


def vendor_for_vendor_class(vendor_class: str | None) -> tuple[str, str] | None:
    """(vendor, family) for a DHCP option-60 string, else None."""
    if not vendor_class:
        return None
    for vc in VENDOR_CLASSES:
        if vc.matches(vendor_class):
            return vc.vendor, vc.family
    return None


# -- free text ----------------------------------------------------------------------------------

_FW = r"(?P<firmware>\d+(?:\.\d+){2,4}[\w()\-.]*)"


@dataclass(frozen=True)
class TextRule:
    """A pattern over descriptive text; named groups ``model`` and ``firmware`` are optional."""

    vendor: str
    pattern: re.Pattern[str]
    normalize: Callable[[str], str | None] = str.upper


def _rule(vendor: str, regex: str, normalize: Callable[[str], str | None] = str.upper) -> TextRule:
    return TextRule(vendor, re.compile(regex, re.IGNORECASE), normalize)


#: First match wins, so specific patterns come before general ones.  Sources:
#: * ``Linux HT8XX <kernel> ...`` — real Grandstream HT8xx SNMP capture (LibreNMS test data).
#:   "HT8XX" names the family only, so it yields no model.
#: * ``Linux SPA112 <kernel> ...`` — real SPA112 capture (LibreNMS test data); SPA122 assumed alike.
#: * ATA19x, Yealink, snom, Poly, Fanvil, Gigaset, Grandstream phones: *unverified* as sysDescr or
#:   mDNS names.  The patterns follow the HTTP/SIP User-Agent spellings in vendors.md
#:   ("Yealink SIP-T46G 28.72.0.1", "snomD785-SIP 10.1.33.33", "Fanvil X4 2.10.2.6887",
#:   "Gigaset N870 IP PRO/83.V2.43.0", "Grandstream GXP2135 1.0.7.97") and the vendors' model names.
TEXT_RULES: tuple[TextRule, ...] = (
    _rule("grandstream", r"\bHT8XX\b", lambda _: None),
    _rule("grandstream", r"\b(?P<model>HT8\d\d[A-Z]?)\b"),
    _rule("grandstream",
          r"\bGrandstream\b.*?\b(?P<model>(?:GXP|GRP|GXV|GXW|WP|DP|HT)\d{3,4}[A-Z]*)\b(?:.*?\b" + _FW + ")?"),
    _rule("cisco", r"\b(?P<model>ATA ?19[0-2])(?:\b|-)", lambda m: m.upper().replace(" ", "")),
    _rule("cisco", r"\b(?P<model>SPA ?\d{3}[A-Z0-9]*)\b", lambda m: m.upper().replace(" ", "")),
    _rule("cisco", r"\bCisco IP Phone (?P<model>CP-\d{4}[A-Z0-9-]*)"),
    _rule("yealink", r"\bYealink\b.*?\b(?P<model>(?:SIP-?)?(?:T|W|CP|VP|MP)\d{2,3}[A-Z]*)\b(?:.*?\b" + _FW + ")?"),
    _rule("snom", r"\bsnom ?(?P<model>D\d{3}|\d{3}|M\d{2,3}[A-Z]*|PA1)(?:-SIP)?\b(?:.*?\b" + _FW + ")?"),
    _rule("poly", r"\b(?:Polycom|Poly)\b.*?\b(?P<model>VVX ?\d{3}|CCX ?\d{3}|SoundPoint IP ?\d{3}|"
                  r"SoundStation IP ?\d{4}|Trio ?[A-Z0-9]+|Edge ?[BE]\d{3})\b(?:.*?\b" + _FW + ")?",
          lambda m: re.sub(r"\s+", "", m.upper())),
    _rule("fanvil", r"\bFanvil\b\s+(?P<model>[A-Z]+\d+[A-Z]*(?:[ -]Pro|-V2)?)\b(?:.*?\b" + _FW + ")?"),
    _rule("gigaset", r"\bGigaset\b\s+(?P<model>[NPC]\d{3}[A-Z]*(?: IP PRO| DM PRO)?|Maxwell ?\w*)"
                     r"(?:/(?P<firmware>[\w.+\-]+))?"),
    # A vendor name alone still tells the vendor.
    _rule("grandstream", r"\bGrandstream\b", lambda _: None),
    _rule("yealink", r"\bYealink\b", lambda _: None),
    _rule("snom", r"\bsnom\b", lambda _: None),
    _rule("poly", r"\b(?:Polycom|Poly)\b", lambda _: None),
    _rule("fanvil", r"\bFanvil\b", lambda _: None),
    _rule("gigaset", r"\bGigaset\b", lambda _: None),
    # No "Cisco alone" rule: most things that say Cisco (routers, switches) are not phones.
)


def match_text(text: str | None, vendor: str | None = None) -> tuple[str, str | None, str | None] | None:
    """(vendor, model, firmware) from the first rule matching ``text`` (only ``vendor``'s, if given)."""
    if not text:
        return None
    for rule in TEXT_RULES:
        if vendor is not None and rule.vendor != vendor:
            continue
        m = rule.pattern.search(text)
        if m:
            groups = m.groupdict()
            model = rule.normalize(groups["model"]) if groups.get("model") else None
            return rule.vendor, model, groups.get("firmware")
    return None
