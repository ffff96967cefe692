"""Device authentication against the running server: per-device HTTP digest credentials, the
first-contact window, secret-free bootstrap files, TFTP secret networks and allowed networks.

Requests are real HTTP on 127.0.0.1 (aiohttp for the phone-like ones, raw sockets where a
client library would refuse to misbehave); digest answers are computed here, independently of
provisioning/device_auth.py, from RFC 7616.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
from sqlalchemy import select

from provisioning.clock import ManualClock
from provisioning.device_auth import DigestAuthority, Check, parse_authorization
from provisioning.model import Device
from simulators.phone import Phone
from simulators.poly import PolyProfile
from simulators.yealink import YealinkProfile
from conftest import import_org  # tests/ is on sys.path (rootdir conftest)

ANNA_MAC, BERTIL_MAC, CECILIA_MAC = "805ec0aabb01", "805ec0aabb02", "0004f2aabb03"
ANNA_UA = "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:01"
BERTIL_UA = "Yealink SIP-T46S 66.86.0.15 80:5e:c0:aa:bb:02"
SECRETS = {"anna": "Anna-Auth-Secret-01", "bertil": "Bertil-Auth-Secret-02", "cecilia": "Cecilia-Auth-Secret-03",
           "admin": "Auth-Admin-Pw-99"}
ORG = f"""
organization: {{name: Auth AB, sip_domain: auth.sip.example.net, device_admin_password: "{SECRETS['admin']}"}}
users:
  - {{name: Anna Andersson, number: "+46854689901", extension: "201"}}
  - {{name: Bertil Berg, number: "+46854689902", extension: "202"}}
  - {{name: Cecilia Carlsson, number: "+46854689903", extension: "203"}}
phones:
  - {{mac: "80:5E:C0:AA:BB:01", model: Yealink T46S, user: "+46854689901",
      sip: {{username: anna01, password: "{SECRETS['anna']}"}}}}
  - {{mac: "80:5E:C0:AA:BB:02", model: Yealink T46S, user: "+46854689902",
      sip: {{username: bertil02, password: "{SECRETS['bertil']}"}}}}
  - {{mac: "00:04:F2:AA:BB:03", model: Poly VVX 450, user: "+46854689903",
      sip: {{username: cecilia03, password: "{SECRETS['cecilia']}"}}}}
"""


# --------------------------------------------------------------------------------------------
# Helpers: an independent digest client
# --------------------------------------------------------------------------------------------

def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def challenge_params(header: str) -> dict[str, str]:
    assert header.startswith("Digest "), header
    return {k.lower(): v1 or v2 for k, v1, v2 in re.findall(r'(\w+)=(?:"([^"]*)"|([^\s,]+))', header)}


def authorization(username: str, password: str, path: str, challenge: dict[str, str], nc: int,
                  method: str = "GET", cnonce: str | None = None) -> str:
    cnonce = cnonce or secrets.token_hex(8)
    ha1 = _md5(f"{username}:{challenge['realm']}:{password}")
    ha2 = _md5(f"{method}:{path}")
    response = _md5(f"{ha1}:{challenge['nonce']}:{nc:08x}:{cnonce}:auth:{ha2}")
    return (f'Digest username="{username}", realm="{challenge["realm"]}", nonce="{challenge["nonce"]}", '
            f'uri="{path}", algorithm=MD5, qop=auth, nc={nc:08x}, cnonce="{cnonce}", response="{response}"')


async def credentials(server, mac: str) -> tuple[str, str]:
    async with server.sessions() as session:
        device = (await session.execute(select(Device).where(Device.mac == mac))).scalar_one()
        return device.http_username, device.http_password


async def set_window(server, mac: str, until: datetime | None) -> None:
    async with server.sessions() as session:
        device = (await session.execute(select(Device).where(Device.mac == mac))).scalar_one()
        device.first_contact_until = until
        await session.commit()


async def window(server, mac: str) -> datetime | None:
    async with server.sessions() as session:
        return (await session.execute(select(Device.first_contact_until).where(Device.mac == mac))).scalar_one()


async def get(server, path: str, *, ua: str | None = ANNA_UA, auth: str | None = None,
              source: str = "127.0.0.1") -> tuple[int, dict, bytes]:
    headers = {"User-Agent": ua} if ua else {}
    if auth:
        headers["Authorization"] = auth
    connector = aiohttp.TCPConnector(local_addr=(source, 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.get(f"http://127.0.0.1:{server.http_port}{path}", headers=headers) as resp:
            return resp.status, dict(resp.headers), await resp.read()


async def challenged(server, path: str, **kw) -> dict[str, str]:
    status, headers, _ = await get(server, path, **kw)
    assert status == 401, status
    return challenge_params(headers["WWW-Authenticate"])


def leaks(body: bytes) -> list[str]:
    return [name for name, secret in SECRETS.items() if secret.encode() in body]


@pytest.fixture
async def booted(make_server):
    """Auth AB imported; every device's first-contact window already over (they booted before)."""
    server = await make_server()
    await import_org(server, ORG)
    for mac in (ANNA_MAC, BERTIL_MAC, CECILIA_MAC):
        await set_window(server, mac, None)
    return server


# --------------------------------------------------------------------------------------------
# Digest
# --------------------------------------------------------------------------------------------

async def test_digest_credentials_fetch_the_devices_own_file(booted):
    username, password = await credentials(booted, ANNA_MAC)
    assert username.startswith(f"dp{ANNA_MAC}") and len(password) >= 20
    path = f"/{ANNA_MAC}.cfg"
    challenge = await challenged(booted, path)
    assert challenge["qop"] == "auth" and challenge["algorithm"] == "MD5"
    status, headers, body = await get(booted, path, auth=authorization(username, password, path, challenge, 1))
    assert status == 200 and SECRETS["anna"].encode() in body
    assert f"static.auto_provision.server.password = {password}".encode() in body  # the config carries them
    # the same nonce with a higher count is the phone's next request
    status, _, _ = await get(booted, f"/{ANNA_MAC}.cfg", auth=authorization(username, password, path, challenge, 2))
    assert status == 200


async def test_a_replayed_authorization_header_is_refused(booted, caplog):
    caplog.set_level(logging.INFO, "deskprov.serve")
    username, password = await credentials(booted, ANNA_MAC)
    path = f"/{ANNA_MAC}.cfg"
    challenge = await challenged(booted, path)
    captured = authorization(username, password, path, challenge, 1)
    assert (await get(booted, path, auth=captured))[0] == 200
    status, headers, body = await get(booted, path, auth=captured, source="127.0.0.2")  # the eavesdropper
    assert status == 401 and not leaks(body)
    assert "Digest " in headers["WWW-Authenticate"]
    # a lower count with a fresh cnonce is a replay too: counts must increase
    status, _, body = await get(booted, path, auth=authorization(username, password, path, challenge, 1),
                                source="127.0.0.2")
    assert status == 401 and not leaks(body)
    assert any("replayed digest" in r.getMessage() for r in caplog.records)


async def test_a_proof_for_one_file_does_not_fetch_another(booted):
    username, password = await credentials(booted, ANNA_MAC)
    challenge = await challenged(booted, f"/{ANNA_MAC}.cfg")
    proof = authorization(username, password, f"/{ANNA_MAC}-phonebook.xml", challenge, 1)
    status, _, body = await get(booted, f"/{ANNA_MAC}.cfg", auth=proof)
    assert status == 401 and not leaks(body)


async def test_valid_credentials_of_device_a_do_not_fetch_device_b(booted):
    username, password = await credentials(booted, ANNA_MAC)
    path = f"/{BERTIL_MAC}.cfg"
    challenge = await challenged(booted, path, ua=BERTIL_UA)
    for nc, ua in enumerate((BERTIL_UA, None, ANNA_UA), start=1):
        status, _, body = await get(booted, path, ua=ua, auth=authorization(username, password, path, challenge, nc))
        assert status in (401, 404), (ua, status)
        assert not leaks(body)


async def test_a_forged_nonce_or_a_foreign_realm_is_refused(booted):
    username, password = await credentials(booted, ANNA_MAC)
    path = f"/{ANNA_MAC}.cfg"
    challenge = await challenged(booted, path)
    forged = {**challenge, "nonce": f"{int(datetime.now().timestamp()):x}.00.{'0' * 32}"}
    assert (await get(booted, path, auth=authorization(username, password, path, forged, 1)))[0] == 401
    foreign = {**challenge, "realm": "elsewhere"}
    assert (await get(booted, path, auth=authorization(username, password, path, foreign, 1)))[0] == 401
    assert (await get(booted, path, auth="Basic " + "YW5uYTpwdw=="))[0] == 401
    assert (await get(booted, path, auth='Digest username="x", garbage'))[0] == 401


def test_stale_nonces_are_answered_with_stale_true():
    clock = [1_000_000.0]
    authority = DigestAuthority(b"k" * 32, clock=lambda: clock[0], nonce_seconds=300)
    params = challenge_params(authority.challenge())
    header = authorization("dpx", "pw", "/x.cfg", params, 1)
    assert authority.check(parse_authorization(header), method="GET", path="/x.cfg", username="dpx",
                           password="pw") is Check.ok
    clock[0] += 301
    header = authorization("dpx", "pw", "/x.cfg", params, 2)
    assert authority.check(parse_authorization(header), method="GET", path="/x.cfg", username="dpx",
                           password="pw") is Check.stale
    assert "stale=true" in authority.challenge(stale=True)
    # another authority (another secret key) did not issue it
    other = DigestAuthority(b"j" * 32, clock=lambda: clock[0])
    assert other.check(parse_authorization(header), method="GET", path="/x.cfg", username="dpx",
                       password="pw") is Check.bad


async def test_wrong_passwords_count_towards_the_ban(make_server):
    server = await make_server(guard_refusal_burst=10)
    await import_org(server, ORG)
    await set_window(server, ANNA_MAC, None)
    username, _ = await credentials(server, ANNA_MAC)
    path = f"/{ANNA_MAC}.cfg"
    statuses = []
    for nc in range(1, 16):
        challenge = await challenged(server, path, source="127.0.0.2") if nc < 11 else {"realm": "deskprov",
                                                                                        "nonce": "x"}
        statuses.append((await get(server, path, auth=authorization(username, f"guess{nc}", path, challenge, nc),
                                   source="127.0.0.2"))[0])
    assert statuses[:5] == [401] * 5
    assert 429 in statuses, statuses  # banned
    # other addresses are not affected
    status, _, _ = await get(server, "/y000000000066.cfg")
    assert status == 200


# --------------------------------------------------------------------------------------------
# First contact
# --------------------------------------------------------------------------------------------

def manual_clock(server) -> ManualClock:
    server.provisioner.clock = clock = ManualClock()
    return clock


async def test_first_contact_works_until_the_device_authenticates(make_server):
    """"Once": the first boot without credentials may fetch all its files; the window then ends
    within minutes, and at the device's first authenticated request at the latest."""
    server = await make_server()
    clock = manual_clock(server)
    await import_org(server, ORG)
    opened = await window(server, ANNA_MAC)
    assert opened is not None
    phone = Phone(YealinkProfile("T46S", ANNA_MAC, "66.86.0.15"))
    base = f"http://127.0.0.1:{server.http_port}/"
    first = await phone.boot_http(base)  # no credentials: the window lets it in, once
    assert first.accounts[1].password == SECRETS["anna"] and not first.errors
    assert phone.credentials == await credentials(server, ANNA_MAC)
    assert await window(server, ANNA_MAC) is not None  # still open: it has not authenticated yet
    clock.advance(minutes=3)  # the first boot is over
    second = await phone.boot_http(base)  # now with its credentials: digest, and the window closes
    assert second.accounts[1].password == SECRETS["anna"] and not second.errors
    assert [f.status for f in second.fetched if f.name == f"{ANNA_MAC}.cfg"] == [200]
    assert await window(server, ANNA_MAC) is None
    status, _, body = await get(server, f"/{ANNA_MAC}.cfg")  # anyone without credentials: challenged
    assert status == 401 and not leaks(body)
    stranger = await Phone(YealinkProfile("T46S", ANNA_MAC, "66.86.0.15")).boot_http(base)
    assert not stranger.accounts.get(1) or not stranger.accounts[1].password
    third = await phone.boot_http(base)
    assert third.accounts[1].password == SECRETS["anna"] and not third.errors


async def test_an_expired_window_needs_credentials(make_server):
    server = await make_server()
    await import_org(server, ORG)
    await set_window(server, BERTIL_MAC, datetime.now(timezone.utc) - timedelta(seconds=1))
    status, headers, body = await get(server, f"/{BERTIL_MAC}.cfg", ua=BERTIL_UA)
    assert status == 401 and not leaks(body) and headers["WWW-Authenticate"].startswith("Digest ")
    state = await Phone(YealinkProfile("T46S", BERTIL_MAC, "66.86.0.15")).boot_http(
        f"http://127.0.0.1:{server.http_port}/")
    assert not state.accounts.get(1) or not state.accounts[1].registered


async def test_first_contact_minutes_zero_disables_the_window(make_server):
    server = await make_server()
    await import_org(server, ORG.replace("device_admin_password:", "first_contact_minutes: 0, device_admin_password:"))
    assert await window(server, ANNA_MAC) is None
    assert (await get(server, f"/{ANNA_MAC}.cfg"))[0] == 401


async def test_rotation_lets_the_phone_fetch_its_new_password(make_server):
    """After a rotation the phone still knows its old password: it is let in once more and gets
    the new one; the old one then no longer works."""
    from provisioning.device_auth import rotate_credentials
    server = await make_server()
    clock = manual_clock(server)
    await import_org(server, ORG)
    phone = Phone(YealinkProfile("T46S", ANNA_MAC, "66.86.0.15"))
    base = f"http://127.0.0.1:{server.http_port}/"
    await phone.boot_http(base)
    clock.advance(minutes=3)
    await phone.boot_http(base)  # authenticated: window closed
    old = phone.credentials
    async with server.sessions() as session:
        device = (await session.execute(select(Device).where(Device.mac == ANNA_MAC))).scalar_one()
        rotate_credentials(device, clock.now())
        await session.commit()
    state = await phone.boot_http(base)
    assert state.accounts[1].password == SECRETS["anna"] and phone.credentials != old
    clock.advance(minutes=3)
    await phone.boot_http(base)  # with the new password: the window closes
    assert await window(server, ANNA_MAC) is None
    old_phone = Phone(YealinkProfile("T46S", ANNA_MAC, "66.86.0.15"))
    old_phone.credentials = old
    state = await old_phone.boot_http(base)
    assert not state.accounts.get(1) or not state.accounts[1].password


# --------------------------------------------------------------------------------------------
# TFTP, networks, bootstrap files
# --------------------------------------------------------------------------------------------

async def test_tftp_without_a_secret_network_gets_the_bootstrap_file(make_server):
    server = await make_server()
    await import_org(server, ORG)
    state = await Phone(YealinkProfile("T46S", ANNA_MAC, "66.86.0.15")).boot_tftp("127.0.0.1", server.tftp_port)
    config = state.settings
    assert not any(SECRETS[k].encode() in repr(config).encode() for k in SECRETS)
    assert config.get("account.1.enable") == "0"                 # no account, nothing secret
    assert "static.auto_provision.server.password" not in config  # no credentials either
    assert "static.security.user_password" not in config          # no admin password
    assert config.get("local_time.ntp_server1")                   # but the platform settings
    # with the loopback named as the organisation's TFTP secret network, the phone gets it all
    await import_org(server, ORG.replace("device_admin_password:", "tftp_secret_networks: [127.0.0.0/8], "
                                                                   "device_admin_password:"))
    state = await Phone(YealinkProfile("T46S", ANNA_MAC, "66.86.0.15")).boot_tftp("127.0.0.1", server.tftp_port)
    assert state.accounts[1].password == SECRETS["anna"]


async def test_allowed_networks_refuse_other_sources(make_server):
    server = await make_server()
    await import_org(server, ORG.replace("device_admin_password:", "allowed_networks: [127.0.0.1/32], "
                                                                   "device_admin_password:"))
    status, _, body = await get(server, f"/{ANNA_MAC}.cfg", source="127.0.0.2")
    assert status == 404 and not leaks(body)
    status, _, body = await get(server, f"/{ANNA_MAC}.cfg", source="127.0.0.1")
    assert status == 200 and SECRETS["anna"].encode() in body


async def test_bad_networks_in_an_org_file_change_nothing(make_server):
    from provisioning.orgfile import OrgFileError
    server = await make_server()
    with pytest.raises((OrgFileError, ValueError)):
        await import_org(server, ORG.replace("device_admin_password:", "allowed_networks: [not-a-net], "
                                                                       "device_admin_password:"))
    async with server.sessions() as session:
        assert (await session.execute(select(Device))).first() is None


async def test_org_file_round_trips_the_auth_settings(make_server):
    from provisioning.orgfile import export
    server = await make_server()
    text = ORG.replace("device_admin_password:", "allowed_networks: [10.0.0.0/8, 192.168.1.7], "
                       "tftp_secret_networks: 10.1.0.0/16, first_contact_minutes: 15, device_admin_password:")
    await import_org(server, text)
    async with server.sessions() as session:
        exported = await export(session, "Auth AB")
    assert "192.168.1.7/32" in exported and "10.1.0.0/16" in exported and "first_contact_minutes: 15" in exported
    until = await window(server, ANNA_MAC)
    until = until.replace(tzinfo=timezone.utc) if until.tzinfo is None else until
    assert timedelta(minutes=14) < until - datetime.now(timezone.utc) <= timedelta(minutes=15)


async def test_fetch_outcomes_record_how_the_device_authenticated(make_server):
    server = await make_server()
    await import_org(server, ORG.replace("device_admin_password:", "tftp_secret_networks: [127.0.0.0/8], "
                                                                   "device_admin_password:"))
    records = []
    server.provisioner.fetch_observers.append(records.append)
    clock = manual_clock(server)
    phone = Phone(YealinkProfile("T46S", ANNA_MAC, "66.86.0.15"))
    await phone.boot_http(f"http://127.0.0.1:{server.http_port}/")
    clock.advance(minutes=3)
    await phone.boot_http(f"http://127.0.0.1:{server.http_port}/")
    await Phone(YealinkProfile("T46S", BERTIL_MAC, "66.86.0.15")).boot_tftp("127.0.0.1", server.tftp_port)
    mine = [(r.path.lstrip("/"), r.status, r.auth) for r in records if r.mac in (ANNA_MAC, BERTIL_MAC)]
    assert (f"{ANNA_MAC}.cfg", 200, "first-contact") in mine
    assert any(status == 401 and auth == "none" for _, status, auth in mine)  # the challenge
    assert (f"{ANNA_MAC}.cfg", 200, "digest") in mine
    assert (f"{BERTIL_MAC}.cfg", 200, "network") in mine


# --------------------------------------------------------------------------------------------
# Other vendors' simulated phones authenticate too; a phone boots during an attack
# --------------------------------------------------------------------------------------------

async def test_a_poly_phone_uses_its_credentials(booted):
    await set_window(booted, CECILIA_MAC, datetime.now(timezone.utc) + timedelta(minutes=5))
    clock = manual_clock(booted)
    phone = Phone(PolyProfile("VVX450", CECILIA_MAC, "6.4.0.1234"))
    base = f"http://127.0.0.1:{booted.http_port}/"
    first = await phone.boot_http(base)
    assert first.accounts[1].password == SECRETS["cecilia"], first.errors
    assert phone.credentials == await credentials(booted, CECILIA_MAC)
    clock.advance(minutes=3)
    second = await phone.boot_http(base)
    assert second.accounts[1].password == SECRETS["cecilia"], second.errors
    assert await window(booted, CECILIA_MAC) is None


async def test_a_phone_boots_with_digest_during_an_attack(make_server):
    server = await make_server(guard_refusal_burst=20)
    await import_org(server, ORG)
    base = f"http://127.0.0.1:{server.http_port}/"
    clock = manual_clock(server)
    phone = Phone(YealinkProfile("T46S", ANNA_MAC, "66.86.0.15"))
    await phone.boot_http(base)
    clock.advance(minutes=3)
    await phone.boot_http(base)  # authenticated: no more first contact
    await set_window(server, BERTIL_MAC, None)  # Bertil's phone was set up long ago
    bertil_user, _ = await credentials(server, BERTIL_MAC)
    anna_user, anna_password = await credentials(server, ANNA_MAC)
    stolen: list[bytes] = []

    async def attacker() -> None:
        for i in range(60):
            path = f"/{BERTIL_MAC}.cfg" if i % 2 else f"/{ANNA_MAC}.cfg"
            status, headers, body = await get(server, path, ua=None, source="127.0.0.2")
            if status == 401:
                params = challenge_params(headers["WWW-Authenticate"])
                guess = authorization(bertil_user if i % 2 else anna_user, f"guess-{i}", path, params, 1)
                status, headers, body = await get(server, path, ua=None, auth=guess, source="127.0.0.2")
            if status == 200:
                stolen.append(body)

    attack = asyncio.create_task(attacker())
    boots = []
    for _ in range(5):
        boots.append(await phone.boot_http(base))
        await asyncio.sleep(0.05)
    await attack
    assert not stolen
    for state in boots:
        assert state.accounts[1].password == SECRETS["anna"] and not state.errors, state.errors
    assert "127.0.0.2" in [source for source, _ in server.provisioner.guard.banned()]
    assert phone.credentials == (anna_user, anna_password)


async def test_concurrent_first_requests_of_one_device_all_get_their_file(make_server):
    """A phone registered by MAC alone asks for several files at once on first contact: each
    request learns its model, issues its credentials or shortens its window, all on one device
    row; the one that loses the race reads the device again instead of answering 503."""
    server = await make_server()
    await import_org(server, ORG.replace("model: Yealink T46S, user: \"+46854689902\"",
                                         "user: \"+46854689902\""))
    async with server.sessions() as session:  # as if bound before device authentication existed
        device = (await session.execute(select(Device).where(Device.mac == BERTIL_MAC))).scalar_one()
        assert device.model is None
        device.http_username = device.http_password = None
        await session.commit()
    async with aiohttp.ClientSession() as client:
        async def fetch(path: str) -> int:
            async with client.get(f"http://127.0.0.1:{server.http_port}{path}",
                                  headers={"User-Agent": BERTIL_UA}) as resp:
                await resp.read()
                return resp.status
        statuses = await asyncio.gather(*(fetch(p) for p in [f"/{BERTIL_MAC}.cfg"] * 6))
    assert statuses == [200] * 6
    username, password = await credentials(server, BERTIL_MAC)
    assert username and password


def test_nonce_counts_may_arrive_out_of_order_but_each_is_accepted_once():
    """A client using one nonce on several connections has its requests overtake each other
    (RFC 7616 lets the server accept that): any count not yet used and at most NC_WINDOW below
    the highest seen is accepted, once; an older one, or one used before, is a replay."""
    from provisioning.device_auth import NC_WINDOW, REALM, Check, DigestAuthority, digest_response

    authority = DigestAuthority(b"k" * 32)
    nonce = authority.nonce()

    def check(count: int) -> Check:
        nc = f"{count:08x}"
        params = dict(username="u", realm=REALM, nonce=nonce, uri="/a.cfg", qop="auth", nc=nc, cnonce="c",
                      response=digest_response("u", "pw", "GET", "/a.cfg", nonce, nc, "c"))
        return authority.check(params, method="GET", path="/a.cfg", username="u", password="pw")

    assert [check(n) for n in (1, 3, 2)] == [Check.ok] * 3
    assert [check(n) for n in (2, 1, 3, 0)] == [Check.replay] * 4
    top = 10 + NC_WINDOW
    assert check(top) is Check.ok
    assert check(top - NC_WINDOW + 1) is Check.ok          # the oldest still in the window
    assert check(top - NC_WINDOW) is Check.replay           # just outside it
    assert check(top - NC_WINDOW + 1) is Check.replay       # used already
