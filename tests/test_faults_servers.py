"""Postgres backends terminated mid-COPY (pg_terminate_backend) on the shared and on the target server: the
import is retried (DatabaseUnavailable is transient) and the tenant arrives with every row exactly once."""

from __future__ import annotations

import asyncio

import psycopg

from workflows.client import start_migration

from .faults_support import Workers, assert_completed_exactly, before, dedicated_admin_dsn
from .test_workflow import TENANT
from .world import approve

COPYING = ("SELECT pid FROM pg_stat_activity WHERE application_name = 'stagesub-migrate' AND datname = %s "
           "AND query LIKE 'COPY%%' AND state = 'active' LIMIT 1")


async def _terminate_a_copy(dsn: str, timeout: float = 60) -> None:
    """Terminate a migration backend running a COPY in that database, once one shows up."""
    dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    deadline = asyncio.get_running_loop().time() + timeout
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        while True:
            row = await (await conn.execute(COPYING, [dbname])).fetchone()
            if row and (await (await conn.execute("SELECT pg_terminate_backend(%s)", [row[0]])).fetchone())[0]:
                return
            assert asyncio.get_running_loop().time() < deadline, f"no COPY ever ran in {dbname}"
            await asyncio.sleep(0.02)


# A source backend's COPY TO STDOUT of a small table ends as soon as its rows fit in the socket buffers, long
# before the throttled reader has them: between tables it sits "idle in transaction" in the snapshot.
LOADING = ("SELECT 1 FROM pg_stat_activity WHERE application_name = 'stagesub-migrate' AND datname LIKE %s "
           "AND query LIKE 'COPY%%' AND state = 'active'")
SOURCES = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'stagesub-migrate' "
           "AND datname = %s AND query LIKE 'COPY%%' AND state IN ('active', 'idle in transaction')")


async def _terminate_the_sources_mid_import(world, timeout: float = 60) -> None:
    """While the target is loading (a COPY FROM STDIN is active there), terminate every migration backend
    on shared that has run a COPY in its snapshot transaction: the import's readers, whichever is mid-table.
    Gated on the target, so that the kill cannot miss the import and land on a later step instead."""
    source_db = psycopg.conninfo.conninfo_to_dict(world.shared)["dbname"]
    deadline = asyncio.get_running_loop().time() + timeout
    # pg_stat_activity is the whole server's: watch it from the admin database, the tenant's may not exist yet
    async with await psycopg.AsyncConnection.connect(world.target_server.dsn(), autocommit=True) as on_target, \
            await psycopg.AsyncConnection.connect(world.shared, autocommit=True) as on_shared:
        while True:
            if await (await on_target.execute(LOADING, [world.prefix + "%"])).fetchone():
                killed = await (await on_shared.execute(SOURCES, [source_db])).fetchall()
                if any(row[0] for row in killed):
                    return
            assert asyncio.get_running_loop().time() < deadline, "no import COPY ever ran on the target"
            await asyncio.sleep(0.02)


async def _retried(handle, activity_type: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        pending = (await handle.describe()).raw_description.pending_activities
        if any(a.activity_type.name == activity_type and a.attempt >= 2 and a.state == 2  # STARTED
               for a in pending):
            return
        assert asyncio.get_running_loop().time() < deadline, "the terminated step was never retried"
        await asyncio.sleep(0.05)


async def test_import_survives_terminated_copy_backends_on_both_sides(dev_env, world, tmp_path):
    client = dev_env.client
    was = await before(world)
    workers = Workers(world, client.service_client.config.target_host, tmp_path / "workers.log", rows_per_second=2000)
    workers.start()
    try:
        handle = await start_migration(client, world.input(TENANT, advance_notice_days=0, heartbeat_timeout_seconds=3),
                                       task_queue=world.queue, workflow_id=f"migrate-{TENANT}-{world.queue}")
        await approve(handle)
        # the source side: COPY (SELECT ...) TO STDOUT
        await _terminate_the_sources_mid_import(world)
        # The import copies over several connections: wait for its retry, so that the second kill does not
        # land on a sibling COPY of the attempt that is already failing.
        await _retried(handle, "import_tenant")
        await _terminate_a_copy(dedicated_admin_dsn(world))  # the target side: COPY ... FROM STDIN
        report = await asyncio.wait_for(handle.result(), 120)
        attempts = [e.activity_task_started_event_attributes.attempt async for e in handle.fetch_history_events()
                    if e.HasField("activity_task_started_event_attributes")]
    finally:
        workers.close()
    await assert_completed_exactly(world, report, was)
    # Each terminated COPY failed one attempt of the step running it (the import's, or a replay's or the
    # export's when the kill lands there), and the step was retried: two retries in all.
    assert sum(a - 1 for a in attempts) >= 2, attempts
