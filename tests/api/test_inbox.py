"""The technician's API: the inbox of unbound devices, binding from it, resync and reboot."""

from __future__ import annotations

import aiohttp

from provisioning.discovery.sighting import Sighting

SEEN = "805ec0dd0001"


async def _seen(server, mac: str = SEEN, ip: str = "127.0.0.1") -> None:
    server.inbox.saw(Sighting(mac=mac, ip=ip, how="pnp", vendor="yealink", model="T46S", firmware="66.86.0.15",
                              port=5062))
    await server.inbox.flush()


async def test_inbox_lists_unbound_devices_and_binds_them(api_server, clients):
    anna, cecilia, staff = clients["anna"], clients["cecilia"], clients["staff"]
    await _seen(api_server)
    listed = await anna.get("/api/v1/inbox")
    assert listed.status == 200
    entry = next(e for e in listed.payload["items"] if e["mac"] == SEEN)
    assert (entry["how"], entry["vendor"], entry["model"], entry["organization_id"]) == ("pnp", "yealink", "T46S",
                                                                                        None)
    bound = await anna.post("/api/v1/inbox/bind", {"mac": "80:5E:C0:DD:00:01", "user": "202"})
    assert bound.status == 200, bound.payload
    assert (bound.payload["vendor"], bound.payload["model"]) == ("yealink", "T46S")
    assert SEEN not in [e["mac"] for e in (await anna.get("/api/v1/inbox")).payload["items"]]
    # the phone now gets Bertil's account
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{api_server.http_port}/{SEEN}.cfg",
                            headers={"User-Agent": "Yealink SIP-T46S 66.86.0.15 80:5e:c0:dd:00:01"}) as resp:
            assert resp.status == 200 and "Bertil Berg" in await resp.text()
    # another organisation's admin can neither see nor take it
    assert SEEN not in [e["mac"] for e in (await cecilia.get("/api/v1/inbox")).payload["items"]]
    taken = await cecilia.post("/api/v1/inbox/bind", {"mac": SEEN, "user": "301"})
    assert taken.status == 409 and taken.headers["Content-Type"].startswith("application/problem+json")
    assert (await staff.get("/api/v1/inbox")).status == 200
    audit = await anna.get("/api/v1/audit?entity=device")
    assert any(a["action"] == "bind" and a["after"]["mac"] == SEEN for a in audit.payload["items"])


async def test_bind_errors_are_problems(api_server, clients):
    anna = clients["anna"]
    bad_mac = await anna.post("/api/v1/inbox/bind", {"mac": "80:5E:C0", "user": "202"})
    assert bad_mac.status == 422 and bad_mac.payload["errors"][0]["loc"] == ["body", "mac"]
    no_user = await anna.post("/api/v1/inbox/bind", {"mac": SEEN, "user": "999"})
    assert no_user.status == 422 and "no user" in no_user.payload["detail"]
    other_org_user = await anna.post("/api/v1/inbox/bind", {"mac": SEEN, "user": "+46311234501"})
    assert other_org_user.status == 422
    assert (await clients["bertil"].get("/api/v1/inbox")).status == 403


async def test_resync_needs_an_address_then_is_accepted(api_server, clients):
    anna = clients["anna"]
    devices = (await anna.get("/api/v1/devices")).payload["items"]
    anna_phone = next(d for d in devices if d["mac"].replace(":", "").lower() == "805ec0aabb01")
    never_seen = await anna.post(f"/api/v1/devices/{anna_phone['id']}/resync", {})
    assert never_seen.status == 409 and "not contacted" in never_seen.payload["detail"]
    await _seen(api_server, "805ec0aabb01")
    api_server.sync.seen("805ec0aabb01", "127.0.0.1", sip_port=9, vendor="yealink")
    accepted = await anna.post(f"/api/v1/devices/{anna_phone['id']}/reboot", {})
    assert accepted.status == 202 and accepted.payload["address"] == "127.0.0.1"
    status = await anna.get(f"/api/v1/devices/{anna_phone['id']}/sync")
    assert status.status == 200 and status.payload["state"] in ("pending", "notified", "unreachable", "in_sync")
    other = await clients["cecilia"].post(f"/api/v1/devices/{anna_phone['id']}/resync", {})
    assert other.status == 404
