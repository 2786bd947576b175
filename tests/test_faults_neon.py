"""The local Neon server answering 429, 503, 500, dropping the connection, replying after the client's timeout, or
failing an operation at each call a migration and its saga make: the run completes (transient faults are
retried) or rolls back leaving no project behind, never half-done."""

from __future__ import annotations

import httpx
import pytest
from temporalio.client import WorkflowFailureError

from activities.models import MigrateTenantInput, MigrationOptions, State
from tenantmove.neon.client import NeonClient
from tenantmove.neon.fake import EachCallOnce, FakeNeon
from tenantmove.providers.neon import NeonProvider
from workflows.client import start_migration
from workflows.migrate import MigrateTenant

from . import stagesub_expect as expect
from .test_workflow import _expected_sums, _target_sums
from .world import approve, failing, make_world, real_activity, shared_sums

TENANT = "sibelius-sinfonia"
API_KEY = "napi_faults_0f1e2d3c4b5a6978secret"
FORWARD = {"GET /projects", "POST /projects", "GET /projects/{id}/operations"}  # find, create, wait
SAGA = {"GET /projects/{id}", "DELETE /projects/{id}"}  # the compensation's look-up and delete


async def _migrate(temporal_env, pg_shared, pg_target, template, tmp_path, kind: str, *, fail_after_create: bool):
    plan = EachCallOnce(kind=kind, slow_reply_seconds=1.5)
    fake = FakeNeon(pg_target.dsn(), API_KEY, operation_delay=0.05, faults=plan).start()
    try:
        # A short read timeout, so that a slow reply (1.5 s) is a timeout of the client's.
        async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=0.5)) as http:
            world = await make_world(pg_shared, pg_target, template, tmp_path, http)
            neon = NeonClient(http, fake.url, API_KEY, backoff=0.02, poll_interval=0.05)
            world.deps.providers = {**world.deps.providers, "neon": NeonProvider(neon, world.deps.secrets)}
            moved = [*expect.OWNED, "User"]
            before, shared_before = await _expected_sums(world.shared, moved), await shared_sums(world.shared)
            replace = {"deploy_schema": failing(real_activity(world.deps, "deploy_schema"))} if fail_after_create \
                else {}
            input = MigrateTenantInput(tenant_id=TENANT, reason="faults", target="neon", options=MigrationOptions())
            async with world.worker(temporal_env.client, replace):
                handle = await start_migration(temporal_env.client, input, task_queue=world.queue,
                                               workflow_id=f"migrate-{TENANT}-{world.queue}")
                await approve(handle)
                try:
                    report = await handle.result()
                except WorkflowFailureError as exc:
                    report = exc
                status = await handle.query(MigrateTenant.query_status)
            if status.state is State.COMPLETED:
                assert await _target_sums(world.deps.dedicated_dsn(report.database), moved) == before
                assert list(fake.projects) == [report.database.provider_id]
                plan.kind = ""  # the test's own clean-up goes unfaulted, and with a patient client
                async with httpx.AsyncClient(timeout=60) as calm:
                    for project_id in list(fake.projects):
                        await NeonClient(calm, fake.url, API_KEY).delete_project(project_id)
            else:
                assert status.state is State.ROLLED_BACK, status.log[-6:]
                assert await shared_sums(world.shared) == shared_before
            return status, plan.hit, fake
    finally:
        fake.stop()


@pytest.mark.parametrize("kind", ["rate_limited", "unavailable", "server_errors", "drop_connections",
                                  "drop_after_post", "slow_replies", "failed_operations"])
async def test_a_transient_fault_at_each_call_is_retried(temporal_env, pg_shared, pg_target, stagesub_template,
                                                         tmp_path, kind):
    status, hit, fake = await _migrate(temporal_env, pg_shared, pg_target, stagesub_template, tmp_path, kind,
                                       fail_after_create=False)
    assert status.state is State.COMPLETED, status.log[-6:]
    if kind == "drop_after_post":  # created, reply lost: the project is found by name, not made twice
        assert hit == ["POST /projects"] and fake.created_count == 1
    elif kind == "slow_replies":  # every call timed out once, the create too (made all the same): one project
        assert FORWARD <= set(hit) and fake.created_count == 1, hit
    elif kind == "failed_operations":  # Neon retries a failed operation; the client polls on
        assert hit == ["op"]
    else:
        assert FORWARD <= set(hit), hit


@pytest.mark.parametrize("kind", ["unavailable", "server_errors", "drop_connections"])
async def test_a_fault_at_each_call_of_the_saga_still_deletes_the_project(temporal_env, pg_shared, pg_target,
                                                                         stagesub_template, tmp_path, kind):
    status, hit, fake = await _migrate(temporal_env, pg_shared, pg_target, stagesub_template, tmp_path, kind,
                                       fail_after_create=True)
    assert status.state is State.ROLLED_BACK and fake.projects == {}, status.log[-6:]
    assert FORWARD | SAGA <= set(hit), hit


async def test_an_operation_in_error_rolls_back_with_no_project_left(temporal_env, pg_shared, pg_target,
                                                                    stagesub_template, tmp_path):
    status, hit, fake = await _migrate(temporal_env, pg_shared, pg_target, stagesub_template, tmp_path,
                                       "error_operations", fail_after_create=False)
    assert status.state is State.ROLLED_BACK, status.log[-6:]
    assert hit == ["op"] and fake.created_count == 1 and fake.projects == {}
    assert "NeonOperationFailed" in (status.last_error or "") or any("operation" in line for line in status.log)
