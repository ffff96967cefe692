"""Run a real DHCP server with a generated snippet inside a private network namespace and ask it.

Used by test_dhcp.py as ``unshare --net python dhcp_netns.py SERVER SNIPPET CASES``: inside the new
namespace it creates a veth pair (``dpv0`` 10.99.0.1/24 for the server, ``dpv1`` for the "phone"),
starts ISC dhcpd, Kea or dnsmasq with the snippet plus a subnet, sends one DHCPDISCOVER per case
(given MAC and vendor class, broadcast flag set) from ``dpv1`` and prints the options of each
OFFER as JSON.  Nothing leaves the namespace: it has no other interface than its loopback.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

SERVER_IF, CLIENT_IF = "dpv0", "dpv1"
SERVER_IP = "10.99.0.1"
REQUESTED = bytes([1, 3, 6, 43, 66, 67, 114, 150, 160])


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def setup_links() -> None:
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", SERVER_IF, "type", "veth", "peer", "name", CLIENT_IF)
    sh("ip", "addr", "add", f"{SERVER_IP}/24", "dev", SERVER_IF)
    sh("ip", "link", "set", SERVER_IF, "up")
    sh("ip", "link", "set", CLIENT_IF, "up")


def start_server(kind: str, snippet: str, tmp: str) -> subprocess.Popen:
    if kind == "isc":
        conf = os.path.join(tmp, "dhcpd.conf")
        with open(conf, "w") as f:
            f.write("authoritative;\nping-check false;\n" + snippet +
                    "\nsubnet 10.99.0.0 netmask 255.255.255.0 { range 10.99.0.100 10.99.0.200; }\n")
        leases = os.path.join(tmp, "dhcpd.leases")
        open(leases, "w").close()
        cmd = ["dhcpd", "-4", "-f", "-d", "-cf", conf, "-lf", leases, "-pf", os.path.join(tmp, "dhcpd.pid"),
               SERVER_IF]
    elif kind == "kea":
        doc = json.loads(snippet)
        doc["Dhcp4"].update({
            "interfaces-config": {"interfaces": [SERVER_IF]},
            "lease-database": {"type": "memfile", "persist": False},
            "subnet4": [{"subnet": "10.99.0.0/24", "pools": [{"pool": "10.99.0.100 - 10.99.0.200"}]}],
            "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stderr"}], "severity": "WARN"}],
        })
        conf = os.path.join(tmp, "kea.json")
        with open(conf, "w") as f:
            json.dump(doc, f)
        os.environ["KEA_LOCKFILE_DIR"] = "none"
        os.environ["KEA_PIDFILE_DIR"] = tmp
        cmd = ["kea-dhcp4", "-c", conf]
    else:
        conf = os.path.join(tmp, "dnsmasq.conf")
        with open(conf, "w") as f:
            f.write(snippet)
        cmd = ["dnsmasq", "-d", "--conf-file=" + conf, "--port=0", f"--interface={SERVER_IF}",
               "--log-dhcp", "--dhcp-range=10.99.0.100,10.99.0.200,255.255.255.0,1h",
               "--dhcp-leasefile=" + os.path.join(tmp, "leases"), "--pid-file=" + os.path.join(tmp, "pid"),
               "--no-ping", "--user=root", "--no-resolv", "--no-hosts"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def discover(mac: str, vendor_class: str | None, xid: int) -> bytes:
    chaddr = bytes.fromhex(mac.replace(":", ""))
    head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, b"\0" * 4, b"\0" * 4,
                       b"\0" * 4, b"\0" * 4, chaddr.ljust(16, b"\0"), b"", b"")
    opts = b"\x63\x82\x53\x63" + bytes([53, 1, 1, 55, len(REQUESTED)]) + REQUESTED
    if vendor_class is not None:
        vc = vendor_class.encode("latin-1")
        opts += bytes([60, len(vc)]) + vc
    return head + opts + b"\xff"


def parse_options(packet: bytes) -> tuple[int, dict[int, bytes]]:
    xid = struct.unpack("!I", packet[4:8])[0]
    data, i, out = packet[240:], 0, {}
    while i < len(data):
        code = data[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        length = data[i + 1]
        out[code] = out.get(code, b"") + data[i + 2:i + 2 + length]
        i += 2 + length
    return xid, out


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(mac: str, payload: bytes) -> bytes:
    """Ethernet broadcast from ``mac``: IPv4 0.0.0.0:68 -> 255.255.255.255:67 (no UDP checksum)."""
    udp = struct.pack("!HHHH", 68, 67, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, b"\0" * 4, b"\xff" * 4)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return b"\xff" * 6 + bytes.fromhex(mac.replace(":", "")) + b"\x08\x00" + ip + udp


def _udp_payload(frame: bytes, port: int) -> bytes | None:
    """The UDP payload of an Ethernet/IPv4/UDP frame to ``port``, else None."""
    ip = frame[14:]
    if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
        return None
    udp = ip[(ip[0] & 0x0F) * 4:]
    if len(udp) < 8 or struct.unpack("!H", udp[2:4])[0] != port:
        return None
    return udp[8:struct.unpack("!H", udp[4:6])[0]]


def ask(cases: list[dict], deadline: float) -> list[dict | None]:
    # The phone's end has no IPv4 address, as at boot: send and read whole frames on the link,
    # as DHCP clients do (the kernel would pick a wrong source address and drop the OFFER).
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    raw.bind((CLIENT_IF, 0x0800))
    raw.settimeout(0.3)
    results: list[dict | None] = []
    for case in cases:
        xid = random.getrandbits(32)
        packet = discover(case["mac"], case.get("vendor_class"), xid)
        answer = None
        while answer is None and time.monotonic() < deadline:
            raw.send(_frame(case["mac"], packet))
            until = time.monotonic() + 0.5
            while time.monotonic() < until:
                try:
                    frame = raw.recv(65535)
                except socket.timeout:
                    continue
                data = _udp_payload(frame, 68)
                if data is None or len(data) < 240 or data[0] != 2:
                    continue
                got_xid, options = parse_options(data)
                if got_xid == xid and options.get(53) == b"\x02":
                    answer = {str(code): value.hex() for code, value in options.items()}
                    break
        results.append(answer)
    return results


def main() -> int:
    kind, snippet_path, cases_path = sys.argv[1:4]
    with open(snippet_path) as f:
        snippet = f.read()
    with open(cases_path) as f:
        cases = json.load(f)
    setup_links()
    tmp = tempfile.mkdtemp(prefix="deskprov-dhcp-")
    proc = start_server(kind, snippet, tmp)
    try:
        results = ask(cases, time.monotonic() + 15)
    finally:
        proc.terminate()
        try:
            log = proc.communicate(timeout=5)[0].decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            proc.kill()
            log = ""
        shutil.rmtree(tmp, ignore_errors=True)
    json.dump({"results": results, "log": log[-4000:]}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
