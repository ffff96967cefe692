"""Change tracking: every commit names the model entities it touched, and caches follow.

``TrackedSession`` hooks SQLAlchemy's flush: it derives the dependency keys of every new,
changed or deleted object, writes them to the ``change_event`` log inside the same transaction,
and after the commit hands them to this process's listeners at once. ``ChangeFeed`` reads the
log to apply changes made by other processes (another node, a CLI import).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import timedelta, timezone
from typing import Callable

from sqlalchemy import delete, event, insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from provisioning.cache import Dep
from provisioning.model import (
    ChangeEvent, Contact, Device, Key, Line, Number, Organization, Phonebook, PhonebookMember, User,
)
from provisioning.model.base import utcnow

log = logging.getLogger("deskprov.changes")

#: PostgreSQL channel every change-log commit is announced on (the payload is the writer's node).
CHANNEL = "deskprov_changes"

#: Default node identity for sessions made without one (the CLI): its events are everyone's news.
NODE_ID = uuid.uuid4().hex

Listener = Callable[[frozenset[Dep]], None]


def _values(obj, attr: str) -> set:
    """Current and, for a changed attribute, previous values (a MAC or number may be renamed)."""
    state = inspect(obj)
    history = state.attrs[attr].history
    values = set(history.added) | set(history.deleted) | set(history.unchanged)
    if not values:
        values.add(getattr(obj, attr))
    return {v for v in values if v is not None}


#: Attributes no rendered file reads: changing only these invalidates nothing. (Everything a
#: rendered file does read is listed by provisioning.render; a new attribute a template uses
#: must leave this list.)
_NOT_RENDERED = {
    "version", "created_at", "updated_at",
    # users: web login, self-service and admin fields the phones never see
    "username", "password_hash", "is_admin", "softphone_licence", "caller_id", "keywords", "search_text",
    "deactivation_date", "removed_at", "picture_sha256", "picture_type", "email",
    "voicemail", "voicemail_operator_option", "call_waiting_fixed", "call_waiting_mobile",
    "diversion_affects_mobile", "forwarding_affects_mobile", "show_mobile_outside_hours",
}


#: Device attributes that decide who may fetch its files but are in none of them: a change drops
#: only the device's cached access facts (provisioning/serving.py), not the files it was just
#: served (its first-contact window closing at its first authenticated fetch must not cost a
#: render).
_ACCESS_ONLY = {"first_contact_until"}


def _changed(obj) -> set[str]:
    return {attr.key for attr in inspect(obj).attrs if attr.history.has_changes()}


def _only_unrendered_changes(obj) -> bool:
    """Whether every modified attribute of a changed object is one no config reads."""
    changed = _changed(obj)
    return bool(changed) and changed <= _NOT_RENDERED


def deps_of(obj) -> set[Dep]:
    """The dependency keys a change to ``obj`` affects.

    Entities of the self-service model that no phone file reads (diversions, answer groups,
    sessions, tokens, the audit log, the outbox) have none: changing them drops nothing.
    """
    if isinstance(obj, Organization):
        return {("org", obj.id)}
    if isinstance(obj, User):
        return {("user", obj.id)}
    if isinstance(obj, Number):
        return {("number", v) for v in _values(obj, "e164")} | {("user", v) for v in _values(obj, "user_id")}
    if isinstance(obj, Device):
        changed = _changed(obj)
        if obj.id is not None and changed and changed <= _NOT_RENDERED | _ACCESS_ONLY and not inspect(obj).pending:
            return {("access", obj.id)}
        return {("device", obj.id), ("access", obj.id)} | {("mac", v) for v in _values(obj, "mac")}
    if isinstance(obj, Line):
        return {("device", v) for v in _values(obj, "device_id")} | {("user", v) for v in _values(obj, "user_id")}
    if isinstance(obj, Key):
        return {("device", v) for v in _values(obj, "device_id")}
    if isinstance(obj, Phonebook):
        return {("phonebook", obj.id)}
    if isinstance(obj, Contact):
        return {("phonebook", v) for v in _values(obj, "phonebook_id")}
    if isinstance(obj, PhonebookMember):
        return {("phonebook", obj.phonebook_id), ("user", obj.user_id)}
    return set()


class TrackedSession(Session):
    """The sync session behind every AsyncSession deskprov opens."""


@event.listens_for(TrackedSession, "after_flush")
def _collect(session: Session, _flush_context) -> None:
    deps: set[Dep] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if obj in session.dirty and not session.is_modified(obj, include_collections=False):
            continue
        if obj in session.dirty and obj not in session.new and _only_unrendered_changes(obj):
            continue
        deps |= deps_of(obj)
    if not deps:
        return
    session.info.setdefault("changed", set()).update(deps)
    connection = session.connection()
    node = session.info.get("node", NODE_ID)
    connection.execute(
        insert(ChangeEvent).values(node=node, deps=json.dumps(sorted(deps, key=repr)), created_at=utcnow())
    )
    if connection.dialect.name == "postgresql":
        # Delivered by PostgreSQL when (and only if) the transaction commits; identical ones in
        # one transaction arrive once. Other nodes' ChangeFeeds wake on it instead of waiting
        # for their next poll.
        connection.execute(text("SELECT pg_notify(:channel, :node)"), {"channel": CHANNEL, "node": node})


@event.listens_for(TrackedSession, "after_commit")
def _announce(session: Session) -> None:
    deps = frozenset(session.info.pop("changed", ()))
    if deps:
        for listener in session.info.get("listeners", ()):
            listener(deps)


@event.listens_for(TrackedSession, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop("changed", None)


def tracked_sessionmaker(engine, listeners: list[Listener], node: str = NODE_ID) -> async_sessionmaker[AsyncSession]:
    """Sessions whose commits reach ``listeners`` (the list may be appended to later) at once; the
    change log names ``node`` so that node's ChangeFeed does not apply them a second time."""
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=TrackedSession,
                              info={"listeners": listeners, "node": node})


def decode(deps_json: str) -> frozenset[Dep]:
    return frozenset((kind, value) for kind, value in json.loads(deps_json))


class ChangeFeed:
    """Applies other processes' committed changes to this process's listeners.

    Polls the log (cheap: an indexed range read) and re-reads a short overlap window, because
    concurrent PostgreSQL transactions may commit out of id order. On PostgreSQL a
    ``NotifyListener`` wakes it as soon as another node commits; polling stays as the fallback
    (and is all there is on SQLite).
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], listeners: list[Listener],
                 node: str = NODE_ID, interval: float = 0.5, overlap: timedelta = timedelta(seconds=10),
                 retention: timedelta = timedelta(hours=1), listen_dsn: str | None = None) -> None:
        self._sessions = sessions
        self._listeners = listeners
        self.node = node
        self.interval = interval
        self._overlap = overlap
        self._retention = retention
        self._since = utcnow()
        self._seen: dict[int, object] = {}
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self.notifications = NotifyListener(listen_dsn, self.node, self.wake) if listen_dsn else None

    async def start(self) -> None:
        self._since = utcnow() - self._overlap
        self._task = asyncio.create_task(self._run(), name="change-feed")
        if self.notifications is not None:
            await self.notifications.start()

    async def stop(self) -> None:
        if self.notifications is not None:
            await self.notifications.stop()
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    async def poll(self) -> int:
        """Apply new foreign change events; returns how many were applied."""
        async with self._sessions() as session:
            rows = (await session.execute(
                select(ChangeEvent.id, ChangeEvent.node, ChangeEvent.deps, ChangeEvent.created_at)
                .where(ChangeEvent.created_at >= self._since - self._overlap)
                .order_by(ChangeEvent.id)
            )).all()
        applied = 0
        for row in rows:
            if row.id in self._seen:
                continue
            self._seen[row.id] = row.created_at
            if row.node != self.node:
                deps = decode(row.deps)
                for listener in self._listeners:
                    listener(deps)
                applied += 1
        if rows:
            self._since = max(self._since, max(_aware(r.created_at) for r in rows))
        horizon = self._since - 2 * self._overlap
        self._seen = {k: v for k, v in self._seen.items() if _aware(v) >= horizon}
        return applied

    async def prune(self) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(ChangeEvent).where(ChangeEvent.created_at < utcnow() - self._retention))

    async def _run(self) -> None:
        rounds = 0
        while True:
            try:
                await self.poll()
                rounds += 1
                if rounds % 1200 == 0:
                    await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be briefly away; the cache keeps serving
                log.warning("change feed poll failed", exc_info=True)
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass
            self._wake.clear()


class NotifyListener:
    """A dedicated asyncpg connection LISTENing on ``CHANNEL``: another node's commit wakes this
    node's ChangeFeed at once. Reconnects (1 s, doubling to 30 s) when PostgreSQL restarts or
    drops the connection, and wakes the feed after reconnecting: whatever was committed while
    it was away is read by that poll (the feed's overlap window covers the gap)."""

    def __init__(self, dsn: str, node: str, wake: Callable[[], None], *, max_backoff: float = 30.0) -> None:
        self._dsn = dsn
        self._node = node
        self._wake = wake
        self._max_backoff = max_backoff
        self._task: asyncio.Task | None = None
        self._connection = None
        #: set while LISTEN is in effect (tests wait on it)
        self.listening = asyncio.Event()
        self.connects = 0

    @property
    def server_pid(self) -> int | None:
        """The PostgreSQL backend serving the LISTEN (None while disconnected)."""
        connection = self._connection
        return connection.get_server_pid() if connection is not None and not connection.is_closed() else None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="change-notify")
        try:  # the first connection normally takes milliseconds; serving does not wait for it
            await asyncio.wait_for(asyncio.shield(self.listening.wait()), 5)
        except TimeoutError:
            log.warning("LISTEN %s not established yet; the change feed polls meanwhile", CHANNEL)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _notified(self, _connection, _pid, _channel, payload: str) -> None:
        if payload != self._node:
            self._wake()

    async def _run(self) -> None:
        import asyncpg

        backoff = 1.0
        while True:
            lost = asyncio.Event()
            try:
                connection = await asyncpg.connect(self._dsn, timeout=10)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("cannot LISTEN for changes (retrying in %.0f s): %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            try:
                connection.add_termination_listener(lambda _c: lost.set())
                await connection.add_listener(CHANNEL, self._notified)
                self._connection = connection
                self.connects += 1
                self.listening.set()
                backoff = 1.0
                self._wake()  # catch up on anything committed while not listening
                while not lost.is_set():
                    # asyncpg notices a dropped connection only when it next uses it
                    try:
                        await asyncio.wait_for(lost.wait(), 5)
                    except TimeoutError:
                        await connection.execute("SELECT 1", timeout=5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server went away mid-check; connect again
                log.warning("LISTEN connection lost: %s", str(exc) or type(exc).__name__)
            finally:
                self.listening.clear()
                self._connection = None
                if not connection.is_closed():
                    connection.terminate()
            await asyncio.sleep(min(backoff, 1.0))


def listen_dsn(url) -> str | None:
    """The plain PostgreSQL DSN (for asyncpg) behind a SQLAlchemy URL; None for other databases."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return None
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def _aware(value):
    """SQLite returns naive datetimes even for timezone=True columns; they are UTC."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
