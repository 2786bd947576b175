"""Online verify: every table compared at a snapshot before the freeze, only the keys replayed since under it."""

from __future__ import annotations

import psycopg
from psycopg import sql

from tenantmove import db
from tenantmove.capture import Capture
from tenantmove.checksum import TableChecksum, table_checksum
from tenantmove.concurrent import all_or_none
from tenantmove.copy import engine_error
from tenantmove.mover import matched_checksums, selections
from tenantmove.parallel import DEFAULT_CONNECTIONS, snapshot_checksums
from tenantmove.plan import Plan
from tenantmove.replay import ChangedKeys, apply_changes, table_oids


async def verify_at_snapshot(src_dsn: str, dst_dsn: str, plan: Plan, tenant: str, capture: Capture, *,
                             connections: int = DEFAULT_CONNECTIONS) -> dict[str, TableChecksum]:
    """Compare every table while the tenant still writes. One REPEATABLE READ transaction on shared fixes a
    snapshot S; the changes S shows are replayed with the rows as S sees them, so the target equals shared
    at S; then both sides are checksummed in parallel, shared in S. The changes replayed here are deleted
    from the capture only if that transaction commits. What changes after S is recorded for verify_changes,
    which is all the freeze has to compare."""
    async with db.connection(src_dsn) as coordinator, db.connection(dst_dsn) as dst:
        await db.settle(coordinator)
        try:
            async with coordinator.transaction():
                await coordinator.execute(sql.SQL("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
                cur = await coordinator.execute(sql.SQL("SELECT pg_export_snapshot()"))
                row = await cur.fetchone()
                assert row is not None
                await coordinator.execute(sql.SQL("TRUNCATE {}").format(capture.applied))
                while (await apply_changes(coordinator, dst, plan, tenant, capture, in_transaction=True)).changes:
                    pass
                chosen = selections(plan, tenant)
                source, target = await all_or_none(
                    snapshot_checksums(src_dsn, chosen, connections, snapshot_id=str(row[0])),
                    snapshot_checksums(dst_dsn, [s.whole_table() for s in chosen], connections))
                return matched_checksums({name: (source[name], target[name]) for name in source}, tenant)
        except psycopg.Error as exc:
            raise engine_error(exc, table="*", action="verify at a snapshot") from exc


async def verify_changes(src: psycopg.AsyncConnection, dst: psycopg.AsyncConnection, plan: Plan, tenant: str,
                         capture: Capture) -> dict[str, int]:
    """Under the freeze, after the last replay: compare, table by table, the rows of every key replayed since
    verify_at_snapshot (the tenant's rows in shared against the target's), and tables without a key whole.
    Returns the target's row count per table (what the post-migration checks expect)."""
    try:
        relids = await table_oids(src, plan)
        await src.execute(sql.SQL("ANALYZE {}").format(capture.applied))  # fresh rows: plan key look-ups
        cur = await src.execute(sql.SQL("SELECT DISTINCT relid FROM {}").format(capture.applied))
        changed = {relids[int(r[0])] for r in await cur.fetchall() if int(r[0]) in relids}
        by_name = {name: oid for oid, name in relids.items()}
        pairs: dict[str, tuple[TableChecksum, TableChecksum]] = {}
        for index, name in enumerate(n for n in plan.load_order if n in changed):
            part = ChangedKeys(plan, tenant, name, by_name[name], index, source=capture.applied)
            if not part.selection.key:
                pairs[name] = (await table_checksum(src, part.selection),
                               await table_checksum(dst, part.selection.whole_table()))
                continue
            async with dst.transaction():
                await part.stage_keys(src, dst)
                pairs[name] = (await table_checksum(src, part.current_rows()),
                               await table_checksum(dst, part.target_rows()))
        matched_checksums(pairs, tenant)
        counts = {}
        for name in plan.load_order:
            cur = await dst.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(plan.schema, name)))
            count = await cur.fetchone()
            counts[name] = int(count[0]) if count else 0
        await db.settle(src)
        await db.settle(dst)
        return counts
    except psycopg.Error as exc:
        raise engine_error(exc, table="*", action="verify of the replayed keys") from exc
