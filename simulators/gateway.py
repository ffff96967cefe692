"""Simulated analogue gateways (ATAs) that answer SNMP like the real boxes do.

A :class:`GatewaySimulator` is a pysnmp command responder (GET, GETNEXT, GETBULK; v2c community
and optionally one SNMPv3 USM user) bound to one loopback address and port.  It serves a small
static table built from a *profile*: what a Grandstream HT8xx or a Cisco SPA112/ATA191 returns for
the system group, the interface table's MAC and the vendor objects a discovery scan reads.  The
SNMP discovery scan is tested against these, so the tables follow real devices where we have a
capture, and say so where we do not:

* Grandstream HT8xx: ``sysDescr`` ``"Linux HT8XX <kernel> ..."``, firmware versions in
  Grandstream's GS-HT8XX-MIB (enterprise 42397, ``ht8xx`` = 42397.1.2, ``versionProg`` =
  42397.1.2.3.4, served with the doubled ``.0.0`` instance suffix the capture shows) — from a
  public capture of a real HT8xx (LibreNMS test data) and that MIB.  A real box of that capture
  (firmware 1.0.5.x) reported net-snmp's generic ``sysObjectID`` 1.3.6.1.4.1.8072.3.2.10; the
  profiles here serve the MIB's per-model product OID (42397.1.2.<801|802|812|814>) instead, which
  a scanner can turn into a model.  Pass ``sys_object_id=`` to simulate the older behaviour.
* Cisco SPA112: ``sysDescr`` ``"Linux SPA112 2.6.26.5 #1 PREEMPT ... armv5tejl"``, ``sysObjectID``
  1.3.6.1.4.1.9.6.1.23.1.1.1.3, ENTITY-MIB ``entPhysicalModelName.1`` = ``SPA112`` — from a public
  capture of a real SPA112 (LibreNMS test data).  The capture's ``entPhysicalSoftwareRev.1`` was
  ``0.00.51``; we serve the configured firmware there.
* Cisco ATA191: **no capture found**; modelled on the SPA112 (Linux ``sysDescr`` naming the model,
  ENTITY-MIB model name ``ATA191-3PW-K9``, net-snmp ``sysObjectID``).  Treat it as a guess.

Like the phone simulators this module shares nothing with the ``provisioning`` package.  Set
``delay`` to answer late (a slow host), and ``observer`` to see each request and answer (tests use
it to count requests in flight).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import re
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.proto import rfc1905
from pysnmp.proto.api import v2c
from pysnmp.smi import instrum

__all__ = ["PROFILES", "GatewayProfile", "GatewaySimulator", "V3User", "main"]

Oid = tuple[int, ...]


def _oid(text: str) -> Oid:
    return tuple(int(part) for part in text.strip(".").split("."))


# -- profiles ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayProfile:
    """What one gateway model answers; ``{model}``/``{firmware}`` are filled in per instance."""

    key: str
    model: str
    sys_descr: str
    sys_object_id: str
    default_firmware: str
    #: extra scalar objects: numeric OID -> text (``{firmware}`` is substituted)
    objects: Mapping[str, str]


_NET_SNMP_LINUX = "1.3.6.1.4.1.8072.3.2.10"  # net-snmp's sysObjectID for a Linux host
_GS_HT8XX = "1.3.6.1.4.1.42397.1.2"  # GS-HT8XX-MIB ht8xx
# GS-HT8XX-MIB: Firmware = ht8xx.3 (versionBoot .1, versionCore .2, versionBase .3, versionProg .4),
# PartNo = ht8xx.1.  The real HT8xx capture answered these with a ".0.0" instance suffix.
_GS_FW = {f"{_GS_HT8XX}.3.1.0.0": "{firmware}", f"{_GS_HT8XX}.3.2.0.0": "{firmware}",
          f"{_GS_HT8XX}.3.3.0.0": "{firmware}", f"{_GS_HT8XX}.3.4.0.0": "{firmware}"}
_HT_DESCR = "Linux HT8XX 3.4.20-rt31-dvf-v1.2.6.1-rc2 #54 PREEMPT Sat Oct 21 17:21:10 CST 2017 armv5tejl"
_ENT = "1.3.6.1.2.1.47.1.1.1.1"  # ENTITY-MIB entPhysicalEntry


def _grandstream(number: int, firmware: str) -> GatewayProfile:
    return GatewayProfile(key=f"grandstream-ht{number}", model=f"HT{number}", sys_descr=_HT_DESCR,
                          sys_object_id=f"{_GS_HT8XX}.{number}", default_firmware=firmware, objects=_GS_FW)


PROFILES: dict[str, GatewayProfile] = {
    p.key: p
    for p in (
        _grandstream(812, "1.0.43.11"),
        _grandstream(802, "1.0.43.11"),
        _grandstream(801, "1.0.43.11"),
        _grandstream(814, "1.0.43.11"),
        GatewayProfile(
            key="cisco-spa112", model="SPA112",
            sys_descr="Linux SPA112 2.6.26.5 #1 PREEMPT Wed Aug 2 14:04:45 CST 2017 armv5tejl",
            sys_object_id="1.3.6.1.4.1.9.6.1.23.1.1.1.3", default_firmware="1.4.1(SR5)",
            objects={f"{_ENT}.7.1": "SPA112", f"{_ENT}.10.1": "{firmware}", f"{_ENT}.13.1": "SPA112"}),
        GatewayProfile(  # no capture of a real ATA191 was found: modelled on the SPA112 (a guess)
            key="cisco-ata191", model="ATA191",
            sys_descr="Linux ATA191 4.4.60 #1 SMP PREEMPT armv7l",
            sys_object_id=_NET_SNMP_LINUX, default_firmware="12.0.1SR3",
            objects={f"{_ENT}.7.1": "ATA191", f"{_ENT}.10.1": "{firmware}", f"{_ENT}.13.1": "ATA191-3PW-K9"}),
    )
}

# -- the agent ------------------------------------------------------------------------------------

_AUTH = {"SHA": config.USM_AUTH_HMAC96_SHA, "MD5": config.USM_AUTH_HMAC96_MD5,
         "SHA256": config.USM_AUTH_HMAC192_SHA256, "SHA512": config.USM_AUTH_HMAC384_SHA512}
_PRIV = {"AES": config.USM_PRIV_CFB128_AES, "DES": config.USM_PRIV_CBC56_DES,
         "AES256": config.USM_PRIV_CFB256_AES}


@dataclass(frozen=True)
class V3User:
    """One SNMPv3 USM user; no auth protocol means noAuthNoPriv, no priv protocol authNoPriv."""

    user: str
    auth_protocol: str | None = "SHA"
    auth_key: str | None = None
    priv_protocol: str | None = "AES"
    priv_key: str | None = None

    @property
    def level(self) -> str:
        if not self.auth_protocol:
            return "noAuthNoPriv"
        return "authPriv" if self.priv_protocol else "authNoPriv"


class _TableMib(instrum.AbstractMibInstrumController):
    """A static, sorted {oid: value} table answering GET / GETNEXT / GETBULK (read-only)."""

    def __init__(self, table: Mapping[Oid, Any]):
        self.table = dict(sorted(table.items()))
        self.keys = list(self.table)

    def read_variables(self, *var_binds, **ctx):
        return [(name, self.table.get(tuple(name), rfc1905.noSuchObject)) for name, _ in var_binds]

    def read_next_variables(self, *var_binds, **ctx):
        out = []
        for name, _ in var_binds:
            i = bisect.bisect_right(self.keys, tuple(name))
            if i < len(self.keys):
                out.append((v2c.ObjectIdentifier(self.keys[i]), self.table[self.keys[i]]))
            else:
                out.append((name, rfc1905.endOfMibView))
        return out

    def write_variables(self, *var_binds, **ctx):  # read-only device
        raise NotImplementedError


class _Transport(udp.UdpTransport):
    """The agent's UDP socket, with an optional answer delay and request/answer notifications."""

    def __init__(self, delay: float, observer: Callable[[str, tuple], None] | None):
        super().__init__()
        self.delay = delay
        self.observer = observer

    def datagram_received(self, datagram, transportAddress):
        if self.observer:
            self.observer("request", tuple(transportAddress)[:2])
        super().datagram_received(datagram, transportAddress)

    def send_message(self, outgoingMessage, transportAddress):
        def send():
            if self.transport is None or self.transport.is_closing():
                return
            super(_Transport, self).send_message(outgoingMessage, transportAddress)
            if self.observer:
                self.observer("response", tuple(transportAddress)[:2])

        if self.delay > 0:
            self.loop.call_later(self.delay, send)
        else:
            send()


_MAC_RE = re.compile(r"^[0-9a-f]{12}$")


class GatewaySimulator:
    """One simulated ATA answering SNMP on ``host:port`` (port 0 = ephemeral; read ``.port``).

    ``await start()`` inside the running loop that will serve it, ``await stop()`` when done.
    The MAC (any common spelling) is served as ``ifPhysAddress.2`` (``eth0``; ``ifIndex`` 1 is a
    loopback with an empty address, as on the real Linux-based boxes).
    """

    def __init__(self, profile: str = "grandstream-ht812", mac: str = "000b82010203", firmware: str | None = None,
                 *, host: str = "127.0.0.1", port: int = 0, community: str = "public", v3: V3User | None = None,
                 sys_name: str | None = None, sys_object_id: str | None = None, delay: float = 0.0,
                 observer: Callable[[str, tuple], None] | None = None):
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r} (known: {', '.join(sorted(PROFILES))})")
        digits = re.sub(r"[^0-9a-f]", "", mac.lower())
        if not _MAC_RE.match(digits):
            raise ValueError(f"not a MAC address: {mac!r}")
        self.profile = PROFILES[profile]
        self.mac = digits
        self.firmware = firmware or self.profile.default_firmware
        self.host = host
        self.community = community
        self.v3 = v3
        self.sys_name = sys_name if sys_name is not None else self.profile.model
        self.sys_object_id = sys_object_id or self.profile.sys_object_id
        self.delay = delay
        self.observer = observer
        self._requested_port = port
        self.port: int | None = None
        self._engine: engine.SnmpEngine | None = None

    def table(self) -> dict[Oid, Any]:
        """The objects served, keyed by OID tuple (also handy for asserting on in tests)."""
        fill = {"model": self.profile.model, "firmware": self.firmware}
        table: dict[Oid, Any] = {
            _oid("1.3.6.1.2.1.1.1.0"): v2c.OctetString(self.profile.sys_descr.format(**fill)),
            _oid("1.3.6.1.2.1.1.2.0"): v2c.ObjectIdentifier(self.sys_object_id),
            _oid("1.3.6.1.2.1.1.3.0"): v2c.TimeTicks(123456),
            _oid("1.3.6.1.2.1.1.4.0"): v2c.OctetString(""),
            _oid("1.3.6.1.2.1.1.5.0"): v2c.OctetString(self.sys_name),
            _oid("1.3.6.1.2.1.1.6.0"): v2c.OctetString(""),
            _oid("1.3.6.1.2.1.2.1.0"): v2c.Integer(2),  # ifNumber
        }
        for index, (descr, if_type, phys) in enumerate(
                (("lo", 24, b""), ("eth0", 6, bytes.fromhex(self.mac))), start=1):
            table[_oid(f"1.3.6.1.2.1.2.2.1.1.{index}")] = v2c.Integer(index)
            table[_oid(f"1.3.6.1.2.1.2.2.1.2.{index}")] = v2c.OctetString(descr)
            table[_oid(f"1.3.6.1.2.1.2.2.1.3.{index}")] = v2c.Integer(if_type)
            table[_oid(f"1.3.6.1.2.1.2.2.1.6.{index}")] = v2c.OctetString(phys)
            table[_oid(f"1.3.6.1.2.1.2.2.1.8.{index}")] = v2c.Integer(1)  # ifOperStatus up
        for oid_text, value in self.profile.objects.items():
            table[_oid(oid_text)] = v2c.OctetString(value.format(**fill))
        return table

    async def start(self) -> None:
        """Bind and begin answering; the port is known when this returns."""
        if self._engine is not None:
            raise RuntimeError("already started")
        # Bind ourselves so the (possibly ephemeral) port is known before pysnmp's async open.
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        eng = engine.SnmpEngine()
        transport = _Transport(self.delay, self.observer).open_server_mode(sock=sock)
        config.add_transport(eng, udp.DOMAIN_NAME, transport)
        config.add_v1_system(eng, "ro-area", self.community)
        config.add_vacm_user(eng, 2, "ro-area", "noAuthNoPriv", (1, 3, 6))
        if self.v3 is not None:
            v3 = self.v3
            config.add_v3_user(
                eng, v3.user,
                _AUTH[v3.auth_protocol.upper()] if v3.auth_protocol else config.USM_AUTH_NONE, v3.auth_key,
                _PRIV[v3.priv_protocol.upper()] if v3.priv_protocol else config.USM_PRIV_NONE, v3.priv_key)
            config.add_vacm_user(eng, 3, v3.user, v3.level, (1, 3, 6))
        snmp_context = context.SnmpContext(eng)
        snmp_context.unregister_context_name(v2c.OctetString(""))
        snmp_context.register_context_name(v2c.OctetString(""), _TableMib(self.table()))
        for app in (cmdrsp.GetCommandResponder, cmdrsp.NextCommandResponder, cmdrsp.BulkCommandResponder):
            app(eng, snmp_context)
        self._engine = eng
        await asyncio.sleep(0)  # let the transport's endpoint come up

    async def stop(self) -> None:
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None
            await asyncio.sleep(0)

    async def __aenter__(self) -> GatewaySimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()


# -- CLI ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m simulators.gateway --profile grandstream-ht812 --mac ... --host 127.0.0.2 --port 16161``"""
    parser = argparse.ArgumentParser(prog="python -m simulators.gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="grandstream-ht812", choices=sorted(PROFILES))
    parser.add_argument("--mac", default="000b82010203")
    parser.add_argument("--firmware")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=16161)
    parser.add_argument("--community", default="public")
    parser.add_argument("--sys-name")
    parser.add_argument("--delay", type=float, default=0.0, help="answer this many seconds late")
    parser.add_argument("--v3-user")
    parser.add_argument("--v3-auth", default="SHA", choices=sorted(_AUTH))
    parser.add_argument("--v3-auth-key")
    parser.add_argument("--v3-priv", default="AES", choices=sorted(_PRIV) + ["none"])
    parser.add_argument("--v3-priv-key")
    args = parser.parse_args(argv)
    v3 = None
    if args.v3_user:
        priv = None if args.v3_priv == "none" else args.v3_priv
        v3 = V3User(args.v3_user, args.v3_auth, args.v3_auth_key, priv, args.v3_priv_key)

    async def run() -> None:
        sim = GatewaySimulator(args.profile, args.mac, args.firmware, host=args.host, port=args.port,
                               community=args.community, v3=v3, sys_name=args.sys_name, delay=args.delay)
        await sim.start()
        print(f"{args.profile} {sim.mac} firmware {sim.firmware} answering SNMP on {sim.host}:{sim.port}",
              flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await sim.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
