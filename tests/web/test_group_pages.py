"""Answer groups, their calendars, menus and the main number over HTTP: sv/en and CSP, lint shown
next to its entry, moves, a stale form refused (412) instead of overwriting, API errors inline
with nothing changed, holidays, override, members, queue, menu keys; on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from conftest import import_org
from web.conftest import PASSWORDS, Browser, base_url
from web.routing_org import ROUTING, routing_browser, routing_server  # noqa: F401  (fixtures)
from web.test_pages import check_page

pytestmark = pytest.mark.timeout(60)


async def admin(factory) -> Browser:
    b = factory()
    assert (await b.login("anna", PASSWORDS["anna"])).status == 303
    return b


async def api(b: Browser, path: str) -> dict:
    async with b.http.get(b.base + "/api/v1" + path) as r:
        assert r.status == 200, (path, r.status)
        return await r.json()


def version_of(html: str, action: str) -> str:
    form = re.search(r'<form method="post" action="' + re.escape(action) + r'".*?name="version" value="(\d+)"',
                     html, re.S)
    return form.group(1)


async def test_pages_render_in_swedish_and_english_and_only_for_admins(routing_browser):  # noqa: F811
    b = await admin(routing_browser)
    for path in ["/admin/groups", "/admin/groups/1", "/admin/groups/2", "/admin/groups/1?entry=2",
                 "/admin/menus", "/admin/menus/1", "/admin/main-number/1"]:
        sep = "&" if "?" in path else "?"
        sv, en = await b.get(path + sep + "lang=sv"), await b.get(path + sep + "lang=en")
        check_page(sv)
        check_page(en)
        assert 'href="/admin/groups"' in sv.text_body and "Svarsgrupper" in sv.text_body
        assert "Answer groups" in en.text_body and "Logga ut" not in en.text_body
    group = (await b.get("/admin/groups/1?lang=sv")).text_body
    assert "I tur och ordning" in group and "Kontorstid" in group and "Övrig tid" in group
    assert group.count('name="csrf_token"') >= 10
    menus = (await b.get("/admin/menus?lang=sv")).text_body
    assert "Huvudmeny" in menus and "Svarsgrupp: Växeln" in menus and "Upprepa menyn" in menus
    main = await b.get("/admin/main-number")
    assert "Exempel AB" in main.text_body and "Skapa kalender" in main.text_body
    plain = routing_browser()
    await plain.login("08-546 899 02", PASSWORDS["bertil"])
    for path in ["/admin/groups", "/admin/groups/1", "/admin/menus", "/admin/menus/1", "/admin/main-number/1"]:
        assert (await plain.get(path)).status == 404
    assert (await b.get("/admin/groups/999")).status == 404


async def test_posts_refuse_without_csrf(routing_browser):  # noqa: F811
    b = await admin(routing_browser)
    for path in ["/admin/groups", "/admin/groups/1", "/admin/groups/1/members", "/admin/calendars/1/entries",
                 "/admin/calendars/1/entries/2/move", "/admin/calendars/1/holidays", "/admin/menus/1/keys",
                 "/admin/menus/1/delete"]:
        resp = await b.post(path, {"name": "X", "direction": "up", "key_1": "hangup"}, csrf=False,
                            allow_redirects=False)
        assert resp.status == 403 and "Formuläret hade gått ut" in resp.text_body, path
    assert [e["name"] for e in (await api(b, "/schedules/1"))["entries"]] == ["Kontorstid", "Lunch", "default"]


async def test_move_clears_lint_and_a_stale_form_is_refused(make_server, db_url, routing_browser):  # noqa: F811
    server = await make_server(db=db_url)
    await import_org(server, ROUTING)
    b = Browser(base_url(server))
    try:
        await b.login("anna", PASSWORDS["anna"])
        page = (await b.get("/admin/groups/1?lang=sv")).text_body
        lunch = re.search(r'<li class="entry[^"]*" id="entry-(\d+)"[^>]*>(?:(?!</li>).)*?Lunch(?:(?!</li>).)*</li>',
                          page, re.S)
        assert "has-lint" in lunch.group(0) and "används aldrig" in lunch.group(0)
        entry = lunch.group(1)
        version = version_of(page, f"/admin/calendars/1/entries/{entry}/move")
        moved = await b.post(f"/admin/calendars/1/entries/{entry}/move", {"direction": "up", "version": version})
        assert moved.status == 200 and "Posten är flyttad" in moved.text_body
        assert "has-lint" not in moved.text_body and 'class="lint' not in moved.text_body
        assert f"moved={entry}" in str(moved.url) and "data-autofocus" in moved.text_body
        schedule = await api(b, "/schedules/1")
        assert [e["name"] for e in schedule["entries"]] == ["Lunch", "Kontorstid", "default"] and not schedule["lint"]
        # the same (now stale) form again: refused, explained, nothing changed
        stale = await b.post(f"/admin/calendars/1/entries/{entry}/move", {"direction": "down", "version": version})
        assert stale.status == 412 and "Någon annan har ändrat" in stale.text_body and 'role="alert"' in stale.text_body
        assert [e["name"] for e in (await api(b, "/schedules/1"))["entries"]] == ["Lunch", "Kontorstid", "default"]
    finally:
        await b.close()


async def test_entry_add_edit_delete_with_errors_inline(routing_browser):  # noqa: F811
    b = await admin(routing_browser)
    page = (await b.get("/admin/groups/1")).text_body
    version = version_of(page, "/admin/calendars/1/entries")
    before = await api(b, "/schedules/1")
    # a closed entry without a message: the API's refusal shown in the form, values kept, nothing added
    bad = await b.post("/admin/calendars/1/entries?lang=sv", {
        "version": version, "when": "date", "name": "Personalfest", "date": "2027-05-20", "from": "13:00",
        "to": "17:00", "action": "closed", "message_id": "", "then": ""})
    assert bad.status == 422 and "Kontrollera fälten" in bad.text_body and "Röstmeddelande" in bad.text_body
    assert 'value="Personalfest"' in bad.text_body and 'aria-invalid="true"' in bad.text_body
    assert (await api(b, "/schedules/1"))["version"] == before["version"]
    en = await b.post("/admin/calendars/1/entries?lang=en", {"version": version, "when": "weekly", "name": "Kväll",
                                                             "weekday_mon": "on", "from": "25:00", "to": "26:00",
                                                             "action": "open"})
    assert en.status == 422 and "Check the fields" in en.text_body
    messages = {m["name"]: m["id"] for m in (await api(b, "/messages"))["items"]}
    users = {u["name"]: u["id"] for u in (await api(b, "/users"))["items"]}
    ok = await b.post("/admin/calendars/1/entries?lang=sv", {
        "version": version, "when": "date", "name": "Personalfest", "date": "2027-05-20", "from": "13:00",
        "to": "17:00", "action": "closed", "message_id": str(messages["natt"]),
        "then": f"voicemail:{users['Anna Andersson']}"})
    assert ok.status == 200 and "Posten är sparad" in ok.text_body
    schedule = await api(b, "/schedules/1")
    fest = next(e for e in schedule["entries"] if e["name"] == "Personalfest")
    assert (fest["date"], fest["from"], fest["to"], fest["message"]) == ("2027-05-20", "13:00", "17:00", "natt")
    assert fest["then"]["kind"] == "voicemail" and fest["position"] == 3  # above [default]
    # edit: the form comes prefilled; an external number as "then"
    form = (await b.get(f"/admin/groups/1?entry={fest['id']}")).text_body
    assert "Ändra Personalfest" in form and 'value="2027-05-20"' in form
    edited = await b.post("/admin/calendars/1/entries", {
        "version": str(schedule["version"]), "entry_id": str(fest["id"]), "when": "date", "name": "Personalfest",
        "date": "2027-05-20", "end_date": "2027-05-21", "action": "closed", "message_id": str(messages["natt"]),
        "then": "external", "then_number": "08-123 456 78"})
    assert edited.status == 200
    fest = next(e for e in (await api(b, "/schedules/1"))["entries"] if e["id"] == fest["id"])
    assert fest["end_date"] == "2027-05-21" and fest["then"] == {"kind": "external", "id": None,
                                                                 "number": "+46812345678", "name": None}
    schedule = await api(b, "/schedules/1")
    gone = await b.post(f"/admin/calendars/1/entries/{fest['id']}/delete", {"version": str(schedule["version"])})
    assert gone.status == 200 and "Posten är borttagen" in gone.text_body
    assert "Personalfest" not in [e["name"] for e in (await api(b, "/schedules/1"))["entries"]]


async def test_holidays_and_override(routing_browser):  # noqa: F811
    b = await admin(routing_browser)
    messages = {m["name"]: m["id"] for m in (await api(b, "/messages"))["items"]}
    schedule = await api(b, "/schedules/1")
    added = await b.post("/admin/calendars/1/holidays", {"version": str(schedule["version"]), "year": "2027",
                                                         "country": "SE", "action": "closed",
                                                         "message_id": str(messages["natt"])})
    assert added.status == 200 and "Helgdagarna är tillagda" in added.text_body and "helgdag" in added.text_body
    after = await api(b, "/schedules/1")
    holidays = [e for e in after["entries"] if e["holiday"]]
    assert len(holidays) >= 13 and any(e["date"] == "2027-12-24" for e in holidays)
    again = await b.post("/admin/calendars/1/holidays", {"version": str(after["version"]), "year": "2027",
                                                         "country": "SE", "action": "closed",
                                                         "message_id": str(messages["natt"])})
    assert "Inga nya helgdagar" in again.text_body
    # closed without a message: refused inline, no override
    bad = await b.post("/admin/calendars/1/override", {"version": str(after["version"]), "action": "closed",
                                                       "until": "2099-01-01T10:00"})
    assert bad.status == 422 and 'role="alert"' in bad.text_body and (await api(b, "/schedules/1"))["override"] is None
    on = await b.post("/admin/calendars/1/override", {"version": str(after["version"]), "action": "closed",
                                                      "message_id": str(messages["natt"]),
                                                      "until": "2099-01-01T10:00"})
    assert on.status == 200 and "Stängt till 2099-01-01 10:00" in on.text_body
    state = await api(b, "/schedules/1")
    assert state["override"]["action"] == "closed" and state["override"]["until"].startswith("2099-01-01T09:00")
    assert state["state"]["source"] == "override"
    off = await b.post("/admin/calendars/1/override", {"version": str(state["version"]), "end": "1"})
    assert off.status == 200 and (await api(b, "/schedules/1"))["override"] is None


async def test_group_settings_members_queue_and_a_new_calendar(routing_browser):  # noqa: F811
    b = await admin(routing_browser)
    group = await api(b, "/groups/2")
    messages = {m["name"]: m["id"] for m in (await api(b, "/messages"))["items"]}
    v = str(group["version"])
    saved = await b.post("/admin/groups/2", {"version": v, "name": "Support", "number": "08-546 899 30",
                                             "strategy": "round_robin", "ring_time": "15", "no_answer_time": "45",
                                             "retry_delay": "0", "no_answer": "group:1"})
    assert saved.status == 200 and "Svarsgruppen är sparad" in saved.text_body
    group = await api(b, "/groups/2")
    assert (group["number"], group["strategy"], group["ring_time"], group["no_answer"]["name"]) == \
        ("+46854689930", "round_robin", 15, "Växeln")
    # the old form again: refused, the newer change stays
    stale = await b.post("/admin/groups/2", {"version": v, "name": "Gamla", "strategy": "ring_all",
                                             "ring_time": "20", "no_answer_time": "60", "retry_delay": "0"})
    assert stale.status == 412 and "Någon annan har ändrat" in stale.text_body
    assert (await api(b, "/groups/2"))["name"] == "Support"
    bad = await b.post("/admin/groups/2", {"version": str(group["version"]), "name": "Support", "strategy": "ring_all",
                                           "ring_time": "9999", "no_answer_time": "60", "retry_delay": "0"})
    assert bad.status == 422 and "Ringtid per medlem" in bad.text_body and (await api(b, "/groups/2"))["ring_time"] == 15
    # members: add Cesar, move him to the top, give him a ring time, remove Bertil
    users = {u["name"]: u["id"] for u in (await api(b, "/users"))["items"]}
    cesar, bertil = users["Cesar Carlsson"], users["Bertil Berg"]
    await b.post("/admin/groups/2/members", {"version": str((await api(b, "/groups/2"))["version"]), "op": "add",
                                             "add_user": str(cesar)})
    await b.post("/admin/groups/2/members", {"version": str((await api(b, "/groups/2"))["version"]),
                                             "op": f"up:{cesar}"})
    await b.post("/admin/groups/2/members", {"version": str((await api(b, "/groups/2"))["version"]),
                                             "op": f"up:{cesar}", f"ring_{cesar}": "12"})
    resp = await b.post("/admin/groups/2/members", {"version": str((await api(b, "/groups/2"))["version"]),
                                                    "op": f"remove:{bertil}", f"ring_{cesar}": "12"})
    assert resp.status == 200 and "Medlemmarna är sparade" in resp.text_body
    members = (await api(b, "/groups/2"))["members"]
    assert [(m["name"], m["ring_time"]) for m in members] == [("Cesar Carlsson", 12), ("Anna Andersson", None)]
    empty = await b.post("/admin/groups/2/members", {"version": "1", "op": "add", "add_user": ""})
    assert empty.status == 422 and "Välj vem som ska läggas till" in empty.text_body
    # queue on, with the kösvar message; then off
    q = await b.post("/admin/groups/2/queue", {"version": str((await api(b, "/groups/2"))["version"]),
                                               "queue_enabled": "on", "max_callers": "5", "max_wait": "120",
                                               "message_id": str(messages["kö"]), "announce_interval": "30",
                                               "announce_position": "on"})
    assert q.status == 200 and "Kön är sparad" in q.text_body
    queue = (await api(b, "/groups/2"))["queue"]
    assert (queue["max_callers"], queue["message_id"], queue["announce_position"]) == (5, messages["kö"], True)
    await b.post("/admin/groups/2/queue", {"version": str((await api(b, "/groups/2"))["version"])})
    assert (await api(b, "/groups/2"))["queue"] is None
    # Support had no calendar: create one, add the default entry
    created = await b.post("/admin/calendars", {"owner": "group", "owner_id": "2"})
    assert created.status == 200 and "Kalendern är skapad" in created.text_body
    sid = (await api(b, "/groups/2"))["schedule_id"]
    schedule = await api(b, f"/schedules/{sid}")
    await b.post(f"/admin/calendars/{sid}/entries", {"version": str(schedule["version"]), "when": "default",
                                                     "action": "closed", "message_id": str(messages["natt"])})
    assert [e["name"] for e in (await api(b, f"/schedules/{sid}"))["entries"]] == ["default"]


async def test_menu_keys_settings_create_and_delete(routing_browser):  # noqa: F811
    b = await admin(routing_browser)
    menu = await api(b, "/menus/1")
    messages = {m["name"]: m["id"] for m in (await api(b, "/messages"))["items"]}
    users = {u["name"]: u["id"] for u in (await api(b, "/users"))["items"]}
    keys = {"version": str(menu["version"]), "key_1": "group:1", "key_2": f"user:{users['Bertil Berg']}",
            "key_5": f"message:{messages['lunch']}", "key_star": f"voicemail:{users['Anna Andersson']}",
            "key_0": "external", "key_0_number": "nej!", "key_hash": "hangup"}
    bad = await b.post("/admin/menus/1/keys", keys)
    assert bad.status == 422 and "Knapp" in bad.text_body and 'value="nej!"' in bad.text_body
    assert (await api(b, "/menus/1"))["options"].keys() == {"1", "9"}
    keys["key_0_number"] = "08-123 456 78"
    ok = await b.post("/admin/menus/1/keys", keys)
    assert ok.status == 200 and "Knappvalen är sparade" in ok.text_body
    options = (await api(b, "/menus/1"))["options"]
    assert sorted(options) == ["#", "*", "0", "1", "2", "5"]  # 9 was set to "not used"
    assert options["0"]["number"] == "+46812345678" and options["*"]["kind"] == "voicemail"
    menu = await api(b, "/menus/1")
    saved = await b.post("/admin/menus/1", {"version": str(menu["version"]), "name": "Huvudmeny",
                                            "number": "+46854689900", "message_id": str(messages["meny"]),
                                            "timeout": "7", "retries": "3", "invalid_message_id": "",
                                            "timeout_destination": "group:1", "final_destination": "hangup"})
    assert saved.status == 200 and "Menyn är sparad" in saved.text_body
    menu = await api(b, "/menus/1")
    assert (menu["timeout"], menu["retries"], menu["timeout_destination"]["name"]) == (7, 3, "Växeln")
    created = await b.post("/admin/menus", {"name": "Kvällsmeny", "message_id": str(messages["natt"])})
    assert created.status == 200 and "Menyn är skapad" in created.text_body
    new_id = re.search(r"/admin/menus/(\d+)", str(created.url)).group(1)
    duplicate = await b.post("/admin/menus", {"name": "Kvällsmeny", "message_id": str(messages["natt"])})
    assert duplicate.status == 409 and 'role="alert"' in duplicate.text_body
    # a menu a key leads to cannot be deleted: the API's reason, inline
    await b.post("/admin/menus/1/keys", {"version": str((await api(b, "/menus/1"))["version"]),
                                         "key_3": f"menu:{new_id}"})
    refused = await b.post(f"/admin/menus/{new_id}/delete", {})
    assert refused.status == 409 and "används" in refused.text_body and "Huvudmeny" in refused.text_body
    await b.post("/admin/menus/1/keys", {"version": str((await api(b, "/menus/1"))["version"]), "key_1": "group:1"})
    gone = await b.post(f"/admin/menus/{new_id}/delete", {})
    assert gone.status == 200 and "Menyn är borttagen" in gone.text_body
    assert [m["name"] for m in (await api(b, "/menus"))["items"]] == ["Huvudmeny"]
