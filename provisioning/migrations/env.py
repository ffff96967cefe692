"""Alembic environment: runs on a connection handed over by provisioning.db, or on a URL (CLI)."""

from alembic import context
from sqlalchemy import create_engine

from provisioning.model import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # plain `alembic` command line, e.g. to autogenerate a revision
    url = config.get_main_option("sqlalchemy.url").replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")
    with create_engine(url).begin() as conn:
        _run(conn)
