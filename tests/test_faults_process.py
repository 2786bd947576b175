"""Worker processes killed (SIGKILL) at step boundaries and in the middle of steps, again and again in each
migration (the online order split over two, run side by side with the offline one): each killed step is
retried on the next worker and the tenant arrives with every row exactly once, and in online mode with every
write its application made meanwhile."""

from __future__ import annotations

import asyncio

import httpx
import psycopg

from stagesub.writer import TenantWriter
from workflows.client import start_migration

from .faults_support import (
    HeldLock,
    Workers,
    assert_completed_exactly,
    assert_completed_with_writes,
    before,
    blocked_by,
    change_table,
    dedicated_admin_dsn,
    kill_mid,
    queue_behind,
    step_events,
    until,
    wait_step_completed,
    waits_in,
)
from .test_workflow import TENANT
from .world import World, approve, make_world

# Every kill costs the heartbeat timeout (a step under way) plus the retry's backoff, so it is short here.
HEARTBEAT_SECONDS = 3


async def _start(world: World, client, mode: str, approve_it: bool = True):  # noqa: ANN001, ANN202
    handle = await start_migration(client, world.input(TENANT, advance_notice_days=0, mode=mode,
                                                       heartbeat_timeout_seconds=HEARTBEAT_SECONDS),
                                   task_queue=world.queue, workflow_id=f"migrate-{TENANT}-{world.queue}")
    if approve_it:
        await approve(handle)
    return handle


async def wait_step_scheduled(handle, step: str, timeout: float = 60) -> None:  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + timeout
    while step not in (await step_events(handle))[0]:
        assert asyncio.get_running_loop().time() < deadline, f"{step} never started"
        await asyncio.sleep(0.03)


async def _online_kills_to_the_freeze(world: World, client, workers: Workers):  # noqa: ANN001, ANN202
    """A step is caught mid-way by a lock the test holds on a table it needs (so the kill lands inside the
    step, after some of its work: some tables imported, some changes replayed), or right after its completion
    is recorded. The worker is dead while the next lock is taken, so no earlier step waits on it."""
    handle = await _start(world, client, "online")
    await wait_step_completed(handle, "capture_start")  # boundary: capture on, nothing copied
    workers.kill()
    lock = await HeldLock(dedicated_admin_dsn(world), '"Request"').take()  # the import's COPY into Request waits
    workers.start()
    await kill_mid(workers, handle, "import", lock)
    # The writer's inserts wait on this lock too (the capture trigger writes there): replayed once it is gone.
    lock = await HeldLock(world.shared, await change_table(world.shared)).take()
    workers.start()
    await kill_mid(workers, handle, "catch_up", lock)
    workers.start()
    await wait_step_completed(handle, "maintenance_on")  # boundary: the freeze has begun
    workers.kill()
    lock = await HeldLock(world.shared, await change_table(world.shared)).take()
    workers.start()
    await kill_mid(workers, handle, "final_sync", lock)
    # No replay writes ProjectFile (the writer never does); verify_changes counts its rows on the target
    lock = await HeldLock(dedicated_admin_dsn(world), '"ProjectFile"').take()
    workers.start()
    await kill_mid(workers, handle, "verify_changes", lock)
    workers.start()
    return await asyncio.wait_for(handle.result(), 120)


async def _online_kills_from_the_freeze(world: World, client, workers: Workers):  # noqa: ANN001, ANN202
    """The second half of the online order, in a migration of its own so that the halves' waits overlap:
    some shared rows deleted in cleanup's open transaction when it dies."""
    handle = await _start(world, client, "online")
    await wait_step_scheduled(handle, "import")
    # catch_up waits at this gate, so the lock below is surely taken before verify runs
    gate = await HeldLock(world.shared, await change_table(world.shared)).take()
    await wait_step_completed(handle, "import")
    # Neither replay writes ProjectFile (the writer never does), verify reads it: verify is the first to wait
    lock = await HeldLock(dedicated_admin_dsn(world), '"ProjectFile"').take()
    await gate.release()
    await kill_mid(workers, handle, "verify", lock)
    workers.start()
    await wait_step_completed(handle, "switch")  # boundary: the tenant row names the dedicated database
    workers.kill()
    # A worker starting plans the schema, which reads every shared table's size: a lock on a shared table
    # would stop it there. So the export's lock is taken with a worker up, while capture_stop waits at a gate
    # (its last statement drops the change table) holding the tables whose triggers it dropped. ACCESS SHARE:
    # maintenance_off's update of the tenant row still records its change there.
    gate = await HeldLock(world.shared, await change_table(world.shared), "ACCESS SHARE").take()
    workers.start()
    await until(lambda: waits_in(handle, "capture_stop", gate), "capture_stop never reached the change table")
    granted = await queue_behind(HeldLock(world.shared, '"Request"'))
    await gate.release()
    await kill_mid(workers, handle, "export", await granted)  # the export waits at its first read of Request
    # SHARE lets the export read but stops cleanup's DELETE, after it deleted the rows of child tables
    lock = await HeldLock(world.shared, '"Musician"', "SHARE").take()
    workers.start()
    await kill_mid(workers, handle, "cleanup", lock)
    workers.start()
    return await asyncio.wait_for(handle.result(), 120)


async def _offline_kills(world: World, client, workers: Workers):  # noqa: ANN001, ANN202
    """The guide's order: maintenance on, export, create, deploy, import, verify, switch, post checks,
    cleanup, maintenance off; a kill after each, or inside the long ones (the export's, as it starts with
    maintenance on, stands for the boundary after maintenance_on)."""
    handle = await _start(world, client, "offline", approve_it=False)
    # maintenance_on waits for this row lock; the export's table lock is taken meanwhile, with the worker up
    # (a worker starting would wait on it: it reads every shared table's size)
    gate = await psycopg.AsyncConnection.connect(world.shared, application_name="fault-test")
    try:
        await gate.execute('SELECT 1 FROM "Tenant" WHERE id = %s FOR SHARE', [TENANT])
        await approve(handle)
        await until(lambda: blocked_by(world.shared, gate.info.backend_pid), "maintenance_on never waited")
        lock = await HeldLock(world.shared, '"Request"').take()
    finally:
        await gate.close()
    await kill_mid(workers, handle, "export", lock)  # maintenance is on, the archive not taken
    workers.start()
    await wait_step_completed(handle, "create_database")
    workers.kill()
    workers.start()
    await wait_step_completed(handle, "deploy_schema")
    workers.kill()
    target = dedicated_admin_dsn(world)
    lock = await HeldLock(target, '"Request"').take()
    workers.start()
    await kill_mid(workers, handle, "import", lock)
    workers.start()
    await wait_step_completed(handle, "import")  # a boundary, and the Musician lock cannot stop the import
    workers.kill()
    lock = await HeldLock(target, '"Musician"').take()
    workers.start()
    await kill_mid(workers, handle, "verify", lock)
    workers.start()
    await wait_step_completed(handle, "switch")
    workers.kill()
    workers.start()
    await wait_step_completed(handle, "post_checks")
    workers.kill()
    lock = await HeldLock(world.shared, '"Musician"', "SHARE").take()  # cleanup's DELETE waits
    workers.start()
    await kill_mid(workers, handle, "cleanup", lock)
    workers.start()
    await wait_step_completed(handle, "maintenance_off")
    workers.kill()
    workers.start()
    return await asyncio.wait_for(handle.result(), 120)


async def test_migrations_survive_a_kill_at_every_stage(dev_env, world, pg_shared, pg_target, stagesub_template,
                                                        tmp_path):
    """Three migrations side by side on one Temporal server, each with its own shared database, task queue and
    worker process, so that the kills' waits overlap: the online order in two halves (the tenant writing all
    along), and the offline order."""
    client = dev_env.client
    address = client.service_client.config.target_host
    worlds = [world]
    async with httpx.AsyncClient() as http:
        for name in ("online-2", "offline"):
            (tmp_path / name).mkdir()
            worlds.append(await make_world(pg_shared, pg_target, stagesub_template, tmp_path / name, http))
    was = [await before(w) for w in worlds]
    workers = [Workers(w, address, tmp_path / f"workers-{i}.log") for i, w in enumerate(worlds)]
    stop = asyncio.Event()
    writers = [TenantWriter(w.shared, TENANT, seed=5 + i, rate=40) for i, w in enumerate(worlds[:2])]
    writing = [asyncio.create_task(w.run(stop)) for w in writers]
    try:
        for w in workers:
            w.start()
        reports = await asyncio.gather(_online_kills_to_the_freeze(worlds[0], client, workers[0]),
                                       _online_kills_from_the_freeze(worlds[1], client, workers[1]),
                                       _offline_kills(worlds[2], client, workers[2]))
        await asyncio.sleep(0.3)  # a few writes on the dedicated databases after the move
    finally:
        stop.set()
        await asyncio.gather(*writing, return_exceptions=True)
        for w in workers:
            w.close()
    assert [w.kills for w in workers] == [6, 4, 10]
    assert all(t.exception() is None for t in writing)
    for world_, report, was_, writer in zip(worlds, reports, was, writers, strict=False):
        assert writer.log.writes_to_dedicated > 0 and report.changes_replayed > 0
        await assert_completed_with_writes(world_, report, was_, writer, stagesub_template)
    await assert_completed_exactly(worlds[2], reports[2], was[2])
