"""Desk phones: register by MAC and model, bind and unbind users per line, program keys checked
against the catalogue; a key edit changes exactly the affected phones' configs."""

from __future__ import annotations

import aiohttp

ANNA_MAC, BERTIL_MAC, CECILIA_MAC = "805ec0aabb01", "805ec0aabb02", "805ec0cc0001"


def _ua(mac: str) -> dict:
    pretty = ":".join(mac[i:i + 2] for i in range(0, 12, 2))
    return {"User-Agent": f"Yealink SIP-T46S 66.86.0.15 {pretty}"}


async def _configs(server, macs) -> dict[str, bytes]:
    out = {}
    async with aiohttp.ClientSession() as http:
        for mac in macs:
            async with http.get(f"http://127.0.0.1:{server.http_port}/{mac}.cfg", headers=_ua(mac)) as resp:
                assert resp.status == 200, (mac, resp.status)
                out[mac] = await resp.read()
    return out


def _cached_macs(server) -> set:
    return {key[1] for key in server.cache._entries}


async def _bertil_phone(anna) -> dict:
    bertil = (await anna.get("/api/v1/users?number=%2B46854689902")).payload["items"][0]
    created = await anna.post("/api/v1/devices", {"mac": "80-5E-C0-AA-BB-02", "model": "Yealink T46S"})
    assert created.status == 201, created.payload
    assert created.payload["mac"] == "80:5E:C0:AA:BB:02" and created.payload["kind"] == "desk"
    bound = await anna.put(f"/api/v1/devices/{created.payload['id']}/lines/1", {"user_id": bertil["id"]},
                           headers={"If-Match": created.headers["ETag"]})
    assert bound.status == 200, bound.payload
    assert bound.payload["lines"][0]["user_name"] == "Bertil Berg"
    return bound.payload


async def test_key_edit_changes_exactly_the_affected_phones_configs(api_server, clients):
    anna = clients["anna"]
    await _bertil_phone(anna)
    macs = (ANNA_MAC, BERTIL_MAC, CECILIA_MAC)
    before = await _configs(api_server, macs)
    assert b"linekey.2.label = Bertil" in before[ANNA_MAC]
    cached = _cached_macs(api_server)
    assert set(macs) <= cached

    device = (await anna.get(f"/api/v1/devices?mac={ANNA_MAC}")).payload["items"][0]
    keys = (await anna.get(f"/api/v1/devices/{device['id']}/keys"))
    new_keys = [k for k in keys.payload["keys"]] + [
        {"slot": 4, "type": "park", "target": "701", "label": "Park"},
        {"slot": 5, "type": "blf", "target": "202", "label": "Bertil mobil"}]
    for key in new_keys:
        key.pop("module", None)
    resp = await anna.put(f"/api/v1/devices/{device['id']}/keys", {"keys": new_keys},
                          headers={"If-Match": keys.headers["ETag"]})
    assert resp.status == 200, resp.payload
    assert resp.payload["keys"][-1]["target"] == "+46854689902"  # a colleague's extension, stored as the number

    assert _cached_macs(api_server) == cached - {ANNA_MAC}    # exactly Anna's phone's entries dropped
    after = await _configs(api_server, macs)
    assert after[ANNA_MAC] != before[ANNA_MAC] and b"linekey.4.label = Park" in after[ANNA_MAC]
    assert after[BERTIL_MAC] == before[BERTIL_MAC] and after[CECILIA_MAC] == before[CECILIA_MAC]


async def test_user_rename_reaches_the_phones_that_show_them_and_no_other(api_server, clients):
    anna = clients["anna"]
    await _bertil_phone(anna)
    macs = (ANNA_MAC, BERTIL_MAC, CECILIA_MAC)
    before = await _configs(api_server, macs)
    bertil = (await anna.get("/api/v1/users?number=%2B46854689902")).payload["items"][0]
    # Self-service and admin-only fields no phone file reads: nothing is dropped.
    cached = _cached_macs(api_server)
    await clients["bertil"].patch("/api/v1/me", {"caller_id": "hidden"})
    await anna.patch(f"/api/v1/users/{bertil['id']}", {"keywords": ["support"], "softphone_licence": True})
    assert _cached_macs(api_server) == cached
    await anna.patch(f"/api/v1/users/{bertil['id']}", {"name": "Bertil Björk"})
    after = await _configs(api_server, macs)
    assert after[BERTIL_MAC] != before[BERTIL_MAC]           # his own line's display name
    assert after[ANNA_MAC] == before[ANNA_MAC]                # the BLF key has its own label "Bertil"
    assert after[CECILIA_MAC] == before[CECILIA_MAC]


async def test_keys_the_model_does_not_have_are_refused_naming_the_key(clients):
    anna = clients["anna"]
    device = (await anna.get(f"/api/v1/devices?mac={ANNA_MAC}")).payload["items"][0]
    for keys, loc, words in [
        ([{"slot": 1, "type": "line"}, {"slot": 30, "type": "speed_dial", "target": "112"}],
         ["body", "keys", 1], "has keys 1-27"),
        ([{"module": 7, "slot": 1, "type": "blf", "target": "202"}], ["body", "keys", 0], "expansion module 7"),
        ([{"slot": 2, "type": "intercom"}], ["body", "keys", 0, "type"], "Input should be"),
        ([{"slot": 2, "type": "blf"}], ["body", "keys", 0, "target"], "needs a target"),
        ([{"slot": 2, "type": "park", "target": "seven"}], ["body", "keys", 0, "target"], "digits"),
        ([{"slot": 2, "type": "line"}, {"slot": 2, "type": "line"}], ["body", "keys", 1, "slot"], "twice"),
    ]:
        resp = await anna.put(f"/api/v1/devices/{device['id']}/keys", {"keys": keys})
        assert resp.status == 422, (keys, resp.payload)
        assert resp.payload["errors"][0]["loc"] == loc, resp.payload
        assert words in resp.payload["errors"][0]["msg"] + resp.payload["detail"], resp.payload
    unchanged = await anna.get(f"/api/v1/devices/{device['id']}/keys")
    assert len(unchanged.payload["keys"]) == 3


async def test_register_bind_unbind_and_delete(api_server, clients):
    anna = clients["anna"]
    bad = await anna.post("/api/v1/devices", {"mac": "80:5E:C0:AA:BB", "model": "Yealink T46S"})
    assert bad.status == 422 and bad.payload["errors"][0]["loc"] == ["body", "mac"]
    unknown = await anna.post("/api/v1/devices", {"mac": "80:5E:C0:AA:BB:09", "model": "Acme Fone 9"})
    assert unknown.status == 422 and unknown.payload["errors"][0]["loc"] == ["body", "model"]
    dup = await anna.post("/api/v1/devices", {"mac": "80:5e:c0:aa:bb:01"})
    assert dup.status == 409
    device = await _bertil_phone(anna)
    cfg = await _configs(api_server, [BERTIL_MAC])
    assert b"Bertil Berg" in cfg[BERTIL_MAC]
    assert (await anna.delete(f"/api/v1/devices/{device['id']}/lines/1")).status == 204
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{api_server.http_port}/{BERTIL_MAC}.cfg",
                            headers=_ua(BERTIL_MAC)) as resp:
            assert resp.status == 404  # an unbound phone gets nothing
    models = (await anna.get("/api/v1/phone-models")).payload["items"]
    assert any(m["display_name"] == "Yealink T46S" and m["line_keys"] == 27 for m in models)
    assert (await anna.delete(f"/api/v1/devices/{device['id']}")).status == 204
    assert (await anna.get(f"/api/v1/devices/{device['id']}")).status == 404
