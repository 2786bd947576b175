"""Database servers stopped and started again under a migration: the target during the import, the shared
server during the export; the step fails on its lost connections, is retried, and the tenant arrives once."""

from __future__ import annotations

import asyncio
import json

import psycopg

from tenantmove.pgserver import LocalPostgres
from workflows.client import start_migration

from .faults_support import (
    HeldLock,
    Workers,
    assert_completed_exactly,
    before,
    blocked_by,
    step_events,
    until,
    waits_in,
)
from .test_worker_kill import _tables_done
from .test_workflow import TENANT
from .world import World, approve

DOWN_SECONDS = 2  # shorter than the data steps' first retry interval (5 s): the retry finds it back up


async def _restart(server: LocalPostgres) -> None:
    """Stop (fast: every backend is terminated, as in a server restart) and start again on the same port."""
    await asyncio.to_thread(server.stop, "fast")
    try:
        await asyncio.sleep(DOWN_SECONDS)
    finally:
        await asyncio.to_thread(server.start)  # the port is kept: the DSNs handed out stay valid
    assert server.is_running()


async def _attempts(handle, step: str) -> int:  # noqa: ANN001
    """How many attempts the step's activity took (history records the last attempt's start)."""
    scheduled: dict[int, str] = {}
    attempts = 0
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled[event.event_id] = json.loads(event.user_metadata.summary.data or b'""').split(" ")[0]
        elif event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            if scheduled.get(started.scheduled_event_id) == step:
                attempts = max(attempts, started.attempt)
    return attempts


async def _retried_failure(handle, activity_type: str) -> str:  # noqa: ANN001
    """The error type the running activity's retry follows: its pending info keeps the last failure."""
    for _ in range(600):
        for pending in (await handle.describe()).raw_description.pending_activities:
            if pending.activity_type.name == activity_type and pending.HasField("last_failure"):
                failure = pending.last_failure
                return f"{failure.application_failure_info.type}: {failure.message}"
        await asyncio.sleep(0.05)
    raise AssertionError(f"{activity_type} never failed")


async def _start(world: World, client, mode: str):  # noqa: ANN001, ANN202
    return await start_migration(client, world.input(TENANT, advance_notice_days=0, mode=mode,
                                                     heartbeat_timeout_seconds=3),
                                 task_queue=world.queue, workflow_id=f"migrate-{TENANT}-{world.queue}")


async def test_target_server_restarted_during_the_import(dev_env, world, pg_target, tmp_path):
    client = dev_env.client
    was = await before(world)
    # the copy is slowed so that the restart lands with some tables committed on the target and others not
    workers = Workers(world, client.service_client.config.target_host, tmp_path / "workers.log", rows_per_second=2000)
    workers.start()
    try:
        handle = await _start(world, client, "online")
        await approve(handle)
        for _ in range(1200):
            if len(await _tables_done(handle)) >= 3:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the import never reported progress")
        assert "import" not in (await step_events(handle))[1]
        await _restart(pg_target)
        failure = await _retried_failure(handle, "import_tenant")
        report = await asyncio.wait_for(handle.result(), 120)
        status = await handle.query("status")
    finally:
        workers.close()
        if not pg_target.is_running():
            pg_target.start()
    assert await _attempts(handle, "import") >= 2
    assert failure.startswith("DatabaseUnavailable: "), failure  # transient, as the runbook says
    assert any("import resumed after a retry" in line for line in status["log"]), status["log"][-8:]
    await assert_completed_exactly(world, report, was)


async def test_shared_server_restarted_during_the_export(dev_env, world, pg_shared, tmp_path):
    """Offline mode exports the archive before anything is copied, under maintenance mode. A lock on a table
    holds the export at its first read of it (the schema's table sizes) while the shared server restarts.
    The pre-check reads that table's size too, so the lock is taken while maintenance_on (after the
    pre-check) waits on the tenant row."""
    client = dev_env.client
    was = await before(world)
    workers = Workers(world, client.service_client.config.target_host, tmp_path / "workers.log")
    workers.start()
    lock = HeldLock(world.shared, '"Musician"')
    gate = await psycopg.AsyncConnection.connect(world.shared, application_name="fault-test")
    try:
        handle = await _start(world, client, "offline")
        await gate.execute('SELECT 1 FROM "Tenant" WHERE id = %s FOR SHARE', [TENANT])
        await approve(handle)
        await until(lambda: blocked_by(world.shared, gate.info.backend_pid), "maintenance_on never waited")
        await lock.take()
        await gate.close()
        await until(lambda: waits_in(handle, "export", lock), "the export never waited on Musician")
        await _restart(pg_shared)  # the lock's holder goes with the restart
        failure = await _retried_failure(handle, "export_archive")
        report = await asyncio.wait_for(handle.result(), 120)
    finally:
        await gate.close()
        await lock.release()
        workers.close()
        if not pg_shared.is_running():
            pg_shared.start()
    assert await _attempts(handle, "export") >= 2
    assert failure.startswith("DatabaseUnavailable: "), failure
    await assert_completed_exactly(world, report, was)


