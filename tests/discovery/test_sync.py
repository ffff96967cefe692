"""The resync push scheduler: debounce, retry, states, vendor events, concurrency; fake and real SIP."""

from __future__ import annotations

import asyncio

import pytest

from provisioning.sync import SyncScheduler, SyncState, events_for
from provisioning.sync_notify import NotifyResult
from provisioning.vendors import BY_NAME
from simulators.sip_phone import NotifyListener

YEALINK, SNOM, GRANDSTREAM = "805ec0000001", "000413000001", "000b82000001"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def result(status: int | None = 200, reason: str = "OK") -> NotifyResult:
    return NotifyResult(status, reason if status else "timeout", status is None, 1, False, 0.0)


class FakeSender:
    """Records calls; answers from ``script`` (a list of NotifyResults, last one repeats)."""

    def __init__(self, *script: NotifyResult, gate: asyncio.Event | None = None) -> None:
        self.script = list(script) or [result()]
        self.calls: list[tuple[str, int, str]] = []
        self.kwargs: list[dict] = []
        self.gate = gate
        self.active = self.peak = 0

    async def __call__(self, host: str, port: int, *, event: str, **kwargs) -> NotifyResult:
        self.calls.append((host, port, event))
        self.kwargs.append(kwargs)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.gate is not None:
                await self.gate.wait()
            else:
                await asyncio.sleep(0)
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]
        finally:
            self.active -= 1


def make(sender=None, **kw) -> tuple[SyncScheduler, Clock, FakeSender]:
    clock = Clock()
    sender = sender or FakeSender()
    kw = {"debounce": 5.0, "max_delay": 30.0, "retries": 3, "backoff": 10.0, "settle": 30.0} | kw
    return SyncScheduler(sender=sender, clock=clock, **kw), clock, sender


async def step(sched: SyncScheduler, clock: Clock, to: float) -> int:
    clock.now = to
    started = sched.tick()
    await sched.drain()
    return started


async def test_several_changes_within_the_debounce_give_one_notify():
    sched, clock, sender = make()
    sched.fetched(YEALINK, f"{YEALINK}.cfg", "127.0.0.1", vendor="yealink")
    for t in (1000, 1001, 1002):
        clock.now = t
        sched.files_changed(YEALINK, vendor="yealink", files=[f"{YEALINK}.cfg"])
        assert sched.status(YEALINK).state is SyncState.pending
    assert await step(sched, clock, 1006.9) == 0  # 5 s after the *last* change: not yet
    assert await step(sched, clock, 1007.0) == 1
    assert sender.calls == [("127.0.0.1", 5060, "check-sync;reboot=false")]
    assert await step(sched, clock, 1100) == 0
    st = sched.status(YEALINK)
    assert st.state is SyncState.notified and st.last_result == "200 OK" and st.missing == {f"{YEALINK}.cfg"}


async def test_a_stream_of_changes_is_notified_after_max_delay():
    sched, clock, sender = make()
    sched.seen(SNOM, "127.0.0.1", sip_port=5062, vendor="snom")
    for t in range(1000, 1041, 2):
        clock.now = t
        sched.files_changed(SNOM, vendor="snom")
        await step(sched, clock, t + 1)
        if sender.calls:
            break
    assert sender.calls == [("127.0.0.1", 5062, "check-sync;reboot=false")]
    assert clock.now == 1031  # first change + max_delay (30 s), not never


async def test_in_sync_only_after_the_changed_files_are_fetched_after_the_change():
    sched, clock, sender = make()
    states = []
    sched.on_state = lambda s: states.append(s.state)
    files = [f"snomD785-{SNOM.upper()}.htm", f"{SNOM.upper()}.xml"]
    sched.fetched(SNOM, files[1], "127.0.0.1", vendor="snom")
    sched.files_changed(SNOM, vendor="snom", files=files + ["\0snapshot"])
    sched.fetched(SNOM, files[1], "127.0.0.1", at=clock.now - 1)  # started before the change
    assert sched.status(SNOM).state is SyncState.pending
    await step(sched, clock, 1005)
    assert sched.status(SNOM).state is SyncState.notified
    clock.now = 1006
    sched.fetched(SNOM, "/" + files[0], "127.0.0.1")
    assert sched.status(SNOM).missing == {files[1]}
    sched.fetched(SNOM, "snomD785.htm", "127.0.0.1")  # a common file: not one of the changed
    clock.now = 1007
    sched.fetched(SNOM, files[1], "127.0.0.1")
    st = sched.status(SNOM)
    assert st.state is SyncState.in_sync and st.synced_at == 1007 and not st.missing
    assert states == [SyncState.pending, SyncState.notified, SyncState.in_sync]
    assert len(sender.calls) == 1


async def test_a_device_that_polls_by_itself_needs_no_notify():
    sched, clock, sender = make()
    sched.fetched(YEALINK, "x", "127.0.0.1")
    sched.files_changed(YEALINK, vendor="yealink")  # files unknown: any fetch counts
    clock.now += 2
    sched.fetched(YEALINK, f"{YEALINK}.boot", "127.0.0.1")
    assert sched.status(YEALINK).state is SyncState.in_sync
    assert await step(sched, clock, 1100) == 0 and sender.calls == []


async def test_files_fetched_on_the_phones_own_schedule_settle():
    sched, clock, _ = make(settle=30.0)
    sched.fetched(YEALINK, "x", "127.0.0.1")
    sched.files_changed(YEALINK, files=[f"{YEALINK}.cfg", f"{YEALINK}-contact.xml"])
    await step(sched, clock, 1005)
    clock.now = 1010
    sched.fetched(YEALINK, f"{YEALINK}.cfg", "127.0.0.1")
    await step(sched, clock, 1039)
    assert sched.status(YEALINK).state is SyncState.notified
    await step(sched, clock, 1040)
    st = sched.status(YEALINK)
    assert st.state is SyncState.in_sync and st.missing == {f"{YEALINK}-contact.xml"}


async def test_timeouts_are_retried_with_backoff_then_unreachable():
    sched, clock, sender = make(FakeSender(result(None)), retries=3, backoff=10.0, backoff_factor=2.0)
    sched.fetched(GRANDSTREAM, "cfg.xml", "127.0.0.1")
    sched.files_changed(GRANDSTREAM, vendor="grandstream")
    sent_at = []
    for t in range(1000, 1200):
        if await step(sched, clock, t):
            sent_at.append(t)
    assert sent_at == [1005, 1015, 1035, 1075]  # 1 try + 3 retries: 10, 20, 40 s apart
    st = sched.status(GRANDSTREAM)
    assert st.state is SyncState.unreachable and st.last_result == "no answer" and st.last_event == "resync"
    # It comes back by itself: a fetch after the change is what counts.
    sched.fetched(GRANDSTREAM, f"cfg{GRANDSTREAM}.xml", "127.0.0.1")
    assert sched.status(GRANDSTREAM).state is SyncState.in_sync


async def test_server_errors_are_retried_refusals_are_not():
    sched, clock, sender = make(FakeSender(result(503, "Busy"), result(200)))
    sched.fetched(SNOM, "x", "127.0.0.1")
    sched.files_changed(SNOM)
    await step(sched, clock, 1005)
    await step(sched, clock, 1015)
    assert len(sender.calls) == 2 and sched.status(SNOM).state is SyncState.notified

    sched, clock, sender = make(FakeSender(result(489, "Bad Event")))
    sched.fetched(SNOM, "x", "127.0.0.1")
    sched.files_changed(SNOM)
    await step(sched, clock, 1005)
    await step(sched, clock, 1100)
    st = sched.status(SNOM)
    assert len(sender.calls) == 1 and st.state is SyncState.unreachable and st.last_result == "refused: 489 Bad Event"


async def test_no_address_waits_for_the_device():
    sched, clock, sender = make()
    sched.files_changed(SNOM, vendor="snom")
    await step(sched, clock, 1005)
    st = sched.status(SNOM)
    assert sender.calls == [] and st.state is SyncState.pending and st.last_result.startswith("no known address")
    with pytest.raises(LookupError):
        sched.request(SNOM)
    clock.now = 1006
    sched.seen(SNOM, "127.0.0.1", sip_port=5070)  # PnP: now we know where it is
    await step(sched, clock, 1006)
    assert sender.calls == [("127.0.0.1", 5070, "check-sync;reboot=false")]


VENDORS_MD_8 = {  # vendors.md section 8: (resync, reboot)
    "yealink": ("check-sync;reboot=false", "check-sync;reboot=true"),
    "poly": ("check-sync", "check-sync"),
    "snom": ("check-sync;reboot=false", "check-sync;reboot=true"),
    "grandstream": ("resync", "check-sync;reboot=true"),
    "fanvil": ("check-sync", "check-sync;reboot=true"),
    "gigaset": ("check-sync;reboot=false", "check-sync;reboot=true"),
}


@pytest.mark.parametrize("vendor", sorted(BY_NAME))
async def test_manual_resync_and_reboot_use_the_vendors_event(vendor):
    plugin = BY_NAME[vendor]
    mac = next(iter(sorted(plugin.ouis))) + "0000aa"
    assert events_for(vendor) == (plugin.resync_event, plugin.reboot_event)
    if vendor in VENDORS_MD_8:
        assert events_for(vendor) == VENDORS_MD_8[vendor]
    sched, clock, sender = make()
    sched.fetched(mac, "x", "127.0.0.1")  # vendor from the OUI: the plugin that owns it
    sched.request(mac)
    await step(sched, clock, clock.now)
    st = sched.request(mac, reboot=True)
    assert st.reboot_requested
    await step(sched, clock, clock.now)
    assert [c[2] for c in sender.calls] == [plugin.resync_event, plugin.reboot_event]
    assert not sched.status(mac).reboot_requested
    assert events_for(None) == events_for("nosuchvendor") == ("check-sync", "check-sync;reboot=true")


async def test_a_manual_request_is_sent_even_if_the_device_polls_first():
    sched, clock, sender = make()
    sched.fetched(SNOM, "x", "127.0.0.1")
    sched.request(SNOM, reboot=True)
    sched.fetched(SNOM, f"{SNOM.upper()}.xml", "127.0.0.1")  # before our NOTIFY: doesn't count
    await step(sched, clock, clock.now)
    assert sender.calls == [("127.0.0.1", 5060, "check-sync;reboot=true")]
    assert sched.status(SNOM).state is SyncState.notified
    clock.now += 20
    sched.fetched(SNOM, f"{SNOM.upper()}.xml", "127.0.0.1")
    assert sched.status(SNOM).state is SyncState.in_sync


async def test_concurrency_is_bounded():
    gate = asyncio.Event()
    sender = FakeSender(gate=gate)
    sched, clock, _ = make(sender, max_concurrent=3)
    macs = [f"805ec000{i:04x}" for i in range(20)]
    for mac in macs:
        sched.fetched(mac, "x", "127.0.0.1")
        sched.files_changed(mac, vendor="yealink")
    clock.now += 5
    assert sched.tick() == 20
    for _ in range(5):
        await asyncio.sleep(0)
    assert sender.active == 3
    gate.set()
    await sched.drain()
    assert sender.peak == 3 and len(sender.calls) == 20
    assert all(sched.status(m).state is SyncState.notified for m in macs)


async def test_nothing_is_sent_off_loopback_unless_a_source_address_is_configured():
    sched, clock, sender = make()
    sched.fetched(SNOM, "x", "192.0.2.7")
    sched.files_changed(SNOM)
    await step(sched, clock, 1005)
    st = sched.status(SNOM)
    assert sender.calls == [] and st.state is SyncState.unreachable and "not on loopback" in st.last_result
    sched2, clock2, sender2 = make(local_host="0.0.0.0")
    sched2.fetched(SNOM, "x", "192.0.2.7")
    sched2.files_changed(SNOM)
    await step(sched2, clock2, 1005)
    assert sender2.calls == [("192.0.2.7", 5060, "check-sync;reboot=false")]  # (fake sender: nothing sent)


async def test_cache_keys_are_grouped_per_device():
    sched, clock, _ = make()
    sched.cache_keys_dropped([
        ("", SNOM, "\0vendor"), ("snom", SNOM, "\0snapshot"), ("snom", SNOM, f"{SNOM.upper()}.xml"),
        ("snom", SNOM, f"snomD785-{SNOM.upper()}.htm"), ("yealink", None, "y000000000066.cfg"),
        ("grandstream", GRANDSTREAM, "\0snapshot"),
    ])
    snom = sched.status(SNOM)
    assert snom.vendor == "snom" and snom.missing == {f"{SNOM.upper()}.xml", f"snomD785-{SNOM.upper()}.htm"}
    assert sched.status(GRANDSTREAM).state is SyncState.pending and not sched.status(GRANDSTREAM).missing
    assert sched.status("805ec0000009") is None


async def test_notify_options_pass_credentials():
    async def creds(mac, vendor):
        return {"user": "1001", "auth_password": "pw"}

    sched, clock, sender = make(notify_options=creds)
    sched.fetched(SNOM, "x", "127.0.0.1")
    sched.files_changed(SNOM)
    await step(sched, clock, 1005)
    assert sender.kwargs[0]["user"] == "1001" and sender.kwargs[0]["auth_password"] == "pw"


# -- the real sender against a simulated phone's SIP port -----------------------------------------

async def test_real_notify_reaches_the_phone_once_after_a_burst():
    async with NotifyListener() as phone:
        sched = SyncScheduler(debounce=0.2, max_delay=2.0, notify_timeout=2.0)
        async with sched:
            sched.seen(SNOM, "127.0.0.1", sip_port=phone.port, vendor="snom")
            for _ in range(3):
                sched.files_changed(SNOM, vendor="snom")
                await asyncio.sleep(0.05)
            assert await phone.next_event(3) == "check-sync;reboot=false"
            for _ in range(100):
                if sched.status(SNOM).state is SyncState.notified:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)
        assert phone.events == ["check-sync;reboot=false"]
        assert sched.status(SNOM).state is SyncState.notified


async def test_real_notify_answers_a_digest_challenge_with_configured_credentials():
    async with NotifyListener(challenge=True, username="admin", password="s3cret") as phone:
        sched = SyncScheduler(debounce=0.0, notify_timeout=2.0,
                              notify_options=lambda mac, vendor: {"auth_username": "admin",
                                                                  "auth_password": "s3cret"})
        async with sched:
            sched.seen("0002fd000001", "127.0.0.1", sip_port=phone.port)
            sched.request("0002fd000001", reboot=True)
            assert await phone.next_event(3) == BY_NAME["cisco"].reboot_event
        assert phone.challenges_sent == 1 and phone.received[-1].authorized


async def test_real_notify_to_a_silent_phone_ends_unreachable():
    async with NotifyListener(silent=True) as phone:
        sched = SyncScheduler(debounce=0.0, notify_timeout=0.3, retries=1, backoff=0.05)
        async with sched:
            sched.seen(YEALINK, "127.0.0.1", sip_port=phone.port)
            sched.files_changed(YEALINK)
            for _ in range(200):
                if sched.status(YEALINK).state is SyncState.unreachable:
                    break
                await asyncio.sleep(0.02)
        st = sched.status(YEALINK)
        assert st.state is SyncState.unreachable and st.last_result == "no answer"
        assert sched.counters["notify_sent"] == 2 and phone.datagrams >= 2
