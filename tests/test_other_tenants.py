"""While one orchestra migrates online, two others keep writing: afterwards their rows are exactly their rows
before plus their own acknowledged writes, and a fourth orchestra nobody wrote to is unchanged by checksum."""

from __future__ import annotations

import asyncio

from activities.models import State
from stagesub.checks import changed_tables, tenant_sums, touched
from stagesub.seed import OrchestraSpec, seed
from stagesub.writer import TenantWriter, missing_writes
from workflows.client import start_migration

from .conftest import copy_database
from .world import SEED_NOW, approve

TENANT, WRITING, QUIET = "sibelius-sinfonia", ("kammerorchester-basel", "o'brien-ensemble"), "quiet-quartet"


async def test_other_tenants_writing_all_the_while_are_unchanged(temporal_env, world, pg_shared):
    seed(world.shared, [OrchestraSpec(QUIET, "Quiet Quartet", "small")], seed=9, now=SEED_NOW)
    # The state before, kept whole: which rows the writers will touch is known only afterwards.
    before = copy_database(pg_shared, world.shared, "before")
    stop = asyncio.Event()
    writers = [TenantWriter(world.shared, t, seed=11 + i, rate=100) for i, t in enumerate(WRITING)]
    writing = [asyncio.create_task(w.run(stop)) for w in writers]
    try:
        async with world.worker(temporal_env.client):
            handle = await start_migration(temporal_env.client, world.input(TENANT, mode="online"),
                                           task_queue=world.queue, workflow_id=f"migrate-{TENANT}-{world.queue}")
            await approve(handle)
            report = await handle.result()
    finally:
        stop.set()
        await asyncio.gather(*writing)
    assert report.state is State.COMPLETED
    for writer in writers:
        assert writer.log.writes > 20 and writer.log.writes_to_dedicated == 0
        assert await missing_writes(world.shared, writer.log) == [], writer.tenant
        # every row the writer did not touch is as it was; those it touched are as it wrote them (above)
        ids = touched([writer.log])
        unchanged = changed_tables(await tenant_sums(before, writer.tenant, ids),
                                   await tenant_sums(world.shared, writer.tenant, ids))
        assert unchanged == [], writer.tenant
    quiet = await tenant_sums(world.shared, QUIET)
    assert quiet == await tenant_sums(before, QUIET) and quiet["Musician"][0] > 0

