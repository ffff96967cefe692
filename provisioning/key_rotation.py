"""Secret-key rotation and the start-up key check, over every encrypted column of the model.

Rotation is "load both keys, re-seal, drop the old one": with ``secret_key = "NEW,OLD"`` every
node opens values sealed under either key and seals new ones under NEW; ``deskprov secrets
rotate`` then re-seals every stored value under NEW, after which OLD can be removed from the
setting. Values are read and written as stored text (never through the ORM): re-sealing changes
no plaintext, so no rendered file is invalidated and no phone is told to resync, and each row is
updated only if it still holds the value read (a concurrent change wins).

The columns are found from the model (every :class:`EncryptedText` column), so a secret column
added later is rotated and checked without touching this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table, Text, func, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncEngine

from provisioning.model import Base
from provisioning.secretbox import PREFIX, EncryptedText, SecretKeyError, box_of

#: Rows read and re-sealed per transaction.
BATCH = 500


def sealed_columns() -> list[tuple[Table, str]]:
    """(table, column name) of every encrypted column in the model."""
    return [(table, column.name) for table in Base.metadata.sorted_tables for column in table.columns
            if isinstance(column.type, EncryptedText)]


@dataclass
class RotationReport:
    #: "table.column" -> values re-sealed under the current key
    resealed: dict[str, int]
    #: values already under the current key
    current: int
    #: values a concurrent writer changed between read and re-seal (they are sealed by that writer)
    skipped: int

    @property
    def total(self) -> int:
        return sum(self.resealed.values())


def _stored(table: Table, column: str):
    """The column as stored (the sealed text), bypassing EncryptedText's sealing and opening."""
    return type_coerce(table.c[column], Text)


def _key_prefix(stored):
    """"enc1:<key id>:" of a stored value (14 characters)."""
    return func.substr(stored, 1, len(PREFIX) + 10)


def _unchanged_otherwise(table: Table, values: dict) -> dict:
    """The values, plus "updated_at = updated_at": re-sealing is not a change (no onupdate stamp)."""
    if "updated_at" in table.c:
        values[table.c.updated_at] = table.c.updated_at
    return values


async def rotate(engine: AsyncEngine, *, batch: int = BATCH) -> RotationReport:
    """Re-seal every encrypted value (and seal any value stored in clear) under the sealing key."""
    box = box_of(engine.sync_engine.dialect)
    report = RotationReport({}, 0, 0)
    for table, column in sealed_columns():
        stored = _stored(table, column)
        pk = table.primary_key.columns.values()[0]
        name = f"{table.name}.{column}"
        report.resealed[name] = 0
        after = None
        while True:
            query = select(pk, stored).where(stored.is_not(None)).order_by(pk).limit(batch)
            if after is not None:
                query = query.where(pk > after)
            async with engine.begin() as conn:
                rows = (await conn.execute(query)).all()
                for row_id, value in rows:
                    if box.is_current(value):
                        report.current += 1
                        continue
                    plain = box.open(value) if value.startswith(PREFIX + ":") else value
                    result = await conn.execute(
                        update(table).where(pk == row_id, stored == value)
                        .values(_unchanged_otherwise(table, {table.c[column]: type_coerce(box.seal(plain), Text)})))
                    if result.rowcount:
                        report.resealed[name] += 1
                    else:
                        report.skipped += 1
            if len(rows) < batch:
                break
            after = rows[-1][0]
    return report


async def check_key(engine: AsyncEngine) -> int:
    """Open one stored value per key found in each encrypted column, so a node started with the
    wrong ``secret_key`` stops at once with a message saying so, instead of failing on every
    phone's request (or serving garbage). Returns how many values were opened."""
    box = box_of(engine.sync_engine.dialect)
    checked = 0
    async with engine.connect() as conn:
        for table, column in sealed_columns():
            stored = _stored(table, column)
            prefixes = (await conn.execute(
                select(_key_prefix(stored)).where(stored.is_not(None)).distinct().limit(20))).scalars().all()
            for prefix in prefixes:
                value = (await conn.execute(select(stored).where(_key_prefix(stored) == prefix).limit(1))).scalar()
                try:
                    box.open(value)
                except SecretKeyError as exc:
                    raise SecretKeyError(f"{table.name}.{column}: {exc}") from None
                checked += 1
    return checked
