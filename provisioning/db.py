"""Database engine, sessions and schema migrations (SQLite by default, PostgreSQL to scale out)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool

from provisioning import secretbox
from provisioning.secretbox import SecretBox

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Any constant: PostgreSQL advisory lock that serialises migrations of nodes starting together.
_MIGRATION_LOCK = 0x6465736B  # "desk"


def make_engine(url: str, secret_box: SecretBox | None = None) -> AsyncEngine:
    """An async engine; SQLite gets foreign keys, WAL and a busy timeout on every connection.

    ``secret_box`` seals and opens the encrypted columns (SIP passwords, device credentials);
    without one, reading or writing them fails with a clear error."""
    parsed = make_url(url)
    kwargs: dict = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs.update(pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cursor = dbapi_conn.cursor()
            for pragma in ("foreign_keys=ON", "journal_mode=WAL", "busy_timeout=5000", "synchronous=NORMAL"):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

    if secret_box is not None:
        secretbox.attach(engine, secret_box)
    return engine


def engine_for(settings) -> AsyncEngine:
    """The engine a command uses: the settings' database with the settings' secret key."""
    return make_engine(settings.database_url, secretbox.load_secret_box(settings.secret_key, settings.data_dir))


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
    command.upgrade(_alembic_config(connection), "head")


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration; safe to call on every start, by several nodes."""
    if engine.dialect.name != "sqlite":
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade)
        return
    # SQLite batch mode copies a table and drops the old one; with foreign keys on, that DROP
    # would cascade-delete every row referring to it (a user's numbers, lines...). The pragma
    # only takes effect outside a transaction, and the result is checked before it goes back on.
    async with engine.connect() as conn:
        await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        await conn.commit()
        try:
            async with conn.begin():
                await conn.run_sync(_upgrade)
                broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    raise RuntimeError(f"migration left dangling foreign keys: {broken[:5]}")
        finally:
            await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            await conn.commit()


def _current(connection: Connection) -> tuple[str | None, str | None]:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    return MigrationContext.configure(connection).get_current_revision(), head


async def revision(engine: AsyncEngine) -> tuple[str | None, str | None]:
    """(current revision of the database, newest revision shipped)."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


def new_revision(message: str) -> str:
    """Autogenerate the next migration from the model (for developers): the difference between the
    model and a scratch SQLite database upgraded to the newest revision. Read and tidy the file."""
    import tempfile

    from sqlalchemy import create_engine

    script = ScriptDirectory.from_config(_alembic_config())
    head = script.get_current_head()
    rev_id = f"{int(head) + 1:04d}" if head and head.isdigit() else None
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{scratch}/scratch.sqlite3")
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "head")
        with engine.begin() as connection:
            made = command.revision(_alembic_config(connection), message=message, autogenerate=True, rev_id=rev_id)
        engine.dispose()
    return made.path
