"""End to end: a simulated Yealink boots against the real server over HTTP and TFTP.

The simulator parses what it receives with its own Yealink parser (simulators/yealink.py),
never with the server's code, so these tests show what a real phone would end up with.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from provisioning.model import Device
from provisioning.orgfile import import_text
from simulators.phone import Phone
from simulators.tftp_client import TftpClient, TftpError
from simulators.yealink import YealinkProfile

MAC = "80:5E:C0:AA:BB:01"
EXAMPLE = Path(__file__).parent / "data" / "exempel.yaml"


def t46s(firmware: str = "66.86.0.15", mac: str = MAC) -> Phone:
    return Phone(YealinkProfile(model="T46S", mac=mac, firmware=firmware))


def assert_annas_phone(state) -> None:
    anna = state.accounts[1]
    assert anna.registered
    assert anna.display_name == "Anna Andersson"
    assert anna.user_name == "46854689901"
    assert anna.server == "exempel.sip.example.net"
    assert len(anna.password) >= 20 and anna.auth_name
    blf = state.keys[(0, 2)]
    assert (blf.type, blf.value, blf.label, blf.extension) == ("blf", "202", "Bertil", "*8")
    speed = state.keys[(0, 3)]
    assert (speed.type, speed.value, speed.label) == ("speed_dial", "+46812345678", "Support")
    assert state.keys[(0, 1)].type == "line"
    assert state.settings["local_time.time_zone_name"] == "Sweden(Stockholm)"


async def test_t46s_boots_over_http(example_server):
    state = await t46s().boot_http(f"http://127.0.0.1:{example_server.http_port}/")
    assert not state.errors
    assert state.requested == ["805ec0aabb01.boot", "y000000000066.cfg", "805ec0aabb01.cfg"]
    assert_annas_phone(state)


async def test_t46s_boots_over_tftp(example_server):
    state = await t46s().boot_tftp("127.0.0.1", example_server.tftp_port)
    assert not state.errors
    assert state.requested == ["805ec0aabb01.boot", "y000000000066.cfg", "805ec0aabb01.cfg"]
    assert_annas_phone(state)


async def test_old_firmware_uses_the_legacy_pair(example_server):
    state = await t46s(firmware="66.80.0.110").boot_http(f"http://127.0.0.1:{example_server.http_port}/")
    assert state.requested == ["y000000000066.cfg", "805ec0aabb01.cfg"]
    assert_annas_phone(state)


async def test_http_and_tftp_serve_the_same_bytes(example_server):
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{example_server.http_port}/805ec0aabb01.cfg",
                            headers={"User-Agent": "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01"}) as resp:
            over_http = await resp.read()
    over_tftp = (await TftpClient("127.0.0.1", example_server.tftp_port).get_async("805ec0aabb01.cfg")).data
    assert over_http == over_tftp and b"account.1.password" in over_http


async def test_etag_and_invalidation_on_change(example_server, tmp_path):
    url = f"http://127.0.0.1:{example_server.http_port}/805ec0aabb01.cfg"
    ua = {"User-Agent": "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01"}
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=ua) as first:
            etag, body = first.headers["ETag"], await first.read()
            assert first.headers["Cache-Control"] == "private, no-store"
        async with http.get(url, headers={**ua, "If-None-Match": etag}) as again:
            assert again.status == 304
        # Change Bertil's extension: Anna's BLF key depends on it, so her file must change.
        changed = EXAMPLE.read_text().replace('extension: "202"', 'extension: "203"')
        async with example_server.sessions() as session:
            await import_text(session, changed)
        async with http.get(url, headers={**ua, "If-None-Match": etag}) as after:
            assert after.status == 200
            new_body = await after.read()
    assert new_body != body
    assert b"linekey.2.value = 203" in new_body


async def test_reimporting_the_same_file_keeps_the_cache(example_server):
    await t46s().boot_http(f"http://127.0.0.1:{example_server.http_port}/")
    cached = len(example_server.cache)
    dropped = example_server.cache.invalidations
    async with example_server.sessions() as session:
        report = await import_text(session, EXAMPLE.read_bytes())
    assert "created nothing; updated nothing; deleted nothing" in report.summary()
    await asyncio.sleep(0)
    assert example_server.cache.invalidations == dropped and len(example_server.cache) == cached


async def test_model_is_learnt_from_the_first_request(server):
    text = """
organization: {tftp_secret_networks: [127.0.0.0/8], name: Lärande AB, sip_domain: l.example.net}
users:
  - {name: Cecilia, number: "+46854689931", extension: "301"}
phones:
  - {mac: "80:5E:C0:AA:BB:31", user: "+46854689931"}
"""
    async with server.sessions() as session:
        await import_text(session, text)
    state = await t46s(mac="80:5E:C0:AA:BB:31").boot_http(f"http://127.0.0.1:{server.http_port}/")
    assert state.accounts[1].registered
    async with server.sessions() as session:
        device = (await session.execute(select(Device).where(Device.mac == "805ec0aabb31"))).scalar_one()
    assert (device.vendor, device.model, device.firmware) == ("yealink", "T46S", "66.86.0.15")


async def test_model_is_learnt_over_tftp_from_the_common_file(server):
    text = """
organization: {tftp_secret_networks: [127.0.0.0/8], name: Lärande AB, sip_domain: l.example.net}
users:
  - {name: Cecilia, number: "+46854689931"}
phones:
  - {mac: "80:5E:C0:AA:BB:32", user: "+46854689931"}
"""
    async with server.sessions() as session:
        await import_text(session, text)
    state = await t46s(mac="80:5E:C0:AA:BB:32", firmware="66.80.0.110").boot_tftp("127.0.0.1", server.tftp_port)
    assert state.accounts[1].registered
    async with server.sessions() as session:
        device = (await session.execute(select(Device).where(Device.mac == "805ec0aabb32"))).scalar_one()
    assert (device.vendor, device.model) == ("yealink", "T46S")


# -- refusals: every one is a plain 404 / file-not-found, carries no secret, and is logged --------

REFUSED = [
    # (path, user agent, expected reason in the log)
    ("/805ec0aabb99.cfg", "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:99", "unknown MAC"),
    ("/805ec0aabb02.cfg", "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:02", "not bound"),
    ("/805ec0aabb01.cfg", "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:77", "not the User-Agent's"),
    ("/805ec0aabb01.boot", "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:77", "not the User-Agent's"),
]


@pytest.fixture
async def with_unbound_phone(example_server):
    text = EXAMPLE.read_text() + '  - {mac: "80:5E:C0:AA:BB:02", model: Yealink T46S}\n'
    async with example_server.sessions() as session:
        await import_text(session, text)
    return example_server


@pytest.mark.parametrize("path, ua, reason", REFUSED)
async def test_refused_over_http(with_unbound_phone, caplog, path, ua, reason):
    caplog.set_level(logging.INFO, "deskprov.serve")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{with_unbound_phone.http_port}{path}",
                            headers={"User-Agent": ua}) as resp:
            assert resp.status == 404
            body = await resp.read()
    assert b"password" not in body and b"account" not in body
    assert any(reason in r.getMessage() and path.lstrip("/") in r.getMessage() for r in caplog.records)


async def test_unbound_and_unknown_refused_over_tftp(with_unbound_phone, caplog):
    caplog.set_level(logging.INFO, "deskprov.serve")
    client = TftpClient("127.0.0.1", with_unbound_phone.tftp_port)
    for name in ("805ec0aabb02.cfg", "805ec0aabb99.cfg", "805ec0aabb02.boot"):
        with pytest.raises(TftpError) as err:
            await client.get_async(name)
        assert err.value.not_found
    assert sum("refused tftp" in r.getMessage() for r in caplog.records) == 3


async def _raw_http(port: int, target: str) -> tuple[int, bytes]:
    """An HTTP request with the path exactly as written (clients would normalise ``..``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nUser-Agent: Yealink SIP-T46S 66.86.0.15 "
                 f"80:5e:c0:aa:bb:01\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    status = int(response.split(b" ", 2)[1])
    return status, response


@pytest.mark.parametrize("target", ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc/passwd",
                                    "/tftp_root/../805ec0aabb01.cfg", "//etc/passwd"])
async def test_traversal_over_http(example_server, caplog, target):
    caplog.set_level(logging.INFO, "deskprov.serve")
    status, response = await _raw_http(example_server.http_port, target)
    assert status in (400, 404)
    assert b"root:" not in response and b"password" not in response


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "..\\..\\etc\\passwd", "a/../../etc/passwd"])
async def test_traversal_over_tftp(example_server, name):
    with pytest.raises(TftpError) as err:
        await TftpClient("127.0.0.1", example_server.tftp_port).get_async(name)
    assert err.value.not_found
