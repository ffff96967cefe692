"""Voice messages, menus and answer groups through the API: upload, listen, replace, generate,
delete refused while in use (naming where), menus with every destination kind, group settings,
members' status, tenancy, If-Match and 422s naming fields."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from provisioning import media


def tone(fmt: str = "WAV", seconds: float = 1.5, rate: int = 16000) -> bytes:
    t = np.linspace(0, seconds, int(rate * seconds), endpoint=False)
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 440 * t), rate, format=fmt, subtype="PCM_16" if fmt == "WAV" else "VORBIS")
    return buf.getvalue()


async def messages(client) -> dict[str, dict]:
    return {m["name"]: m for m in (await client.get("/messages")).payload["items"]}


async def groups(client) -> dict[str, dict]:
    return {g["name"]: g for g in (await client.get("/groups")).payload["items"]}


async def test_upload_listen_replace_and_delete(anna):
    resp = await anna.post("/messages/recordings?name=kö&filename=ko.ogg", data=tone("OGG"),
                           headers={"Content-Type": "audio/ogg"})
    assert resp.status == 201, resp.payload
    m = resp.payload
    assert (m["status"], m["origin"], m["source_format"]) == ("ready", "uploaded", "OGG")
    assert 1.4 < m["duration"] < 1.6 and m["used_by"] == []
    audio = await anna.get(f"/messages/{m['id']}/audio")
    assert audio.status == 200 and audio.headers["Content-Type"] == "audio/wav"
    info = sf.info(io.BytesIO(audio.body))
    assert (info.samplerate, info.channels) == (8000, 1)

    stale = await anna.put(f"/messages/{m['id']}/audio", data=tone(seconds=3.0),
                           headers={"Content-Type": "audio/wav", "If-Match": '"999"'})
    assert stale.status == 412
    replaced = await anna.put(f"/messages/{m['id']}/audio", data=tone(seconds=3.0),
                              headers={"Content-Type": "audio/wav", "If-Match": f'"{m["version"]}"'})
    assert replaced.status == 200, replaced.payload
    assert 2.9 < replaced.payload["duration"] < 3.1 and replaced.payload["source_format"] == "WAV"

    not_audio = await anna.post("/messages/recordings?name=pdf", data=b"%PDF-1.4 not audio",
                                headers={"Content-Type": "audio/wav"})
    assert not_audio.status == 415 and "WAV, MP3 or OGG" in not_audio.payload["detail"]
    wrong_type = await anna.post("/messages/recordings?name=x", data=tone(), headers={"Content-Type": "text/plain"})
    assert wrong_type.status == 415
    taken = await anna.post("/messages/recordings?name=lunch", data=tone(), headers={"Content-Type": "audio/wav"})
    assert taken.status == 409

    assert (await anna.delete(f"/messages/{m['id']}")).status == 204
    assert (await anna.get(f"/messages/{m['id']}")).status == 404


async def test_delete_refused_while_in_use_naming_where(anna):
    lunch = (await messages(anna))["lunch"]
    resp = await anna.delete(f"/messages/{lunch['id']}")
    assert resp.status == 409
    assert "calendar of group 'Växeln': entry 'Lunch'" in resp.payload["detail"]
    assert resp.payload["errors"][0]["type"] == "in_use"


async def test_generate_from_text_and_503_without_espeak(anna, monkeypatch):
    resp = await anna.post("/messages", {"name": "meny", "text": "Tryck 1 för växeln, 2 för Anna."})
    assert resp.status == 201, resp.payload
    assert resp.payload["origin"] == "generated" and resp.payload["duration"] > 1
    monkeypatch.setattr(media, "espeak_binary", lambda: None)
    monkeypatch.setattr("api.resources.messages.espeak_binary", lambda: None)
    resp = await anna.post("/messages", {"name": "meny2", "text": "Hej."})
    assert resp.status == 503 and "espeak-ng" in resp.payload["detail"]
    bad = await anna.post("/messages", {"name": "", "text": "Hej."})
    assert bad.status == 422 and bad.payload["errors"][0]["loc"] == ["body", "name"]


async def test_menu_with_every_destination_kind(anna, cecilia):
    msgs = await messages(anna)
    meny = (await anna.post("/messages", {"name": "meny", "text": "Tryck 1 för växeln."})).payload
    vaxeln = (await groups(anna))["Växeln"]
    users = {u["name"]: u for u in (await anna.get("/users")).payload["items"]}
    anna_id = users["Anna Andersson"]["id"]
    body = {"name": "Huvudmeny", "number": "+46854689900", "message_id": meny["id"], "timeout": 4, "retries": 1,
            "invalid_message_id": msgs["helg"]["id"],
            "options": {"1": {"kind": "group", "id": vaxeln["id"]}, "2": {"kind": "user", "id": anna_id},
                        "3": {"kind": "voicemail", "id": anna_id}, "4": {"kind": "external", "number": "08-123 456 78"},
                        "5": {"kind": "message", "id": msgs["natt"]["id"]}, "9": {"kind": "repeat"}},
            "timeout_destination": {"kind": "group", "id": vaxeln["id"]}}
    resp = await anna.post("/menus", body)
    assert resp.status == 201, resp.payload
    menu = resp.payload
    assert menu["options"]["1"] == {"kind": "group", "id": vaxeln["id"], "number": None, "name": "Växeln"}
    assert menu["options"]["4"]["number"] == "+4612345678" or menu["options"]["4"]["number"].startswith("+46")
    assert menu["final_destination"]["kind"] == "hangup" and menu["number"] == "+46854689900"
    # where the messages are used now
    natt = (await anna.get(f"/messages/{msgs['natt']['id']}")).payload
    assert "menu 'Huvudmeny': key 5" in natt["used_by"]
    # the group a key leads to cannot be deleted
    resp = await anna.delete(f"/groups/{vaxeln['id']}")
    assert resp.status == 409 and "menu 'Huvudmeny': key 1" in resp.payload["detail"]
    # changing: a stale If-Match is 412, a key leading to another tenant's user is 422
    stale = await anna.patch(f"/menus/{menu['id']}", {"retries": 3}, headers={"If-Match": '"99"'})
    assert stale.status == 412
    other = (await cecilia.get("/users")).payload["items"][0]["id"]
    bad = await anna.patch(f"/menus/{menu['id']}", {"options": {"1": {"kind": "user", "id": other}}})
    assert bad.status == 422 and bad.payload["errors"][0]["loc"] == ["body", "options", "1", "id"]
    bad = await anna.patch(f"/menus/{menu['id']}", {"options": {"x": {"kind": "repeat"}}})
    assert bad.status == 422 and bad.payload["errors"][0]["loc"] == ["body", "options", "x"]
    bad = await anna.patch(f"/menus/{menu['id']}", {"options": {"1": {"kind": "group"}}})
    assert bad.status == 422
    ok = await anna.patch(f"/menus/{menu['id']}", {"retries": 3}, headers={"If-Match": f'"{menu["version"]}"'})
    assert ok.status == 200 and ok.payload["retries"] == 3
    # the main number is the group's already
    taken = await anna.patch(f"/menus/{menu['id']}", {"number": "+46854689914"})
    assert taken.status == 409
    # a calendar on the menu
    resp = await anna.put(f"/menus/{menu['id']}/schedule", {"entries": [
        {"name": "default", "action": "closed", "message_id": msgs["natt"]["id"],
         "then": {"kind": "voicemail", "id": anna_id}}]})
    assert resp.status == 201, resp.payload
    assert resp.payload["entries"][0]["then"]["kind"] == "voicemail"
    # other tenants see nothing
    assert (await cecilia.get(f"/menus/{menu['id']}")).status == 404
    assert (await cecilia.get(f"/menus/{menu['id']}/schedule")).status == 404
    assert menu["id"] not in [m["id"] for m in (await cecilia.get("/menus")).payload["items"]]
    assert (await cecilia.delete(f"/messages/{meny['id']}")).status == 404
    # the greeting is in use; the menu itself can go
    assert (await anna.delete(f"/messages/{meny['id']}")).status == 409
    assert (await anna.delete(f"/menus/{menu['id']}")).status == 204
    assert (await anna.delete(f"/messages/{meny['id']}")).status == 204


async def test_group_settings_members_queue_and_status(anna, cecilia):
    vaxeln = (await groups(anna))["Växeln"]
    assert vaxeln["answers_main_number"] is True and vaxeln["group_id"] == "0001"
    assert [(m["name"], m["status"]) for m in vaxeln["members"]] == [("Anna Andersson", "available"),
                                                                      ("Bertil Berg", "logged_out")]
    kö = (await anna.post("/messages", {"name": "kö", "text": "Du står i kö."})).payload
    anna_id, bertil_id = [m["user_id"] for m in vaxeln["members"]]
    resp = await anna.patch(f"/groups/{vaxeln['id']}", {
        "strategy": "linear", "ring_time": 15, "no_answer_time": 90,
        "members": [{"user_id": bertil_id, "ring_time": 25}, anna_id],
        "queue": {"max_callers": 5, "max_wait": 120, "message_id": kö["id"], "announce_interval": 30,
                  "announce_position": True},
        "no_answer": {"kind": "voicemail", "id": anna_id}}, headers={"If-Match": f'"{vaxeln["version"]}"'})
    assert resp.status == 200, resp.payload
    g = resp.payload
    assert (g["strategy"], g["ring_time"], g["no_answer_time"]) == ("linear", 15, 90)
    assert [(m["name"], m["position"], m["ring_time"], m["logged_in"]) for m in g["members"]] == [
        ("Bertil Berg", 0, 25, False), ("Anna Andersson", 1, None, True)]
    assert g["queue"]["message_id"] == kö["id"] and g["no_answer"]["name"] == "Anna Andersson"
    used = (await anna.delete(f"/messages/{kö['id']}"))
    assert used.status == 409 and "queue of group 'Växeln'" in used.payload["detail"]
    bad = await anna.patch(f"/groups/{vaxeln['id']}", {"strategy": "everyone"})
    assert bad.status == 422 and bad.payload["errors"][0]["loc"][:2] == ["body", "strategy"]
    bad = await anna.patch(f"/groups/{vaxeln['id']}", {"ring_time": 0})
    assert bad.status == 422 and bad.payload["errors"][0]["loc"][:2] == ["body", "ring_time"]
    bad = await anna.patch(f"/groups/{vaxeln['id']}", {"group_id": "12ab"})
    assert bad.status == 422 and bad.payload["errors"][0]["loc"][:2] == ["body", "group_id"]
    stale = await anna.patch(f"/groups/{vaxeln['id']}", {"ring_time": 10}, headers={"If-Match": f'"{vaxeln["version"]}"'})
    assert stale.status == 412

    # members' status: Anna diverted, Bertil logged out
    await anna.post("/me/diversions", {"reason": "lunch", "target": "voicemail"})
    status = (await anna.get(f"/groups/{vaxeln['id']}/members")).payload
    assert [(m["name"], m["status"], m["on_call"]) for m in status["members"]] == [
        ("Bertil Berg", "logged_out", None), ("Anna Andersson", "diverted", None)]
    mine = (await anna.get("/me/groups")).payload["items"][0]
    assert [m["status"] for m in mine["members"]] == ["logged_out", "diverted"]
    assert (await cecilia.get(f"/groups/{vaxeln['id']}/members")).status == 404
    assert (await cecilia.get(f"/groups/{vaxeln['id']}")).status == 404


async def test_call_state_hook_fills_on_call(anna):
    from api.resources import groups as groups_resource

    async def busy(ctx, user_ids):
        return set(user_ids[:1])

    groups_resource.set_call_state_provider(busy)
    try:
        vaxeln = (await groups(anna))["Växeln"]
        members = (await anna.get(f"/groups/{vaxeln['id']}/members")).payload["members"]
        assert [(m["name"], m["on_call"], m["status"]) for m in members] == [
            ("Anna Andersson", True, "on_call"), ("Bertil Berg", False, "logged_out")]
    finally:
        groups_resource.set_call_state_provider(None)
