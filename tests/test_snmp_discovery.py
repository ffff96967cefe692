"""SNMP discovery against simulated gateways over real UDP on loopback (127.0.0.0/8 only)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import provisioning.discovery.snmp as snmp_mod
from provisioning.discovery.sighting import Sighting
from provisioning.discovery.snmp import V3Credentials, expand_targets, identify, scan
from provisioning.mac import MacError
from simulators.gateway import GatewaySimulator, V3User

ROOT = Path(__file__).resolve().parent.parent


# -- helpers ------------------------------------------------------------------------------------


class _Silent(asyncio.DatagramProtocol):
    """A bound UDP socket that reads and never answers."""


class _Garbage(asyncio.DatagramProtocol):
    """Answers every datagram with random bytes (first byte kept off 0x30, so it is never BER)."""

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(bytes([0x42]) + os.urandom(40), addr)


async def _udp_server(protocol, host: str) -> tuple[asyncio.DatagramTransport, int]:
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(protocol, local_addr=(host, 0))
    return transport, transport.get_extra_info("sockname")[1]


def _common_free_port(hosts: list[str]) -> int:
    """A UDP port free on every one of ``hosts`` right now."""
    for _ in range(50):
        first = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        first.bind((hosts[0], 0))
        port = first.getsockname()[1]
        socks = [first]
        try:
            for host in hosts[1:]:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no common free port")


# -- scanning simulated gateways ----------------------------------------------------------------

GATEWAYS = [
    # profile, host, mac as configured, firmware, expected (vendor, model)
    ("grandstream-ht812", "127.0.0.2", "00:0B:82:12:34:56", "1.0.43.11", ("grandstream", "HT812")),
    ("grandstream-ht802", "127.0.0.3", "c0-74-ad-00-00-02", "1.0.41.5", ("grandstream", "HT802")),
    ("cisco-spa112", "127.0.0.4", "8843E1A1B2C3", "1.4.1(SR5)", ("cisco", "SPA112")),
    ("cisco-ata191", "127.0.0.5", "00562b0a0b0c", "12.0.1SR3", ("cisco", "ATA191")),
]


async def test_scan_identifies_each_gateway(monkeypatch):
    engines = []
    real_engine = snmp_mod.SnmpEngine

    def counting_engine(*args, **kwargs):
        engines.append(real_engine(*args, **kwargs))
        return engines[-1]

    monkeypatch.setattr(snmp_mod, "SnmpEngine", counting_engine)
    sims = [GatewaySimulator(profile, mac, firmware, host=host) for profile, host, mac, firmware, _ in GATEWAYS]
    seen = []

    async def on_result(result):  # an async callback, as a live progress table would be
        seen.append(result.ip)

    for sim in sims:
        await sim.start()
    try:
        results = await scan([(s.host, s.port) for s in sims], timeout=1.0, on_result=on_result)
    finally:
        for sim in sims:
            await sim.stop()

    assert len(engines) == 1, "one SnmpEngine per scan"
    # pysnmp's per-target rows are dropped as each host finishes (a /16 would otherwise eat GBs)
    assert not engines[0].get_user_context("CommandGeneratorLcdConfigurator")["addr"]
    assert sorted(seen) == sorted(s.host for s in sims)
    assert [(r.ip, r.port) for r in results] == [(s.host, s.port) for s in sims], "results in target order"
    for (profile, host, mac, firmware, (vendor, model)), result, sim in zip(GATEWAYS, results, sims):
        assert result.ok and result.error is None, (profile, result.error)
        sighting = result.sighting
        assert isinstance(sighting, Sighting)
        assert (sighting.vendor, sighting.model, sighting.firmware) == (vendor, model, firmware), profile
        assert sighting.mac == sim.mac == result.mac
        assert (sighting.ip, sighting.port, sighting.how) == (host, sim.port, "snmp")
        assert sighting.name == sim.sys_name
        assert sighting.details["snmp_version"] == "v2c"
        assert sighting.details["sys_object_id"] == sim.sys_object_id
        assert result.elapsed < 1.0


async def test_grandstream_with_net_snmp_object_id_still_gives_vendor_and_firmware():
    """Older HT8xx firmware reports net-snmp's generic sysObjectID: vendor yes, model unknown."""
    async with GatewaySimulator("grandstream-ht812", "000b82000777", "1.0.5.11", host="127.0.0.6",
                                sys_object_id="1.3.6.1.4.1.8072.3.2.10") as sim:
        [result] = await scan([(sim.host, sim.port)], timeout=1.0)
    assert result.sighting is not None
    sighting = result.sighting
    assert (sighting.vendor, sighting.model, sighting.firmware) == ("grandstream", None, "1.0.5.11")


@pytest.mark.parametrize("auth, priv", [("SHA", "AES"), ("MD5", "DES")])
async def test_v3_auth_priv(auth, priv):
    user = V3User("provisioner", auth, "auth-secret-1", priv, "priv-secret-1")
    async with GatewaySimulator("grandstream-ht812", "ec74d7010203", host="127.0.0.7", v3=user) as sim:
        good, bad_key, bad_user = [
            (await scan([(sim.host, sim.port)], v3=creds, timeout=1.0))[0]
            for creds in (V3Credentials("provisioner", auth, "auth-secret-1", priv, "priv-secret-1"),
                          V3Credentials("provisioner", auth, "wrong-secret", priv, "priv-secret-1"),
                          V3Credentials("intruder", auth, "auth-secret-1", priv, "priv-secret-1"))]
        # v2c with the default community is still served beside the v3 user
        [v2c] = await scan([(sim.host, sim.port)], timeout=1.0)
    assert good.ok and good.error is None
    assert (good.sighting.vendor, good.sighting.model, good.sighting.mac) == ("grandstream", "HT812", "ec74d7010203")
    assert good.sighting.details["snmp_version"] == "v3"
    for failed in (bad_key, bad_user):
        assert not failed.ok and failed.sighting is None
        assert failed.error.startswith("auth failure"), failed.error
        assert failed.elapsed < 0.9, "an auth failure is reported, not waited out (timeout 1 s)"
    assert v2c.ok


def test_v3_credentials_are_checked_and_kept_out_of_repr():
    creds = V3Credentials("ops", "sha", "longenough", "aes", "longenough2")
    assert "longenough" not in repr(creds)
    with pytest.raises(ValueError):
        V3Credentials("ops", "SHA", "short")
    with pytest.raises(ValueError):
        V3Credentials("ops", None, None, "AES", "longenough")
    with pytest.raises(ValueError):
        V3Credentials("ops", "SHA3", "longenough", None)


async def test_wrong_community_is_a_clean_error():
    async with GatewaySimulator("cisco-spa112", "8843e1000001", host="127.0.0.8", community="s3cret") as sim:
        started = time.monotonic()
        [result] = await scan([(sim.host, sim.port)], community="public", timeout=0.4)
        took = time.monotonic() - started
    assert not result.ok and result.sighting is None
    assert result.error.startswith("timeout") and "community" in result.error
    assert 0.3 < took < 2.0


async def test_silent_garbage_and_slow_hosts_do_not_stall_the_scan():
    timeout = 1.0
    silent, silent_port = await _udp_server(_Silent, "127.0.0.10")
    garbage, garbage_port = await _udp_server(_Garbage, "127.0.0.11")
    slow = GatewaySimulator("grandstream-ht812", "000b82000010", host="127.0.0.12", delay=2 * timeout)
    good = [GatewaySimulator("grandstream-ht802", "000b82000011", host="127.0.0.13"),
            GatewaySimulator("cisco-spa112", "8843e1000012", host="127.0.0.14")]
    for sim in (slow, *good):
        await sim.start()
    closed_port = _common_free_port(["127.0.0.15"])  # nothing listens there
    targets = [("127.0.0.10", silent_port), ("127.0.0.11", garbage_port), ("127.0.0.12", slow.port),
               ("127.0.0.13", good[0].port), ("127.0.0.14", good[1].port), ("127.0.0.15", closed_port)]
    try:
        started = time.monotonic()
        results = await scan(targets, timeout=timeout, concurrency=8)
        took = time.monotonic() - started
    finally:
        silent.close()
        garbage.close()
        for sim in (slow, *good):
            await sim.stop()
    by_ip = {r.ip: r for r in results}
    assert took < 4 * timeout, f"scan took {took:.2f}s"
    assert by_ip["127.0.0.10"].error.startswith("timeout")
    assert by_ip["127.0.0.11"].error.startswith("garbage"), by_ip["127.0.0.11"].error
    assert not by_ip["127.0.0.12"].ok and by_ip["127.0.0.12"].error
    assert by_ip["127.0.0.15"].error.startswith("timeout")
    assert by_ip["127.0.0.13"].sighting.model == "HT802"
    assert by_ip["127.0.0.14"].sighting.model == "SPA112"
    for r in results:
        assert r.elapsed < 2 * timeout + 0.3


async def test_cidr_scan_respects_the_concurrency_cap():
    hosts = [f"127.0.0.{i}" for i in range(1, 7)]  # what 127.0.0.0/29 expands to
    in_flight = 0
    peak = 0
    requests = 0

    def observer(event, _addr):
        nonlocal in_flight, peak, requests
        if event == "request":
            requests += 1
            in_flight += 1
            peak = max(peak, in_flight)
        else:
            in_flight -= 1

    for attempt in range(5):
        port = _common_free_port(hosts)
        sims = [GatewaySimulator("grandstream-ht812", f"000b8200010{i}", host=host, port=port, delay=0.1,
                                 observer=observer) for i, host in enumerate(hosts)]
        started = []
        try:
            for sim in sims:
                await sim.start()
                started.append(sim)
            break
        except OSError:
            for sim in started:
                await sim.stop()
    else:
        pytest.fail("could not bind simulators on one port")
    try:
        results = await scan(["127.0.0.0/29"], port=port, concurrency=2, timeout=2.0)
    finally:
        for sim in sims:
            await sim.stop()
    assert [r.ip for r in results] == hosts
    assert all(r.ok and r.sighting.model == "HT812" for r in results)
    assert {r.sighting.mac for r in results} == {s.mac for s in sims}
    assert requests >= 2 * len(hosts)  # system-group GET + table GETBULK per host
    assert peak == 2, f"peak in flight {peak} with concurrency 2"


def test_expand_targets():
    assert expand_targets(["127.0.0.0/29"], 161) == [(f"127.0.0.{i}", 161) for i in range(1, 7)]
    assert expand_targets(["10.0.0.0/31"]) == [("10.0.0.0", 161), ("10.0.0.1", 161)]
    assert expand_targets(["10.0.0.5/32", "10.0.0.5", ("10.0.0.5", 1161)]) == [("10.0.0.5", 161), ("10.0.0.5", 1161)]
    assert expand_targets([("192.168.7.0/30", 16161)]) == [("192.168.7.1", 16161), ("192.168.7.2", 16161)]
    assert len(expand_targets(["10.1.0.0/16"])) == 65534
    assert expand_targets("10.9.9.9") == [("10.9.9.9", 161)]
    assert len(expand_targets(["fd00::/120"])) == 256
    for bad in (["10.0.0.0/15"], ["fd00::/111"], ["phone.example.com"], ["10.0.0.300"], [("10.0.0.1", 0)],
                [("10.0.0.1", 1, 2)]):
        with pytest.raises(ValueError):
            expand_targets(bad)


async def test_scan_refuses_big_networks_before_sending():
    with pytest.raises(ValueError, match="/16"):
        await scan(["10.0.0.0/8"])
    assert await scan([]) == []


def test_cli_serves_a_gateway():
    """``python -m simulators.gateway`` prints where it listens and answers a scan."""
    with subprocess.Popen(
            [sys.executable, "-m", "simulators.gateway", "--profile", "cisco-spa112", "--mac", "88:43:e1:00:00:99",
             "--host", "127.0.0.20", "--port", "0"],
            cwd=ROOT, stdout=subprocess.PIPE, text=True) as proc:
        try:
            line = proc.stdout.readline()
            port = int(line.rsplit(":", 1)[1])
            [result] = asyncio.run(scan([("127.0.0.20", port)], timeout=2.0))
            assert (result.sighting.vendor, result.sighting.model, result.mac) == ("cisco", "SPA112", "8843e1000099")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


# -- identify() ---------------------------------------------------------------------------------

HT8XX_DESCR = "Linux HT8XX 3.4.20-rt31-dvf-v1.2.6.1-rc2 #54 PREEMPT Sat Oct 21 17:21:10 CST 2017 armv5tejl"
SPA112_DESCR = "Linux SPA112 2.6.26.5 #1 PREEMPT Wed Aug 2 14:04:45 CST 2017 armv5tejl"


@pytest.mark.parametrize("descr, oid, mac, extra, expected", [
    # real captures (LibreNMS test data)
    (HT8XX_DESCR, "1.3.6.1.4.1.8072.3.2.10", None, {"grandstream_firmware": "1.0.5.11"},
     ("grandstream", None, "1.0.5.11")),
    (SPA112_DESCR, ".1.3.6.1.4.1.9.6.1.23.1.1.1.3", None, {"ent_model": "SPA112", "ent_software_rev": "0.00.51"},
     ("cisco", "SPA112", "0.00.51")),
    # Grandstream GS-HT8XX-MIB product OIDs
    (HT8XX_DESCR, "1.3.6.1.4.1.42397.1.2.812", None, {}, ("grandstream", "HT812", None)),
    (HT8XX_DESCR, "1.3.6.1.4.1.42397.1.2.814", None, {}, ("grandstream", "HT814", None)),
    ("Linux HT801 kernel", "1.3.6.1.4.1.8072.3.2.10", None, {}, ("grandstream", "HT801", None)),
    ("Grandstream HT818 1.0.45.2", None, None, {}, ("grandstream", "HT818", None)),
    ("Grandstream GXP2135 1.0.7.97", "1.3.6.1.4.1.42397", None, {}, ("grandstream", "GXP2135", "1.0.7.97")),
    # Cisco ATAs and phones
    ("Linux SPA122 2.6.26.5 #1 PREEMPT armv5tejl", "1.3.6.1.4.1.9.6.1.23.1.1.1.4", None, {}, ("cisco", "SPA122", None)),
    ("Linux", "1.3.6.1.4.1.8072.3.2.10", "00562b000001", {"ent_model": "ATA192-3PW-K9", "ent_software_rev": "12.0.1"},
     ("cisco", "ATA192", "12.0.1")),
    ("Cisco ATA 191 Analog Telephone Adapter", "1.3.6.1.4.1.9.1.9999", None, {}, ("cisco", "ATA191", None)),
    ("Cisco IP Phone CP-8845, SIP 14.2(1)", "1.3.6.1.4.1.9.1.2327", None, {}, ("cisco", "CP-8845", None)),
    # the other vendors (formats modelled on their User-Agents; unverified for SNMP)
    ("Yealink SIP-T46S 66.86.0.15", "1.3.6.1.4.1.37459", None, {}, ("yealink", "SIP-T46S", "66.86.0.15")),
    (None, None, None, {"yealink_model": "T54W", "yealink_firmware": "96.86.0.70"}, ("yealink", "T54W", "96.86.0.70")),
    ("snomD785-SIP 10.1.33.33", None, None, {}, ("snom", "D785", "10.1.33.33")),
    ("snom 370 8.7.5.35", "1.3.6.1.4.1.7526.2.4", None, {}, ("snom", "370", "8.7.5.35")),
    ("Polycom VVX 450 6.4.3.5000", "1.3.6.1.4.1.13885.1", None, {}, ("poly", "VVX450", "6.4.3.5000")),
    ("Poly Edge E450 8.1.2.1234", None, None, {}, ("poly", "EDGEE450", "8.1.2.1234")),
    ("Fanvil X4U 2.12.2.4", "1.3.6.1.4.1.59440", None, {}, ("fanvil", "X4U", "2.12.2.4")),
    ("Gigaset N870 IP PRO/83.V2.43.0+build.5f0a106", "1.3.6.1.4.1.32775.1", None, {},
     ("gigaset", "N870 IP PRO", "83.V2.43.0+build.5f0a106")),
    # enterprise number alone, then OUI alone
    ("Linux 4.9.0 armv7l", "1.3.6.1.4.1.7526.1.2", None, {}, ("snom", None, None)),
    ("embedded device", "1.3.6.1.4.1.8072.3.2.10", "0c383e010203", {}, ("fanvil", None, None)),
    ("embedded device", None, "000B82010203", {}, ("grandstream", None, None)),
    ("embedded device", None, "00:04:13:01:02:03", {}, ("snom", None, None)),
    ("embedded device", None, "ffffffffffff", {}, (None, None, None)),
    (None, None, None, None, (None, None, None)),
    # the kernel version in a Linux sysDescr is not firmware
    (SPA112_DESCR, None, None, {}, ("cisco", "SPA112", None)),
])
def test_identify(descr, oid, mac, extra, expected):
    assert identify(descr, oid, None, mac, extra) == expected


def test_identify_trusts_snmp_over_the_oui():
    # An SPA112 whose MAC is in a Grandstream OUI (a relabelled or re-MACed box) is still a Cisco.
    assert identify(SPA112_DESCR, "1.3.6.1.4.1.9.6.1.23.1.1.1.3", None, "000b82010203") == ("cisco", "SPA112", None)


# -- Sighting -----------------------------------------------------------------------------------


def test_sighting_is_canonical_frozen_and_hashable():
    a = Sighting("00:0B:82:AA:BB:CC", "127.0.0.1", "snmp", "grandstream", "HT812", "1.0.43.11",
                 details={"sys_descr": "x"})
    b = Sighting("000b82aabbcc", "127.0.0.1", "snmp", "grandstream", "HT812", "1.0.43.11",
                 details={"sys_descr": "x"})
    assert a.mac == "000b82aabbcc" and a == b and hash(a) == hash(b)
    with pytest.raises(TypeError):
        a.details["sys_descr"] = "y"  # type: ignore[index]
    with pytest.raises(AttributeError):
        a.model = "HT814"  # type: ignore[misc]
    assert Sighting(None, "::1", "mdns", None, None, None).mac is None
    with pytest.raises(MacError):
        Sighting("01:00:5e:00:00:01", "10.0.0.1", "snmp", None, None, None)
    with pytest.raises(ValueError):
        Sighting(None, "10.0.0.1", "carrier-pigeon", None, None, None)
    with pytest.raises(ValueError):
        Sighting(None, "not-an-ip", "pnp", None, None, None)
