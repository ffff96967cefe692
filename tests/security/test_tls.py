"""HTTPS with the operator's certificate, and mutual TLS with devices' factory certificates:
a device that proves its MAC gets its own files and nobody else's."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest

from provisioning.orgfile import import_text
from provisioning.certs import issue, key_pem, mac_from_certificate, new_key, pem, self_signed, write_pair, _name
from provisioning.server import Server

EXAMPLE = (Path(__file__).parent.parent / "data" / "exempel.yaml").read_text()
SECOND_PHONE = '''  - mac: "80:5E:C0:AA:BB:02"
    model: Yealink T46S
    user: "+46854689902"
'''


@pytest.fixture
def pki(tmp_path):
    """A vendor CA with two device certificates (MAC in the subject, as Cisco/Poly/Yealink do)."""
    server_crt, server_key = write_pair(tmp_path, "server", *self_signed(("127.0.0.1", "localhost")))
    ca_key = new_key()
    ca = issue(_name("Example Vendor Device CA", organization="Example Vendor"), ca_key, None, ca_key, ca=True)
    (tmp_path / "vendor-ca.pem").write_bytes(pem(ca))
    devices = {}
    for mac, subject in (("805ec0aabb01", _name("805ec0aabb01", organization="Example Vendor")),
                         ("805ec0aabb02", _name("CP-8841-3PCC", unit="CP-8841-3PCC", state="805EC0AABB02"))):
        key = new_key()
        cert = issue(subject, key, ca, ca_key, client=True)
        devices[mac] = write_pair(tmp_path, mac, pem(cert), key_pem(key))
    rogue_key = new_key()
    rogue = issue(_name("805ec0aabb01"), rogue_key, None, rogue_key, client=True)  # not signed by the CA
    devices["rogue"] = write_pair(tmp_path, "rogue", pem(rogue), key_pem(rogue_key))
    return {"server": (server_crt, server_key), "ca": tmp_path / "vendor-ca.pem", "devices": devices}


async def start(make_server, pki, require: bool) -> Server:
    crt, key = pki["server"]
    server = await make_server(https_port=0, tls_cert=str(crt), tls_key=str(key), tls_client_ca=str(pki["ca"]),
                               tls_require_client_cert=require)
    async with server.sessions() as session:
        await import_text(session, EXAMPLE + SECOND_PHONE)
    return server


def client_context(pki, device: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["server"][0]))
    if device:
        context.load_cert_chain(*pki["devices"][device])
    return context


async def get(server: Server, context: ssl.SSLContext, name: str, mac: str) -> tuple[int, bytes]:
    ua = f"Yealink SIP-T46S 66.86.0.15 {':'.join(mac[i:i + 2] for i in range(0, 12, 2))}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"https://127.0.0.1:{server.https_port}/{name}", ssl=context,
                            headers={"User-Agent": ua}) as resp:
            return resp.status, await resp.read()


async def test_device_certificate_gets_only_its_own_files(make_server, pki):
    server = await start(make_server, pki, require=True)
    status, body = await get(server, client_context(pki, "805ec0aabb01"), "805ec0aabb01.cfg", "805ec0aabb01")
    assert status == 200 and b"account.1.password" in body
    # Cisco-style subject (MAC in S=): the second phone is recognised too
    status, _ = await get(server, client_context(pki, "805ec0aabb02"), "805ec0aabb02.cfg", "805ec0aabb02")
    assert status == 200
    # a valid certificate asking for another device's file (UA forged to match the path)
    status, body = await get(server, client_context(pki, "805ec0aabb01"), "805ec0aabb02.cfg", "805ec0aabb02")
    assert status == 404 and b"password" not in body


async def test_required_client_certificate(make_server, pki):
    server = await start(make_server, pki, require=True)
    for device in (None, "rogue"):
        with pytest.raises(aiohttp.ClientError):
            await get(server, client_context(pki, device), "805ec0aabb01.cfg", "805ec0aabb01")
    assert server.http_port  # plain HTTP still runs beside it (the operator firewalls it)


async def test_optional_client_certificate(make_server, pki):
    server = await start(make_server, pki, require=False)
    status, _ = await get(server, client_context(pki, None), "805ec0aabb01.cfg", "805ec0aabb01")
    assert status == 200
    status, _ = await get(server, client_context(pki, "805ec0aabb02"), "805ec0aabb01.cfg", "805ec0aabb01")
    assert status == 404


def test_mac_from_certificate_spellings():
    key = new_key()
    for subject, expected in ((_name("CP-7961G-SEP805EC0AABB01"), "805ec0aabb01"),  # Cisco MIC style
                              (_name("A805EC0AABB01"), None),  # 13 hex digits: not a MAC
                              (_name("80:5E:C0:AA:BB:01"), "805ec0aabb01"),
                              (_name("x", serial="805ec0aabb01"), "805ec0aabb01"),
                              (_name("phone", state="805EC0AABB01"), "805ec0aabb01"),
                              (_name("no mac here"), None)):
        cert = issue(subject, key, None, key, client=True)
        from cryptography.hazmat.primitives.serialization import Encoding

        assert mac_from_certificate(cert.public_bytes(Encoding.DER)) == expected, subject
    assert mac_from_certificate(b"not a certificate") is None
