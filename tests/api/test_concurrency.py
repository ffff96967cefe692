"""Optimistic concurrency: ETags on every single resource, a stale If-Match gets 412 — on SQLite
and on PostgreSQL, sequentially and with two writers racing."""

from __future__ import annotations

import asyncio

from .conftest import PASSWORDS, logged_in


async def test_stale_if_match_gets_412_and_races_have_one_winner(api_server_any_db):
    server = api_server_any_db
    anna = await logged_in(server, "anna", PASSWORDS["anna"])
    other = await logged_in(server, "anna", PASSWORDS["anna"])
    try:
        bertil = (await anna.get("/api/v1/users?number=%2B46854689902")).payload["items"][0]
        url = f"/api/v1/users/{bertil['id']}"
        first = await anna.get(url)
        etag = first.headers["ETag"]
        assert etag == f'"{first.payload["version"]}"'
        ok = await anna.patch(url, {"name": "Bertil B"}, headers={"If-Match": etag})
        assert ok.status == 200 and ok.headers["ETag"] != etag
        stale = await other.patch(url, {"name": "Bertil C"}, headers={"If-Match": etag})
        assert stale.status == 412 and stale.content_type == "application/problem+json"
        assert stale.headers["ETag"] == ok.headers["ETag"]
        assert (await anna.get(url)).payload["name"] == "Bertil B"

        # Two writers with the same (current) ETag at once: exactly one wins.
        etag = ok.headers["ETag"]
        results = await asyncio.gather(
            anna.patch(url, {"name": "Writer One"}, headers={"If-Match": etag}),
            other.patch(url, {"name": "Writer Two"}, headers={"If-Match": etag}))
        assert sorted(r.status for r in results) == [200, 412], [r.payload for r in results]
        winner = next(r for r in results if r.status == 200).payload["name"]
        assert (await anna.get(url)).payload["name"] == winner

        # If-Match is optional; "*" matches any version.
        assert (await anna.patch(url, {"name": "Bertil Berg"}, headers={"If-Match": "*"})).status == 200
        assert (await anna.patch(url, {"email": "bertil@exempel.se"})).status == 200

        # The same for another resource: a device's keys.
        device = (await anna.get("/api/v1/devices")).payload["items"][0]
        keys = await anna.get(f"/api/v1/devices/{device['id']}/keys")
        body = {"keys": [{"slot": 1, "type": "line"}]}
        assert (await anna.put(f"/api/v1/devices/{device['id']}/keys", body,
                               headers={"If-Match": keys.headers["ETag"]})).status == 200
        assert (await other.put(f"/api/v1/devices/{device['id']}/keys", body,
                                headers={"If-Match": keys.headers["ETag"]})).status == 412
    finally:
        await anna.http.close()
        await other.http.close()
