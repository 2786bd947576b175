"""The target's secondary indexes, built after its rows are in (as pg_restore does) instead of row by row.

A COPY into a table maintains every index on it one row at a time: on a log table with three indexes that is
most of the load's cost. Building an index once over the loaded rows is a sort, several times cheaper, and the
builds of different tables run side by side. Only plain indexes wait: the primary key and every unique index
stay (the load and the resumed merge rely on them, and they catch a duplicate as it arrives), and so do the
indexes behind constraints.

Which indexes were dropped is recorded in the target itself, in the same transaction as the drops, so that a
retry after a crash (the worker's, the server's) finds what it still has to build; the record goes when the
last index is back. Only ever for a freshly created dedicated database: never call it on shared.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import psycopg
from psycopg import sql

from tenantmove import db
from tenantmove.concurrent import all_or_none
from tenantmove.copy import engine_error

SCHEMA = "tenantmove_deferred"
# Index builds sort in memory up to this much each (a session setting; the server's default is 64MB).
BUILD_MEMORY = "256MB"

_PLAIN_INDEXES = sql.SQL("""
SELECT n.nspname, c.relname, pg_get_indexdef(i.indexrelid)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class t ON t.oid = i.indrelid
WHERE n.nspname = %(schema)s AND t.relname = ANY(%(tables)s)
  AND NOT i.indisprimary AND NOT i.indisunique AND NOT i.indisexclusion AND i.indisvalid
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY t.relname, c.relname
""")


def _record() -> sql.Identifier:
    return sql.Identifier(SCHEMA, "indexes")


async def defer_indexes(dst: psycopg.AsyncConnection, schema: str, tables: Iterable[str]) -> list[str]:
    """Drop the plain secondary indexes of `tables` on the target, recording their definitions there first.
    Idempotent: once a record exists (an earlier attempt deferred them), nothing more is dropped, so a retry
    never loses a definition. Returns the indexes waiting to be built."""
    await db.settle(dst)
    try:
        async with dst.transaction():
            await dst.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
            await dst.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (schema_name text NOT NULL, "
                                      "index_name text NOT NULL, definition text NOT NULL, "
                                      "PRIMARY KEY (schema_name, index_name))").format(_record()))
            cur = await dst.execute(sql.SQL("SELECT index_name FROM {} ORDER BY index_name").format(_record()))
            waiting = [str(row[0]) for row in await cur.fetchall()]
            if waiting:
                return waiting
            cur = await dst.execute(_PLAIN_INDEXES, {"schema": schema, "tables": list(tables)})
            found = await cur.fetchall()
            for index_schema, name, definition in found:
                await dst.execute(sql.SQL("INSERT INTO {} VALUES (%s, %s, %s)").format(_record()),
                                  (index_schema, name, definition))
                await dst.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(index_schema, name)))
            if not found:  # nothing to wait for: leave no trace
                await dst.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(SCHEMA)))
            return [str(row[1]) for row in found]
    except psycopg.Error as exc:
        raise engine_error(exc, table="*", action="defer the target's indexes") from exc


async def build_deferred_indexes(dst_dsn: str, *, connections: int,
                                 on_index: Callable[[str], None] | None = None) -> list[str]:
    """Build every index defer_indexes recorded and is not there yet, over `connections` connections (one
    index each at a time), then drop the record. Idempotent. Returns the indexes built."""
    async with db.connection(dst_dsn, autocommit=True) as conn:
        try:
            cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                                     (sql.Identifier(SCHEMA, "indexes").as_string(conn),))
            row = await cur.fetchone()
            if row is None or not row[0]:
                return []
            cur = await conn.execute(sql.SQL(
                "SELECT schema_name, index_name, definition FROM {} d WHERE to_regclass(quote_ident(schema_name) "
                "|| '.' || quote_ident(index_name)) IS NULL ORDER BY index_name").format(_record()))
            missing = [(str(r[0]), str(r[1]), str(r[2])) for r in await cur.fetchall()]
        except psycopg.Error as exc:
            raise engine_error(exc, table="*", action="read the deferred indexes") from exc
    queue: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
    for item in missing:
        queue.put_nowait(item)

    async def builder() -> None:
        async with db.connection(dst_dsn, autocommit=True) as conn:
            await conn.execute("SELECT set_config('maintenance_work_mem', %s, false)", (BUILD_MEMORY,))
            while not queue.empty():
                _, name, definition = queue.get_nowait()
                try:
                    # The definition is the server's own (pg_get_indexdef), recorded by defer_indexes.
                    await conn.execute(sql.SQL(definition))
                except psycopg.Error as exc:
                    raise engine_error(exc, table="*", action=f"build index {name}") from exc
                if on_index is not None:
                    on_index(name)

    if missing:
        await all_or_none(*(builder() for _ in range(min(connections, len(missing)))))
    async with db.connection(dst_dsn, autocommit=True) as conn:
        await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
    return [name for _, name, _ in missing]
