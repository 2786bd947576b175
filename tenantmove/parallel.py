"""Copy and verify a tenant over several connections at once, every reader on one exported snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack

import psycopg

from tenantmove import db
from tenantmove.archive import ArchiveWriter
from tenantmove.checksum import TableChecksum, table_checksum
from tenantmove.concurrent import all_or_none, in_one_snapshot
from tenantmove.copy import CopyResult, copy_rows
from tenantmove.deferred import Deferred, put_back_as_loaded
from tenantmove.mover import (
    TableProgress,
    matched_checksums,
    restore_cycle_links,
    selections,
    suspend_cycle_links,
)
from tenantmove.plan import Plan
from tenantmove.plan_order import key_references, load_parents
from tenantmove.rows import RowSelection
from tenantmove.selection import tenant_selection
from tenantmove.sequences import advance_sequences
from tenantmove.snapshot import exported_snapshot, use_snapshot

Pair = tuple[psycopg.AsyncConnection, psycopg.AsyncConnection]
DEFAULT_CONNECTIONS = 4
_TARGET_KEYS = """
SELECT c.relname, p.relname FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_catalog.pg_class p ON p.oid = k.confrelid JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
WHERE k.contype = 'f' AND cn.nspname = %(schema)s AND pn.nspname = %(schema)s"""


async def copy_table(src: psycopg.AsyncConnection, dst: psycopg.AsyncConnection, plan: Plan, tenant: str,
                     table: str, snapshot_id: str | None, *, on_progress: TableProgress | None = None,
                     max_rows_per_second: float = 0) -> CopyResult:
    """One table of the tenant, read in the exported snapshot (or a fresh one), committed on its own."""
    report = (lambda rows, size: on_progress(table, rows, size)) if on_progress else None
    async with use_snapshot(src, snapshot_id):
        await db.settle(dst)  # copy_rows' transaction must be a real one, not a savepoint
        result = await copy_rows(src, dst, tenant_selection(plan, table, tenant), on_progress=report,
                                 max_rows_per_second=max_rows_per_second)
    return result


async def copy_tenant_parallel(src_dsn: str, dst_dsn: str, plan: Plan, tenant: str, *,
                               connections: int = DEFAULT_CONNECTIONS, tables: Iterable[str] | None = None,
                               snapshot_id: str | None = None, on_progress: TableProgress | None = None,
                               on_table: Callable[[CopyResult], None] | None = None,
                               max_rows_per_second: float = 0) -> list[CopyResult]:
    """Copy the tenant's tables (or just `tables`) over `connections` pairs of connections, largest first. A
    table starts once the parents it has a foreign key to on the target are loaded, so the target's keys hold
    at every commit (with the keys deferred, every table may start at once); every reader adopts
    one snapshot (exported here, or the caller's `snapshot_id`), so the tables agree with each other as a
    sequential copy in one transaction would. Idempotent per table, like copy_rows."""
    wanted = [name for name in plan.load_order if tables is None or name in set(tables)]
    async with AsyncExitStack() as stack:
        coordinator = await stack.enter_async_context(db.connection(src_dsn))
        target = await stack.enter_async_context(db.connection(dst_dsn))
        if tables is None:
            await suspend_cycle_links(target, plan)
        parents = await enforced_parents(target, plan)
        snapshot = snapshot_id or await stack.enter_async_context(exported_snapshot(coordinator))
        pool = await _open_pairs(stack, src_dsn, dst_dsn, min(connections, len(wanted)) or 1)
        loaded = {name: asyncio.Event() for name in wanted}
        results: dict[str, CopyResult] = {}

        async def load(name: str) -> None:
            for parent in parents[name]:
                if parent in loaded:
                    await loaded[parent].wait()
            src, dst = await pool.get()
            try:
                results[name] = await copy_table(src, dst, plan, tenant, name, snapshot, on_progress=on_progress,
                                                 max_rows_per_second=max_rows_per_second)
            finally:
                pool.put_nowait((src, dst))
            loaded[name].set()
            if on_table is not None:
                on_table(results[name])

        # Largest first (by size on shared): with nothing to wait for, as when the target's foreign keys are
        # deferred, the long tables start at once and the small ones share the other connections.
        await all_or_none(*(load(name) for name in largest_first(plan, wanted)))
    async with db.connection(src_dsn) as src, db.connection(dst_dsn) as dst:
        if tables is None:
            await restore_cycle_links(src, dst, plan)
        await advance_sequences(dst, plan, wanted)
        await dst.commit()
    return [results[name] for name in wanted]


async def load_tenant(src_dsn: str, dst_dsn: str, plan: Plan, tenant: str, deferred: list[Deferred], *,
                      connections: int = DEFAULT_CONNECTIONS, tables: Iterable[str] | None = None,
                      on_progress: TableProgress | None = None,
                      on_table: Callable[[CopyResult], None] | None = None,
                      on_item: Callable[[str], None] | None = None, max_rows_per_second: float = 0
                      ) -> list[CopyResult]:
    """copy_tenant_parallel with the `deferred` indexes and keys (defer_for_load's) put back as their tables
    load, over as many more connections: what is left (nothing, unless a table failed) waits for finish_load."""
    loading = [name for name in plan.load_order if tables is None or name in set(tables)]
    async with put_back_as_loaded(dst_dsn, deferred, loading=loading, references=key_references(plan),
                                  connections=connections, on_item=on_item) as loaded:
        def imported(result: CopyResult) -> None:
            if on_table is not None:
                on_table(result)
            loaded(result.table)

        return await copy_tenant_parallel(src_dsn, dst_dsn, plan, tenant, connections=connections, tables=tables,
                                          on_progress=on_progress, on_table=imported,
                                          max_rows_per_second=max_rows_per_second)


def largest_first(plan: Plan, tables: Iterable[str]) -> list[str]:
    """By size on shared, largest first; ties keep their order. The copy's end is the largest table's end."""
    return sorted(tables, key=lambda name: -plan.catalog.table(name).total_bytes)


async def enforced_parents(target: psycopg.AsyncConnection, plan: Plan) -> dict[str, list[str]]:
    """load_parents, less the parents whose foreign key the target does not have (yet): a child may load
    before a parent whose key defer_for_load dropped, since nothing checks it until the key is back."""
    cur = await target.execute(_TARGET_KEYS, {"schema": plan.schema})
    enforced = {(child, parent) for child, parent in await cur.fetchall()}
    await db.settle(target)
    return {name: [p for p in parents if (name, p) in enforced] for name, parents in load_parents(plan).items()}


async def _open_pairs(stack: AsyncExitStack, src_dsn: str, dst_dsn: str, count: int) -> asyncio.Queue[Pair]:
    pool: asyncio.Queue[Pair] = asyncio.Queue()
    for _ in range(count):
        pool.put_nowait((await stack.enter_async_context(db.connection(src_dsn)),
                         await stack.enter_async_context(db.connection(dst_dsn))))
    return pool


async def snapshot_checksums(dsn: str, chosen: list[RowSelection], connections: int = DEFAULT_CONNECTIONS,
                             snapshot_id: str | None = None) -> dict[str, TableChecksum]:
    """Checksums of every selection, computed over several connections that share one exported snapshot."""
    sums = await in_one_snapshot(dsn, chosen, connections, table_checksum, snapshot_id)
    return {s.table: c for s, c in zip(chosen, sums, strict=True)}


async def export_parallel(dsn: str, writer: ArchiveWriter, chosen: list[RowSelection], *,
                          connections: int = DEFAULT_CONNECTIONS, on_table: Callable[[str], None] | None = None
                          ) -> None:
    """Add every selection to the archive over several connections sharing one snapshot; each file keeps
    its place in load order, so a restore reads them parents first."""
    positions = {s.table: index + 1 for index, s in enumerate(chosen)}

    async def one(conn: psycopg.AsyncConnection, selection: RowSelection) -> None:
        if on_table is not None:
            on_table(selection.table)
        await writer.add_table(conn, selection, positions[selection.table])

    try:
        await in_one_snapshot(dsn, chosen, connections, one)
    except BaseException:
        writer.discard()  # every reader has stopped: in_one_snapshot cancels the others on the first failure
        raise


async def verify_tenant_parallel(src_dsn: str, dst_dsn: str, plan: Plan, tenant: str, *,
                                 connections: int = DEFAULT_CONNECTIONS) -> dict[str, TableChecksum]:
    """verify_tenant with both servers working at once, each over `connections` connections."""
    chosen = selections(plan, tenant)
    source, target = await all_or_none(
        snapshot_checksums(src_dsn, chosen, connections),
        snapshot_checksums(dst_dsn, [s.whole_table() for s in chosen], connections))
    return matched_checksums({name: (source[name], target[name]) for name in source}, tenant)
