"""Migrations found through Temporal visibility, each with its status: shared by `pending` and the HTTP API."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowQueryFailedError
from temporalio.service import RPCError

from activities.models import MigrateTenantInput, MigrationReport, MigrationStatus, State
from tenantmove.db import mask_dsn
from workflows.migrate import MigrateTenant
from workflows.steps import MIGRATION_STATE, TENANT_ID


class MigrationRow(BaseModel):
    workflow_id: str
    run_id: str | None = None
    tenant: str
    state: str  # the workflow's own state (MigrationState search attribute when its status cannot be read)
    execution: str  # Temporal's view: running, completed, failed, terminated, ...
    requested_at: datetime | None = None
    closed_at: datetime | None = None
    status: MigrationStatus | None = None  # a running one's status query; None when no worker answered
    report: MigrationReport | None = None  # a finished one's result, read from history (no worker needed)
    error: str | None = None  # why a finished one failed
    reason: str = ""  # from the request (the workflow's input), for runs waiting for a decision
    preferred_timeframe: str = ""


def visibility_query(state: State | None) -> str:
    # Constant strings only: a user-supplied value never reaches the visibility query language.
    query = 'WorkflowType = "MigrateTenant"'
    if state is not None:
        query += f' AND MigrationState = "{State(state).value}"'
        if state is State.AWAITING_APPROVAL:
            query += ' AND ExecutionStatus = "Running"'
    return query


async def request_of(client: Client, workflow_id: str, run_id: str | None) -> MigrateTenantInput | None:
    """The request as started (reason, preferred time frame): the first event of the run's history."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    async for event in handle.fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        values = await client.data_converter.decode(payloads, [MigrateTenantInput]) if payloads else []
        return values[0] if values and isinstance(values[0], MigrateTenantInput) else None
    return None


async def list_migrations(client: Client, state: State | None = None, limit: int = 50) -> list[MigrationRow]:
    """Newest first. A running row carries the workflow's status query (the tenant's figures recorded with
    the request, progress, per-table rows); a finished one its report or failure, read from history."""
    rows: list[MigrationRow] = []
    async for execution in client.list_workflows(visibility_query(state), limit=limit):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id, result_type=MigrationReport)
        status: MigrationStatus | None = None
        report: MigrationReport | None = None
        error: str | None = None
        if execution.status == WorkflowExecutionStatus.RUNNING:
            try:  # bounded: a run whose worker is gone must not stall the whole list
                status = await handle.query(MigrateTenant.query_status, rpc_timeout=timedelta(seconds=5))
            except (RPCError, WorkflowQueryFailedError):
                pass
        elif execution.status == WorkflowExecutionStatus.COMPLETED:
            report = await handle.result()
        else:
            try:
                await handle.result()
            except WorkflowFailureError as exc:
                error = innermost(exc)
        request = await request_of(client, execution.id, execution.run_id) \
            if status and status.state is State.AWAITING_APPROVAL else None
        attributes = execution.typed_search_attributes
        rows.append(MigrationRow(
            workflow_id=execution.id, run_id=execution.run_id,
            tenant=str(attributes.get(TENANT_ID) or (status.tenant_id if status else "")),
            state=status.state.value if status else str(attributes.get(MIGRATION_STATE) or "unknown"),
            execution=execution_name(execution.status), requested_at=execution.start_time,
            closed_at=execution.close_time, status=status, report=report, error=error,
            reason=request.reason if request else "",
            preferred_timeframe=request.preferred_timeframe if request else ""))
    return rows


def execution_name(status: WorkflowExecutionStatus | None) -> str:
    return status.name.lower() if status else "unknown"


def innermost(exc: BaseException) -> str:
    """The root cause of a failed run, as `Type: message`, every password masked."""
    cause: BaseException = exc
    while getattr(cause, "cause", None) is not None:
        cause = cause.cause  # type: ignore[attr-defined]
    kind = getattr(cause, "type", None) or type(cause).__name__
    return mask_dsn(f"{kind}: {getattr(cause, 'message', None) or cause}")
