"""MigrateTenant and RollbackTenant on the time-skipping server, real activities, real Postgres."""

from __future__ import annotations

import json

import pytest
from temporalio.client import WorkflowFailureError

from activities.models import Rejection, State
from tenantmove import db
from workflows.client import start_migration
from workflows.steps import MIGRATION_STATE, TENANT_ID

from . import stagesub_expect as expect
from .world import approve, shared_sums, wait_for

TENANT = "sibelius-sinfonia"




async def _target_sums(dsn: str, tables) -> dict[str, tuple[int, str]]:
    """Whole tables on the dedicated database, less the switch's own audit row (checked on its own)."""
    from psycopg import sql

    from tenantmove.checksum import table_checksum
    from tenantmove.rows import RowSelection

    def chosen(table: str) -> RowSelection:
        if table != "AuditLog":
            return expect.whole(table)
        return RowSelection("public", table, ("*",), sql.SQL(
            "SELECT * FROM \"AuditLog\" WHERE action <> 'tenant.database.switch'"))

    async with db.connection(dsn) as conn:
        out = {t: await table_checksum(conn, chosen(t)) for t in tables}
        await conn.rollback()
    return {t: (c.rows, c.digest) for t, c in out.items()}


async def _expected_sums(dsn: str, tables) -> dict[str, tuple[int, str]]:
    from tenantmove.checksum import table_checksum

    async with db.connection(dsn) as conn:
        out = {t: await table_checksum(conn, expect.rows_of(t, TENANT)) for t in tables}
        await conn.rollback()
    return {t: (c.rows, c.digest) for t, c in out.items()}


async def test_happy_path_moves_exactly_the_tenant_and_leaks_no_secret(temporal_env, world):
    client = temporal_env.client
    moved = [*expect.OWNED, "User"]
    before_rows = await _expected_sums(world.shared, moved)
    others_before = await shared_sums(world.shared)
    async with world.worker(client):
        handle = await start_migration(client, world.input(TENANT), task_queue=world.queue,
                                       workflow_id=f"migrate-{TENANT}-{world.queue}")
        await approve(handle)
        report = await handle.result()
        status = await handle.query("status")  # a query needs a running worker
        attributes = (await handle.describe()).typed_search_attributes
    assert report.state is State.COMPLETED and report.cleanup_done and report.database is not None
    # what `temporal workflow list --query 'TenantId="..." AND MigrationState="completed"'` finds
    assert attributes.get(TENANT_ID) == TENANT and attributes.get(MIGRATION_STATE) == "completed"
    dsn = world.deps.dedicated_dsn(report.database)
    # The dedicated database holds exactly what the hand-written predicates select, table by table.
    assert await _target_sums(dsn, moved) == before_rows
    # ...with every index and key shared has (plain indexes built and foreign keys validated after the load),
    # and no trace of the deferral
    shape = await schema_shape(dsn)
    assert shape == await schema_shape(world.shared)
    assert "index public.AuditLog_tenantId_createdAt_idx" in shape and "constraint public.AuditLog_userId_fkey" in shape
    # Shared: the tenant's owned rows are gone, the tenant row is switched, everything else is untouched.
    after = await shared_sums(world.shared)
    for table in after:
        if table in expect.OWNED:
            assert (await _expected_sums(world.shared, [table]))[table][0] == 0, table
        elif table != "Tenant":
            assert after[table] == others_before[table], table
    async with db.connection(world.shared) as conn:
        state = await world.deps.registry.read(conn, TENANT)
        url = await world.deps.registry.database_url(conn, TENANT)
    assert state.database_type == "dedicated" and not state.maintenance and url == world.deps.app_dsn(report.database)
    assert status["progress"] == 100 and status["state"] == "completed"
    assert all(t["done"] for t in status["tables"].values())
    # The tenant's own audit log, now on the dedicated database, records the switch with the password masked.
    password = psycopg_password(dsn)
    async with db.connection(dsn) as conn:
        cur = await conn.execute("SELECT changes::text FROM \"AuditLog\" WHERE action = 'tenant.database.switch'")
        audit = [r[0] for r in await cur.fetchall()]
    assert len(audit) == 1 and "****" in audit[0] and password not in audit[0]
    # No password anywhere in the history or the worker's log lines.
    history = json.dumps((await handle.fetch_history()).to_json_dict())
    assert password not in history and password not in world.log.getvalue()
    # every activity log line carries who and where: tenant, workflow id, activity (and the table on import)
    lines = [json.loads(line) for line in world.log.getvalue().splitlines() if line.startswith("{")]
    imported = [line for line in lines if line.get("event") == "table imported"]
    assert imported and all(line["tenant"] == TENANT and line["workflow_id"] == handle.id and
                            line["activity"] == "import_tenant" and line["table"] for line in imported)
    assert "import" in history and world.log.getvalue()


async def schema_shape(dsn: str) -> dict[str, str]:
    """Every index and constraint (name -> definition, and whether it is validated), of every schema but the
    catalogs and the capture's: a leftover deferral schema, or a key put back unchecked, would show."""
    async with db.connection(dsn) as conn:
        cur = await conn.execute(
            "SELECT 'index ' || schemaname || '.' || indexname, indexdef FROM pg_indexes "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema', 'tenantmove_capture') "
            "UNION ALL SELECT 'constraint ' || n.nspname || '.' || c.conname, "
            "pg_get_constraintdef(c.oid) || CASE WHEN c.convalidated THEN '' ELSE ' (unchecked)' END "
            "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenantmove_capture')")
        return dict(await cur.fetchall())


def psycopg_password(dsn: str) -> str:
    import psycopg

    password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    assert password and len(password) > 10
    return str(password)


async def test_reject_ends_the_workflow_and_changes_nothing(temporal_env, world):
    client = temporal_env.client
    before = await shared_sums(world.shared)
    async with world.worker(client):
        handle = await start_migration(client, world.input(TENANT), task_queue=world.queue,
                                       workflow_id=f"migrate-{TENANT}-{world.queue}")
        await wait_for(handle, lambda s: s.state is State.AWAITING_APPROVAL)
        await handle.signal("approve", {"approver": ""})  # malformed: recorded, ignored
        await handle.signal("approve", "not even an object")
        await handle.execute_update("reject_migration", Rejection(approver="cfo", reason="budget"))
        report = await handle.result()
        status = await handle.query("status")
    assert report.state is State.REJECTED
    assert len(status["ignored_signals"]) == 2 and status["rejected_by"] == "cfo"
    assert await shared_sums(world.shared) == before
    assert world.dedicated_databases() == []


async def test_no_decision_expires(temporal_env, world):
    client = temporal_env.client
    async with world.worker(client):
        handle = await start_migration(client, world.input(TENANT, approval_timeout_hours=2), task_queue=world.queue,
                                       workflow_id=f"migrate-{TENANT}-{world.queue}")
        report = await handle.result()  # the test server skips the two hours
    assert report.state is State.EXPIRED


async def test_unknown_and_already_dedicated_tenants_fail_without_change(temporal_env, world):
    client = temporal_env.client
    before = await shared_sums(world.shared)
    async with world.worker(client):
        handle = await start_migration(client, world.input("no-such-orchestra"), task_queue=world.queue,
                                       workflow_id=f"migrate-x-{world.queue}")
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        assert info.value.cause.cause.type == "TenantNotFound"
        async with db.connection(world.shared) as conn:
            await world.deps.registry.switch_to_dedicated(conn, "kammerorchester-basel", "postgresql://x@h/db",
                                                          at=expect_now())
        handle = await start_migration(client, world.input("kammerorchester-basel"), task_queue=world.queue,
                                       workflow_id=f"migrate-k-{world.queue}")
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        assert info.value.cause.cause.type == "TenantStateError"
        assert "already dedicated" in info.value.cause.cause.message
    after = await shared_sums(world.shared)
    assert {t: v for t, v in after.items() if t != "Tenant"} == {t: v for t, v in before.items() if t != "Tenant"}


def expect_now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_a_blocking_precheck_stops_before_any_change(temporal_env, world):
    client = temporal_env.client
    async with db.connection(world.shared, autocommit=True) as conn:
        await conn.execute('UPDATE "BackgroundJob" SET status = \'running\', "finishedAt" = NULL '
                           'WHERE id = (SELECT min(id) FROM "BackgroundJob" WHERE "tenantId" = %s)', [TENANT])
    before = await shared_sums(world.shared)
    async with world.worker(client):
        handle = await start_migration(client, world.input(TENANT), task_queue=world.queue,
                                       workflow_id=f"migrate-{TENANT}-{world.queue}")
        await approve(handle)
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    failure = info.value.cause.cause
    assert failure.type == "PrecheckFailed" and "running" in failure.message
    assert await shared_sums(world.shared) == before
    assert world.dedicated_databases() == []


async def test_cleanup_waits_for_the_grace_period(temporal_env, world):
    client = temporal_env.client
    async with world.worker(client):
        handle = await start_migration(client, world.input(TENANT, cleanup_grace_hours=24), task_queue=world.queue,
                                       workflow_id=f"migrate-{TENANT}-{world.queue}")
        await approve(handle)
        report = await handle.result()  # the test server skips the notice and the grace timer
        status = await handle.query("status")
    assert report.state is State.COMPLETED and report.cleanup_done
    lines = status["log"]
    off = next(i for i, line in enumerate(lines) if "maintenance_off done" in line)
    deferred = next(i for i, line in enumerate(lines) if "cleanup deferred by 24 h" in line)
    cleanup = next(i for i, line in enumerate(lines) if "cleanup done" in line)
    assert off < deferred < cleanup  # the tenant was writable on its dedicated database during the grace period
    assert (await _expected_sums(world.shared, ["Musician"]))["Musician"][0] == 0
