"""The technician's commands as processes: `deskprov discover --snmp` finds a simulated ATA and
puts it in the inbox; `deskprov dhcp snippet` prints a config the DHCP server accepts."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from simulators.gateway import GatewaySimulator


async def deskprov(tmp_path, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKPROV_")}
    env.update(DESKPROV_DATA_DIR=str(tmp_path / "var"), COLUMNS="160")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "provisioning.cli", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_discover_scans_snmp_and_fills_the_inbox(tmp_path):
    ata = GatewaySimulator("grandstream-ht812", mac="00:0B:82:11:22:33", firmware="1.0.43.11", host="127.0.0.3")
    await ata.start()
    try:
        code, out, err = await deskprov(tmp_path, "discover", "--snmp", "127.0.0.3/32", "--snmp-port",
                                        str(ata.port), "--seconds", "0.5")
    finally:
        await ata.stop()
    assert code == 0, err
    assert "000b82112233" in out and "grandstream" in out and "1 device(s) found" in out
    code, out, err = await deskprov(tmp_path, "inbox")
    assert code == 0 and "000b82112233" in out and "snmp" in out


async def test_discover_needs_a_channel(tmp_path):
    code, _, err = await deskprov(tmp_path, "discover", "--seconds", "0")
    assert code == 2 and "--snmp CIDR, --mdns and/or --pnp" in err


async def test_dhcp_snippet(tmp_path):
    code, out, err = await deskprov(tmp_path, "dhcp", "snippet", "--server", "kea", "--url", "http://10.0.0.5:8080/")
    assert code == 0, err
    config = json.loads(out)
    assert "http://10.0.0.5:8080/" in json.dumps(config)
    code, _, err = await deskprov(tmp_path, "dhcp", "snippet", "--server", "isc", "--url", "ftp://x")
    assert code == 2 and "deskprov dhcp snippet:" in err
