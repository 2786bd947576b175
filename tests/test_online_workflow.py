"""MigrateTenant in online mode while the orchestra keeps writing, and in offline mode: nothing acknowledged is
lost, nothing is duplicated, other orchestras are untouched, and the write freeze is reported."""

from __future__ import annotations

import asyncio

import pytest

from activities.models import State
from stagesub.writer import TenantWriter, missing_writes
from tenantmove import db
from workflows.client import start_migration

from .test_move_stagesub import OTHERS
from .world import approve

TENANT = "sibelius-sinfonia"


async def _migrate_while_writing(temporal_env, world, mode: str):
    client = temporal_env.client
    stop = asyncio.Event()
    writer, neighbour = TenantWriter(world.shared, TENANT, seed=3), TenantWriter(world.shared, OTHERS[0], seed=4)
    writing = [asyncio.create_task(w.run(stop)) for w in (writer, neighbour)]
    try:
        async with world.worker(client):
            handle = await start_migration(client, world.input(TENANT, advance_notice_days=0, mode=mode,
                                                               parallel_tables=3),
                                           task_queue=world.queue, workflow_id=f"migrate-{TENANT}-{world.queue}")
            await approve(handle)
            report = await handle.result()
            await asyncio.sleep(0.3)  # a few writes on the dedicated database after the move
    finally:
        stop.set()
        await asyncio.gather(*writing)
    async with db.connection(world.shared) as conn:
        url = await world.deps.registry.database_url(conn, TENANT)
        cur = await conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'tenantmove%%'")
        triggers = (await cur.fetchone())[0]
        cur = await conn.execute('SELECT count(*) FROM "AuditLog" WHERE "tenantId" = %s', (TENANT,))
        left_in_shared = (await cur.fetchone())[0]
    assert url is not None
    return report, writer, neighbour, url, triggers, left_in_shared


async def test_online_migration_loses_no_write(temporal_env, world):
    report, writer, neighbour, url, triggers, left = await _migrate_while_writing(temporal_env, world, "online")
    assert report.state is State.COMPLETED and report.mode == "online"
    assert report.changes_replayed > 0, "the writer's changes during the copy were replayed"
    assert report.write_freeze_seconds is not None and report.write_freeze_seconds > 0
    # The writer wrote before, during and after the copy, and was refused only during the freeze.
    assert writer.log.writes > 50 and writer.log.writes_to_dedicated > 0 and writer.log.blocked > 0
    assert writer.log.deleted and writer.log.notes and writer.log.requests
    assert await missing_writes(url, writer.log) == []
    assert await missing_writes(world.shared, neighbour.log) == []
    assert (triggers, left) == (0, 0)


@pytest.mark.parametrize("mode", ["offline"])
async def test_offline_migration_freezes_for_the_whole_copy(temporal_env, world, mode):
    report, writer, neighbour, url, triggers, left = await _migrate_while_writing(temporal_env, world, mode)
    assert report.state is State.COMPLETED and report.mode == "offline" and report.changes_replayed == 0
    assert report.timings["import"] <= report.write_freeze_seconds
    assert await missing_writes(url, writer.log) == []
    assert await missing_writes(world.shared, neighbour.log) == []
    assert (triggers, left) == (0, 0)
