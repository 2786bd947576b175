"""The target's plain indexes and foreign keys, put in place after its rows are loaded, as pg_restore does.

A COPY into a table maintains every index on it and checks every foreign key one row at a time: on a log
table with three indexes and three foreign keys that is most of the load's cost. Building an index once over
the loaded rows is a sort; validating a foreign key once is a join; and different tables' builds and
validations run side by side. What stays in place throughout: primary keys, unique indexes and the indexes
behind constraints (the load and the resumed merge rely on them, and they catch a duplicate as it arrives).

What was dropped is recorded in the target itself, in the same transaction as the drops, so that a retry
after a crash (the worker's, the server's) finds what it still has to put back; the record goes when the
last item is back. A foreign key comes back NOT VALID first (a moment's lock), then is validated, which locks
neither table against reads, so validations of different tables run at once. A load that broke a foreign key
fails its validation, naming it. Only ever for a freshly created dedicated database: never call it on shared.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from tenantmove import db
from tenantmove.concurrent import all_or_none
from tenantmove.copy import engine_error

SCHEMA = "tenantmove_deferred"
# Index builds sort in memory up to this much each (a session setting; the server's default is 64MB).
BUILD_MEMORY = "256MB"

_PLAIN_INDEXES = sql.SQL("""
SELECT 'index', n.nspname, t.relname, c.relname, pg_get_indexdef(i.indexrelid), true
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class t ON t.oid = i.indrelid
WHERE n.nspname = %(schema)s AND t.relname = ANY(%(tables)s)
  AND NOT i.indisprimary AND NOT i.indisunique AND NOT i.indisexclusion AND i.indisvalid
  AND c.relkind = 'i' AND NOT c.relispartition  -- partitioned tables keep theirs: a partition's is its parent's
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
""")
# Foreign keys of the loaded tables; not on partitioned tables (no NOT VALID there before PostgreSQL 18).
_FOREIGN_KEYS = sql.SQL("""
SELECT 'foreign key', n.nspname, t.relname, k.conname, pg_get_constraintdef(k.oid), k.convalidated
FROM pg_constraint k
JOIN pg_class t ON t.oid = k.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE k.contype = 'f' AND n.nspname = %(schema)s AND t.relname = ANY(%(tables)s) AND t.relkind = 'r'
  AND k.conparentid = 0
""")


@dataclass(frozen=True)
class Deferred:
    kind: str  # 'index' | 'foreign key'
    schema: str
    table: str
    name: str
    definition: str  # pg_get_indexdef / pg_get_constraintdef: the server's own text
    validated: bool  # a foreign key that was valid before (one that was NOT VALID comes back so)


def _record() -> sql.Identifier:
    return sql.Identifier(SCHEMA, "items")


async def defer_for_load(dst: psycopg.AsyncConnection, schema: str, tables: Iterable[str]) -> list[Deferred]:
    """Drop the foreign keys and plain secondary indexes of `tables` on the target, recording them there
    first. Idempotent: once a record exists (an earlier attempt deferred them), nothing more is dropped, so a
    retry never loses a definition. Returns what waits to be put back."""
    await db.settle(dst)
    try:
        async with dst.transaction():
            await dst.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
            await dst.execute(sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (kind text NOT NULL, schema_name text NOT NULL, "
                "table_name text NOT NULL, name text NOT NULL, definition text NOT NULL, validated boolean NOT "
                "NULL, PRIMARY KEY (kind, schema_name, table_name, name))").format(_record()))
            waiting = await _recorded(dst)
            if waiting:
                return waiting
            params = {"schema": schema, "tables": list(tables)}
            found = [Deferred(*row) for query in (_FOREIGN_KEYS, _PLAIN_INDEXES)
                     for row in await (await dst.execute(query, params)).fetchall()]
            for item in found:
                await dst.execute(sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s, %s)").format(_record()),
                                  (item.kind, item.schema, item.table, item.name, item.definition, item.validated))
                if item.kind == "index":
                    await dst.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(item.schema, item.name)))
                else:
                    await dst.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                        sql.Identifier(item.schema, item.table), sql.Identifier(item.name)))
            if not found:  # nothing to wait for: leave no trace
                await dst.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(SCHEMA)))
            return found
    except psycopg.Error as exc:
        raise engine_error(exc, table="*", action="defer the target's indexes and foreign keys") from exc


async def _recorded(conn: psycopg.AsyncConnection) -> list[Deferred]:
    cur = await conn.execute(sql.SQL("SELECT kind, schema_name, table_name, name, definition, validated FROM {} "
                                     "ORDER BY kind DESC, table_name, name").format(_record()))
    return [Deferred(*row) for row in await cur.fetchall()]


async def finish_load(dst_dsn: str, *, connections: int, on_item: Callable[[str], None] | None = None
                      ) -> list[str]:
    """Put back everything defer_for_load recorded and is not back yet: the indexes built over `connections`
    connections, then each foreign key added NOT VALID and validated (validations in parallel), then the
    record dropped. Idempotent. Returns the names put back."""
    async with db.connection(dst_dsn, autocommit=True) as conn:
        try:
            if not await _exists(conn, _record()):
                return []
            items = await _recorded(conn)
            indexes = [i for i in items if i.kind == "index"
                       and not await _exists(conn, sql.Identifier(i.schema, i.name))]
            keys = [i for i in items if i.kind == "foreign key"]
            # By the whole item: a key's name is unique only on its own table.
            added = {i: await _key_state(conn, i) for i in keys}
            for item in keys:
                if added[item] is None:
                    await _add_key(conn, item)
            unchecked = [i for i in keys if i.validated and not added[i]]
        except psycopg.Error as exc:
            raise engine_error(exc, table="*", action="read the deferred indexes and foreign keys") from exc

    await _spread(dst_dsn, connections, indexes, _build, on_item)
    await _spread(dst_dsn, connections, unchecked, _validate_key, on_item)
    async with db.connection(dst_dsn, autocommit=True) as conn:
        await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
    return [i.name for i in indexes] + [i.name for i in keys if added[i] is None]


@asynccontextmanager
async def put_back_as_loaded(dst_dsn: str, items: list[Deferred], *, loading: Iterable[str],
                             references: Mapping[tuple[str, str], str], connections: int,
                             on_item: Callable[[str], None] | None = None
                             ) -> AsyncIterator[Callable[[str], None]]:
    """While the block loads `loading`, put back each deferred item as soon as it can be: a table's indexes
    once the table is loaded, a foreign key once its table and the one it references (`references`, by
    (table, key name)) are; tables not in `loading` count as loaded. Yields loaded(table), to call once a
    table's rows are committed. The copy's tail then overlaps the put-back of the tables done before it,
    where a single large table left the other cores idle. finish_load does what is left (what waited for a
    table that failed to load), checks the rest, and drops the record. An error here is raised when the
    block ends, after the block's own."""
    pending = list(items)
    waiting = set(loading)
    queue: asyncio.Queue[Deferred | None] = asyncio.Queue()

    def loaded(table: str) -> None:
        waiting.discard(table)
        release()

    def release() -> None:
        for item in list(pending):
            needs = {item.table, references.get((item.table, item.name), item.table)} if item.kind == "foreign key" \
                else {item.table}
            if not needs & waiting:
                pending.remove(item)
                queue.put_nowait(item)

    async def worker() -> None:
        async with _builder(dst_dsn) as conn:
            while (item := await queue.get()) is not None:
                await _one(conn, item, _put_back, on_item)

    workers = [asyncio.create_task(worker()) for _ in range(min(connections, len(items)))]
    try:
        release()  # what needs none of the tables being loaded goes at once
        yield loaded
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    for _ in workers:
        queue.put_nowait(None)
    for outcome in await asyncio.gather(*workers, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome


async def _put_back(conn: psycopg.AsyncConnection, item: Deferred) -> None:
    """One item back as it was, unless it is back already (a retry's, or finish_load's)."""
    if item.kind == "index":
        if not await _exists(conn, sql.Identifier(item.schema, item.name)):
            await _build(conn, item)
        return
    state = await _key_state(conn, item)
    if state is None:
        await _add_key(conn, item)
    if item.validated and not state:
        await _validate_key(conn, item)


async def _build(conn: psycopg.AsyncConnection, item: Deferred) -> None:
    # The definition is the server's own (pg_get_indexdef), recorded by defer_for_load.
    await conn.execute(sql.SQL(item.definition))


async def _add_key(conn: psycopg.AsyncConnection, item: Deferred) -> None:
    """NOT VALID when it is to be validated: takes its locks for a moment and reads no row."""
    await conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}{}").format(
        sql.Identifier(item.schema, item.table), sql.Identifier(item.name), sql.SQL(item.definition),
        sql.SQL(" NOT VALID") if item.validated else sql.SQL("")))


async def _validate_key(conn: psycopg.AsyncConnection, item: Deferred) -> None:
    await conn.execute(sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
        sql.Identifier(item.schema, item.table), sql.Identifier(item.name)))


async def _exists(conn: psycopg.AsyncConnection, relation: sql.Identifier) -> bool:
    cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (relation.as_string(conn),))
    row = await cur.fetchone()
    return bool(row and row[0])


async def _key_state(conn: psycopg.AsyncConnection, item: Deferred) -> bool | None:
    """None: the foreign key is not there; else whether it is validated."""
    cur = await conn.execute("SELECT convalidated FROM pg_constraint WHERE conname = %s AND conrelid = %s::regclass",
                             (item.name, sql.Identifier(item.schema, item.table).as_string(conn)))
    row = await cur.fetchone()
    return None if row is None else bool(row[0])


async def _spread(dsn: str, connections: int, items: list[Deferred],
                  work: Callable[[psycopg.AsyncConnection, Deferred], Awaitable[None]],
                  on_item: Callable[[str], None] | None) -> None:
    """work(conn, item) for every item, over up to `connections` connections, one item each at a time."""
    queue: asyncio.Queue[Deferred] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker() -> None:
        async with _builder(dsn) as conn:
            while not queue.empty():
                await _one(conn, queue.get_nowait(), work, on_item)

    if items:
        await all_or_none(*(worker() for _ in range(min(connections, len(items)))))


@asynccontextmanager
async def _builder(dsn: str) -> AsyncIterator[psycopg.AsyncConnection]:
    async with db.connection(dsn, autocommit=True) as conn:
        await conn.execute("SELECT set_config('maintenance_work_mem', %s, false)", (BUILD_MEMORY,))
        yield conn


async def _one(conn: psycopg.AsyncConnection, item: Deferred,
               work: Callable[[psycopg.AsyncConnection, Deferred], Awaitable[None]],
               on_item: Callable[[str], None] | None) -> None:
    try:
        await work(conn, item)
    except psycopg.Error as exc:
        raise engine_error(exc, table=item.table, action=f"put back {item.kind} {item.name}") from exc
    if on_item is not None:
        on_item(item.name)
