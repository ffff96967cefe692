"""SNMP discovery: ask hosts on the LAN what they are, and turn the answers into sightings.

:func:`scan` probes each target with SNMP v2c (community) or v3 (USM) and reads the system group
(``sysDescr``, ``sysObjectID``, ``sysName``), the first real MAC in the interface table
(``ifPhysAddress``) and a few vendor objects that carry model and firmware (ENTITY-MIB model name
and software revision, Grandstream's HT8xx firmware version, Yealink's phone objects).
:func:`identify` turns those into (vendor, model, firmware) from a small table of ``sysDescr``
patterns, enterprise numbers and, as a last resort, the MAC's OUI.

Why the shape:

* One :class:`~pysnmp.hlapi.v3arch.asyncio.SnmpEngine` per scan (building one costs ~0.1 s and it is
  bound to the running loop); all requests share its one UDP socket.
* Silent, slow and garbage-spewing hosts are the normal case on a LAN (most phones ship with SNMP
  off), so every host gets a hard time budget and never raises: a host that does not answer the
  first GET costs ``timeout * (retries + 1)``, one that answers and then stalls at most twice that.
  A scan of N silent hosts at concurrency C takes about ``ceil(N / C) * timeout``, plus pysnmp's
  bookkeeping: ~4 ms of CPU per target (one SNMP-TARGET-MIB row written and dropped), so keep
  ``concurrency * 4 ms`` well under ``timeout`` (the defaults, 32 and 1 s, spend ~13 %).
* Packets go to the given targets only: hostnames are refused (no DNS), and networks larger than a
  /16 are refused before anything is sent.

Enterprise numbers (IANA PENs), checked against Wireshark's ``enterprises.tsv`` (Debian
``libwireshark-data`` 4.0.17, generated from the IANA registry): Cisco 9, Linksys 3955 (Cisco
Small Business), snom 7526, net-snmp 8072, Polycom 13885, Gigaset 32775, Yealink 37459,
Grandstream 42397, Fanvil 59440.  The ``sysDescr``/OID formats and their sources are listed at
:data:`provisioning.discovery.fingerprints.TEXT_RULES` and :data:`_PRODUCT_OIDS`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import ipaddress
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config as snmp_config
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
)
from pysnmp.proto import errind, rfc1902, rfc1905
from pysnmp.proto.api import verdec

from provisioning.discovery.fingerprints import TEXT_RULES, match_text, vendor_for_mac
from provisioning.discovery.sighting import Sighting
from provisioning.mac import MacError, normalize_mac

__all__ = ["SnmpResult", "V3Credentials", "expand_targets", "identify", "scan"]

log = logging.getLogger(__name__)

#: Networks with more addresses than this are refused (a /16 of IPv4).
MAX_NETWORK_ADDRESSES = 1 << 16
#: How many ``ifPhysAddress`` rows to look at before giving up on finding a MAC.
MAX_IF_ROWS = 32

# -- OIDs ---------------------------------------------------------------------------------------

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
IF_PHYS_ADDRESS = "1.3.6.1.2.1.2.2.1.6"  # ifTable column; rows are ifPhysAddress.<ifIndex>
#: Read with GET together with the system group; agents without them answer noSuchObject.
#: Yealink's phone objects are *under mib-2* (1.3.6.1.2.1.37459 — sic), per a Yealink-OEM admin
#: guide (Matrix SPARSH VP110 user guide, SNMP section, which also says those phones answer GET
#: only); not checked against a Yealink.
_GET_EXTRA = {
    "yealink_firmware": "1.3.6.1.2.1.37459.2.1.5.0",
    "yealink_model": "1.3.6.1.2.1.37459.2.1.7.0",
    "yealink_mac": "1.3.6.1.2.1.37459.2.1.8.0",
}
#: Read with GETNEXT (as GETBULK non-repeaters): the first instance under each column/subtree,
#: whatever its index.  ENTITY-MIB entPhysicalEntry columns 13 (ModelName) and 10 (SoftwareRev);
#: Grandstream GS-HT8XX-MIB ``versionProg`` (42397.1.2.3.4; a real HT8xx answers with a ``.0.0``
#: instance, hence GETNEXT rather than GET).
_NEXT_EXTRA = {
    "ent_model": "1.3.6.1.2.1.47.1.1.1.1.13",
    "ent_software_rev": "1.3.6.1.2.1.47.1.1.1.1.10",
    "grandstream_firmware": "1.3.6.1.4.1.42397.1.2.3.4",
}

# -- identification tables ----------------------------------------------------------------------

ENTERPRISE = "1.3.6.1.4.1."
#: IANA private enterprise number -> vendor plugin name (verified, see the module docstring).
_ENTERPRISES: dict[int, str] = {
    9: "cisco",
    3955: "cisco",  # Linksys, whose SPA/PAP line became Cisco Small Business
    7526: "snom",
    13885: "poly",
    32775: "gigaset",
    37459: "yealink",
    42397: "grandstream",
    59440: "fanvil",
}

#: sysObjectID (exact, or prefix ending in ".") -> (vendor, model or a function of the rest).
#: * 42397.1.2.<801|802|812|814>: product OIDs in Grandstream's GS-HT8XX-MIB (the MIB is public;
#:   whether current HT8xx firmware reports them as sysObjectID is *unverified* — a 2017 capture
#:   showed net-snmp's 8072.3.2.10 instead, which leaves the model to other clues).
#: * 9.6.1.23.1.1.1.3: a real SPA112 (public capture, LibreNMS test data).  9.6.1.23.1.1 is the
#:   Cisco Small Business voice branch (LibreNMS/Observium OS definitions).
_PRODUCT_OIDS: tuple[tuple[str, str, Callable[[str], str | None]], ...] = (
    ("1.3.6.1.4.1.42397.1.2.", "grandstream", lambda rest: f"HT{rest}" if re.fullmatch(r"8\d\d", rest) else None),
    ("1.3.6.1.4.1.9.6.1.23.1.1.1.3", "cisco", lambda rest: "SPA112"),
    ("1.3.6.1.4.1.9.6.1.23.1.1.", "cisco", lambda rest: None),
)

# sysDescr patterns and the OUI table are shared with the other identifiers (mDNS, inbox, DHCP):
# see provisioning/discovery/fingerprints.py.
_DESCR_RULES = TEXT_RULES
_match_rules = match_text


def identify(sys_descr: str | None, sys_object_id: str | None, sys_name: str | None, mac: str | None,
             extra: Mapping[str, str] | None = None) -> tuple[str | None, str | None, str | None]:
    """(vendor, model, firmware) from what an SNMP agent said; ``None`` for whatever is unknown.

    Order of trust: the enterprise number in ``sysObjectID`` and a per-product OID, then
    ``sysDescr`` patterns, then vendor objects in ``extra`` (keys as in ``SnmpResult.extra``:
    ``ent_model``, ``ent_software_rev``, ``grandstream_firmware``, ``yealink_model`` ...), and for
    the vendor alone, the MAC's OUI.  ``sys_name`` is accepted for completeness but not trusted:
    it is whatever the admin typed.
    """
    extra = extra or {}
    vendor = model = firmware = None
    oid = (sys_object_id or "").strip().lstrip(".")
    if oid.startswith(ENTERPRISE):
        pen = oid[len(ENTERPRISE):].split(".", 1)[0]
        vendor = _ENTERPRISES.get(int(pen)) if pen.isascii() and pen.isdigit() and len(pen) <= 10 else None
        for prefix, owner, to_model in _PRODUCT_OIDS:
            if oid == prefix or (prefix.endswith(".") and oid.startswith(prefix)):
                vendor, model = owner, to_model(oid[len(prefix):])
                break
    found = _match_rules(sys_descr, vendor)
    if found is None and vendor is None:
        found = _match_rules(sys_descr, None)
    if found:
        vendor = vendor or found[0]
        model = model or found[1]
        firmware = found[2]
    if vendor is None and extra.get("yealink_model"):
        vendor = "yealink"
    if vendor == "yealink":
        model = model or _clean(extra.get("yealink_model"))
        firmware = firmware or _clean(extra.get("yealink_firmware"))
    if vendor == "grandstream":
        firmware = firmware or _clean(extra.get("grandstream_firmware"))
    ent_model = _clean(extra.get("ent_model"))
    if ent_model and model is None:
        by_name = _match_rules(ent_model, vendor)
        if by_name:
            vendor = vendor or by_name[0]
            model = by_name[1] or ent_model
        else:
            model = ent_model
    firmware = firmware or _clean(extra.get("ent_software_rev"))
    if vendor is None and mac:
        vendor = vendor_for_mac(mac)
    return vendor, model, firmware


def _clean(text: str | None) -> str | None:
    text = (text or "").strip().strip("\x00").strip()
    return text or None


# -- public types -------------------------------------------------------------------------------

_AUTH = {"SHA": snmp_config.USM_AUTH_HMAC96_SHA, "MD5": snmp_config.USM_AUTH_HMAC96_MD5,
         "SHA256": snmp_config.USM_AUTH_HMAC192_SHA256, "SHA512": snmp_config.USM_AUTH_HMAC384_SHA512}
_PRIV = {"AES": snmp_config.USM_PRIV_CFB128_AES, "DES": snmp_config.USM_PRIV_CBC56_DES,
         "AES256": snmp_config.USM_PRIV_CFB256_AES}


@dataclass(frozen=True)
class V3Credentials:
    """SNMPv3 USM user.  No auth protocol = noAuthNoPriv; auth without priv = authNoPriv.

    Keys are passphrases (USM requires at least 8 characters).  Protocols: auth SHA (SHA-1), MD5,
    SHA256, SHA512; priv AES (AES-128-CFB), DES, AES256.  Privacy needs the ``cryptography`` package.
    """

    user: str
    auth_protocol: str | None = "SHA"
    auth_key: str | None = None
    priv_protocol: str | None = "AES"
    priv_key: str | None = None

    def __post_init__(self) -> None:
        if not self.user:
            raise ValueError("SNMPv3 user name is empty")
        if self.auth_protocol is not None:
            if self.auth_protocol.upper() not in _AUTH:
                raise ValueError(f"unknown auth protocol {self.auth_protocol!r} (one of {', '.join(_AUTH)})")
            if not self.auth_key or len(self.auth_key) < 8:
                raise ValueError("SNMPv3 auth key must be at least 8 characters")
        if self.priv_protocol is not None:
            if self.auth_protocol is None:
                raise ValueError("SNMPv3 privacy needs authentication too")
            if self.priv_protocol.upper() not in _PRIV:
                raise ValueError(f"unknown priv protocol {self.priv_protocol!r} (one of {', '.join(_PRIV)})")
            if not self.priv_key or len(self.priv_key) < 8:
                raise ValueError("SNMPv3 priv key must be at least 8 characters")
            if importlib.util.find_spec("cryptography") is None:  # pysnmp's ciphers come from there
                raise RuntimeError("SNMPv3 privacy (AES/DES) needs the 'cryptography' package installed")

    def auth_data(self) -> UsmUserData:
        auth = _AUTH[self.auth_protocol.upper()] if self.auth_protocol else snmp_config.USM_AUTH_NONE
        priv = _PRIV[self.priv_protocol.upper()] if self.priv_protocol else snmp_config.USM_PRIV_NONE
        return UsmUserData(self.user, self.auth_key if self.auth_protocol else None,
                           self.priv_key if self.priv_protocol else None, authProtocol=auth, privProtocol=priv)

    def __repr__(self) -> str:  # keep keys out of logs
        return (f"V3Credentials(user={self.user!r}, auth_protocol={self.auth_protocol!r}, "
                f"priv_protocol={self.priv_protocol!r})")


@dataclass
class SnmpResult:
    """What one target said (or why it said nothing useful).

    ``ok`` means the agent answered the system-group GET; ``error`` may still be set then (a later
    request failed; the values read so far are kept).  ``extra`` holds the vendor objects read,
    keyed as in :data:`_GET_EXTRA` / :data:`_NEXT_EXTRA`.  ``sighting`` is set whenever ``ok``.
    """

    ip: str
    port: int
    ok: bool = False
    error: str | None = None
    sys_descr: str | None = None
    sys_object_id: str | None = None
    sys_name: str | None = None
    mac: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    elapsed: float = 0.0
    sighting: Sighting | None = None


# -- targets ------------------------------------------------------------------------------------

#: What :func:`scan` accepts per target (a 2-tuple's first item may also be a network).
Target = (str | tuple[str, int] | ipaddress.IPv4Address | ipaddress.IPv6Address
          | ipaddress.IPv4Network | ipaddress.IPv6Network)


def _addresses(spec: Any) -> list[str]:
    """The host addresses one target spec stands for; refuses names and oversized networks."""
    if isinstance(spec, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return [str(spec)]
    if isinstance(spec, str) and "/" not in spec:
        try:
            return [str(ipaddress.ip_address(spec.strip()))]
        except ValueError:
            raise ValueError(f"not an IP address or network: {spec!r} (host names are not resolved)") from None
    try:
        net = spec if isinstance(spec, (ipaddress.IPv4Network, ipaddress.IPv6Network)) else \
            ipaddress.ip_network(str(spec).strip(), strict=False)
    except ValueError:
        raise ValueError(f"not an IP network: {spec!r}") from None
    if net.num_addresses > MAX_NETWORK_ADDRESSES:
        raise ValueError(f"refusing to scan {net} ({net.num_addresses} addresses): networks larger than "
                         f"a /16 ({MAX_NETWORK_ADDRESSES} addresses) are not scanned")
    if net.version == 4 and net.prefixlen < 31:
        # Network and broadcast addresses are not hosts.
        return [str(ipaddress.IPv4Address(i)) for i in range(int(net.network_address) + 1, int(net.broadcast_address))]
    return [str(a) for a in net]


def expand_targets(targets: Iterable[Target] | Target, port: int = 161) -> list[tuple[str, int]]:
    """``(ip, port)`` pairs, in order and without duplicates, from IPs, ``(ip|cidr, port)`` and CIDRs.

    Raises ``ValueError`` before anything is sent if any target is a host name, malformed, or a
    network larger than a /16.
    """
    if isinstance(targets, (str, ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network,
                            ipaddress.IPv6Network)) or (isinstance(targets, tuple) and len(targets) == 2
                                                        and isinstance(targets[1], int)):
        targets = [targets]  # one target given bare
    out: dict[tuple[str, int], None] = {}
    for spec in targets:
        target_port = port
        if isinstance(spec, tuple):
            if len(spec) != 2:
                raise ValueError(f"target tuple must be (ip, port): {spec!r}")
            spec, target_port = spec
        if not isinstance(target_port, int) or not 0 < target_port < 65536:
            raise ValueError(f"port out of range: {target_port!r}")
        for ip in _addresses(spec):
            out[(ip, target_port)] = None
    return list(out)


# -- the scanner --------------------------------------------------------------------------------


class _Listener:
    """Counts datagrams per source address, and those that are not SNMP at all (garbage)."""

    def __init__(self) -> None:
        self.datagrams: dict[tuple[str, int], int] = {}
        self.garbage: dict[tuple[str, int], int] = {}

    def note(self, address: Any, datagram: bytes) -> None:
        key = (str(address[0]), int(address[1]))
        self.datagrams[key] = self.datagrams.get(key, 0) + 1
        try:
            verdec.decode_message_version(datagram)
        except Exception:  # ProtocolError, or whatever pyasn1 raises on bytes that are not BER
            self.garbage[key] = self.garbage.get(key, 0) + 1

    def forget(self, ip: str, port: int) -> None:
        self.datagrams.pop((ip, port), None)
        self.garbage.pop((ip, port), None)


def _listening(base: type, listener: _Listener) -> Any:
    class Listening(base):  # type: ignore[misc, valid-type]
        def datagram_received(self, datagram, transportAddress):
            listener.note(transportAddress, datagram)
            super().datagram_received(datagram, transportAddress)

    return Listening()


class _Udp4Target(UdpTransportTarget):
    """A target for an address already validated as an IP literal: no resolver, no executor.

    pysnmp resolves through ``loop.getaddrinfo`` (a thread-pool round trip per target), which with
    hundreds of targets in flight delays the requests by most of a second.
    """

    async def _resolve_address(self, transportAddr):
        return str(transportAddr[0]), int(transportAddr[1])


class _Udp6Target(Udp6TransportTarget):
    """IPv6 twin of :class:`_Udp4Target` (socket address tuples are 4 long for AF_INET6)."""

    async def _resolve_address(self, transportAddr):
        return str(transportAddr[0]), int(transportAddr[1]), 0, 0


_AUTH_ERRORS = (errind.WrongDigest, errind.UnknownUserName, errind.UnsupportedSecurityLevel,
                errind.DecryptionError, errind.AuthenticationError, errind.AuthenticationFailure,
                errind.UnknownSecurityName, errind.NotInTimeWindow, errind.UnknownEngineID)


def _text(value: Any) -> str | None:
    """Printable text of a varbind value; ``None`` for the noSuch*/endOfMibView exceptions."""
    if value is None or isinstance(value, (rfc1905.NoSuchObject, rfc1905.NoSuchInstance, rfc1905.EndOfMibView)):
        return None
    if isinstance(value, rfc1902.ObjectIdentifier):
        return str(value)
    if isinstance(value, rfc1902.OctetString):
        return value.asOctets().decode("utf-8", "replace").strip("\x00").strip()
    return value.prettyPrint()


def _mac_from(value: Any) -> str | None:
    """A device MAC from an ifPhysAddress-like value: 6 raw octets, or text some agents send."""
    if value is None or isinstance(value, (rfc1905.NoSuchObject, rfc1905.NoSuchInstance, rfc1905.EndOfMibView)):
        return None
    if isinstance(value, rfc1902.OctetString):
        raw = value.asOctets()
        if len(raw) == 6:
            candidate = raw.hex()
        else:
            candidate = raw.decode("ascii", "replace").strip()
    else:
        candidate = str(value)
    try:
        return normalize_mac(candidate)
    except MacError:
        return None  # empty (loopback), all-zero, multicast or not a MAC: try the next row


def _under(name: Any, prefix: tuple[int, ...]) -> bool:
    oid = tuple(name)
    return len(oid) > len(prefix) and oid[: len(prefix)] == prefix


def _oid_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


class _Scan:
    """State shared by one scan's probes: the engine, credentials and timing."""

    def __init__(self, engine: SnmpEngine, listener: _Listener, community: str, v3: V3Credentials | None,
                 timeout: float, retries: int):
        self.engine = engine
        self.listener = listener
        self.auth = v3.auth_data() if v3 else CommunityData(community, mpModel=1)
        self.version = "v3" if v3 else "v2c"
        self.timeout = timeout
        self.retries = retries
        self.request_budget = timeout * (retries + 1)

    def _silence(self, ip: str, port: int) -> str:
        key = (ip, port)
        garbage, seen = self.listener.garbage.get(key, 0), self.listener.datagrams.get(key, 0)
        waited = f"{self.request_budget:g} s"
        if garbage:
            return f"garbage: {garbage} undecodable datagram(s) from the host, no SNMP answer within {waited}"
        if seen:
            return f"no matching SNMP answer within {waited} ({seen} late or unmatched datagram(s) received)"
        if self.version == "v2c":
            return f"timeout: no answer within {waited} (host down, SNMP off, filtered, or wrong community)"
        return f"timeout: no answer within {waited} (host down, SNMP off or filtered)"

    def _describe(self, indication: Any, ip: str, port: int) -> str:
        if isinstance(indication, errind.RequestTimedOut):
            return self._silence(ip, port)
        if isinstance(indication, _AUTH_ERRORS):
            return f"auth failure: {indication}"
        return f"snmp error: {indication}"

    async def probe(self, ip: str, port: int) -> SnmpResult:
        """Never raises (except cancellation): every failure becomes ``error`` on the result."""
        result = SnmpResult(ip=ip, port=port)
        started = time.monotonic()
        try:
            # Hard cap against anything pysnmp might leave hanging: both phases plus slack.
            async with asyncio.timeout(2 * self.request_budget + 1.0):
                await self._probe(result)
        except TimeoutError:
            result.error = result.error or self._silence(ip, port)
        except Exception as exc:  # noqa: BLE001 - a scan reports, it does not crash on one host
            log.exception("SNMP probe of %s:%s failed", ip, port)
            result.error = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            self._forget(ip, port)
        result.elapsed = time.monotonic() - started
        if result.ok:
            try:
                result.sighting = self._sighting(result)
            except ValueError as exc:  # e.g. a value the Sighting refuses; report, do not crash
                result.error = f"unusable answer: {exc}"
        return result

    def _forget(self, ip: str, port: int) -> None:
        """Drop the target row pysnmp's hlapi added for this host.

        hlapi configures one SNMP-TARGET-MIB row per transport address and never removes it: about
        20 kB each, which for a /16 sweep would be over a gigabyte.  The rows live in the engine's
        user context under the configurator's class name (pysnmp 7.1); if that ever changes, this
        quietly does nothing.
        """
        self.listener.forget(ip, port)
        try:
            cache = self.engine.get_user_context("CommandGeneratorLcdConfigurator")
            rows = cache.get("addr") if isinstance(cache, dict) else None
            if not rows:
                return
            for key in [k for k in rows if len(k) > 2 and tuple(k[2])[:2] == (ip, port)]:
                addr_name, _use_count = rows.pop(key)
                snmp_config.delete_target_address(self.engine, addr_name)
        except Exception:  # noqa: BLE001 - housekeeping must not turn a result into an error
            log.debug("could not drop the pysnmp target row of %s:%s", ip, port, exc_info=True)

    async def _probe(self, result: SnmpResult) -> None:
        ip, port = result.ip, result.port
        target_class = _Udp6Target if ":" in ip else _Udp4Target
        target = await target_class.create((ip, port), timeout=self.timeout, retries=self.retries)

        # Phase 1: the system group (+ Yealink's objects).  An agent that answers an error status
        # for one varbind (SNMPv1-style noSuchName) gets asked again without it.
        wanted = {"sys_descr": SYS_DESCR, "sys_object_id": SYS_OBJECT_ID, "sys_name": SYS_NAME, **_GET_EXTRA}
        for _attempt in range(4):
            indication, status, index, var_binds = await get_cmd(
                self.engine, self.auth, target, ContextData(),
                *(ObjectType(ObjectIdentity(oid)) for oid in wanted.values()), lookupMib=False)
            if indication:
                result.error = self._describe(indication, ip, port)
                return
            if status and 0 < int(index) <= len(wanted) and len(wanted) > 1:
                del wanted[list(wanted)[int(index) - 1]]
                continue
            if status:
                result.error = f"agent error: {status.prettyPrint()}"
                return
            break
        else:
            result.error = "agent error: refused every object of the system group"
            return
        result.ok = True
        values = dict(zip(wanted, (value for _, value in var_binds)))
        result.sys_descr = _text(values.pop("sys_descr", None))
        result.sys_object_id = _text(values.pop("sys_object_id", None))
        result.sys_name = _text(values.pop("sys_name", None))
        yealink_mac = values.pop("yealink_mac", None)
        for key, value in values.items():
            text = _text(value)
            if text:
                result.extra[key] = text

        # Phase 2: vendor columns (GETNEXT) and the first real MAC in ifPhysAddress (GETBULK),
        # within one more request budget.  A failure here keeps what phase 1 found.
        try:
            async with asyncio.timeout(self.request_budget + 0.5):
                await self._read_table(target, result)
        except TimeoutError:
            result.error = "interface table: " + self._silence(ip, port)
        if result.mac is None:
            result.mac = _mac_from(yealink_mac)
        if result.mac is None and result.sys_name and (m := re.fullmatch(r"SEP([0-9A-Fa-f]{12})", result.sys_name)):
            result.mac = _mac_from(rfc1902.OctetString(m.group(1)))  # Cisco phones are named SEP<MAC>

    async def _read_table(self, target: Any, result: SnmpResult) -> None:
        column = _oid_tuple(IF_PHYS_ADDRESS)
        next_names = list(_NEXT_EXTRA)
        start = IF_PHYS_ADDRESS
        rows = 0
        while rows < MAX_IF_ROWS:
            non_repeaters = [ObjectType(ObjectIdentity(_NEXT_EXTRA[n])) for n in next_names]
            indication, status, _index, var_binds = await bulk_cmd(
                self.engine, self.auth, target, ContextData(), len(non_repeaters), MAX_IF_ROWS - rows,
                *non_repeaters, ObjectType(ObjectIdentity(start)), lookupMib=False)
            if indication or status:
                problem = self._describe(indication, result.ip, result.port) if indication else \
                    f"agent error: {status.prettyPrint()}"
                result.error = f"interface table: {problem}"
                return
            for name_key, (name, value) in zip(next_names, var_binds[: len(next_names)]):
                text = _text(value)
                if text and _under(name, _oid_tuple(_NEXT_EXTRA[name_key])):
                    result.extra[name_key] = text
            next_names = []
            repeated = var_binds[len(non_repeaters):]
            if not repeated:
                return
            for name, value in repeated:
                if not _under(name, column) or isinstance(value, rfc1905.EndOfMibView):
                    return  # left the column: no MAC in the table
                rows += 1
                mac = _mac_from(value)
                if mac:
                    result.mac = mac
                    return
            start = str(repeated[-1][0])

    def _sighting(self, result: SnmpResult) -> Sighting:
        vendor, model, firmware = identify(result.sys_descr, result.sys_object_id, result.sys_name,
                                           result.mac, result.extra)
        details = {"snmp_version": self.version}
        if result.sys_descr:
            details["sys_descr"] = result.sys_descr
        if result.sys_object_id:
            details["sys_object_id"] = result.sys_object_id
        return Sighting(mac=result.mac, ip=result.ip, how="snmp", vendor=vendor, model=model, firmware=firmware,
                        name=result.sys_name or None, port=result.port, details=details)


OnResult = Callable[[SnmpResult], Awaitable[Any] | Any]


async def scan(targets: Iterable[Target], *, community: str = "public", v3: V3Credentials | None = None,
               port: int = 161, timeout: float = 1.0, retries: int = 0, concurrency: int = 32,
               on_result: OnResult | None = None) -> list[SnmpResult]:
    """Probe every target over SNMP; one :class:`SnmpResult` per (ip, port), in target order.

    ``targets``: IP strings, ``(ip, port)`` tuples, CIDR strings (``"192.168.1.0/24"``; at most a
    /16; network and broadcast addresses skipped), or ``ipaddress`` objects.  ``v3`` switches from
    v2c (``community``) to SNMPv3 USM.  At most ``concurrency`` hosts are in flight at once; each
    request waits ``timeout`` seconds, ``retries`` more times.  ``on_result`` (plain or async
    function) sees each result as it completes; its exceptions are logged, not raised, so a broken
    progress display does not abort a scan.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if timeout <= 0 or retries < 0:
        raise ValueError("timeout must be positive and retries not negative")
    pairs = expand_targets(targets, port)
    results: list[SnmpResult | None] = [None] * len(pairs)
    if not pairs:
        return []

    listener = _Listener()
    engine = SnmpEngine()
    # Our own client transports (one per address family in use) so the listener sees every datagram.
    if any(":" not in ip for ip, _ in pairs):
        snmp_config.add_transport(engine, udp.DOMAIN_NAME, _listening(udp.UdpTransport, listener).open_client_mode())
    if any(":" in ip for ip, _ in pairs):
        snmp_config.add_transport(engine, udp6.DOMAIN_NAME, _listening(udp6.Udp6Transport, listener).open_client_mode())
    state = _Scan(engine, listener, community, v3, timeout, retries)
    gate = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task] = set()

    async def run(i: int, ip: str, target_port: int) -> None:
        try:
            result = await state.probe(ip, target_port)
            results[i] = result
            if on_result is not None:
                try:
                    outcome = on_result(result)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception:  # noqa: BLE001
                    log.exception("on_result callback failed for %s:%s", ip, target_port)
        finally:
            gate.release()

    try:
        for i, (ip, target_port) in enumerate(pairs):
            await gate.acquire()  # at most `concurrency` probes (and tasks) exist at once
            task = asyncio.create_task(run(i, ip, target_port), name=f"snmp-probe {ip}:{target_port}")
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        engine.close_dispatcher()
    return [r for r in results if r is not None]
