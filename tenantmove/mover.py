"""Copy a tenant table by table in load order from one snapshot, advance sequences, and verify by checksum."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import psycopg

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


async def copy_tenant(src: psycopg.AsyncConnection, dst: psycopg.AsyncConnection, plan: Plan, tenant: str, *,
                      tables: Iterable[str] | None = None, on_progress: TableProgress | None = None
                      ) -> list[CopyResult]:
    """Copy every copied table (or just `tables`) of the tenant, parents first, all read from one snapshot of
    the source so that the target's foreign keys hold. Each table commits on its own on the target, and a
    table copied again is skipped or repaired (copy_rows is idempotent), so a retry resumes where it stopped.
    """
    results = []
    await settle(src)
    async with read_snapshot(src):
        for selection in selections(plan, tenant, tables):
            report = (lambda rows, size, name=selection.table: on_progress(name, rows, size)) if on_progress \
                else None
            await settle(dst)  # each table commits on its own (copy_rows' block must not be a savepoint)
            results.append(await copy_rows(src, dst, selection, on_progress=report))
    await advance_sequences(dst, plan)
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
    pairs = await compare_tenant(src, dst, plan, tenant)
    bad = [name for name, (a, b) in pairs.items() if not a.matches(b)]
    if bad:
        detail = ", ".join(f"{n} (source {pairs[n][0].rows} rows {pairs[n][0].digest[:8]}, target "
                           f"{pairs[n][1].rows} rows {pairs[n][1].digest[:8]})" for n in bad)
        raise ChecksumMismatch(f"checksums differ: {detail}", tables=bad, tenant=tenant)
    return {name: a for name, (a, _) in pairs.items()}
