"""MigrateTenant and RollbackTenant with target "neon": the local Neon server backs the dedicated database."""

from __future__ import annotations

import json

import httpx
import psycopg
import pytest
from temporalio.client import WorkflowFailureError

from activities.models import MigrateTenantInput, MigrationOptions, State
from tenantmove import db
from tenantmove.neon.client import NeonClient
from tenantmove.neon.fake import FakeNeon
from tenantmove.providers.neon import NeonProvider
from workflows.client import start_migration, start_rollback
from workflows.migrate import MigrateTenant

from . import stagesub_expect as expect
from .test_workflow import _expected_sums, _target_sums
from .world import approve, failing, make_world, real_activity

TENANT = "sibelius-sinfonia"
API_KEY = "napi_workflow_5a4b3c2d1e0f9876secret"


@pytest.fixture
async def neon_world(pg_shared, pg_target, stagesub_template, tmp_path):
    fake = FakeNeon(pg_target.dsn(), API_KEY, operation_delay=0.05).start()
    try:
        async with httpx.AsyncClient(timeout=60) as http:  # patient: the fake makes real databases
            world = await make_world(pg_shared, pg_target, stagesub_template, tmp_path, http)
            client = NeonClient(http, fake.url, API_KEY, backoff=0.05, poll_interval=0.05)
            world.deps.providers = {**world.deps.providers, "neon": NeonProvider(client, world.deps.secrets)}
            yield world, fake
            for project_id in list(fake.projects):
                await client.delete_project(project_id)
    finally:
        fake.stop()


def _input() -> MigrateTenantInput:
    return MigrateTenantInput(tenant_id=TENANT, reason="grew past the shared tier", target="neon",
                              options=MigrationOptions())


async def test_migration_to_neon_then_rollback(temporal_env, neon_world):
    world, fake = neon_world
    client = temporal_env.client
    moved = [*expect.OWNED, "User"]
    before = await _expected_sums(world.shared, moved)
    async with world.worker(client):
        handle = await start_migration(client, _input(), task_queue=world.queue,
                                       workflow_id=f"migrate-{TENANT}-{world.queue}")
        await approve(handle)
        report = await handle.result()
        assert report.state is State.COMPLETED and report.database is not None
        assert report.database.kind == "neon" and report.database.provider_id in fake.projects
        assert len(fake.projects) == 1 and fake.created_count == 1
        dsn = world.deps.dedicated_dsn(report.database)
        assert await _target_sums(dsn, moved) == before
        await _the_application_role_is_least_privileged(world, report)
        password = fake.projects[report.database.provider_id].password
        rollback = await start_rollback(client, report, task_queue=world.queue,
                                        workflow_id=f"rollback-{TENANT}-{world.queue}")
        result = await rollback.result()
    assert result.state is State.ROLLED_BACK
    assert fake.projects == {}  # the rollback deleted the Neon project
    for wf in (handle, rollback):
        history = json.dumps((await wf.fetch_history()).to_json_dict())
        assert API_KEY not in history and password not in history
    assert API_KEY not in world.log.getvalue() and password not in world.log.getvalue()


async def _the_application_role_is_least_privileged(world, report) -> None:  # noqa: ANN001
    """The tenant row names the application's role, not Neon's project role (a neon_superuser member): it
    reads and writes rows, changes no schema, and reaches no other project's database."""
    import pytest


    async with db.connection(world.shared) as conn:
        url = await world.deps.registry.database_url(conn, TENANT)
    info = psycopg.conninfo.conninfo_to_dict(url)
    assert info["user"] == report.database.app_role != report.database.role
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as app:
        await app.execute('UPDATE "Musician" SET notes = notes WHERE false')
        assert (await (await app.execute('SELECT count(*) FROM "Musician"')).fetchone())[0] > 0
        for ddl in ('CREATE TABLE intruder (id int)', 'DROP TABLE "Musician"', 'CREATE ROLE intruder'):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await app.execute(ddl)
    # Another tenant's project: its database is closed to every role but its own two.
    neon = world.deps.providers["neon"]
    other = await neon.create("another-orchestra")
    try:
        elsewhere = psycopg.conninfo.make_conninfo(neon.dsn(other), user=info["user"], password=info["password"])
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            async with await psycopg.AsyncConnection.connect(elsewhere):
                pass
    finally:
        await neon.delete(other.provider_id)


async def test_failure_after_create_deletes_the_project(temporal_env, neon_world):
    world, fake = neon_world
    client = temporal_env.client
    async with world.worker(client, {"create_database": failing(real_activity(world.deps, "create_database"))}):
        handle = await start_migration(client, _input(), task_queue=world.queue,
                                       workflow_id=f"migrate-{TENANT}-{world.queue}")
        await approve(handle)
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        status = await handle.query(MigrateTenant.query_status)
    assert info.value.cause.cause.type == "InjectedFault"
    assert status.state is State.ROLLED_BACK, status.log[-6:]
    assert fake.created_count == 1 and fake.projects == {}  # created, then deleted by the compensation
    history = json.dumps((await handle.fetch_history()).to_json_dict())
    assert API_KEY not in history and API_KEY not in world.log.getvalue()
