"""Copy a tenant table by table in load order from one snapshot, advance sequences, and verify by checksum."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import psycopg
from psycopg import sql

from tenantmove.checksum import TableChecksum, checksums, read_snapshot
from tenantmove.copy import CopyResult, copy_rows
from tenantmove.db import settle
from tenantmove.errors import ChecksumMismatch
from tenantmove.plan import Plan
from tenantmove.rows import RowSelection
from tenantmove.selection import tenant_selection
from tenantmove.sequences import advance_sequences

TableProgress = Callable[[str, int, int], None]


def selections(plan: Plan, tenant: str, tables: Iterable[str] | None = None) -> list[RowSelection]:
    wanted = set(tables) if tables is not None else None
    return [tenant_selection(plan, name, tenant) for name in plan.load_order if wanted is None or name in wanted]


async def suspend_cycle_links(dst: psycopg.AsyncConnection, plan: Plan) -> list[str]:
    """Drop, on the target, the foreign keys that close a cycle of tables: one side of a cycle has to be
    loaded before its parent exists. Idempotent (IF EXISTS)."""
    dropped = []
    await settle(dst)
    async with dst.transaction():
        for fk in plan.cycle_links:
            await dst.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
                sql.Identifier(plan.schema, fk.table), sql.Identifier(fk.name)))
            dropped.append(fk.name)
    return dropped


async def restore_cycle_links(src: psycopg.AsyncConnection, dst: psycopg.AsyncConnection, plan: Plan) -> None:
    """Add back, as the shared database defines them, the links suspend_cycle_links dropped; adding a foreign
    key validates every row, so a load that broke one fails here."""
    for fk in plan.cycle_links:
        cur = await src.execute(
            "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c WHERE c.conname = %s AND c.conrelid = "
            "(quote_ident(%s) || '.' || quote_ident(%s))::regclass", (fk.name, plan.schema, fk.table))
        definition = await cur.fetchone()
        cur = await dst.execute(
            "SELECT 1 FROM pg_constraint c WHERE c.conname = %s AND c.conrelid = "
            "(quote_ident(%s) || '.' || quote_ident(%s))::regclass", (fk.name, plan.schema, fk.table))
        if definition is None or await cur.fetchone() is not None:
            continue
        await settle(dst)
        async with dst.transaction():
            # The definition text comes from the server's own catalog (pg_get_constraintdef).
            await dst.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.Identifier(plan.schema, fk.table), sql.Identifier(fk.name), sql.SQL(definition[0])))
    await settle(src)


async def copy_tenant(src: psycopg.AsyncConnection, dst: psycopg.AsyncConnection, plan: Plan, tenant: str, *,
                      tables: Iterable[str] | None = None, on_progress: TableProgress | None = None,
                      max_rows_per_second: float = 0) -> list[CopyResult]:
    """Copy every copied table (or just `tables`) of the tenant, parents first, all read from one snapshot of
    the source so that the target's foreign keys hold. Each table commits on its own on the target, and a
    table copied again is skipped or repaired (copy_rows is idempotent), so a retry resumes where it stopped.
    """
    results = []
    whole = tables is None
    if whole:
        await suspend_cycle_links(dst, plan)
    await settle(src)
    async with read_snapshot(src):
        for selection in selections(plan, tenant, tables):
            report = (lambda rows, size, name=selection.table: on_progress(name, rows, size)) if on_progress \
                else None
            await settle(dst)  # each table commits on its own (copy_rows' block must not be a savepoint)
            results.append(await copy_rows(src, dst, selection, on_progress=report,
                                           max_rows_per_second=max_rows_per_second))
    if whole:
        await restore_cycle_links(src, dst, plan)
    # Only the tables copied here: the import copies one table per call, and every sequence each time
    # would be one setval per sequence per table.
    await advance_sequences(dst, plan, [r.table for r in results])
    await dst.commit()
    return results


async def compare_tenant(src: psycopg.AsyncConnection, dst: psycopg.AsyncConnection, plan: Plan, tenant: str
                         ) -> dict[str, tuple[TableChecksum, TableChecksum]]:
    """Source checksums of the tenant's rows against the target's whole tables, which must hold nothing else."""
    chosen = selections(plan, tenant)
    source = await checksums(src, chosen)
    target = await checksums(dst, [s.whole_table() for s in chosen])
    return {name: (source[name], target[name]) for name in source}


async def verify_tenant(src: psycopg.AsyncConnection, dst: psycopg.AsyncConnection, plan: Plan, tenant: str
                        ) -> dict[str, TableChecksum]:
    return matched_checksums(await compare_tenant(src, dst, plan, tenant), tenant)


def matched_checksums(pairs: dict[str, tuple[TableChecksum, TableChecksum]], tenant: str) -> dict[str, TableChecksum]:
    """The source checksums when every table matches its target; ChecksumMismatch naming each table otherwise."""
    bad = [name for name, (a, b) in pairs.items() if not a.matches(b)]
    if bad:
        detail = ", ".join(f"{n} (source {pairs[n][0].rows} rows {pairs[n][0].digest[:8]}, target "
                           f"{pairs[n][1].rows} rows {pairs[n][1].digest[:8]})" for n in bad)
        raise ChecksumMismatch(f"checksums differ: {detail}", tables=bad, tenant=tenant)
    return {name: a for name, (a, _) in pairs.items()}
