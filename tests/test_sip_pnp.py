"""SIP plug-and-play responder and check-sync NOTIFY, end to end on loopback.

Every socket here is bound to 127.0.0.1 and every multicast sender sets IP_MULTICAST_IF to
127.0.0.1 (the simulator does it), so no datagram can leave by the default-route interface.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct

import pytest

from provisioning.discovery.pnp import PnpResponder, PnpSighting, mac_from_sip_user
from provisioning.sync_notify import send_check_sync
from simulators.sip_phone import NotifyListener, build_subscribe, pnp_exchange

GROUP = "224.0.1.75"
LO = "127.0.0.1"


def _multicast_on_loopback() -> str | None:
    """None if joining GROUP on 127.0.0.1 and looping a datagram back works, else why not."""
    recv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    send = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        recv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        recv.bind((GROUP, 0))
        recv.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                        struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton(LO)))
        send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(LO))
        send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        send.bind((LO, 0))
        send.sendto(b"probe", (GROUP, recv.getsockname()[1]))
        recv.settimeout(1.0)
        recv.recvfrom(64)
        return None
    except OSError as exc:
        return f"multicast on loopback unavailable here: {exc}"
    finally:
        recv.close()
        send.close()


_NO_MULTICAST = _multicast_on_loopback()
needs_multicast = pytest.mark.skipif(_NO_MULTICAST is not None, reason=_NO_MULTICAST or "")


class Harness:
    """A responder on an ephemeral port with recording callbacks and a switchable URL."""

    def __init__(self, **kwargs) -> None:
        self.calls: list[tuple] = []
        self.sightings: list[PnpSighting] = []
        self.answer: str | None | Exception = "auto"
        kwargs.setdefault("notify_t1", 0.05)
        self.responder = PnpResponder(url_for=self.url_for, on_sighting=self.sightings.append,
                                      group=GROUP, port=0, interface=LO, **kwargs)

    def url_for(self, vendor, model, mac):
        self.calls.append((vendor, model, mac))
        if isinstance(self.answer, Exception):
            raise self.answer
        if self.answer == "auto":
            return f"http://127.0.0.1:8080/prov/{mac}/"
        return self.answer

    @property
    def port(self) -> int:
        return self.responder.port

    @property
    def counters(self) -> dict:
        return self.responder.counters

    async def until(self, predicate, timeout: float = 3.0) -> None:
        async def poll():
            while not predicate(self.counters):
                await asyncio.sleep(0.01)
        await asyncio.wait_for(poll(), timeout)


@pytest.fixture
async def pnp():
    harness = Harness(multicast=_NO_MULTICAST is None)
    await harness.responder.start()
    yield harness
    await harness.responder.stop()


PHONES = {
    # style: (vendor, model, version, MAC as the phone writes it, User-Agent)
    "snom": ("snom", "snomD120", "10.1.39.11", "00135E874B49", "snomD120/10.1.39.11"),
    "grandstream": ("Grandstream", "GRP2612W", "1.0.5.67", "C074AD112233", "Grandstream GRP2612W 1.0.5.67"),
    "yealink": ("yealink", "W52P", "25.81.0.10", "001565f4f9e1", "Yealink W52P 25.81.0.10"),
    "panasonic": ("Panasonic", "KX-UTG300", "01.133", "0080F0AABBCC", "Panasonic-KX-UTG300/01.133"),
    "planet": ("PLANET", "VIP-1120PT", "1.0.2", "00304fa99948", None),
}


async def _discover(pnp: Harness, style: str, *, group: str = GROUP, **kwargs):
    vendor, model, version, mac, ua = PHONES[style]
    return await pnp_exchange(vendor=vendor, model=model, version=version, mac=mac, mac_style=style,
                              user_agent=ua, group=group, port=pnp.port, interface=LO,
                              timeout=kwargs.pop("timeout", 3), **kwargs)


@needs_multicast
@pytest.mark.parametrize("style", sorted(PHONES))
async def test_multicast_subscribe_per_vendor_style(pnp, style):
    vendor, model, version, mac, ua = PHONES[style]
    canonical = mac.lower()
    result = await _discover(pnp, style)

    assert result.url == f"http://127.0.0.1:8080/prov/{canonical}/"
    assert result.ok is not None and result.ok.status == 200
    assert pnp.calls == [(vendor, model, canonical)]
    assert pnp.sightings == [PnpSighting(mac=canonical, ip=LO, port=result.local[1], vendor=vendor,
                                         model=model, firmware=version, user_agent=ua)]
    await pnp.until(lambda c: c["notify_ok"] == 1)
    counters = pnp.counters
    assert (counters["received"], counters["answered"], counters["dropped_total"]) == (2, 1, 0)
    if style == "panasonic":
        assert b'vender="Panasonic"' in result.subscribe


@needs_multicast
async def test_unquoted_event_params_and_async_callbacks(pnp):
    async def url_for(vendor, model, mac):
        await asyncio.sleep(0)
        return f"http://prov.example/{vendor}/{model}/$mac.cfg"
    seen = []

    async def on_sighting(info):
        seen.append(info)
    pnp.responder.url_for, pnp.responder.on_sighting = url_for, on_sighting
    result = await _discover(pnp, "yealink", quoted=False)
    assert b";vendor=yealink;" in result.subscribe
    assert result.url == "http://prov.example/yealink/W52P/$mac.cfg"
    assert seen and seen[0].mac == "001565f4f9e1"


@needs_multicast
async def test_audiocodes_without_mac(pnp):
    result = await pnp_exchange(vendor=None, model="440HD", version="2.2.2", mac=None,
                                mac_style="audiocodes", user_agent="AUDC-IPPhone/2.2.2",
                                port=pnp.port, interface=LO, timeout=3)
    assert result.url == "http://127.0.0.1:8080/prov/None/"
    assert pnp.calls == [(None, "440HD", None)]
    assert pnp.sightings[0].mac is None and pnp.sightings[0].user_agent == "AUDC-IPPhone/2.2.2"


async def test_unicast_subscribe_to_the_responder_port(pnp):
    result = await _discover(pnp, "snom", group=LO)
    assert result.url == "http://127.0.0.1:8080/prov/00135e874b49/"
    assert pnp.sightings[0].vendor == "snom"


async def test_unicast_only_responder():
    harness = Harness(multicast=False)
    async with harness.responder:
        result = await _discover(harness, "grandstream", group=LO)
    assert result.url == "http://127.0.0.1:8080/prov/c074ad112233/"


async def test_ok_and_notify_headers(pnp):
    result = await _discover(pnp, "grandstream", group=LO)
    sub = _parse_simple(result.subscribe)
    ok, notify = result.ok, result.notifies[0]
    ip, port = result.local

    via = ok.get("Via")
    assert via.startswith(f"SIP/2.0/UDP {ip}:{port};branch=")
    assert f"rport={port}" in via and f"received={ip}" in via
    assert ok.get("From") == sub["from"]
    assert ok.get("To").startswith(sub["to"] + ";tag=")
    assert ok.get("Call-ID") == sub["call-id"] and ok.get("CSeq") == "20000 SUBSCRIBE"
    assert ok.get("Expires") == "0" and ok.get("Content-Length") == "0"

    assert notify.start == f"NOTIFY sip:{ip}:{port} SIP/2.0"  # the Contact of the SUBSCRIBE
    assert result.notify_sources == [(LO, pnp.port)]
    assert notify.get("Call-ID") == sub["call-id"]
    assert notify.get("From") == ok.get("To") and notify.get("To") == sub["from"]
    assert notify.get("Event") == sub["event"]
    assert notify.get("Subscription-State") == "terminated;reason=timeout"
    assert notify.get("Content-Type") == "application/url"
    assert notify.get("CSeq") == "1 NOTIFY"
    assert notify.get("Via").startswith(f"SIP/2.0/UDP {LO}:{pnp.port};branch=z9hG4bK")
    assert int(notify.get("Content-Length")) == len(result.url) == len(notify.body)


def _parse_simple(data: bytes) -> dict[str, str]:
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    return {k.strip().lower(): v.strip() for k, _, v in
            (line.partition(":") for line in head.split("\r\n")[1:])}


class Raw(asyncio.DatagramProtocol):
    """A bare UDP socket on 127.0.0.1 that records what it gets."""

    def __init__(self) -> None:
        self.got: asyncio.Queue[tuple[bytes, tuple]] = asyncio.Queue()

    def datagram_received(self, data, addr):
        self.got.put_nowait((data, addr))

    @classmethod
    async def open(cls, multicast: bool = False):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(LO))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.bind((LO, 0))
        sock.setblocking(False)
        transport, proto = await asyncio.get_running_loop().create_datagram_endpoint(cls, sock=sock)
        proto.transport, proto.sock, proto.port = transport, sock, sock.getsockname()[1]
        return proto

    def send(self, data: bytes, addr: tuple) -> None:
        """Straight to the socket: asyncio's sendto() silently skips empty datagrams."""
        self.sock.sendto(data, addr)

    async def next(self, timeout: float = 2.0) -> bytes:
        return (await asyncio.wait_for(self.got.get(), timeout))[0]


async def test_reply_goes_to_via_port_without_rport_and_source_port_with_it(pnp):
    sender, listener = await Raw.open(), await Raw.open()
    try:
        # No rport (Yealink style): RFC 3261 §18.2.2 says the Via port.
        data = build_subscribe(style="yealink", mac="001565f4f9e1", vendor="yealink", model="T21P",
                               version="34.72.14.6", user_agent=None, ip=LO, port=listener.port,
                               group=LO)
        sender.transport.sendto(data, (LO, pnp.port))
        assert (await listener.next()).startswith(b"SIP/2.0 200 OK")
        assert (await listener.next()).startswith(b"NOTIFY sip:MAC001565f4f9e1@127.0.0.1:")
        assert sender.got.empty()
        # rport present: back to the source port, whatever Via says.
        data = build_subscribe(style="snom", mac="00135E874B49", vendor="snom", model="snom370",
                               version="7.1.24", user_agent=None, ip=LO, port=listener.port)
        sender.transport.sendto(data, (LO, pnp.port))
        assert (await sender.next()).startswith(b"SIP/2.0 200 OK")
    finally:
        sender.transport.close()
        listener.transport.close()


async def test_notify_retransmitted_until_the_phone_answers(pnp):
    result = await _discover(pnp, "snom", group=LO, ignore_notifies=1)
    assert result.url == "http://127.0.0.1:8080/prov/00135e874b49/"
    assert len(result.notifies) == 2
    assert result.notifies[0].get("Via") == result.notifies[1].get("Via")  # same transaction
    await pnp.until(lambda c: c["notify_ok"] == 1)
    assert pnp.counters["notify_retransmits"] == 1 and pnp.counters["notify_timeout"] == 0


async def test_notify_gives_up_after_four_tries(pnp):
    result = await _discover(pnp, "snom", group=LO, ignore_notifies=99, timeout=1.2)
    assert result.url is None and len(result.notifies) == 4
    await pnp.until(lambda c: c["notify_timeout"] == 1)
    assert pnp.counters["notify_retransmits"] == 3 and pnp.counters["notify_ok"] == 0


async def test_retransmitted_subscribe_gets_the_same_200_and_one_notify(pnp):
    phone = await Raw.open()
    try:
        data = build_subscribe(style="grandstream", mac="C074AD112233", vendor="Grandstream",
                               model="GRP2612W", version="1.0.5.67", user_agent=None, ip=LO,
                               port=phone.port, group=LO)
        phone.transport.sendto(data, (LO, pnp.port))
        got = [await phone.next(), await phone.next()]  # 200 + NOTIFY, any order
        phone.transport.sendto(data, (LO, pnp.port))
        again = await phone.next()
        oks = [d for d in got if d.startswith(b"SIP/2.0 200")]
        assert again == oks[0]
        await pnp.until(lambda c: c["subscribe_retransmits"] == 1)
        assert len(pnp.sightings) == 1 and pnp.counters["notify_sent"] == 1
    finally:
        phone.transport.close()


async def test_declined_phone_gets_no_answer_but_is_reported(pnp):
    pnp.answer = None
    result = await _discover(pnp, "yealink", group=LO, timeout=0.6)
    assert result.ok is None and result.url is None and result.notifies == []
    assert pnp.sightings[0].mac == "001565f4f9e1"
    assert pnp.counters["declined"] >= 1 and pnp.counters["answered"] == 0


async def test_failing_callback_is_logged_and_serving_goes_on(pnp, caplog):
    pnp.answer = RuntimeError("database down")
    result = await _discover(pnp, "snom", group=LO, timeout=0.6)
    assert result.url is None
    assert pnp.counters["dropped"]["callback_error"] >= 1
    assert "url_for failed" in caplog.text
    pnp.answer = "auto"
    assert (await _discover(pnp, "snom", group=LO)).url is not None


def _subscribe_text(event: str = 'ua-profile;profile-type="device";vendor="x"', **drop) -> bytes:
    headers = {
        "Via": "SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKfuzz;rport",
        "From": "<sip:MAC%3a00135E874B49@pnp.invalid>;tag=1",
        "To": "<sip:MAC%3a00135E874B49@pnp.invalid>",
        "Call-ID": "fuzz@127.0.0.1", "CSeq": "1 SUBSCRIBE", "Event": event,
        "Expires": "0", "Content-Length": "0",
    }
    for name in drop:
        headers.pop(name.replace("_", "-"))
    lines = ["SUBSCRIBE sip:MAC%3a00135E874B49@pnp.invalid SIP/2.0"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _garbage() -> list[tuple[str, bytes]]:
    good = _subscribe_text()
    rng = random.Random(1234)
    return [
        ("malformed", b""),
        ("malformed", b"\r\n\r\n"),
        ("malformed", b"hello world"),
        ("malformed", bytes(rng.randrange(256) for _ in range(700))),
        ("malformed", b"\x00\x01\x02SUBSCRIBE\x00" * 40),
        ("malformed", good[: len(good) // 2]),                              # cut mid-header
        ("malformed", good.replace(b"Content-Length: 0", b"Content-Length: 500")),  # cut body
        ("malformed", b"SUBSCRIBE sip:x SIP/3.0\r\n\r\n"),
        ("malformed", b"SUBSCRIBE sip:x@y SIP/2.0\r\n" + b"X-A: b\r\n" * 70 + b"\r\n"),
        ("oversize", good + b"X" * 20 * 1024),
        ("oversize", bytes(rng.randrange(256) for _ in range(9000))),
        ("not_subscribe", good.replace(b"SUBSCRIBE sip", b"OPTIONS sip").replace(b"1 SUBSCRIBE", b"1 OPTIONS")),
        ("not_subscribe", good.replace(b"SUBSCRIBE sip", b"INVITE sip")),
        ("not_subscribe", good.replace(b"SUBSCRIBE sip", b"NOTIFY sip")),
        ("stray_response", b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKnope\r\n"
                           b"From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 NOTIFY\r\n\r\n"),
        ("wrong_event", _subscribe_text("presence")),
        ("wrong_event", _subscribe_text("message-summary")),
        ("profile_type", _subscribe_text('ua-profile;profile-type="user"')),
        ("bad_request", _subscribe_text(Call_ID=True)),
        ("bad_request", _subscribe_text(Event=True)),
        ("bad_request", _subscribe_text('ua-profile;vendor="unterminated')),
        ("bad_request", good.replace(b"CSeq: 1 SUBSCRIBE", b"CSeq: x SUBSCRIBE")),
    ]


async def _send_all(pnp: Harness, raw: Raw, datagrams: list[bytes], multicast: bool) -> None:
    sent = pnp.counters["received"]
    for i in range(0, len(datagrams), 25):  # paced so the socket buffer never overflows
        for data in datagrams[i: i + 25]:
            raw.send(data, (GROUP if multicast else LO, pnp.port))
        sent += len(datagrams[i: i + 25])
        await pnp.until(lambda c: c["received"] >= sent)


@pytest.mark.parametrize("multicast", [
    pytest.param(True, marks=needs_multicast), pytest.param(False)], ids=["multicast", "unicast"])
async def test_garbage_is_dropped_counted_and_serving_goes_on(pnp, multicast):
    cases = _garbage()
    raw = await Raw.open()
    try:
        await _send_all(pnp, raw, [data for _, data in cases], multicast)
        expected: dict[str, int] = {}
        for reason, _ in cases:
            expected[reason] = expected.get(reason, 0) + 1
        counters = pnp.counters
        assert counters["dropped"] == expected
        assert counters["answered"] == 0 and pnp.sightings == []
        await asyncio.sleep(0.05)
        assert raw.got.empty()  # garbage is never answered
    finally:
        raw.transport.close()
    result = await _discover(pnp, "snom", group=GROUP if multicast else LO)
    assert result.url == "http://127.0.0.1:8080/prov/00135e874b49/"


async def test_flood_of_fuzz_is_survived_and_the_log_rate_limited(pnp, caplog):
    caplog.set_level(logging.INFO, logger="deskprov.pnp")
    rng = random.Random(99)
    good = _subscribe_text()
    datagrams = []
    for i in range(600):
        data = bytearray(good)
        for _ in range(rng.randrange(1, 6)):  # flip, insert or delete a few bytes
            pos = rng.randrange(len(data))
            op = rng.randrange(3)
            if op == 0:
                data[pos] = rng.randrange(256)
            elif op == 1:
                data.insert(pos, rng.randrange(256))
            else:
                del data[pos]
        datagrams.append(bytes(data) if i % 3 else bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000))))
    raw = await Raw.open()
    try:
        await _send_all(pnp, raw, datagrams, multicast=False)
    finally:
        raw.transport.close()
    drops = [r for r in caplog.records if r.name == "deskprov.pnp" and "dropped datagram" in r.getMessage()]
    assert pnp.counters["dropped_total"] > 300
    assert len(drops) <= 20
    assert pnp.counters.get("internal_error", 0) == 0
    result = await _discover(pnp, "planet", group=LO)
    assert result.url == "http://127.0.0.1:8080/prov/00304fa99948/"


@pytest.mark.parametrize(("user", "mac"), [
    ("MAC%3a00135E874B49", "00135e874b49"),
    ("MAC%3AC074AD112233", "c074ad112233"),
    ("MAC001565f4f9e1", "001565f4f9e1"),
    ("MAC=00304fa99948", "00304fa99948"),
    ("00135e874b49", "00135e874b49"),
    ("mac:00:13:5e:87:4b:49", "00135e874b49"),
    ("00000001", None),
    ("MAC%3aZZ135E874B49", None),
    ("MAC%3a010000000000", None),  # multicast bit: not a device
    ("", None),
    (None, None),
])
def test_mac_from_sip_user(user, mac):
    assert mac_from_sip_user(user) == mac


def test_responder_refuses_a_unicast_group():
    with pytest.raises(ValueError):
        PnpResponder(url_for=lambda *a: None, group="10.0.0.1")


# --------------------------------------------------------------------------- check-sync NOTIFY


async def test_check_sync_plain():
    async with NotifyListener() as phone:
        result = await send_check_sync(LO, phone.port, event="check-sync;reboot=false", user="1001")
        assert await phone.next_event(1) == "check-sync;reboot=false"
    assert result.ok and result.status == 200 and not result.challenged and not result.timed_out
    assert phone.received[0].request_uri == f"sip:1001@127.0.0.1:{phone.port}"


async def test_check_sync_answers_a_digest_challenge():
    async with NotifyListener(challenge=True, username="1001", password="s3cret") as phone:
        result = await send_check_sync(LO, phone.port, event="check-sync", user="1001",
                                       auth_password="s3cret")
        assert await phone.next_event(1) == "check-sync"
    assert result.status == 200 and result.challenged and phone.challenges_sent == 1
    assert [r.authorized for r in phone.received] == [False, True]


async def test_check_sync_wrong_password_or_no_credentials_returns_401():
    async with NotifyListener(challenge=True, username="1001", password="s3cret") as phone:
        wrong = await send_check_sync(LO, phone.port, user="1001", auth_password="nope")
        none = await send_check_sync(LO, phone.port, user="1001")
    assert (wrong.status, wrong.challenged) == (401, True)
    assert (none.status, none.challenged) == (401, False)
    assert phone.events == []


async def test_check_sync_retransmits_a_lost_request():
    async with NotifyListener(ignore_first=1) as phone:
        result = await send_check_sync(LO, phone.port, event="resync", t1=0.05, timeout=2)
    assert result.status == 200 and result.transmissions == 2
    assert phone.events == ["resync"]


async def test_check_sync_times_out_on_a_silent_port():
    async with NotifyListener(silent=True) as phone:
        result = await send_check_sync(LO, phone.port, t1=0.05, timeout=0.6)
    assert result.timed_out and result.status is None and not result.ok
    assert result.transmissions >= 3 and phone.datagrams == result.transmissions
    assert 0.5 <= result.elapsed < 1.5
