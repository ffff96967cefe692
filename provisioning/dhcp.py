"""DHCP snippets for the technician: which options tell each vendor's phones where deskprov is.

``deskprov dhcp snippet --server isc|kea|dnsmasq`` prints :func:`render_snippet`'s output, to be
pasted into the customer's DHCP server.  One plan (:func:`dhcp_plan`) is rendered three ways, so
the three servers always hand out the same values.

Per vendor (vendors.md §1-7; ``<url>`` is deskprov's provisioning URL, files at its root):

=========== ================================ ==================================================
vendor      matched by                       options
=========== ================================ ==================================================
Yealink     OUI                              66 = ``<url>`` (the phone appends its file names)
Poly        OUI (its option 60 is RFC 3925)  66 and 160 = ``<url>``: the phone asks for
                                             ``<mac>.cfg`` (deskprov's per-device master), then
                                             ``000000000000.cfg``; naming the master (Wazo's
                                             ``…/000000000000.cfg``) would skip the first
Cisco SPA   option 60 "Cisco SPA…" & co      66 = ``<url>spa$PSN.cfg`` (its default profile rule)
Cisco MPP   option 60 "…-3PCC"               66 and 160 = ``<url>$PSN.xml``
Cisco ATA   option 60 "CISCO ATA191/192"     66 and 160 = ``<url>ata$PSN.cfg``
Cisco (any) OUI, no known option 60          with ``tftp_server`` only: 66 and 150 = that TFTP
                                             address; the default profile rule does the rest
Snom        option 60 "snom…" or OUI         66 = ``<url>``, and 43 carrying sub-option 66 =
                                             ``<url>`` (wins over plain 66 since fw 7.3.17/8.2.1)
Grandstream OUI                              66 = ``<url>`` (a folder)
Fanvil      OUI                              66 and 43 (a plain string, not sub-options, as
                                             Wazo sends it) = ``<url>$mac.cfg``
Gigaset     option 60 "Gigaset…" or OUI      114 = ``<url>`` (P82x: a folder; at most 74
                                             characters), 66 = host/path without the scheme
                                             (the N510 builds ``http://<66>/<MAC>.xml``)
=========== ================================ ==================================================

With ``tftp_server`` every Cisco class also gets option 150 (Cisco's TFTP server list).

Whether a server sends an option the client did not ask for (parameter request list) is the
server's usual policy; phones ask for the options they use.

Checked (tests/discovery/test_dhcp.py) against ISC dhcpd 4.4.3, Kea 2.2.0 and dnsmasq 2.90 from
Debian 12: each accepts its snippet (``dhcpd -t``, ``kea-dhcp4 -t``, ``dnsmasq --test``) and, run
in a private network namespace, offers every test phone the same values.  Two details on the wire:
dnsmasq NUL-terminates option 66, and ends option 43's sub-options with an END byte.  ISC's
option-60 tests go through ``pick-first-value(..., "")`` because a missing option makes a
comparison null, and ``null or X`` is null (dhcp-eval(5)): without it, an OUI match would fail
for every phone that sends no vendor class.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field

from provisioning.discovery.fingerprints import VendorClass, ouis_of, vendor_classes_of

__all__ = ["SERVERS", "DhcpClass", "DhcpOption", "DhcpSnippetError", "dhcp_plan", "render_snippet"]

SERVERS = ("isc", "kea", "dnsmasq")
#: Gigaset: "DHCP option 114 (URL, at most 74 characters)" (vendors.md §7).
GIGASET_114_MAX = 74
PREFIX = "deskprov"


class DhcpSnippetError(ValueError):
    """The URL or TFTP address can't be put into a DHCP option."""


@dataclass(frozen=True)
class DhcpOption:
    """One option (``sub`` set: sub-option ``sub`` inside option ``code``, i.e. 43)."""

    code: int
    value: str | tuple[str, ...]
    kind: str = "text"  # "text" | "ip-list"
    sub: int | None = None


@dataclass(frozen=True)
class DhcpClass:
    """Devices that get the same options.  Members: any ``vendor_classes`` match, or (when
    ``ouis``) any OUI, but never a member of a class named in ``unless``."""

    name: str
    vendor: str
    title: str
    options: tuple[DhcpOption, ...]
    vendor_classes: tuple[VendorClass, ...] = ()
    ouis: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def _check_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DhcpSnippetError(f"provisioning URL must be http(s)://host/...: {url!r}")
    if any(c in url for c in '"\\\r\n\0\'`') or any(ord(c) < 32 or ord(c) > 126 for c in url):
        raise DhcpSnippetError(f"provisioning URL has characters a DHCP config can't quote: {url!r}")
    if parts.query or parts.fragment:
        raise DhcpSnippetError(f"provisioning URL must not have a query or fragment: {url!r}")
    return url.rstrip("/") + "/"


def dhcp_plan(url: str, *, tftp_server: str | None = None,
              vendors: Iterable[str] | None = None) -> list[DhcpClass]:
    """The classes and options for deskprov at ``url`` (plus Cisco's TFTP at ``tftp_server``)."""
    base = _check_url(url)
    if tftp_server is not None:
        try:
            if ipaddress.ip_address(tftp_server).version != 4:
                raise ValueError
        except ValueError:
            raise DhcpSnippetError(f"TFTP server must be an IPv4 address: {tftp_server!r}") from None
    wanted = set(vendors) if vendors is not None else None
    no_scheme = base.split("://", 1)[1].rstrip("/")
    tftp = (DhcpOption(150, (tftp_server,), "ip-list"),) if tftp_server else ()
    cisco_vc = vendor_classes_of("cisco")

    def family(name: str) -> tuple[VendorClass, ...]:
        return tuple(vc for vc in cisco_vc if vc.family == name)

    classes = [
        DhcpClass(f"{PREFIX}-yealink", "yealink", "Yealink (by MAC OUI)",
                  (DhcpOption(66, base),), ouis=ouis_of("yealink")),
        DhcpClass(f"{PREFIX}-poly", "poly", "Poly/Polycom (by MAC OUI)",
                  (DhcpOption(66, base), DhcpOption(160, base)), ouis=ouis_of("poly")),
        DhcpClass(f"{PREFIX}-cisco-spa", "cisco", "Cisco SPA / Linksys (by vendor class)",
                  (DhcpOption(66, base + "spa$PSN.cfg"),) + tftp, vendor_classes=family("spa")),
        DhcpClass(f"{PREFIX}-cisco-mpp", "cisco", "Cisco Multiplatform phones (by vendor class)",
                  (DhcpOption(66, base + "$PSN.xml"), DhcpOption(160, base + "$PSN.xml")) + tftp,
                  vendor_classes=family("mpp")),
        DhcpClass(f"{PREFIX}-cisco-ata", "cisco", "Cisco ATA191/192 MPP (by vendor class)",
                  (DhcpOption(66, base + "ata$PSN.cfg"), DhcpOption(160, base + "ata$PSN.cfg")) + tftp,
                  vendor_classes=family("ata-mpp")),
    ]
    if tftp_server:
        classes.append(DhcpClass(
            f"{PREFIX}-cisco-other", "cisco", "Other Cisco devices (by MAC OUI): TFTP with the default profile rule",
            (DhcpOption(66, tftp_server), DhcpOption(150, (tftp_server,), "ip-list")),
            ouis=ouis_of("cisco"),
            unless=(f"{PREFIX}-cisco-spa", f"{PREFIX}-cisco-mpp", f"{PREFIX}-cisco-ata")))
    classes += [
        DhcpClass(f"{PREFIX}-snom", "snom", "Snom (by vendor class or MAC OUI)",
                  (DhcpOption(66, base), DhcpOption(43, base, sub=66)),
                  vendor_classes=vendor_classes_of("snom"), ouis=ouis_of("snom")),
        DhcpClass(f"{PREFIX}-grandstream", "grandstream", "Grandstream (by MAC OUI)",
                  (DhcpOption(66, base),), ouis=ouis_of("grandstream")),
        DhcpClass(f"{PREFIX}-fanvil", "fanvil", "Fanvil (by MAC OUI)",
                  (DhcpOption(66, base + "$mac.cfg"), DhcpOption(43, base + "$mac.cfg")),
                  ouis=ouis_of("fanvil")),
    ]
    gigaset_notes = ()
    if len(base) > GIGASET_114_MAX:
        gigaset_notes = (f"the URL is {len(base)} characters; Gigaset reads at most {GIGASET_114_MAX} "
                         f"from option 114",)
    classes.append(DhcpClass(f"{PREFIX}-gigaset", "gigaset", "Gigaset (by vendor class or MAC OUI)",
                             (DhcpOption(114, base), DhcpOption(66, no_scheme)),
                             vendor_classes=vendor_classes_of("gigaset"), ouis=ouis_of("gigaset"),
                             notes=gigaset_notes))
    if wanted is not None:
        unknown = wanted - {c.vendor for c in classes}
        if unknown:
            raise DhcpSnippetError(f"no DHCP snippet for vendor(s) {', '.join(sorted(unknown))}")
        classes = [c for c in classes if c.vendor in wanted]
    return classes


def render_snippet(server: str, url: str, *, tftp_server: str | None = None,
                   vendors: Iterable[str] | None = None) -> str:
    """The snippet for ``server`` (one of :data:`SERVERS`) as text ending in a newline."""
    plan = dhcp_plan(url, tftp_server=tftp_server, vendors=vendors)
    try:
        renderer = {"isc": _isc, "kea": _kea, "dnsmasq": _dnsmasq}[server]
    except KeyError:
        raise DhcpSnippetError(f"unknown DHCP server {server!r}: one of {', '.join(SERVERS)}") from None
    return renderer(plan, url)


def _quote(text: str) -> str:
    return '"' + text + '"'  # _check_url already refused anything needing escapes


def _colon_hex(hexdigits: str) -> str:
    return ":".join(hexdigits[i:i + 2] for i in range(0, len(hexdigits), 2))


# -- ISC dhcpd --------------------------------------------------------------------------------

_ISC_VCI = "pick-first-value(option vendor-class-identifier, \"\")"  # never null: see dhcp-eval(5)
_ISC_NAMES = {66: "tftp-server-name", 43: "vendor-encapsulated-options", 114: "default-url",
              150: f"{PREFIX}-cisco-tftp-servers", 160: f"{PREFIX}-provisioning-server"}


def _isc_vc(vc: VendorClass) -> str:
    if vc.how == "prefix":
        return f'substring({_ISC_VCI}, 0, {len(vc.text)}) = {_quote(vc.text)}'
    # "suffix": Cisco MPP's "...-3PCC" ends the string, with or without a trailing NUL.
    text_hex = vc.text.encode().hex()
    return (f"suffix({_ISC_VCI}, {len(vc.text)}) = {_quote(vc.text)} or "
            f"suffix({_ISC_VCI}, {len(vc.text) + 1}) = {_colon_hex(text_hex + '00')}")


def _isc_match(cls: DhcpClass, by_name: dict[str, DhcpClass]) -> str:
    terms = [_isc_vc(vc) for vc in cls.vendor_classes]
    terms += [f"substring(hardware, 1, 3) = {_colon_hex(oui)}" for oui in cls.ouis]
    cond = "\n        or ".join(terms)
    if cls.unless:
        other = " or ".join(_isc_vc(vc) for name in cls.unless for vc in by_name[name].vendor_classes)
        cond = f"({cond})\n        and not ({other})"
    return cond


def _isc(plan: list[DhcpClass], url: str) -> str:
    by_name = {c.name: c for c in plan}
    codes = {o.code for c in plan for o in c.options}
    out = [f"# deskprov: provisioning options for desk phones at {url}",
           "# ISC dhcpd: paste at global scope, or into the subnet/shared-network of the phones.",
           "# Generated by `deskprov dhcp snippet --server isc`."]
    if 150 in codes:
        out.append(f"option {_ISC_NAMES[150]} code 150 = array of ip-address;")
    if 160 in codes:
        out.append(f"option {_ISC_NAMES[160]} code 160 = text;")
    if any(o.sub is not None for c in plan for o in c.options):
        out += [f"option space {PREFIX}-snom code width 1 length width 1;",
                f"option {PREFIX}-snom.setting-server code 66 = text;"]
    for cls in plan:
        out += ["", f"# {cls.title}"] + [f"# NOTE: {n}" for n in cls.notes]
        out.append(f'class "{cls.name}" {{')
        out.append(f"  match if {_isc_match(cls, by_name)};")
        for opt in cls.options:
            if opt.sub is not None:
                out.append(f"  vendor-option-space {PREFIX}-snom;")
                out.append(f"  option {PREFIX}-snom.setting-server {_quote(opt.value)};")
            elif opt.kind == "ip-list":
                out.append(f"  option {_ISC_NAMES[opt.code]} {', '.join(opt.value)};")
            else:
                out.append(f"  option {_ISC_NAMES[opt.code]} {_quote(opt.value)};")
        out.append("}")
    return "\n".join(out) + "\n"


# -- Kea --------------------------------------------------------------------------------------

def _kea_vc(vc: VendorClass) -> str:
    if vc.how == "prefix":
        return f"substring(option[60].text, 0, {len(vc.text)}) == '{vc.text}'"
    return (f"substring(option[60].text, -{len(vc.text)}, all) == '{vc.text}' or "
            f"substring(option[60].hex, -{len(vc.text) + 1}, all) == 0x{vc.text.encode().hex()}00")


def _kea(plan: list[DhcpClass], url: str) -> str:
    option_defs = []
    codes = {o.code for c in plan for o in c.options}
    if 150 in codes:
        option_defs.append({"name": f"{PREFIX}-cisco-tftp-servers", "code": 150, "type": "ipv4-address",
                            "array": True, "space": "dhcp4"})
    if 160 in codes:
        option_defs.append({"name": f"{PREFIX}-provisioning-server", "code": 160, "type": "string",
                            "space": "dhcp4"})
    if any(o.sub is not None for c in plan for o in c.options):
        option_defs.append({"name": "setting-server", "code": 66, "type": "string", "space": f"{PREFIX}-snom"})
    classes = []
    for cls in plan:
        terms = [_kea_vc(vc) for vc in cls.vendor_classes]
        terms += [f"substring(pkt4.mac, 0, 3) == 0x{oui}" for oui in cls.ouis]
        test = " or ".join(f"({t})" if " or " in t else t for t in terms)
        if cls.unless:
            test = f"({test}) and not ({' or '.join(f'member({n!r})' for n in cls.unless)})"
        entry: dict = {"name": cls.name, "test": test, "comment": cls.title + "".join(f"; NOTE: {n}" for n in cls.notes)}
        data: list[dict] = []
        has_sub = any(o.sub is not None for o in cls.options)
        has_raw43 = any(o.code == 43 and o.sub is None for o in cls.options)
        if has_sub:
            # Kea allows a class-level definition of option 43 only: this is what makes 43 carry
            # sub-options for Snom and a plain string for Fanvil in one configuration.
            entry["option-def"] = [{"name": "vendor-encapsulated-options", "code": 43, "type": "empty",
                                    "encapsulate": f"{PREFIX}-snom"}]
            data.append({"name": "vendor-encapsulated-options"})
        elif has_raw43:
            entry["option-def"] = [{"name": "vendor-encapsulated-options", "code": 43, "type": "string"}]
        for opt in cls.options:
            if opt.sub is not None:
                data.append({"name": "setting-server", "space": f"{PREFIX}-snom", "data": opt.value})
            elif opt.code == 150:
                data.append({"name": f"{PREFIX}-cisco-tftp-servers", "data": ", ".join(opt.value)})
            elif opt.code == 160:
                data.append({"name": f"{PREFIX}-provisioning-server", "data": opt.value})
            elif opt.code == 66:
                data.append({"name": "tftp-server-name", "data": opt.value})
            elif opt.code == 43:
                data.append({"name": "vendor-encapsulated-options", "data": opt.value})
            else:  # 114: standard in Kea (a string), so by code
                data.append({"code": opt.code, "data": opt.value})
        entry["option-data"] = data
        classes.append(entry)
    doc = {"Dhcp4": {"option-def": option_defs, "client-classes": classes}}
    header = {"comment": f"deskprov: provisioning options for desk phones at {url}. Merge option-def and "
                         "client-classes into your Dhcp4 configuration. Generated by "
                         "`deskprov dhcp snippet --server kea`."}
    doc["Dhcp4"] = {**header, **doc["Dhcp4"]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# -- dnsmasq ----------------------------------------------------------------------------------

def _dnsmasq(plan: list[DhcpClass], url: str) -> str:
    out = [f"# deskprov: provisioning options for desk phones at {url}",
           "# dnsmasq: add to dnsmasq.conf or a file in /etc/dnsmasq.d/.",
           "# Generated by `deskprov dhcp snippet --server dnsmasq`.",
           "# dhcp-vendorclass matches a substring of the client's vendor class (option 60)."]
    for cls in plan:
        out += ["", f"# {cls.title}"] + [f"# NOTE: {n}" for n in cls.notes]
        # (a prefix or suffix pattern becomes a substring match here: close enough for these strings)
        out += [f"dhcp-vendorclass=set:{cls.name},{_quote(vc.text)}" for vc in cls.vendor_classes]
        out += [f"dhcp-mac=set:{cls.name},{_colon_hex(oui)}:*:*:*" for oui in cls.ouis]
        tags = f"tag:{cls.name}" + "".join(f",tag:!{n}" for n in cls.unless)
        for opt in cls.options:
            if opt.sub is not None:
                # "vendor:<class>" encapsulates into option 43 for clients whose vendor class
                # contains <class>: exactly Snom's sub-option form.
                vc = cls.vendor_classes[0].text
                out.append(f"dhcp-option={tags},vendor:{vc},{opt.sub},{_quote(opt.value)}")
            elif opt.kind == "ip-list":
                out.append(f"dhcp-option={tags},{opt.code},{','.join(opt.value)}")
            else:
                out.append(f"dhcp-option={tags},{opt.code},{_quote(opt.value)}")
    return "\n".join(out) + "\n"
