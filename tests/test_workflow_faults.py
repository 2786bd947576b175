"""A fault after each step's real side effect, a cancellation, a duplicate start, a bad schedule, rollbacks:
the saga leaves the shared database exactly as it was (by checksum) and no dedicated database behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError

from activities.models import Approval, State
from tenantmove import db
from workflows.client import RequestRefused, start_migration, start_rollback
from workflows.migrate import MigrateTenant

from .world import approve, failing, real_activity, shared_sums, slowed, wait_for

TENANT = "sibelius-sinfonia"




def _once(predicate):
    """True the first time `predicate(input)` holds, then never: the compensation's own call succeeds."""
    fired = []

    def check(input) -> bool:  # noqa: ANN001
        if fired or not predicate(input):
            return False
        fired.append(True)
        return True

    return check


FAULTS = {
    "request_migration": None, "precheck": None, "maintenance on": ("set_maintenance", lambda i: i.on),
    "export_archive": None, "create_database": None, "deploy_schema": None, "import_tenant": None,
    "verify_import": None, "switch_to_dedicated": None, "post_migration_checks": None, "cleanup_shared": None,
    "maintenance off": ("set_maintenance", lambda i: not i.on),
}
# Online mode's own steps, and the ones it runs in another order. Faults in the steps after the cutover
# (maintenance off) leave the tenant on its dedicated database: its users may already have written there.
ONLINE_FAULTS = {
    "create_database": None, "start_capture": None, "import_tenant": None,
    "catch up": ("replay_changes", lambda i: not i.final), "maintenance on": ("set_maintenance", lambda i: i.on),
    "verify_at_snapshot": None, "final sync": ("replay_changes", lambda i: i.final), "verify_changes": None,
    "switch_to_dedicated": None,
    "post_migration_checks": None, "maintenance off": ("set_maintenance", lambda i: not i.on),
}
AFTER_CUTOVER = {"stop_capture": None, "export_archive": None, "cleanup_shared": None}
CASES = [("offline", f) for f in FAULTS] + [("online", f) for f in [*ONLINE_FAULTS, *AFTER_CUTOVER]]


@pytest.mark.parametrize(("mode", "fault"), CASES, ids=[f"{m}-{f}" for m, f in CASES])
async def test_a_fault_after_any_step_is_undone(temporal_env, world, mode, fault):
    client = temporal_env.client
    faults = FAULTS if mode == "offline" else {**ONLINE_FAULTS, **AFTER_CUTOVER}
    name, when = faults[fault] or (fault, lambda _: True)
    before = await shared_sums(world.shared)
    async with world.worker(client, {name: failing(real_activity(world.deps, name), when=_once(when))}):
        handle = await start_migration(client, world.input(TENANT, mode=mode), task_queue=world.queue,
                                       workflow_id=f"migrate-{TENANT}-{world.queue}")
        if fault != "request_migration":  # that one fails before there is anything to approve
            await approve(handle)
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        status = await handle.query(MigrateTenant.query_status)
    assert info.value.cause.cause.type == "InjectedFault"
    async with db.connection(world.shared) as conn:
        state = await world.deps.registry.read(conn, TENANT)
        cur = await conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'tenantmove%%'")
        assert (await cur.fetchone())[0] == 0, "change capture left behind"
    if mode == "online" and fault in AFTER_CUTOVER:
        assert status.state is State.FAILED and "after the cutover" in status.log[-2], status.log[-6:]
        assert (state.database_type, state.maintenance, state.has_database_url) == ("dedicated", False, True)
        assert len(world.dedicated_databases()) == 1
        # The tenant's rows are still (or again) in shared, with the tenant row's switch recorded.
        after = await shared_sums(world.shared)
        assert {t: v for t, v in after.items() if t not in ("Tenant", "AuditLog")} == \
            {t: v for t, v in before.items() if t not in ("Tenant", "AuditLog")}
        return
    assert status.state is State.ROLLED_BACK, status.log[-6:]
    assert await shared_sums(world.shared) == before
    assert world.dedicated_databases() == []
    assert (state.database_type, state.maintenance, state.has_database_url) == ("shared", False, False)


async def test_cancellation_midway_is_undone(temporal_env, world):
    client = temporal_env.client
    slow_verify = slowed(real_activity(world.deps, "verify_import"), 1.5)
    before = await shared_sums(world.shared)
    async with world.worker(client, {"verify_import": slow_verify}):
        # No advance notice: polling does not make the test server skip time, so there must be no timer.
        handle = await start_migration(client, world.input(TENANT, advance_notice_days=0), task_queue=world.queue,
                                       workflow_id=f"migrate-{TENANT}-{world.queue}")
        await approve(handle)
        await wait_for(handle, lambda s: s.step == "verify", timeout=60)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        status = await handle.query(MigrateTenant.query_status)
    assert status.state is State.ROLLED_BACK and status.last_error == "cancelled"
    assert await shared_sums(world.shared) == before
    assert world.dedicated_databases() == []


async def test_second_migration_and_bad_schedules_are_refused_without_change(temporal_env, world):
    client = temporal_env.client
    before = await shared_sums(world.shared)
    past = datetime.now(UTC) - timedelta(hours=1)
    with pytest.raises(RequestRefused, match="in the past"):
        await start_migration(client, world.input(TENANT).model_copy(update={"scheduled_at": past}),
                              task_queue=world.queue)
    too_soon = datetime.now(UTC) + timedelta(days=1)
    with pytest.raises(RequestRefused, match="advance notice"):
        await start_migration(client, world.input(TENANT).model_copy(update={"scheduled_at": too_soon}),
                              task_queue=world.queue)
    async with world.worker(client):
        wid = f"migrate-{TENANT}-{world.queue}"
        handle = await start_migration(client, world.input(TENANT), task_queue=world.queue, workflow_id=wid)
        with pytest.raises(RequestRefused, match="already running"):
            await start_migration(client, world.input(TENANT), task_queue=world.queue, workflow_id=wid)
        await wait_for(handle, lambda s: s.state is State.AWAITING_APPROVAL)
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(MigrateTenant.approve_migration,
                                        Approval(approver="ops", scheduled_at=past))
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(MigrateTenant.approve_migration, Approval(approver="ops", scheduled_at=too_soon))
        status = await handle.query(MigrateTenant.query_status)
        assert status.state is State.AWAITING_APPROVAL and status.approved_by is None
        await handle.terminate("test over")
    assert await shared_sums(world.shared) == before


@pytest.mark.parametrize("cleanup", [True, False])
async def test_rollback_after_a_completed_migration(temporal_env, world, cleanup):
    client = temporal_env.client
    before = await shared_sums(world.shared)
    async with world.worker(client):
        handle = await start_migration(client, world.input(TENANT, cleanup_shared=cleanup), task_queue=world.queue,
                                       workflow_id=f"migrate-{TENANT}-{world.queue}")
        await approve(handle)
        report = await handle.result()
        assert report.state is State.COMPLETED and report.cleanup_done is cleanup
        assert world.dedicated_databases() != []
        rollback = await start_rollback(client, report, task_queue=world.queue,
                                        workflow_id=f"rollback-{TENANT}-{world.queue}")
        result = await rollback.result()
    assert result.state is State.ROLLED_BACK
    assert await shared_sums(world.shared) == before
    assert world.dedicated_databases() == []
