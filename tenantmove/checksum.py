"""Order-independent content checksums of a RowSelection, computed in SQL on the source or the target."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from psycopg import AsyncConnection, sql
from psycopg.pq import TransactionStatus

from tenantmove.rows import RowSelection

_HALF = 1 << 64

# Each row is hashed from its record text, the form `record_out` prints: values are quoted and escaped, NULL
# prints as nothing and '' as "", so NULL, '' and 'NULL' give different text. Two 64-bit halves of the md5 are
# summed separately as exact numerics: a sum ignores row order but counts a duplicated row twice, and two
# independent halves give 128 bits. db.SESSION_SETTINGS (TimeZone UTC, extra_float_digits 3, bytea hex ...)
# make the text of each value identical on PostgreSQL 15 and 18.
_CHECKSUM = """\
SELECT count(*),
       coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint), 0),
       coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint), 0)
FROM (SELECT md5({row}::text) AS h FROM ({query}) AS {row}) AS tenantmove_hashes"""


@dataclass(frozen=True)
class TableChecksum:
    """Row count and 128-bit content digest (32 hex digits) of the rows a selection returns."""

    table: str
    rows: int
    digest: str

    def matches(self, other: TableChecksum) -> bool:
        """Same rows, ignoring the table name (a copy may land in a table named differently)."""
        return self.rows == other.rows and self.digest == other.digest


@asynccontextmanager
async def read_snapshot(conn: AsyncConnection) -> AsyncIterator[None]:
    """Run the block in one REPEATABLE READ, READ ONLY transaction, or in the caller's if one is open.

    Several statements that must see the same rows (a checksum and the COPY after it, the checksums of
    every table) need one snapshot; a caller already inside a transaction keeps control of its isolation.
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        yield
        return
    async with conn.transaction():
        await conn.execute(sql.SQL("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        yield


def _row_alias(selection: RowSelection) -> sql.Identifier:
    # A bare alias in `alias::text` resolves to a column of that name first, so pick one no column uses.
    alias = "tenantmove_row"
    while alias in selection.columns:
        alias += "_"
    return sql.Identifier(alias)


def checksum_query(selection: RowSelection) -> sql.Composed:
    """The SELECT computing count and the two sums for `selection` (params: selection.params)."""
    return sql.SQL(_CHECKSUM).format(row=_row_alias(selection), query=selection.query)


def _digest(first: object, second: object) -> str:
    # The exact sums may be negative or exceed 64 bits; reducing modulo 2**64 keeps a fixed-width digest.
    return f"{int(str(first)) % _HALF:016x}{int(str(second)) % _HALF:016x}"


async def table_checksum(conn: AsyncConnection, selection: RowSelection) -> TableChecksum:
    """Checksum of the rows `selection` returns on this connection (any server, 15 or later)."""
    async with read_snapshot(conn), conn.cursor() as cur:
        await cur.execute(checksum_query(selection), dict(selection.params) or None)
        row = await cur.fetchone()
    assert row is not None  # an aggregate without GROUP BY always returns one row
    count, first, second = row
    return TableChecksum(selection.table, int(count), _digest(first, second))


async def checksums(conn: AsyncConnection, selections: Iterable[RowSelection]) -> dict[str, TableChecksum]:
    """Checksums of several selections from one snapshot, keyed by table name (names must be unique)."""
    result: dict[str, TableChecksum] = {}
    async with read_snapshot(conn):
        for selection in selections:
            if selection.table in result:
                raise ValueError(f"table name {selection.table!r} appears twice in one checksum request")
            result[selection.table] = await table_checksum(conn, selection)
    return result
