"""Users: create, read, search, change, delete; fields of A2-A7; validation; tenancy; audit."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from .conftest import PASSWORDS, logged_in


async def _user(client, number: str) -> dict:
    resp = await client.get(f"/api/v1/users?number={number}")
    assert resp.status == 200, resp.payload
    return resp.payload["items"][0]


async def test_imported_user_has_every_field(clients):
    anna = await _user(clients["anna"], "+46854689901")
    assert anna["name"] == "Anna Andersson" and anna["email"] == "anna@exempel.se"
    assert anna["username"] == "anna" and anna["login"] == "anna"
    assert anna["primary_number"] == "+46854689901"
    assert anna["mobile_numbers"] == [{"number": "+46701234567", "profile": "mex"}]
    assert anna["secondary_number"] == "+46701234567"
    assert anna["keywords"] == ["ekonomi", "växel"]
    assert anna["admin"] is True and anna["has_password"] is True
    assert anna["phones"] == [{"device_id": 1, "mac": "805ec0aabb01", "model": "T46S", "line": 1}]
    assert "password" not in anna and "password_hash" not in anna
    bertil = await _user(clients["anna"], "+46854689902")
    assert bertil["features"]["call_waiting_fixed"] is True and bertil["features"]["voicemail"] is True
    assert bertil["feature_groups"] == ["EX-Samtal väntar på fastnätsnummer"]
    assert bertil["login"] == "+46854689902"  # no custom username: the primary number


@pytest.mark.parametrize("query, expected", [
    ("q=anna", ["Anna Andersson"]),
    ("q=ANDERSSON", ["Anna Andersson"]),
    ("q=växel", ["Anna Andersson"]),           # a keyword, non-ASCII, any case
    ("q=08-546 899 02", ["Bertil Berg"]),       # a number as people write it
    ("q=070-123 45 67", ["Anna Andersson"]),    # a mobile number
    ("number=%2B46 8 546 899 01", ["Anna Andersson"]),
    ("keyword=ekonomi", ["Anna Andersson"]),
    ("name=berg", ["Bertil Berg"]),
    ("admin=true", ["Anna Andersson"]),
    ("q=nobody", []),
])
async def test_search(clients, query, expected):
    resp = await clients["anna"].get(f"/api/v1/users?{query}")
    assert resp.status == 200, resp.payload
    assert [u["name"] for u in resp.payload["items"]] == expected


async def test_pagination_with_cursor_and_offset(clients):
    staff = clients["staff"]
    for i in range(5):
        resp = await staff.post("/api/v1/users", {"organization_id": 1, "name": f"Test {i}",
                                                  "primary_number": f"+4685468993{i}"})
        assert resp.status == 201, resp.payload
    seen, cursor = [], None
    while True:
        resp = await staff.get("/api/v1/users?organization_id=1&limit=3" + (f"&cursor={cursor}" if cursor else ""))
        seen += [u["id"] for u in resp.payload["items"]]
        cursor = resp.payload["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and seen == sorted(seen)
    page = await staff.get("/api/v1/users?organization_id=1&limit=2&offset=2")
    assert [u["id"] for u in page.payload["items"]] == seen[2:4]
    too_many = await staff.get("/api/v1/users?limit=1000")
    assert too_many.status == 422 and too_many.payload["errors"][0]["loc"] == ["query", "limit"]
    bad = await staff.get("/api/v1/users?cursor=garbage")
    assert bad.status == 422 and bad.payload["errors"][0]["loc"] == ["query", "cursor"]


async def test_create_and_change_a_user(api_server, clients):
    anna = clients["anna"]
    resp = await anna.post("/api/v1/users", {
        "name": "Doris Dahl", "email": "doris@exempel.se", "primary_number": "08-546 899 05", "extension": "205",
        "password": "Doris-hemligt-5", "mobile_numbers": [{"number": "0709-87 65 43", "profile": "non_mex"}],
        "keywords": ["lager"], "softphone_licence": True, "features": {"voicemail": False}})
    assert resp.status == 201, resp.payload
    doris = resp.payload
    assert resp.headers["ETag"] == f'"{doris["version"]}"'
    assert doris["organization_id"] == 1 and doris["primary_number"] == "+46854689905"
    assert doris["secondary_number"] is None and doris["mobile_numbers"][0]["profile"] == "non_mex"
    assert doris["feature_groups"] == ["EX-Ej lämna meddelande i röstbrevlåda"]
    doris_client = await logged_in(api_server, "+46854689905", "Doris-hemligt-5")
    await doris_client.http.close()
    changed = await anna.patch(f"/api/v1/users/{doris['id']}", {"username": "Doris", "admin": True,
                                                                "deactivation_date": "2027-12-31"},
                               headers={"If-Match": f'"{doris["version"]}"'})
    assert changed.status == 200, changed.payload
    assert changed.payload["username"] == "doris" and changed.payload["admin"] is True
    assert changed.payload["deactivation_date"] == "2027-12-31" and changed.payload["removed_at"] is None
    assert changed.payload["version"] > doris["version"]
    gone = await anna.delete(f"/api/v1/users/{doris['id']}")
    assert gone.status == 204
    assert (await anna.get(f"/api/v1/users/{doris['id']}")).status == 404


@pytest.mark.parametrize("payload, loc", [
    ({"name": ""}, ["body", "name"]),
    ({"name": "X", "email": "not-an-address"}, ["body", "email"]),
    ({"name": "X", "primary_number": "12"}, ["body", "primary_number"]),
    ({"name": "X", "extension": "2a"}, ["body", "extension"]),
    ({"name": "X", "caller_id": "secret"}, ["body", "caller_id"]),
    ({"name": "X", "deactivation_date": "31/12/2027"}, ["body", "deactivation_date"]),
    ({"name": "X", "mobile_numbers": [{"number": "0701111111", "profile": "sometimes"}]},
     ["body", "mobile_numbers", 0, "profile"]),
    ({"name": "X", "features": {"voicemail": "maybe"}}, ["body", "features", "voicemail"]),
    ({"name": "X\u0000"}, ["body", "name"]),
    ({"name": "X", "password": "short"}, ["body", "password"]),
    ({"name": "X", "caller_id": "mobile"}, ["body", "caller_id"]),
])
async def test_invalid_payloads_name_the_field(clients, payload, loc):
    resp = await clients["anna"].post("/api/v1/users", payload)
    assert resp.status == 422, resp.payload
    assert resp.content_type == "application/problem+json"
    assert loc in [e["loc"] for e in resp.payload["errors"]], resp.payload


async def test_bodies_that_are_not_json(clients):
    anna = clients["anna"]
    not_json = await anna.post("/api/v1/users", data=b"name=X", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert not_json.status == 415 and not_json.content_type == "application/problem+json"
    broken = await anna.post("/api/v1/users", data=b"{", headers={"Content-Type": "application/json"})
    assert broken.status == 400 and broken.content_type == "application/problem+json"
    huge = await anna.post("/api/v1/users", data=b'{"name": "' + b"x" * 300_000 + b'"}',
                           headers={"Content-Type": "application/json"})
    assert huge.status == 413 and huge.content_type == "application/problem+json"
    nowhere = await anna.get("/api/v1/nothing-here")
    assert nowhere.status == 404 and nowhere.content_type == "application/problem+json"
    method = await anna.call("PUT", "/api/v1/users")
    assert method.status == 405 and method.content_type == "application/problem+json"


async def test_conflicts_are_409(clients):
    anna = clients["anna"]
    taken = await anna.post("/api/v1/users", {"name": "X", "primary_number": "+46854689902"})
    assert taken.status == 409 and taken.payload["errors"][0]["loc"] == ["body", "primary_number"]
    other_org = await anna.post("/api/v1/users", {"name": "X", "primary_number": "+46311234501"})
    assert other_org.status == 409  # numbers are unique on the whole platform
    ext = await anna.post("/api/v1/users", {"name": "X", "extension": "202"})
    assert ext.status == 409 and ext.payload["errors"][0]["loc"] == ["body", "extension"]


async def test_cross_tenant_access_is_404(clients):
    """Cecilia administers Annan AB: Exempel AB's users, groups, phones, books don't exist for her."""
    anna, cecilia = clients["anna"], clients["cecilia"]
    bertil = await _user(anna, "+46854689902")
    group = (await anna.get("/api/v1/groups")).payload["items"][0]
    device = (await anna.get("/api/v1/devices")).payload["items"][0]
    book = await anna.post("/api/v1/phonebooks", {"name": "Kunder", "members": [bertil["id"]]})
    diversion = await anna.post(f"/api/v1/users/{bertil['id']}/diversions", {"reason": "lunch", "target": "voicemail"})
    for method, path, body in [
        ("GET", f"/api/v1/users/{bertil['id']}", None),
        ("PATCH", f"/api/v1/users/{bertil['id']}", {"name": "Hacked"}),
        ("DELETE", f"/api/v1/users/{bertil['id']}", None),
        ("GET", f"/api/v1/users/{bertil['id']}/diversions", None),
        ("POST", f"/api/v1/users/{bertil['id']}/diversions", {"reason": "lunch", "target": "voicemail"}),
        ("GET", f"/api/v1/diversions/{diversion.payload['id']}", None),
        ("POST", f"/api/v1/users/{bertil['id']}/installation-messages", {"channel": "sms"}),
        ("GET", f"/api/v1/groups/{group['id']}", None),
        ("PATCH", f"/api/v1/groups/{group['id']}", {"name": "Hacked"}),
        ("GET", f"/api/v1/devices/{device['id']}", None),
        ("PUT", f"/api/v1/devices/{device['id']}/keys", {"keys": []}),
        ("PUT", f"/api/v1/devices/{device['id']}/lines/1", {"user_id": 3}),
        ("GET", f"/api/v1/phonebooks/{book.payload['id']}", None),
        ("GET", "/api/v1/organizations/1", None),
        ("PATCH", "/api/v1/organizations/1", {"vlan": 5}),
        ("GET", "/api/v1/users?organization_id=1", None),
        ("GET", "/api/v1/audit?organization_id=1", None),
        ("PUT", f"/api/v1/me/groups/{group['id']}", {"logged_in": False}),
    ]:
        resp = await cecilia.call(method, path, json=body)
        assert resp.status == 404, (method, path, resp.status, resp.payload)
        assert resp.content_type == "application/problem+json"
    # ...and Cecilia's own listing shows only her tenant
    assert [u["name"] for u in (await cecilia.get("/api/v1/users")).payload["items"]] == ["Cecilia Carlsson"]
    assert (await anna.get(f"/api/v1/users/{bertil['id']}")).payload["name"] == "Bertil Berg"


async def test_plain_user_sees_only_themselves(clients):
    bertil = clients["bertil"]
    anna_id = (await _user(clients["anna"], "+46854689901"))["id"]
    me = await bertil.get("/api/v1/me")
    assert me.status == 200 and me.payload["name"] == "Bertil Berg"
    assert (await bertil.get(f"/api/v1/users/{me.payload['id']}")).status == 200
    assert (await bertil.get(f"/api/v1/users/{anna_id}")).status == 404
    assert (await bertil.get(f"/api/v1/users/{anna_id}/diversions")).status == 404
    assert (await bertil.get("/api/v1/users")).status == 403
    assert (await bertil.patch(f"/api/v1/users/{me.payload['id']}", {"admin": True})).status == 403
    assert (await bertil.post("/api/v1/organizations", {"name": "Mine", "sip_domain": "x.example"})).status == 403


async def test_super_admin_manages_organisations(clients):
    staff = clients["staff"]
    created = await staff.post("/api/v1/organizations", {"name": "Tredje AB", "sip_domain": "tredje.example",
                                                          "main_number": "031-700 00 00"})
    assert created.status == 201, created.payload
    org = created.payload
    assert org["main_number"] == "+46317000000" and org["timezone"] == "Europe/Stockholm"
    assert "device_admin_password" not in org
    user = await staff.post("/api/v1/users", {"name": "Tor", "primary_number": "031-700 00 01"})
    assert user.status == 422 and user.payload["errors"][0]["loc"] == ["body", "organization_id"]
    renamed = await staff.patch(f"/api/v1/organizations/{org['id']}", {"name": "Tredje Aktiebolag", "vlan": 20},
                                headers={"If-Match": created.headers["ETag"]})
    assert renamed.status == 200 and renamed.payload["vlan"] == 20
    assert (await clients["anna"].patch("/api/v1/organizations/1", {"name": "Nytt namn"})).status == 403
    assert (await staff.delete(f"/api/v1/organizations/{org['id']}")).status == 204
    assert (await staff.get(f"/api/v1/organizations/{org['id']}")).status == 404


def _png(size=(300, 200), color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


async def test_profile_picture(api_server, clients):
    bertil = clients["bertil"]
    up = await bertil.put("/api/v1/me/picture", data=_png(), headers={"Content-Type": "image/png"})
    assert up.status == 200, up.payload
    assert up.payload["picture"]["url"].startswith(f"/api/v1/users/{up.payload['id']}/picture")
    original = await bertil.get("/api/v1/me/picture")
    assert original.status == 200 and original.content_type == "image/png" and original.body == _png()
    thumb = await bertil.get("/api/v1/me/picture?size=thumbnail")
    assert Image.open(io.BytesIO(thumb.body)).size == (128, 85)
    admin_view = await clients["anna"].get(up.payload["picture"]["thumbnail_url"])
    assert admin_view.status == 200 and admin_view.body == thumb.body
    assert (await clients["cecilia"].get(up.payload["picture"]["url"])).status == 404
    files = list((api_server.settings.data_dir / "pictures" / str(up.payload["id"])).iterdir())
    assert len(files) == 2
    fake = await bertil.put("/api/v1/me/picture", data=b"\x89PNG\r\n\x1a\nnot really",
                            headers={"Content-Type": "image/png"})
    assert fake.status == 415 and fake.content_type == "application/problem+json"
    svg = await bertil.put("/api/v1/me/picture", data=b"<svg/>", headers={"Content-Type": "image/svg+xml"})
    assert svg.status == 415
    big = await bertil.put("/api/v1/me/picture", data=b"\0" * (2 * 1024 * 1024 + 1),
                           headers={"Content-Type": "image/png"})
    assert big.status == 413 and big.content_type == "application/problem+json"
    assert (await bertil.delete("/api/v1/me/picture")).status == 204
    assert (await bertil.get("/api/v1/me/picture")).status == 404


async def test_installation_sms_and_mail_go_to_the_outbox(api_server, clients):
    anna = clients["anna"]
    me = await _user(anna, "+46854689901")
    sms = await anna.post(f"/api/v1/users/{me['id']}/installation-messages", {"channel": "sms"})
    assert sms.status == 201, sms.payload
    assert sms.payload["recipient"] == "+46701234567" and sms.payload["status"] == "sent"
    mail = await anna.post(f"/api/v1/users/{me['id']}/installation-messages", {"channel": "email"})
    assert mail.payload["recipient"] == "anna@exempel.se" and "softphone" in mail.payload["subject"]
    files = sorted((api_server.settings.data_dir / "outbox").glob("*.json"))
    assert [f.name for f in files] == ["00000001-sms.json", "00000002-email.json"]
    assert "enrol/" in files[0].read_text()
    bertil = await _user(anna, "+46854689902")
    no_mobile = await anna.post(f"/api/v1/users/{bertil['id']}/installation-messages", {"channel": "sms"})
    assert no_mobile.status == 422 and no_mobile.payload["errors"][0]["loc"] == ["body", "channel"]
    listed = await anna.get("/api/v1/installation-messages")
    assert len(listed.payload["items"]) == 2


async def test_audit_log_records_who_what_before_after_without_secrets(clients):
    anna = clients["anna"]
    bertil = await _user(anna, "+46854689902")
    await anna.patch(f"/api/v1/users/{bertil['id']}", {"name": "Bertil Björk", "password": "Nytt-lösen-77"})
    entries = (await anna.get(f"/api/v1/audit?entity=user&entity_id={bertil['id']}")).payload["items"]
    update = entries[0]
    assert update["action"] == "update" and update["actor_name"] == "Anna Andersson"
    assert update["before"]["name"] == "Bertil Berg" and update["after"]["name"] == "Bertil Björk"
    assert "password" not in update["after"] or update["after"].get("password") is None
    everything = str((await clients["staff"].get("/api/v1/audit?limit=200")).payload)
    assert "Nytt-lösen-77" not in everything and "$argon2" not in everything
    assert PASSWORDS["anna"] not in everything


async def test_logged_in_user_can_read_the_feature_group_table(clients):
    table = (await clients["bertil"].get("/api/v1/feature-groups")).payload
    assert table["flags"]["voicemail"] is True
    by_name = {g["name"]: g for g in table["groups"]}
    assert by_name[".Utan RBL"] == {"name": ".Utan RBL", "family": "legacy", "sets": {"voicemail": False}}
    assert by_name["EX-Arbetstid"]["sets"] == {"show_mobile_outside_hours": True}


async def test_an_unexpected_error_is_a_logged_500_problem(clients, monkeypatch, caplog):
    import api.resources.misc as misc

    class Broken(dict):
        def items(self):
            raise RuntimeError("boom")

    monkeypatch.setattr(misc, "GROUPS", Broken())
    resp = await clients["anna"].get("/api/v1/feature-groups")
    assert resp.status == 500 and resp.content_type == "application/problem+json"
    assert resp.payload == {"type": "about:blank", "title": "Internal Server Error", "status": 500,
                            "detail": "internal error; it has been logged", "instance": "/api/v1/feature-groups"}
    assert "boom" not in resp.body.decode()
    assert any("unexpected error" in r.message for r in caplog.records)
