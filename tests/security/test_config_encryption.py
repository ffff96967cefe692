"""Vendor config encryption, from the attacker's side and the phone's.

What it shows: once a phone has its key, the file on the wire is unreadable without it (no SIP
password bytes in it) and is exactly the vendor's format (the real ``openssl`` binary opens it);
the simulated phone, which decrypts with its own code and the key it learnt the way the vendor's
phone learns it, boots and registers; a wrong key fails loudly; the key is sealed in the database.

Formats (provisioning/config_crypto.py): Yealink AES-128-ECB with the 16-character key as its
bytes (admin guide V84 "Encrypting and Decrypting Files"); Cisco ``[--key]`` and Grandstream P1359
both ``openssl enc -aes-256-cbc -k`` (Cisco SPA provisioning guide "Open Profile Encryption by
using AES", tested against openssl-0.9.7c, i.e. MD5 key derivation; Grandstream XML provisioning
guide "XML file encryption").
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from sqlalchemy import select, text

from provisioning import config_crypto
from provisioning.model import Device
from simulators.cisco import CiscoProfile
from simulators.grandstream import GrandstreamProfile
from simulators.phone import Phone
from simulators.yealink import YealinkProfile
from tests.conftest import import_org

SIP_PASSWORD = "Kvitter-Hemlis-4711"
YEALINK_MAC, CISCO_MAC, GS_MAC, POLY_MAC = "805ec0ccdd01", "00562bccdd02", "000b82ccdd03", "0004f2ccdd04"

ORG = f"""
organization:
  name: Krypto AB
  sip_domain: krypto.sip.example.net
  encrypt_configs: true
users:
  - {{name: Ylva Yealink, number: "+46854680001", extension: "201"}}
  - {{name: Carl Cisco, number: "+46854680002", extension: "202"}}
  - {{name: Greta Grandstream, number: "+46854680003", extension: "203"}}
  - {{name: Per Poly, number: "+46854680004", extension: "204"}}
phones:
  - {{mac: "{YEALINK_MAC}", model: Yealink T46S, user: "+46854680001",
      sip: {{username: ylva-t46s, password: "{SIP_PASSWORD}"}}}}
  - {{mac: "{CISCO_MAC}", model: Cisco CP-8851-3PCC, user: "+46854680002",
      sip: {{username: carl-8851, password: "{SIP_PASSWORD}"}}}}
  - {{mac: "{GS_MAC}", model: Grandstream GXP1610, user: "+46854680003",
      sip: {{username: greta-gxp, password: "{SIP_PASSWORD}"}}}}
  - {{mac: "{POLY_MAC}", model: Poly VVX 450, user: "+46854680004",
      sip: {{username: per-vvx, password: "{SIP_PASSWORD}"}}}}
"""

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl binary is not installed")


def _openssl(*args: str, data: bytes) -> bytes:
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


# -- the formats, checked against an independent implementation ------------------------------------

@needs_openssl
def test_openssl_format_opens_with_the_real_openssl_and_md5_key_derivation():
    plain = b"<flat-profile><Password_1_>" + SIP_PASSWORD.encode() + b"</Password_1_></flat-profile>\n"
    key = config_crypto.OPENSSL.new_key()
    wire = config_crypto.OPENSSL.encrypt(plain, key)
    assert wire.startswith(b"Salted__") and SIP_PASSWORD.encode() not in wire
    assert _openssl("enc", "-d", "-aes-256-cbc", "-md", "md5", "-k", key, data=wire) == plain
    with pytest.raises(subprocess.CalledProcessError):
        _openssl("enc", "-d", "-aes-256-cbc", "-md", "md5", "-k", config_crypto.OPENSSL.new_key(), data=wire)


@needs_openssl
def test_yealink_format_is_aes_128_ecb_with_the_key_characters_as_key():
    plain = f"#!version:1.0.0.1\naccount.1.password = {SIP_PASSWORD}\n".encode()
    key = config_crypto.YEALINK.new_key()
    assert config_crypto.YEALINK.valid_key(key) and len(key) == 16
    wire = config_crypto.YEALINK.encrypt(plain, key)
    assert len(wire) % 16 == 0 and SIP_PASSWORD.encode() not in wire
    assert _openssl("enc", "-d", "-aes-128-ecb", "-K", key.encode().hex(), data=wire) == plain


# -- end to end ----------------------------------------------------------------------------------

def _url(server) -> str:
    return f"http://127.0.0.1:{server.http_port}/"


async def _served(server, name: str, mac: str) -> bytes:
    """The bytes the device's own file goes out as (asked as a TLS-authenticated device would)."""
    outcome = await server.provisioner.fetch(name, user_agent=None, client_ip="127.0.0.1", transport="http",
                                             certificate_mac=mac)
    assert outcome.file is not None, outcome.reason
    return outcome.file.body


async def _device(server, mac: str) -> Device:
    async with server.sessions() as session:
        return (await session.execute(select(Device).where(Device.mac == mac))).scalar_one()


async def test_yealink_gets_its_key_once_then_boots_from_the_encrypted_file(server):
    await import_org(server, ORG)
    phone = Phone(YealinkProfile("T46S", YEALINK_MAC, "66.86.0.15"))

    first = await phone.boot_http(_url(server))  # first contact: the plain file carries the key
    assert not first.errors, first.errors
    assert first.accounts[1].registered and first.accounts[1].password == SIP_PASSWORD
    device = await _device(server, YEALINK_MAC)
    assert phone.profile.aes_key == device.config_key and device.config_key_delivered_at is not None

    wire = await _served(server, f"{YEALINK_MAC}.cfg", YEALINK_MAC)
    assert SIP_PASSWORD.encode() not in wire and b"account." not in wire and device.config_key.encode() not in wire
    if shutil.which("openssl"):
        opened = _openssl("enc", "-d", "-aes-128-ecb", "-K", device.config_key.encode().hex(), data=wire)
        assert f"account.1.password = {SIP_PASSWORD}".encode() in opened

    second = await phone.boot_http(_url(server))  # with credentials and key, like a real phone
    assert not second.errors, second.errors
    assert second.boot_settings[f"decrypted:{YEALINK_MAC}.cfg"] == "aes-128-ecb"
    assert second.accounts[1].registered and second.accounts[1].password == SIP_PASSWORD

    phone.profile.aes_key = "WrongKey00000000"
    wrong = await phone.boot_http(_url(server))
    assert any("cannot decrypt" in e for e in wrong.errors), wrong.errors
    assert 1 not in wrong.accounts or not wrong.accounts[1].registered

    # sealed at rest: the column holds neither the key nor anything that opens without the node's key
    async with server.sessions() as session:
        raw = (await session.execute(text("SELECT config_key FROM device WHERE mac = :m"),
                                     {"m": YEALINK_MAC})).scalar_one()
    assert raw.startswith("enc1:") and device.config_key not in raw


async def test_cisco_profile_rule_carries_the_key_and_the_profile_is_openssl_encrypted(make_server):
    server = await make_server()
    await import_org(server, ORG)
    phone = Phone(CiscoProfile("8851", CISCO_MAC, "11.3.7"))

    first = await phone.boot_http(_url(server))
    assert not first.errors, first.errors
    device = await _device(server, CISCO_MAC)
    assert first.settings["Profile_Rule"].startswith(f'[--key "{device.config_key}"')
    assert first.settings["Profile_Rule"].endswith(f']{_url(server)}$MA.xml')
    assert first.accounts[1].registered

    second = await phone.boot_http(_url(server))  # resync: Profile_Rule with --key, then the common file
    assert not second.errors, second.errors
    assert [name.rsplit("/", 1)[-1] for name in second.requested[:2]] == [f"{CISCO_MAC}.xml", "8851-3PCC.xml"]
    assert second.boot_settings[f"decrypted:{CISCO_MAC}.xml"] == "aes-256-cbc"
    assert second.accounts[1].registered and second.accounts[1].password == SIP_PASSWORD

    phone.profile.profile_rule = f'[--key "{config_crypto.OPENSSL.new_key()}"]{_url(server)}$MA.xml'
    wrong = await phone.boot_http(_url(server))
    assert any("cannot decrypt" in e for e in wrong.errors), wrong.errors

    wire = await _served(server, f"{CISCO_MAC}.xml", CISCO_MAC)
    assert wire.startswith(b"Salted__") and SIP_PASSWORD.encode() not in wire
    if shutil.which("openssl"):
        opened = _openssl("enc", "-d", "-aes-256-cbc", "-md", "md5", "-k", device.config_key, data=wire)
        assert SIP_PASSWORD.encode() in opened


async def test_grandstream_xml_password_p1359(make_server):
    server = await make_server()
    await import_org(server, ORG)
    phone = Phone(GrandstreamProfile("GXP1610", GS_MAC, "1.0.4.138"))

    first = await phone.boot_http(_url(server))
    assert not first.errors, first.errors
    device = await _device(server, GS_MAC)
    assert first.settings["P1359"] == device.config_key and device.config_key_delivered_at is not None

    second = await phone.boot_http(_url(server))
    assert not second.errors, second.errors
    assert second.boot_settings[f"decrypted:cfg{GS_MAC}.xml"] == "aes-256-cbc"
    assert second.accounts[1].registered and second.accounts[1].password == SIP_PASSWORD

    wire = await _served(server, f"cfg{GS_MAC}.xml", GS_MAC)
    assert wire.startswith(b"Salted__") and SIP_PASSWORD.encode() not in wire

    phone.profile.xml_password = "x" * 32
    wrong = await phone.boot_http(_url(server))
    assert any("cannot decrypt" in e for e in wrong.errors), wrong.errors


async def test_a_vendor_without_a_cipher_and_a_device_switched_off_stay_plain(make_server):
    server = await make_server()
    await import_org(server, ORG.replace(
        f'model: Yealink T46S, user: "+46854680001",', f'model: Yealink T46S, user: "+46854680001", '
                                                      f'encrypt_configs: false,'))
    for name, mac in ((f"{YEALINK_MAC}.cfg", YEALINK_MAC), (f"{POLY_MAC}-deskprov.cfg", POLY_MAC)):
        first = await _served(server, name, mac)
        again = await _served(server, name, mac)
        assert first == again and SIP_PASSWORD.encode() in again  # plain, to an authenticated device only
        assert (await _device(server, mac)).config_key is None  # no key is made for nothing


async def test_export_keeps_the_switches(make_server):
    from provisioning.orgfile import export

    server = await make_server()
    await import_org(server, ORG.replace('model: Poly VVX 450,', 'model: Poly VVX 450, encrypt_configs: false,'))
    async with server.sessions() as session:
        exported = await export(session, "Krypto AB")
    assert "encrypt_configs: true" in exported and "encrypt_configs: false" in exported


async def test_switching_off_and_on_hands_a_reset_phone_its_key_again(make_server):
    server = await make_server()
    await import_org(server, ORG)
    phone = Phone(YealinkProfile("T46S", YEALINK_MAC, "66.86.0.15"))
    assert not (await phone.boot_http(_url(server))).errors
    key = (await _device(server, YEALINK_MAC)).config_key
    phone.profile.aes_key = None  # factory reset: the flash is empty

    lost = await phone.boot_http(_url(server))
    assert any("no AES key" in e for e in lost.errors), lost.errors

    off = ORG.replace('model: Yealink T46S, user: "+46854680001",',
                      'model: Yealink T46S, user: "+46854680001", encrypt_configs: false,')
    await import_org(server, off)
    plain = await phone.boot_http(_url(server))
    assert not plain.errors and plain.accounts[1].registered and phone.profile.aes_key is None
    await import_org(server, ORG)
    again = await phone.boot_http(_url(server))  # the plain file hands the same key over again
    assert not again.errors and phone.profile.aes_key == key
    encrypted = await phone.boot_http(_url(server))
    assert not encrypted.errors and encrypted.boot_settings[f"decrypted:{YEALINK_MAC}.cfg"] == "aes-128-ecb"
