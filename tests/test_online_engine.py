"""The online path in the engine: parallel copy from one exported snapshot, change capture while a writer
writes, replay until the target equals shared, and capture objects gone afterwards."""

from __future__ import annotations

import asyncio

from psycopg.sql import SQL as psycopg_sql

from stagesub.schema import deploy_reference_schema
from stagesub.writer import TenantWriter, missing_writes
from tenantmove import db
from tenantmove.capture import Capture, backlog, capture_exists, start_capture, stop_capture, writers_barrier
from tenantmove.parallel import copy_tenant_parallel, verify_tenant_parallel
from tenantmove.plan import PlanRules, plan_schema
from tenantmove.plan_order import load_parents
from tenantmove.replay import apply_changes

from . import stagesub_expect as expect
from .conftest import copy_database, create_database
from .test_move_stagesub import MOVED, OTHERS, _sums

RULES = PlanRules()


async def _plan(dsn: str):
    async with db.connection(dsn) as conn:
        plan = await plan_schema(conn, "public", RULES)
        await conn.rollback()
    return plan


def _target(pg_target) -> str:
    target = create_database(pg_target, "dedicated")
    deploy_reference_schema(target)
    return target


async def test_parallel_copy_moves_exactly_the_tenant(pg_shared, pg_target, stagesub_template):
    shared, target = copy_database(pg_shared, stagesub_template, "par"), _target(pg_target)
    plan = await _plan(shared)
    parents = load_parents(plan)
    assert "Project" in parents["ProjectNeed"] and parents["Tenant"] == []
    results = await copy_tenant_parallel(shared, target, plan, MOVED, connections=3)
    assert [r.table for r in results] == plan.load_order
    sums = await verify_tenant_parallel(shared, target, plan, MOVED, connections=3)
    tables = [*expect.OWNED, *expect.COPIED_ONLY]
    expected = await _sums(shared, [expect.rows_of(t, MOVED) for t in tables])
    assert await _sums(target, [expect.whole(t) for t in tables]) == expected
    assert {name: s.rows for name, s in sums.items() if name in expected} == {n: v[0] for n, v in expected.items()}
    # Copying again is a no-op per table (idempotent), still on one snapshot.
    again = await copy_tenant_parallel(shared, target, plan, MOVED, connections=2)
    assert [r.table for r in again if not r.skipped and r.rows] == []  # empty tables load nothing again


async def test_changes_written_during_the_copy_are_replayed(pg_shared, pg_target, stagesub_template):
    shared, target = copy_database(pg_shared, stagesub_template, "cdc"), _target(pg_target)
    plan = await _plan(shared)
    capture = Capture.named("test-run")
    async with db.connection(shared) as conn:
        await start_capture(conn, plan, MOVED, capture)
        await start_capture(conn, plan, MOVED, capture)  # idempotent
    stop = asyncio.Event()
    writer, neighbour = TenantWriter(shared, MOVED, seed=1), TenantWriter(shared, OTHERS[0], seed=2)
    writing = [asyncio.create_task(w.run(stop)) for w in (writer, neighbour)]
    await asyncio.sleep(0.3)
    await copy_tenant_parallel(shared, target, plan, MOVED, connections=3)
    async with db.connection(shared) as src, db.connection(target) as dst:
        first = await apply_changes(src, dst, plan, MOVED, capture)
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*writing)
        await writers_barrier(src, plan)
        while (await apply_changes(src, dst, plan, MOVED, capture, limit=50)).changes:
            pass
        assert await backlog(src, capture) == 0
    assert first.changes > 0 and writer.log.writes > 20 and neighbour.log.writes > 20
    assert writer.log.deleted and writer.log.notes and writer.log.requests
    await verify_tenant_parallel(shared, target, plan, MOVED)
    assert await missing_writes(target, writer.log) == []
    assert await missing_writes(shared, neighbour.log) == []
    async with db.connection(shared) as conn:
        assert await stop_capture(conn, capture) == len(plan.load_order)
        assert await stop_capture(conn, capture) == 0
        assert not await capture_exists(conn, capture)
        cur = await conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'tenantmove%%'")
        assert (await cur.fetchone())[0] == 0
    # The neighbour's rows changed only by the neighbour's own writes; no row of a third tenant changed.
    for table in expect.OWNED:
        rows = expect.rows_of(table, OTHERS[1])
        assert (await _sums(shared, [rows]))[table] == (await _sums(stagesub_template, [rows]))[table]


async def test_parallel_export_writes_the_archive_in_load_order(pg_shared, stagesub_template, tmp_path):
    from tenantmove.archive import ArchiveWriter
    from tenantmove.archive_read import verify_archive
    from tenantmove.mover import selections
    from tenantmove.parallel import export_parallel

    plan = await _plan(stagesub_template)
    chosen = selections(plan, MOVED)
    parallel, sequential = (ArchiveWriter(tmp_path, name, MOVED) for name in ("parallel", "sequential"))
    await export_parallel(stagesub_template, parallel, chosen, connections=3)
    async with db.connection(stagesub_template) as conn:
        for selection in chosen:
            await sequential.add_table(conn, selection)
    one, other = parallel.finish(), sequential.finish()
    assert [e.table for e in one.tables] == plan.load_order == [e.table for e in other.tables]
    assert [(e.position, e.rows, e.checksum) for e in one.tables] == [(e.position, e.rows, e.checksum)
                                                                      for e in other.tables]
    await verify_archive(tmp_path / "parallel")


async def test_the_barrier_waits_for_writes_in_flight_and_blocks_nobody(pg_shared, stagesub_template):
    from tenantmove.capture import writers_barrier

    shared = copy_database(pg_shared, stagesub_template, "barrier")
    plan = await _plan(shared)
    async with db.connection(shared) as early, db.connection(shared) as watcher, db.connection(shared) as late:
        await early.execute('UPDATE "Musician" SET notes = %s WHERE "tenantId" = %s', ("in flight", MOVED))
        barrier = asyncio.create_task(writers_barrier(watcher, plan, timeout_seconds=20))
        await asyncio.sleep(0.3)
        # A write begun after the barrier neither waits for it nor is waited for.
        await late.execute('UPDATE "Musician" SET notes = %s WHERE "tenantId" = %s', ("later", OTHERS[0]))
        await asyncio.sleep(0.3)
        assert not barrier.done(), "the barrier returned while a write from before it was uncommitted"
        await early.commit()
        assert await asyncio.wait_for(barrier, 5) == 1
        await late.rollback()


async def test_verify_at_a_snapshot_then_only_the_replayed_keys(pg_shared, pg_target, stagesub_template):
    import pytest

    from tenantmove.errors import ChecksumMismatch
    from tenantmove.online_verify import verify_at_snapshot, verify_changes

    shared, target = copy_database(pg_shared, stagesub_template, "ver"), _target(pg_target)
    plan = await _plan(shared)
    capture = Capture.named("verify-run")
    async with db.connection(shared) as conn:
        await start_capture(conn, plan, MOVED, capture)
    stop = asyncio.Event()
    writer = TenantWriter(shared, MOVED, seed=9)
    writing = asyncio.create_task(writer.run(stop))
    await copy_tenant_parallel(shared, target, plan, MOVED, connections=2)
    # While the writer writes: every table compared at one snapshot, after replaying what it shows.
    sums = await verify_at_snapshot(shared, target, plan, MOVED, capture, connections=2)
    assert sums["Musician"].rows > 0
    await asyncio.sleep(0.3)
    stop.set()
    await writing
    async with db.connection(shared) as src, db.connection(target) as dst:
        await writers_barrier(src, plan)
        while (await apply_changes(src, dst, plan, MOVED, capture, record=True)).changes:
            pass
        counts = await verify_changes(src, dst, plan, MOVED, capture)
        assert counts["Musician"] == sums["Musician"].rows
        # A replayed row altered on the target is caught by the freeze's verify ...
        cur = await src.execute(psycopg_sql("SELECT a.key ->> 'id' FROM {} a WHERE a.relid = "
                                            "'\"Musician\"'::regclass LIMIT 1").format(capture.applied))
        row = await cur.fetchone()
        await src.rollback()
        assert row is not None, "the writer updated no Musician after the snapshot"
        changed = row[0]
        await dst.execute('UPDATE "Musician" SET notes = %s WHERE id = %s', ("tampered", changed))
        await dst.commit()
        with pytest.raises(ChecksumMismatch) as caught:
            await verify_changes(src, dst, plan, MOVED, capture)
        assert caught.value.tables == ["Musician"]
    # ... and a row nobody changed since the copy, altered on the target, by the verify at a snapshot.
    async with db.connection(target) as dst:
        await dst.execute('UPDATE "Project" SET name = name || %s WHERE id = (SELECT min(id) FROM "Project")', ("!",))
        await dst.commit()
    with pytest.raises(ChecksumMismatch) as caught:
        await verify_at_snapshot(shared, target, plan, MOVED, capture, connections=2)
    assert "Project" in caught.value.tables
