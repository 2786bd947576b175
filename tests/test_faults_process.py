"""Worker processes killed (SIGKILL) at step boundaries and in the middle of steps, again and again in one
migration: each killed step is retried on the next worker and the tenant arrives with every row exactly once."""

from __future__ import annotations

import asyncio

from workflows.client import start_migration

from .faults_support import (
    HeldLock,
    Workers,
    assert_completed_exactly,
    before,
    change_table,
    dedicated_admin_dsn,
    kill_mid,
    wait_step_completed,
)
from .test_workflow import TENANT
from .world import approve


async def test_online_migration_survives_a_kill_at_every_stage(dev_env, world, tmp_path):
    """A step is caught mid-way by a lock the test holds on a table it needs (so the kill lands inside the
    step, after some of its work: some tables imported, some shared rows deleted in cleanup's open
    transaction), or right after its completion is recorded. The worker is dead while the next lock is taken,
    so no earlier step waits on it."""
    client = dev_env.client
    was = await before(world)
    workers = Workers(world, client.service_client.config.target_host, tmp_path / "workers.log")
    workers.start()
    try:
        handle = await start_migration(client, world.input(TENANT, advance_notice_days=0, heartbeat_timeout_seconds=3),
                                       task_queue=world.queue, workflow_id=f"migrate-{TENANT}-{world.queue}")
        await approve(handle)

        await wait_step_completed(handle, "capture_start")  # boundary: capture on, nothing copied
        workers.kill()
        target = dedicated_admin_dsn(world)
        lock = await HeldLock(target, '"Request"').take()  # the import's COPY into Request waits
        workers.start()
        await kill_mid(workers, handle, "import", lock)
        lock = await HeldLock(world.shared, await change_table(world.shared)).take()
        workers.start()
        await kill_mid(workers, handle, "catch_up", lock)
        lock = await HeldLock(target, '"Musician"').take()  # the verify at a snapshot reads it on the target
        workers.start()
        await kill_mid(workers, handle, "verify", lock)
        workers.start()

        await wait_step_completed(handle, "maintenance_on")  # boundary: the freeze has begun
        workers.kill()
        lock = await HeldLock(world.shared, await change_table(world.shared)).take()
        workers.start()
        await kill_mid(workers, handle, "final_sync", lock)
        lock = await HeldLock(target, '"Musician"').take()  # verify_changes counts the target's rows
        workers.start()
        await kill_mid(workers, handle, "verify_changes", lock)
        workers.start()

        await wait_step_completed(handle, "switch")  # boundary: the tenant row names the dedicated database
        workers.kill()
        workers.start()
        await wait_step_completed(handle, "capture_stop")  # boundary: the cutover is behind us
        workers.kill()
        lock = await HeldLock(world.shared, '"Request"').take()  # the archive's read of Request waits
        workers.start()
        await kill_mid(workers, handle, "export", lock)
        # SHARE lets the export read but stops cleanup's DELETE, after it deleted the rows of child tables
        lock = await HeldLock(world.shared, '"Musician"', "SHARE").take()
        workers.start()
        await kill_mid(workers, handle, "cleanup", lock)
        workers.start()
        report = await asyncio.wait_for(handle.result(), 120)
    finally:
        workers.close()
    assert workers.kills == 11
    await assert_completed_exactly(world, report, was)
