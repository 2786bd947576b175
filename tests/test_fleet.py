"""MigrateMany: a fleet approved once, migrated one at a time; a bad tenant is reported, the others move."""

from __future__ import annotations

import asyncio

from activities.models import Approval, MigrateManyInput, MigrationOptions, State
from tenantmove import db
from workflows.fleet import MigrateMany


async def _await_approval(handle) -> None:  # noqa: ANN001
    for _ in range(200):
        if (await handle.query(MigrateMany.fleet_status))["state"] == "awaiting_approval":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the fleet never waited for approval")


async def test_a_fleet_is_approved_once_and_reports_each_tenant(temporal_env, world):
    client = temporal_env.client
    options = MigrationOptions(advance_notice_days=0)
    async with world.worker(client):
        handle = await client.start_workflow(
            MigrateMany.run, MigrateManyInput(tenant_ids=["kammerorchester-basel", "no-such-orchestra"],
                                             max_concurrent=1, options=options),
            id=f"fleet-{world.queue}", task_queue=world.queue)
        await _await_approval(handle)
        tenants = await handle.execute_update(MigrateMany.approve_batch, Approval(approver="board"))
        assert tenants == ["kammerorchester-basel", "no-such-orchestra"]
        report = await handle.result()
        # no tenant list: the recommended ones (only the institution-sized orchestra crosses the triggers)
        recommended = await client.start_workflow(MigrateMany.run, MigrateManyInput(options=options),
                                                  id=f"fleet2-{world.queue}", task_queue=world.queue)
        await _await_approval(recommended)
        assert await recommended.execute_update(MigrateMany.approve_batch, Approval(approver="board")) == [
            "sibelius-sinfonia"]
        second = await recommended.result()
    assert report.state is State.COMPLETED
    assert report.results["kammerorchester-basel"] == "completed"
    assert report.results["no-such-orchestra"].startswith("TenantNotFound")
    assert second.results == {"sibelius-sinfonia": "completed"}
    assert len(world.dedicated_databases()) == 2
    async with db.connection(world.shared) as conn:
        cur = await conn.execute('SELECT "tenantId", count(*) FROM "Musician" GROUP BY 1 ORDER BY 1')
        left = dict(await cur.fetchall())
    assert left == {"o'brien-ensemble": 40}  # the two moved orchestras' rows left shared, the third stayed
