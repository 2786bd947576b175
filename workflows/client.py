"""Client-side helpers shared by the starter, the tests and the API: ids, starting, and refusing bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.models import (
    TASK_QUEUE,
    Approval,
    MigrateTenantInput,
    MigrationReport,
    MigrationStatus,
    Rejection,
    RollbackInput,
)
from workflows.migrate import MigrateTenant, schedule_problem
from workflows.rollback import RollbackTenant
from workflows.steps import MIGRATION_STATE, MIGRATION_STEP, TENANT_ID


class RequestRefused(Exception):
    """Bad input caught before anything starts: nothing was changed."""


def migration_id(tenant: str) -> str:
    # One id per tenant: Temporal itself refuses a second running migration of the same tenant.
    return f"migrate-{tenant}"


def rollback_id(tenant: str) -> str:
    return f"rollback-{tenant}"


async def start_migration(client: Client, input: MigrateTenantInput, *, task_queue: str = TASK_QUEUE,
                          search_attributes: bool = True, workflow_id: str | None = None
                          ) -> WorkflowHandle[MigrateTenant, MigrationReport]:
    problem = schedule_problem(input.scheduled_at, datetime.now(UTC), input.options.advance_notice_days)
    if problem:
        raise RequestRefused(problem)
    attributes = TypedSearchAttributes([SearchAttributePair(TENANT_ID, input.tenant_id),
                                        SearchAttributePair(MIGRATION_STATE, "requested"),
                                        SearchAttributePair(MIGRATION_STEP, "request")]) if search_attributes else None
    wid = workflow_id or migration_id(input.tenant_id)
    try:
        return await client.start_workflow(
            MigrateTenant.run, input, id=wid, task_queue=task_queue,
            search_attributes=attributes or TypedSearchAttributes.empty,
            static_summary=f"Move tenant {input.tenant_id} to a dedicated {input.target} database",
        )
    except WorkflowAlreadyStartedError:
        raise RequestRefused(f"a migration of tenant {input.tenant_id!r} is already running ({wid})") from None


async def start_rollback(client: Client, report: MigrationReport, *, task_queue: str = TASK_QUEUE,
                         workflow_id: str | None = None) -> WorkflowHandle[RollbackTenant, MigrationReport]:
    wid = workflow_id or rollback_id(report.tenant_id)
    try:
        return await client.start_workflow(RollbackTenant.run, RollbackInput(tenant_id=report.tenant_id, report=report),
                                           id=wid, task_queue=task_queue,
                                           static_summary=f"Move tenant {report.tenant_id} back to shared")
    except WorkflowAlreadyStartedError:
        raise RequestRefused(f"a rollback of tenant {report.tenant_id!r} is already running ({wid})") from None


async def read_status(client: Client, workflow_id: str, run_id: str | None = None) -> MigrationStatus:
    """The `status` query, which MigrateTenant and RollbackTenant both answer."""
    # Bounded: without a worker a query would wait for one; callers report the RPCError instead.
    status: MigrationStatus = await client.get_workflow_handle(workflow_id, run_id=run_id).query(
        "status", result_type=MigrationStatus, rpc_timeout=timedelta(seconds=20))
    return status


async def decide(client: Client, workflow_id: str, decision: Approval | Rejection) -> MigrationStatus:
    """Approve or reject through the workflow's Update: its validator's refusal comes back to the caller as
    WorkflowUpdateFailedError, and nothing is recorded."""
    handle = client.get_workflow_handle_for(MigrateTenant.run, workflow_id)
    if isinstance(decision, Approval):
        return await handle.execute_update(MigrateTenant.approve_migration, decision)
    return await handle.execute_update(MigrateTenant.reject_migration, decision)
