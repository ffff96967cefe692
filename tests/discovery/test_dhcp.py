"""DHCP snippets: the plan per vendor, valid config for ISC dhcpd / Kea / dnsmasq, and real servers'
answers to phone-like DISCOVERs inside a private network namespace."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provisioning.dhcp import SERVERS, DhcpSnippetError, dhcp_plan, render_snippet
from provisioning.discovery.fingerprints import OUIS, ouis_of, vendor_for_mac, vendor_for_vendor_class
from provisioning.vendors import PLUGINS

URL = "http://prov.example.net:8080/"
TFTP = "192.0.2.10"
HERE = Path(__file__).parent


def _options(cls) -> dict:
    return {(o.code, o.sub): o.value for o in cls.options}


def test_plan_per_vendor():
    plan = {c.name: c for c in dhcp_plan(URL.rstrip("/"), tftp_server=TFTP)}
    assert _options(plan["deskprov-yealink"]) == {(66, None): URL}
    assert _options(plan["deskprov-poly"]) == {(66, None): URL, (160, None): URL}
    assert _options(plan["deskprov-cisco-spa"]) == {(66, None): URL + "spa$PSN.cfg", (150, None): (TFTP,)}
    assert _options(plan["deskprov-cisco-mpp"])[(66, None)] == URL + "$PSN.xml"
    assert _options(plan["deskprov-cisco-mpp"])[(160, None)] == URL + "$PSN.xml"
    assert _options(plan["deskprov-cisco-ata"])[(66, None)] == URL + "ata$PSN.cfg"
    assert _options(plan["deskprov-cisco-other"]) == {(66, None): TFTP, (150, None): (TFTP,)}
    assert _options(plan["deskprov-snom"]) == {(66, None): URL, (43, 66): URL}
    assert _options(plan["deskprov-grandstream"]) == {(66, None): URL}
    assert _options(plan["deskprov-fanvil"]) == {(66, None): URL + "$mac.cfg", (43, None): URL + "$mac.cfg"}
    assert _options(plan["deskprov-gigaset"]) == {(114, None): URL, (66, None): "prov.example.net:8080"}
    assert plan["deskprov-yealink"].ouis == ouis_of("yealink") and "805ec0" in ouis_of("yealink")
    # Without a TFTP server there is no option 150 and no OUI-only Cisco class.
    names = [c.name for c in dhcp_plan(URL)]
    assert "deskprov-cisco-other" not in names
    assert all(o.code != 150 for c in dhcp_plan(URL) for o in c.options)
    assert [c.vendor for c in dhcp_plan(URL, vendors=["snom", "fanvil"])] == ["snom", "fanvil"]


def test_gigaset_url_length_is_flagged():
    long_url = "http://provisioning.customer-site.example.net:8080/deskprov/some/deep/path/"
    gigaset = next(c for c in dhcp_plan(long_url) if c.vendor == "gigaset")
    assert gigaset.notes and "74" in gigaset.notes[0]
    assert "# NOTE: the URL is" in render_snippet("isc", long_url, vendors=["gigaset"])


@pytest.mark.parametrize("bad", ["ftp://x/", "http:///", "http://x/a\"b", "http://x/?a=1", "http://x/\nfoo",
                                 "http://x/ä"])
def test_unusable_urls_are_refused(bad):
    with pytest.raises(DhcpSnippetError):
        dhcp_plan(bad)


def test_bad_arguments():
    with pytest.raises(DhcpSnippetError):
        dhcp_plan(URL, tftp_server="tftp.example.net")
    with pytest.raises(DhcpSnippetError):
        dhcp_plan(URL, vendors=["nokia"])
    with pytest.raises(DhcpSnippetError):
        render_snippet("windows", URL)


def test_one_table_of_ouis_and_vendor_classes():
    for plugin in PLUGINS:
        for oui in plugin.ouis:
            assert OUIS[oui] == plugin.name and vendor_for_mac(oui + "123456") == plugin.name
    assert vendor_for_mac("02:00:00:00:00:01") is None and vendor_for_mac("garbage") is None
    assert vendor_for_vendor_class("snomD785") == ("snom", "snom")
    assert vendor_for_vendor_class("Cisco Systems, Inc. IP Phone CP-8841-3PCC\0") == ("cisco", "mpp")
    assert vendor_for_vendor_class("Cisco Systems, Inc. IP Phone SPA504G") == ("cisco", "spa")
    assert vendor_for_vendor_class("CISCO SPA112") == ("cisco", "spa")
    assert vendor_for_vendor_class("CISCO ATA192-MPP") == ("cisco", "ata-mpp")
    assert vendor_for_vendor_class("LINKSYS SPA-942") == ("cisco", "spa")
    assert vendor_for_vendor_class("Gigaset_N720_DM_PRO") == ("gigaset", "gigaset")
    assert vendor_for_vendor_class("MSFT 5.0") is None and vendor_for_vendor_class(None) is None


def test_snmp_identification_uses_the_same_oui_table():
    from provisioning.discovery.snmp import identify

    assert identify(None, None, None, "0c:38:3e:00:00:01") == ("fanvil", None, None)
    assert identify(None, None, None, "c4:b9:cd:00:00:01")[0] == "cisco"  # in the plugin, not the old list


# -- syntax, checked by the servers themselves where installed -------------------------------------

def _tool(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.path.exists(p)), None)


def _snippets() -> dict[str, str]:
    return {s: render_snippet(s, URL, tftp_server=TFTP) for s in SERVERS}


def test_isc_structure():
    text = _snippets()["isc"]
    assert text.count("{") == text.count("}") and text.count('class "') == 10
    assert 'option deskprov-cisco-tftp-servers code 150 = array of ip-address;' in text
    assert 'match if substring(pick-first-value(option vendor-class-identifier, ""), 0, 4) = "snom"' in text
    assert "substring(hardware, 1, 3) = 80:5e:c0" in text


def test_kea_structure():
    doc = json.loads(_snippets()["kea"])["Dhcp4"]
    classes = {c["name"]: c for c in doc["client-classes"]}
    assert len(classes) == 10
    assert "substring(pkt4.mac, 0, 3) == 0x805ec0" in classes["deskprov-yealink"]["test"]
    assert classes["deskprov-cisco-other"]["test"].endswith(
        "and not (member('deskprov-cisco-spa') or member('deskprov-cisco-mpp') or member('deskprov-cisco-ata'))")
    assert {"name": "tftp-server-name", "data": URL} in classes["deskprov-yealink"]["option-data"]
    assert classes["deskprov-snom"]["option-def"][0]["encapsulate"] == "deskprov-snom"
    assert {d["code"] for d in doc["option-def"]} == {150, 160, 66}


def test_dnsmasq_structure():
    lines = [line for line in _snippets()["dnsmasq"].splitlines() if line and not line.startswith("#")]
    assert all(re.match(r"^dhcp-(vendorclass|mac|option)=", line) for line in lines)
    assert 'dhcp-vendorclass=set:deskprov-cisco-spa,"Cisco Systems, Inc. IP Phone SPA"' in lines
    assert 'dhcp-option=tag:deskprov-snom,vendor:snom,66,"http://prov.example.net:8080/"' in lines
    assert ("dhcp-option=tag:deskprov-cisco-other,tag:!deskprov-cisco-spa,tag:!deskprov-cisco-mpp,"
            "tag:!deskprov-cisco-ata,150,192.0.2.10") in lines


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, **kw)


@pytest.mark.skipif(_tool("dhcpd") is None, reason="ISC dhcpd not installed (Debian: isc-dhcp-server)")
def test_isc_dhcpd_accepts_the_snippet(tmp_path):
    conf = tmp_path / "dhcpd.conf"
    conf.write_text(_snippets()["isc"] + "subnet 10.99.0.0 netmask 255.255.255.0 { range 10.99.0.100 10.99.0.200; }\n")
    done = _run([_tool("dhcpd"), "-t", "-q", "-4", "-cf", str(conf)])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(_tool("kea-dhcp4") is None, reason="kea-dhcp4 not installed (Debian: kea-dhcp4-server)")
def test_kea_accepts_the_snippet(tmp_path):
    doc = json.loads(_snippets()["kea"])
    doc["Dhcp4"].update({"interfaces-config": {"interfaces": []},
                         "lease-database": {"type": "memfile", "persist": False},
                         "subnet4": [{"subnet": "10.99.0.0/24", "pools": [{"pool": "10.99.0.100 - 10.99.0.200"}]}]})
    conf = tmp_path / "kea.json"
    conf.write_text(json.dumps(doc))
    done = _run([_tool("kea-dhcp4"), "-t", str(conf)], env={**os.environ, "KEA_LOCKFILE_DIR": "none"})
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(_tool("dnsmasq") is None, reason="dnsmasq not installed (Debian: dnsmasq-base)")
def test_dnsmasq_accepts_the_snippet(tmp_path):
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(_snippets()["dnsmasq"])
    done = _run([_tool("dnsmasq"), "--test", f"--conf-file={conf}"])
    assert done.returncode == 0, done.stdout + done.stderr


# -- what a real server hands a phone ------------------------------------------------------------

CASES = [  # (MAC, option 60 or None) -> {option: expected value}
    ("80:5e:c0:11:22:33", None, {66: URL}),
    ("00:04:13:11:22:33", "snomD785", {66: URL, 43: bytes([66, len(URL)]) + URL.encode()}),
    ("00:56:2b:11:22:33", "Cisco Systems, Inc. IP Phone CP-8841-3PCC\0",
     {66: URL + "$PSN.xml", 160: URL + "$PSN.xml", 150: bytes([192, 0, 2, 10])}),
    ("88:43:e1:11:22:33", "Cisco Systems, Inc. IP Phone SPA504G", {66: URL + "spa$PSN.cfg", 150: bytes([192, 0, 2, 10])}),
    ("00:56:2b:aa:bb:cc", None, {66: TFTP, 150: bytes([192, 0, 2, 10])}),
    ("0c:38:3e:11:22:33", None, {66: URL + "$mac.cfg", 43: URL + "$mac.cfg"}),
    ("7c:2f:80:11:22:33", "Gigaset_N720_DM_PRO", {114: URL, 66: "prov.example.net:8080"}),
    ("64:16:7f:11:22:33", None, {66: URL, 160: URL}),
    ("00:0b:82:11:22:33", None, {66: URL}),
    ("02:00:00:11:22:33", "udhcp 1.36.1", {}),  # not a phone: nothing
]
BINARIES = {"isc": "dhcpd", "kea": "kea-dhcp4", "dnsmasq": "dnsmasq"}


def _netns_skip_reason(server: str) -> str | None:
    if sys.platform != "linux" or os.geteuid() != 0:
        return "needs root on Linux to create a network namespace"
    for tool in ("unshare", "ip", BINARIES[server]):
        if _tool(tool) is None:
            return f"{tool} not installed"
    probe = _run([_tool("unshare"), "--net", "true"])
    return None if probe.returncode == 0 else f"unshare --net refused: {probe.stderr.strip()}"


def _bytes(value) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


@pytest.mark.parametrize("server", SERVERS)
def test_a_real_server_gives_each_phone_its_options(server, tmp_path):
    reason = _netns_skip_reason(server)
    if reason:
        pytest.skip(reason)
    snippet = tmp_path / "snippet"
    snippet.write_text(render_snippet(server, URL, tftp_server=TFTP))
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps([{"mac": mac, "vendor_class": vc} for mac, vc, _ in CASES]))
    done = _run([_tool("unshare"), "--net", sys.executable, str(HERE / "dhcp_netns.py"), server, str(snippet),
                 str(cases)])
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    for (mac, vc, expected), got in zip(CASES, out["results"]):
        assert got is not None, f"no OFFER for {mac}\n{out['log']}"
        options = {int(k): bytes.fromhex(v) for k, v in got.items()}
        for code, value in expected.items():
            value = _bytes(value)
            if code == 43 and server == "dnsmasq" and mac.startswith("00:04:13"):
                value += b"\xff"  # dnsmasq ends encapsulated options with an END
            if code == 66 and server == "dnsmasq":
                value += b"\0"  # dnsmasq NUL-terminates option 66 (PXE/TFTP clients expect a C string)
            assert options.get(code) == value, (server, mac, code, options)
        for code in {43, 66, 114, 150, 160} - set(expected):
            assert code not in options, (server, mac, code, options)
