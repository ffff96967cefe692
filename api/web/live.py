"""Live group status for the IN/UT page: a hub of per-group subscribers fed three ways.

1. The web page's own toggle publishes the group after its change is committed.
2. A middleware watches the REST API's group writes (``PUT /me/groups/{id}``,
   ``PUT /groups/{id}/members/{uid}``, ``PATCH``/``DELETE /groups/{id}``) and publishes them.
3. While anyone listens, a watcher reads the memberships of the watched groups every few
   seconds and publishes any difference, so changes made elsewhere (phone feature codes, the
   CLI, an organisation import, another process) reach the pages too.

Pages receive ``event: groups`` (data: the group id) over server-sent events and re-fetch
their fragment; nothing about other members travels in the event itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from aiohttp import web
from sqlalchemy import select

from api.framework import SERVER
from provisioning.model import GroupMember

log = logging.getLogger("deskprov.web.live")

WATCH_SECONDS = 3.0
HEARTBEAT_SECONDS = 20.0
_CLOSE = -1

_API_WRITES = [
    ("PUT", re.compile(r"^/api/v1/me/groups/(\d+)$")),
    ("PUT", re.compile(r"^/api/v1/groups/(\d+)/members/\d+$")),
    ("PATCH", re.compile(r"^/api/v1/groups/(\d+)$")),
    ("DELETE", re.compile(r"^/api/v1/groups/(\d+)$")),
]


class Hub:
    def __init__(self) -> None:
        self.subscribers: dict[int, set[asyncio.Queue]] = {}
        self._watcher: asyncio.Task | None = None
        self._snapshot: dict[int, frozenset] = {}
        self._closed = False

    def subscribe(self, group_ids: list[int], app: web.Application) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=100)
        for gid in group_ids:
            self.subscribers.setdefault(gid, set()).add(queue)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(app))
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        for gid in list(self.subscribers):
            self.subscribers[gid].discard(queue)
            if not self.subscribers[gid]:
                del self.subscribers[gid]
                self._snapshot.pop(gid, None)

    def publish(self, group_id: int) -> None:
        for queue in list(self.subscribers.get(group_id, ())):
            with contextlib.suppress(asyncio.QueueFull):  # a stuck page catches up on its next event
                queue.put_nowait(group_id)

    async def close(self, _app: web.Application | None = None) -> None:
        self._closed = True
        for queues in list(self.subscribers.values()):
            for queue in queues:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(_CLOSE)
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher

    async def _watch(self, app: web.Application) -> None:
        server = app[SERVER]
        while self.subscribers and not self._closed:
            await asyncio.sleep(WATCH_SECONDS)
            ids = list(self.subscribers)
            if not ids:
                break
            try:
                async with server.sessions() as db:
                    rows = (await db.execute(select(GroupMember.group_id, GroupMember.user_id, GroupMember.logged_in)
                                             .where(GroupMember.group_id.in_(ids)))).all()
            except Exception:  # the database may be briefly away; try again next round
                log.debug("group watch failed", exc_info=True)
                continue
            now: dict[int, set] = {gid: set() for gid in ids}
            for gid, uid, logged_in in rows:
                now[gid].add((uid, bool(logged_in)))
            for gid, state in now.items():
                state = frozenset(state)
                if gid in self._snapshot and self._snapshot[gid] != state:
                    self.publish(gid)
                self._snapshot[gid] = state


HUB = web.AppKey("web_live_hub", Hub)


@web.middleware
async def api_write_middleware(request: web.Request, handler):
    response = await handler(request)
    if request.method in ("PUT", "PATCH", "DELETE") and 200 <= response.status < 300:
        for method, pattern in _API_WRITES:
            match = pattern.match(request.path)
            if method == request.method and match:
                request.app[HUB].publish(int(match.group(1)))
    return response


async def stream(request: web.Request, group_ids: list[int]) -> web.StreamResponse:
    """Server-sent events for the given groups until the page goes away or the server stops."""
    hub = request.app[HUB]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    from api.web.core import SECURITY_HEADERS
    response.headers.update({k: v for k, v in SECURITY_HEADERS.items() if k != "Cache-Control"})
    await response.prepare(request)
    queue = hub.subscribe(group_ids, request.app)
    try:
        await response.write(b"retry: 3000\nevent: ready\ndata: {}\n\n")
        while True:
            try:
                gid = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            except asyncio.TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if gid == _CLOSE:
                break
            await response.write(f"event: groups\ndata: {gid}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        hub.unsubscribe(queue)
    return response
