"""A phone announcing itself over mDNS/DNS-SD, for discovery tests.

What real desk phones put in their announcements is not documented anywhere we found, so this
announces the common shape: the web UI as ``_http._tcp`` (optionally the SIP UA as ``_sip._udp``)
with the instance name "<Vendor> <model> (<MAC>)" and TXT ``mac``, ``model``, ``fw``, ``vendor``
keys.  Each part can be left out or overridden to exercise the identifier's fallbacks (MAC only in
the name, no vendor key, an OUI alone).

Like the rest of ``simulators`` it does not import ``provisioning``.  It binds to the given
interface addresses only (default 127.0.0.1, IPv4): python-zeroconf's default is every interface.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

__all__ = ["MdnsPhone"]


class MdnsPhone:
    """``async with MdnsPhone(vendor="Yealink", model="SIP-T46S", mac="805ec0aabb01"): ...``"""

    def __init__(self, *, vendor: str | None, model: str | None, mac: str | None, firmware: str | None = None,
                 ip: str = "127.0.0.1", port: int = 80, instance: str | None = None,
                 txt: Mapping[str, str] | None = None, service_types: Iterable[str] = ("_http._tcp.local.",),
                 interfaces: Iterable[str] = ("127.0.0.1",)) -> None:
        self.ip, self.port = ip, port
        self.interfaces = list(interfaces)
        self.service_types = list(service_types)
        label = " ".join(p for p in (vendor, model) if p) or "phone"
        self.instance = instance or (f"{label} ({mac.upper()})" if mac else label)
        if txt is None:
            txt = {k: v for k, v in (("vendor", vendor), ("model", model), ("mac", mac), ("fw", firmware)) if v}
        self.txt = dict(txt)
        self.host = "".join(c if c.isalnum() else "-" for c in self.instance).strip("-").lower()[:60] + ".local."
        self.azc: AsyncZeroconf | None = None
        self.infos: list[AsyncServiceInfo] = []

    async def start(self) -> "MdnsPhone":
        self.azc = AsyncZeroconf(interfaces=self.interfaces, ip_version=IPVersion.V4Only)
        for type_ in self.service_types:
            info = AsyncServiceInfo(type_, f"{self.instance}.{type_}", port=self.port,
                                    addresses=[socket.inet_aton(self.ip)], properties=self.txt, server=self.host)
            # Tests: skip the ~1.2 s of RFC 6762 probing (the names here are unique by construction).
            await self.azc.async_register_service(info, cooperating_responders=True)
            self.infos.append(info)
        return self

    async def stop(self) -> None:
        if self.azc is not None:
            await self.azc.async_unregister_all_services()
            await self.azc.async_close()
            self.azc = None

    async def __aenter__(self) -> "MdnsPhone":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
