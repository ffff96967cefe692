"""Calendars through the API and the database: evaluation over a week (lunch, a public holiday,
a specific date, the default, the DST night), lint for A11's wrong order and moving entries to
fix it, holidays for a year in one call, the manual override, tenancy, If-Match and 422s."""

from __future__ import annotations

from datetime import timedelta

import pytest

from provisioning.routing.schedule import holiday_entries


async def group_schedule(client) -> dict:
    groups = (await client.get("/groups")).payload["items"]
    resp = await client.get(f"/groups/{groups[0]['id']}/schedule")
    assert resp.status == 200, resp.payload
    return resp.payload


async def message_id(client, name: str) -> int:
    items = (await client.get("/messages")).payload["items"]
    return next(m["id"] for m in items if m["name"] == name)


@pytest.mark.parametrize("at, expected", [
    ("2027-03-01T09:30:00Z", ("open", "Kontorstid", None)),             # Monday 10:30
    ("2027-03-01T11:15:00Z", ("closed", "Lunch", "lunch")),              # Monday 12:15
    ("2027-03-01T16:30:00Z", ("closed", "default", "natt")),             # Monday 17:30
    ("2027-03-06T10:00:00Z", ("closed", "default", "natt")),             # Saturday
    ("2027-03-26T09:00:00Z", ("closed", "Långfredagen 2027", "helg")),   # Good Friday, a weekday
    ("2027-03-03T13:30:00Z", ("closed", "Personalfest", "helg")),        # the specific date, 14:30
    ("2027-03-03T10:00:00Z", ("open", "Kontorstid", None)),              # same day before it
    ("2027-03-28T01:30:00Z", ("closed", "Påskdagen 2027", "helg")),      # 03:30 CEST, the DST night
])
async def test_a_week_through_the_api(anna, at, expected):
    schedule = await group_schedule(anna)
    helg = await message_id(anna, "helg")
    resp = await anna.post(f"/schedules/{schedule['id']}/entries",
                           {"name": "Personalfest", "date": "2027-03-03", "from": "14:00", "action": "closed",
                            "message_id": helg, "position": 1}, headers={"If-Match": f'"{schedule["version"]}"'})
    assert resp.status == 201, resp.payload
    assert resp.payload["entries"][0]["name"] == "Personalfest"
    state = (await anna.get(f"/schedules/{schedule['id']}/state?at={at}")).payload
    assert (state["action"], state["entry"], state["message"]) == expected


async def test_the_dst_night_lasts_23_hours(anna):
    schedule = await group_schedule(anna)
    state = (await anna.get(f"/schedules/{schedule['id']}/state?at=2027-03-27T23:30:00Z")).payload
    assert state["entry"] == "Påskdagen 2027"
    assert state["until"] == "2027-03-28T22:00:00Z"  # midnight CEST: the Sunday had 23 hours


async def test_wrong_order_is_linted_in_both_languages_and_moving_fixes_it(anna):
    groups = (await anna.get("/groups")).payload["items"]
    gid = groups[0]["id"]
    lunch, natt, helg = [await message_id(anna, n) for n in ("lunch", "natt", "helg")]
    current = await group_schedule(anna)
    resp = await anna.put(f"/groups/{gid}/schedule", {"entries": [
        {"name": "Kontorstid", "weekdays": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "17:00",
         "action": "open"},
        {"name": "Lunch", "weekdays": ["mon", "tue", "wed", "thu", "fri"], "from": "12:00", "to": "13:00",
         "action": "closed", "message_id": lunch},
        {"name": "Skärtorsdag", "date": "2027-03-25", "from": "14:00", "to": "17:00", "action": "closed",
         "message_id": helg},
        {"name": "default", "action": "closed", "message_id": natt},
    ]}, headers={"If-Match": f'"{current["version"]}"'})
    assert resp.status == 200, resp.payload
    keys = {w["key"]: w for w in resp.payload["lint"]}
    assert set(keys) == {"never_used", "date_never_used"}
    assert keys["never_used"]["position"] == 2 and "Lunch" in keys["never_used"]["text"]["en"]
    assert "uppifrån och ner" in keys["never_used"]["text"]["sv"]
    entries = {e["name"]: e for e in resp.payload["entries"]}
    # Lunch at 12:15 is answered by office hours: the wrong order has a visible effect.
    state = (await anna.get(f"/schedules/{resp.payload['id']}/state?at=2027-03-01T11:15:00Z")).payload
    assert state["entry"] == "Kontorstid"

    version = resp.payload["version"]
    moved = await anna.post(f"/schedules/{resp.payload['id']}/entries/{entries['Lunch']['id']}/move",
                            {"direction": "up"}, headers={"If-Match": f'"{version}"'})
    assert moved.status == 200, moved.payload
    assert [e["name"] for e in moved.payload["entries"]][:2] == ["Lunch", "Kontorstid"]
    assert [w["key"] for w in moved.payload["lint"]] == ["date_never_used"]
    moved = await anna.post(f"/schedules/{resp.payload['id']}/entries/{entries['Skärtorsdag']['id']}/move",
                            {"direction": "up", "steps": 5})
    assert moved.payload["entries"][0]["name"] == "Skärtorsdag" and moved.payload["lint"] == []
    state = (await anna.get(f"/schedules/{resp.payload['id']}/state?at=2027-03-01T11:15:00Z")).payload
    assert state["entry"] == "Lunch"
    # A stale ETag is refused.
    stale = await anna.post(f"/schedules/{resp.payload['id']}/entries/{entries['Lunch']['id']}/move",
                            {"direction": "down"}, headers={"If-Match": f'"{version}"'})
    assert stale.status == 412


async def test_holidays_of_a_year_in_one_call(anna):
    schedule = await group_schedule(anna)
    helg = await message_id(anna, "helg")
    before = len(schedule["entries"])
    resp = await anna.post(f"/schedules/{schedule['id']}/holidays",
                           {"year": 2029, "country": "SE", "action": "closed", "message_id": helg})
    assert resp.status == 200, resp.payload
    names = [e["name"] for e in resp.payload["entries"]]
    assert len(names) == before + len(holiday_entries(2029, action="open"))
    for holiday in ("Långfredagen 2029", "Midsommarafton 2029", "Midsommardagen 2029", "Annandag påsk 2029"):
        assert holiday in names
    assert names.index("Midsommarafton 2029") < names.index("Lunch")  # above the weekly entries
    again = await anna.post(f"/schedules/{schedule['id']}/holidays", {"year": 2029, "message_id": helg})
    assert len(again.payload["entries"]) == len(names)
    bad = await anna.post(f"/schedules/{schedule['id']}/holidays", {"year": 2029, "action": "closed"})
    assert bad.status == 422 and bad.payload["errors"][0]["loc"] == ["body", "message_id"]


async def test_manual_override_expires_by_itself(anna, clock):
    schedule = await group_schedule(anna)
    natt = await message_id(anna, "natt")
    until = (clock.now() + timedelta(hours=1)).isoformat()
    resp = await anna.put(f"/schedules/{schedule['id']}/override",
                          {"action": "closed", "message_id": natt, "until": until})
    assert resp.status == 200, resp.payload
    assert resp.payload["state"]["source"] == "override" and resp.payload["state"]["message"] == "natt"
    clock.advance(hours=1, seconds=1)
    resp = await anna.get(f"/schedules/{schedule['id']}")
    assert resp.payload["override"] is None and resp.payload["state"]["entry"] == "Kontorstid"
    bad = await anna.put(f"/schedules/{schedule['id']}/override", {"action": "closed", "until": until})
    assert bad.status == 422 and bad.payload["errors"][0]["loc"] == ["body", "until"]
    bad = await anna.put(f"/schedules/{schedule['id']}/override",
                         {"action": "closed", "until": (clock.now() + timedelta(hours=1)).isoformat()})
    assert bad.status == 422 and bad.payload["errors"][0]["loc"] == ["body", "message_id"]


@pytest.mark.parametrize("entry, loc", [
    ({"name": "X", "weekdays": ["mon"], "action": "closed"}, ["body", "message_id"]),
    ({"name": "X", "weekdays": ["mon"], "action": "open", "message_id": 1}, ["body", "message_id"]),
    ({"name": "X", "action": "open"}, ["body", "date"]),
    ({"name": "X", "weekdays": ["mon"], "from": "25:00", "action": "open"}, ["body", "from"]),
    ({"name": "X", "weekdays": ["mon"], "action": "closed", "message_id": 999}, ["body", "message_id"]),
    ({"name": "X", "weekdays": ["funday"], "action": "open"}, ["body", "weekdays", 0]),
])
async def test_bad_entries_are_422_naming_the_field(anna, entry, loc):
    schedule = await group_schedule(anna)
    resp = await anna.post(f"/schedules/{schedule['id']}/entries", entry)
    assert resp.status == 422, resp.payload
    assert resp.payload["errors"][0]["loc"] == loc


async def test_another_tenant_sees_nothing(anna, cecilia):
    schedule = await group_schedule(anna)
    for path in (f"/schedules/{schedule['id']}", f"/schedules/{schedule['id']}/state",
                 f"/groups/{schedule['owner']['id']}/schedule"):
        assert (await cecilia.get(path)).status == 404
    assert (await cecilia.delete(f"/schedules/{schedule['id']}")).status == 404
    other_message = (await cecilia.get("/messages")).payload["items"][0]["id"]
    resp = await anna.post(f"/schedules/{schedule['id']}/entries",
                           {"name": "X", "weekdays": ["mon"], "action": "closed", "message_id": other_message})
    assert resp.status == 422 and resp.payload["errors"][0]["loc"] == ["body", "message_id"]


async def test_main_number_calendar(anna):
    me = (await anna.get("/me")).payload
    org_id = me["organization_id"]
    assert (await anna.get(f"/organizations/{org_id}/schedule")).status == 404
    natt = await message_id(anna, "natt")
    resp = await anna.put(f"/organizations/{org_id}/schedule", {"entries": [
        {"name": "Helg", "weekdays": ["sat", "sun"], "action": "closed", "message_id": natt}]})
    assert resp.status == 201, resp.payload
    assert resp.payload["owner"]["kind"] == "main"
    assert [w["key"] for w in resp.payload["lint"]] == ["no_default"]
