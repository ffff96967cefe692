"""mDNS / DNS-SD: advertise deskprov on the LAN and spot devices that announce themselves.

**What we advertise, and why that type.**  Provisioning is plain HTTP, and DNS-SD's own answer for
"an HTTP service, but a particular kind" is a *subtype* of the registered ``_http._tcp`` type
(RFC 6763 §7.1), not a private top-level type that nobody registered with IANA (RFC 6335).  So
deskprov registers one instance of ``_http._tcp`` with the subtype ``_deskprov._sub._http._tcp``:
generic browsers list it as a web service, and tools that want deskprov (``deskprov discover``,
a technician's app) browse the subtype and see nothing else.  The TXT record follows the
``_http._tcp`` convention (``path=``), plus ``url=`` (the provisioning URL phones are given, which
may differ from host:port when a proxy is in front), ``txtvers=1`` and ``product=deskprov``.

**What we browse.**  Desk phones that speak mDNS mostly announce their web UI as ``_http._tcp``,
some their SIP UA as ``_sip._udp``.  Nothing standardises their instance names or TXT keys, so
identification is lenient: a MAC from a TXT key (``mac``, ``macaddress``, ``hwaddr`` ...) or any
MAC-looking token in the instance/host name or TXT values; vendor/model/firmware from TXT keys
(``vendor``/``manufacturer``, ``model``/``product``/``ty``, ``fw``/``firmware``/``version``)
and the free-text rules shared with the SNMP scan; the vendor, failing all else, from the MAC's
OUI (:mod:`provisioning.discovery.fingerprints`).  Only devices of a known vendor become
sightings (a LAN's printers and NAS boxes also announce ``_http._tcp``).

**Where packets go.**  Only the configured interface addresses; the default is loopback
(``["127.0.0.1"]``, IPv4 only), because python-zeroconf's own default sends on every interface.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import logging
import re
import socket
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from zeroconf import IPVersion, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from provisioning.discovery.fingerprints import match_text, vendor_for_mac
from provisioning.discovery.sighting import Sighting
from provisioning.mac import MacError, normalize_mac
from provisioning.vendors import BY_NAME, PLUGINS

__all__ = ["ADVERTISED_SUBTYPE", "ADVERTISED_TYPE", "BROWSE_TYPES", "MdnsDiscovery", "identify_service",
           "sighting_from_info"]

log = logging.getLogger("deskprov.mdns")

ADVERTISED_TYPE = "_http._tcp.local."
ADVERTISED_SUBTYPE = "_deskprov._sub._http._tcp.local."
BROWSE_TYPES = ("_http._tcp.local.", "_sip._udp.local.")
PRODUCT = "deskprov"

_MAC_KEYS = ("mac", "macaddress", "mac_address", "mac-address", "hwaddr", "hw_addr", "ethaddr")
_VENDOR_KEYS = ("vendor", "manufacturer", "mfg", "brand", "manu")
_MODEL_KEYS = ("model", "product", "ty", "md", "devicemodel", "device_model", "hw")
_FIRMWARE_KEYS = ("fw", "firmware", "fwversion", "fw_version", "sw", "swversion", "version", "ver")
_MAC_TOKEN = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}(?![0-9A-Fa-f])"
                        r"|(?<![0-9A-Fa-f])[0-9A-Fa-f]{12}(?![0-9A-Fa-f])")

OnSighting = Callable[[Sighting], Any | Awaitable[Any]]


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value.strip()[:256]


def _instance(name: str, type_: str) -> str:
    """``Yealink T46S._http._tcp.local.`` -> ``Yealink T46S``."""
    return name[: -len(type_) - 1] if name.endswith("." + type_) else name.split("._", 1)[0]


def _find_mac(texts: Iterable[str]) -> str | None:
    """The first MAC-looking token that is a device MAC; one with a known OUI wins."""
    found: list[str] = []
    for text in texts:
        for token in _MAC_TOKEN.findall(text):
            try:
                found.append(normalize_mac(token))
            except MacError:
                continue
    return next((m for m in found if vendor_for_mac(m)), found[0] if found else None)


def _vendor_name(text: str) -> str | None:
    """A plugin name from a free-text vendor ("Yealink Network Technology", "snom AG", "Poly")."""
    low = text.lower()
    for plugin in PLUGINS:
        if plugin.name in low or plugin.display_name.lower() in low:
            return plugin.name
    if "polycom" in low:
        return "poly"
    found = match_text(text)
    return found[0] if found else None


def identify_service(name: str, type_: str, server: str | None,
                     properties: Mapping[bytes | str, bytes | str | None]) -> tuple[str | None, str | None, str | None, str | None]:
    """(vendor, model, firmware, mac) from what a DNS-SD service says about itself."""
    txt = {_text(k).lower(): _text(v) for k, v in properties.items()}
    instance = _instance(name, type_)
    host = (server or "").removesuffix(".").removesuffix(".local")
    mac = None
    for key in _MAC_KEYS:
        if txt.get(key):
            mac = _find_mac([txt[key]])
            if mac:
                break
    mac = mac or _find_mac([instance, host, *txt.values()])

    vendor = next(filter(None, (_vendor_name(txt[k]) for k in _VENDOR_KEYS if txt.get(k))), None)
    model_text = next((txt[k] for k in _MODEL_KEYS if txt.get(k)), None)
    firmware = next((txt[k] for k in _FIRMWARE_KEYS if txt.get(k)), None)
    model = None
    # Free text: "Yealink SIP-T46S 66.86.0.15", "snomD785-000413922D24", the model key itself; with
    # the vendor known from TXT, also "<Vendor> <text>" (the rules want the vendor name in front).
    for text in filter(None, (model_text, instance, host)):
        tries = [text]
        if vendor is not None and vendor in BY_NAME:
            tries.append(f"{BY_NAME[vendor].display_name} {text}")
        found = next(filter(None, (match_text(t, vendor) for t in tries)), None)
        if found is not None:
            vendor = vendor or found[0]
            model = model or found[1]
            firmware = firmware or found[2]
        if model:
            break
    if vendor is None:
        vendor = vendor_for_mac(mac)
    if model is None and model_text and vendor is not None:
        model = model_text
    return vendor, model, firmware, mac


def sighting_from_info(info: AsyncServiceInfo, *, only_known: bool = True) -> Sighting | None:
    """A :class:`Sighting` for a resolved service, or None (no IPv4 address, our own
    advertisement, or, with ``only_known``, not a device of a vendor we serve)."""
    props = info.properties or {}
    if _text(props.get(b"product")) == PRODUCT:
        return None
    addresses = [a for a in info.parsed_addresses(IPVersion.V4Only)]
    if not addresses:
        return None
    vendor, model, firmware, mac = identify_service(info.name, info.type, info.server, props)
    if only_known and vendor is None:
        return None
    details = {"service": info.type, "instance": _instance(info.name, info.type)}
    if info.server:
        details["server"] = info.server
    for key, value in props.items():
        k = _text(key).lower()
        if k in _MAC_KEYS + _VENDOR_KEYS + _MODEL_KEYS + _FIRMWARE_KEYS:
            details[f"txt.{k}"] = _text(value)
    port = info.port if info.port and 0 < info.port < 65536 else None
    return Sighting(mac=mac, ip=addresses[0], how="mdns", vendor=vendor, model=model, firmware=firmware,
                    name=details["instance"], port=port, details=details)


class MdnsDiscovery:
    """One zeroconf responder/browser on the configured interfaces.

    ``await start()`` binds; ``await advertise(url)`` registers deskprov; ``browse()`` starts
    watching ``browse_types`` and reports each identified device to ``on_sighting`` (plain or
    async callable) once per (name, address, vendor/model/MAC) it resolves to; ``sightings``
    holds the latest per service instance.  ``await stop()`` unregisters and closes.
    """

    def __init__(self, *, interfaces: Iterable[str] = ("127.0.0.1",), on_sighting: OnSighting | None = None,
                 browse_types: Iterable[str] = BROWSE_TYPES, only_known: bool = True,
                 resolve_timeout: float = 3.0, ip_version: IPVersion = IPVersion.V4Only,
                 cooperating_responders: bool = False) -> None:
        self.interfaces = [str(ipaddress.ip_address(i)) for i in interfaces]
        if not self.interfaces:
            raise ValueError("mDNS needs at least one interface address (127.0.0.1 for loopback only)")
        self.on_sighting = on_sighting
        self.browse_types = list(browse_types)
        self.only_known = only_known
        self.resolve_timeout = resolve_timeout
        self.ip_version = ip_version
        #: skip RFC 6762 probing (tests, or a name known to be unique): registration is instant
        self.cooperating_responders = cooperating_responders
        self.sightings: dict[str, Sighting] = {}
        self.azc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._advertised: list[AsyncServiceInfo] = []
        self._tasks: set[asyncio.Task] = set()
        self._resolving: set[tuple[str, str]] = set()
        self._reported: dict[str, tuple] = {}

    async def start(self) -> None:
        if self.azc is None:
            self.azc = AsyncZeroconf(interfaces=self.interfaces, ip_version=self.ip_version)
            log.info("mdns: on %s", ", ".join(self.interfaces))

    async def stop(self) -> None:
        if self._browser is not None:
            await self._browser.async_cancel()
            self._browser = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.azc is not None:
            if self._advertised:
                await self.azc.async_unregister_all_services()
                self._advertised.clear()
            await self.azc.async_close()
            self.azc = None

    async def __aenter__(self) -> "MdnsDiscovery":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ advertising

    async def advertise(self, url: str, *, instance: str | None = None, address: str | None = None,
                        extra: Mapping[str, str] | None = None) -> AsyncServiceInfo:
        """Register deskprov's provisioning URL.  ``address`` defaults to the URL's host if it is
        an IP address, else the first interface; the instance name to "deskprov on <hostname>"."""
        await self.start()
        assert self.azc is not None
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if address is None:
            try:
                address = str(ipaddress.ip_address(parts.hostname))
            except ValueError:
                address = self.interfaces[0]
        instance = instance or f"deskprov on {socket.gethostname().split('.')[0]}"
        type_ = ADVERTISED_TYPE if parts.scheme == "http" else "_https._tcp.local."
        subtype = ADVERTISED_SUBTYPE.replace("._http.", "._https.") if parts.scheme == "https" else ADVERTISED_SUBTYPE
        host_label = re.sub(r"[^A-Za-z0-9-]", "-", instance).strip("-").lower()[:60] or "deskprov"
        info = AsyncServiceInfo(
            subtype, f"{instance}.{type_}", port=port, addresses=[ipaddress.ip_address(address).packed],
            properties={"txtvers": "1", "path": parts.path or "/", "url": url, "product": PRODUCT,
                        **(extra or {})},
            server=f"{host_label}.local.")
        await self.azc.async_register_service(info, cooperating_responders=self.cooperating_responders)
        self._advertised.append(info)
        log.info("mdns: advertising %s as %r (%s)", url, instance, type_)
        return info

    # ------------------------------------------------------------------ browsing

    async def browse(self) -> None:
        """Start watching; idempotent."""
        await self.start()
        assert self.azc is not None
        if self._browser is None:
            self._browser = AsyncServiceBrowser(self.azc.zeroconf, self.browse_types, handlers=[self._on_change])

    def _on_change(self, zeroconf: Any, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            return
        key = (service_type, name)
        if key in self._resolving:
            return
        self._resolving.add(key)
        task = asyncio.get_running_loop().create_task(self._resolve(service_type, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, service_type: str, name: str) -> None:
        try:
            assert self.azc is not None
            info = AsyncServiceInfo(service_type, name)
            if not await info.async_request(self.azc.zeroconf, int(self.resolve_timeout * 1000)):
                log.debug("mdns: %s did not resolve", name)
                return
            sighting = sighting_from_info(info, only_known=self.only_known)
            if sighting is None:
                return
            self.sightings[name] = sighting
            identity = (sighting.ip, sighting.mac, sighting.vendor, sighting.model, sighting.firmware)
            if self._reported.get(name) == identity:
                return
            self._reported[name] = identity
            log.info("mdns: %s at %s vendor=%s model=%s mac=%s", name, sighting.ip, sighting.vendor,
                     sighting.model, sighting.mac)
            if self.on_sighting is not None:
                result = self.on_sighting(sighting)
                if inspect.isawaitable(result):
                    await result
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("mdns: resolving %s failed", name)
        finally:
            self._resolving.discard((service_type, name))
