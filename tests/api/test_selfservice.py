"""Self-service (U1-U6): my page, caller ID, diversions that end by themselves, group log in/out,
and the deactivation date removing a user when the clock passes it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from provisioning.model import AuditEntry, GroupMember, Line, Number, PhonebookMember, User

from .conftest import PASSWORDS, logged_in


async def test_caller_id_choice(clients):
    bertil = clients["bertil"]
    me = await bertil.get("/api/v1/me")
    assert me.payload["caller_id"] == "fixed"
    hidden = await bertil.patch("/api/v1/me", {"caller_id": "hidden"}, headers={"If-Match": me.headers["ETag"]})
    assert hidden.status == 200 and hidden.payload["caller_id"] == "hidden"
    no_mobile = await bertil.patch("/api/v1/me", {"caller_id": "mobile"})
    assert no_mobile.status == 422 and no_mobile.payload["errors"][0]["loc"] == ["body", "caller_id"]
    admin_only = await bertil.patch("/api/v1/me", {"admin": True})
    assert admin_only.status == 200 and admin_only.payload["admin"] is False  # not a self-service field


async def test_diversion_with_end_time_expires_by_itself(clients, clock):
    bertil = clients["bertil"]
    end = clock.now() + timedelta(hours=1)
    set_ = await bertil.post("/api/v1/me/diversions", {"reason": "lunch", "target": "voicemail",
                                                       "ends_at": end.isoformat()})
    assert set_.status == 201, set_.payload
    assert set_.payload["active"] is True and set_.payload["set_by"] == "user"
    assert set_.payload["state"] == "active"
    clock.advance(minutes=59)
    assert (await bertil.get(f"/api/v1/diversions/{set_.payload['id']}")).payload["active"] is True
    clock.advance(minutes=1)
    after = await bertil.get(f"/api/v1/diversions/{set_.payload['id']}")
    assert after.payload["active"] is False and after.payload["state"] == "expired"
    assert (await bertil.get("/api/v1/me/diversions")).payload["items"] == []
    assert len((await bertil.get("/api/v1/me/diversions?state=all")).payload["items"]) == 1


async def test_admin_sets_a_diversion_on_a_user_and_a_new_one_replaces_it(clients, clock):
    anna, bertil = clients["anna"], clients["bertil"]
    bertil_id = (await bertil.get("/api/v1/me")).payload["id"]
    first = await anna.post(f"/api/v1/users/{bertil_id}/diversions", {
        "reason": "meeting", "target": "colleague", "target_number": "201",
    })
    assert first.status == 422 and first.payload["errors"][0]["loc"] == ["body", "target_number"]
    first = await anna.post(f"/api/v1/users/{bertil_id}/diversions", {
        "reason": "meeting", "target": "colleague", "target_number": "08-546 899 01"})
    assert first.status == 201 and first.payload["set_by"] == "admin" and first.payload["set_by_name"] == "Anna Andersson"
    assert first.payload["target_number"] == "+46854689901" and first.payload["ends_at"] is None
    second = await bertil.post("/api/v1/me/diversions", {"reason": "vacation", "target": "message",
                                                         "message": "Tillbaka måndag",
                                                         "ends_at": (clock.now() + timedelta(days=7)).isoformat()})
    assert second.status == 201
    current = (await bertil.get("/api/v1/me/diversions")).payload["items"]
    assert [d["id"] for d in current] == [second.payload["id"]]
    ended = await bertil.delete(f"/api/v1/diversions/{second.payload['id']}")
    assert ended.status == 204
    assert (await bertil.get(f"/api/v1/diversions/{second.payload['id']}")).payload["state"] == "ended"
    past = await bertil.post("/api/v1/me/diversions", {"reason": "lunch", "target": "voicemail",
                                                       "ends_at": (clock.now() - timedelta(minutes=1)).isoformat()})
    assert past.status == 422 and past.payload["errors"][0]["loc"] == ["body", "ends_at"]
    naive = await bertil.post("/api/v1/me/diversions", {"reason": "lunch", "target": "voicemail",
                                                        "ends_at": "2027-03-01T12:00:00"})
    assert naive.status == 422 and naive.payload["errors"][0]["loc"] == ["body", "ends_at"]


async def test_group_log_in_and_out_with_members_and_their_status(clients, clock):
    anna, bertil = clients["anna"], clients["bertil"]
    mine = (await bertil.get("/api/v1/me/groups")).payload
    assert [g["name"] for g in mine["items"]] == ["Växeln"]
    group = mine["items"][0]
    assert group["number"] == "+46854689920" and group["logged_in"] is True
    assert [(m["name"], m["logged_in"]) for m in group["members"]] == [("Anna Andersson", True), ("Bertil Berg", True)]
    out = await bertil.put(f"/api/v1/me/groups/{group['id']}", {"logged_in": False})
    assert out.status == 200 and out.payload["items"][0]["logged_in"] is False
    await anna.post("/api/v1/me/diversions", {"reason": "lunch", "target": "voicemail",
                                              "ends_at": (clock.now() + timedelta(hours=1)).isoformat()})
    seen_by_anna = (await anna.get("/api/v1/me/groups")).payload["items"][0]["members"]
    assert [(m["name"], m["logged_in"], m["diverted"]) for m in seen_by_anna] == [
        ("Anna Andersson", True, True), ("Bertil Berg", False, False)]
    entries = (await anna.get("/api/v1/audit?entity=group_member")).payload["items"]
    assert entries[0]["action"] == "log_out" and entries[0]["actor_name"] == "Bertil Berg"


async def test_deactivation_date_removes_the_user_when_the_clock_passes_it(api_server_any_db, clock):
    """The user is removed at the start of the date in the organisation's time zone: phones
    unbound, group and phonebook memberships ended, sessions ended; user, numbers and history stay."""
    api_server = api_server_any_db
    clients = {"anna": await logged_in(api_server, "anna", PASSWORDS["anna"]),
               "bertil": await logged_in(api_server, "+46854689902", PASSWORDS["bertil"])}
    try:
        await _deactivation(api_server, clients, clock)
    finally:
        for client in clients.values():
            await client.http.close()


async def _deactivation(api_server, clients, clock):
    anna = clients["anna"]
    bertil = (await anna.get("/api/v1/users?number=%2B46854689902")).payload["items"][0]
    await anna.post("/api/v1/phonebooks", {"name": "Leverantörer", "members": [bertil["id"]]})
    device = (await anna.get("/api/v1/devices")).payload["items"][0]
    bound = await anna.put(f"/api/v1/devices/{device['id']}/lines/2", {"user_id": bertil["id"]})
    assert bound.status == 200, bound.payload
    resp = await anna.patch(f"/api/v1/users/{bertil['id']}", {"deactivation_date": "2027-03-03"})
    assert resp.status == 200 and resp.payload["removed_at"] is None

    clock.set(clock.now().replace(day=2, hour=22, minute=59))  # 23:59 in Stockholm on the 2nd
    assert await api_server.run_deactivations() == []
    clock.advance(minutes=1)                                   # midnight in Stockholm
    assert await api_server.run_deactivations() == [bertil["id"]]
    assert await api_server.run_deactivations() == []          # once only

    async with api_server.sessions() as session:
        user = await session.get(User, bertil["id"])
        assert user.removed_at is not None
        assert await session.scalar(select(func.count()).select_from(Line).where(Line.user_id == user.id)) == 0
        assert await session.scalar(select(func.count()).select_from(GroupMember)
                                    .where(GroupMember.user_id == user.id)) == 0
        assert await session.scalar(select(func.count()).select_from(PhonebookMember)
                                    .where(PhonebookMember.user_id == user.id)) == 0
        assert await session.scalar(select(func.count()).select_from(Number).where(Number.user_id == user.id)) == 1
        assert await session.scalar(select(func.count()).select_from(AuditEntry)
                                    .where(AuditEntry.entity_id == str(user.id))) >= 3
    assert (await clients["bertil"].get("/api/v1/me")).status == 401
    listed = (await anna.get("/api/v1/users")).payload["items"]
    assert [u["name"] for u in listed] == ["Anna Andersson"]
    removed = (await anna.get("/api/v1/users?state=removed")).payload["items"]
    assert removed[0]["name"] == "Bertil Berg" and removed[0]["phones"] == []
    group = (await anna.get("/api/v1/groups")).payload["items"][0]
    assert [m["name"] for m in group["members"]] == ["Anna Andersson"]
    entry = (await anna.get(f"/api/v1/audit?entity=user&entity_id={bertil['id']}")).payload["items"][0]
    assert entry["action"] == "remove" and entry["actor_kind"] == "system"
    assert entry["after"]["devices_unbound"] == [device["id"]]


async def test_deactivation_runs_periodically_in_the_server(api_server, clients, clock):
    import asyncio

    anna = clients["anna"]
    bertil = (await anna.get("/api/v1/users?number=%2B46854689902")).payload["items"][0]
    await anna.patch(f"/api/v1/users/{bertil['id']}", {"deactivation_date": "2027-03-02"})
    clock.advance(days=1)
    api_server.settings = api_server.settings.replace(deactivation_check_seconds=0)
    api_server._deactivations.cancel()
    api_server._deactivations = asyncio.create_task(api_server._deactivation_loop())
    for _ in range(100):
        if (await anna.get(f"/api/v1/users/{bertil['id']}")).payload["removed_at"]:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the periodic task never removed the user")
