"""Live progress of one migration: its status query folded with the import's heartbeat, as Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from temporalio.client import Client, WorkflowExecutionStatus

from activities.models import ImportProgress, MigrationStatus, State, TableProgress
from api.schemas import Progress, StepProgress
from console.listing import execution_name
from workflows.client import read_status
from workflows.steps import STEPS

FINAL_STATES = {State.COMPLETED, State.FAILED, State.ROLLED_BACK, State.REJECTED, State.EXPIRED}
# RollbackTenant's steps, in its order (workflows/rollback.py); restore runs only when cleanup had run.
ROLLBACK_STEPS = ["maintenance_on", "restore", "switch", "maintenance_off", "drop_database", "notify"]


async def _import_heartbeat(client: Client, workflow_id: str) -> ImportProgress | None:
    """What the running import last reported (table, rows): the status query learns it only at the end."""
    described = await client.get_workflow_handle(workflow_id).describe()
    for pending in described.raw_description.pending_activities:
        if pending.activity_type.name == "import_tenant" and pending.heartbeat_details.payloads:
            values = await client.data_converter.decode(pending.heartbeat_details.payloads, [ImportProgress])
            if values and isinstance(values[0], ImportProgress):
                return values[0]
    return None


def _steps(status: MigrationStatus, running: bool, workflow_type: str) -> list[StepProgress]:
    out = []
    for name in ROLLBACK_STEPS if workflow_type == "RollbackTenant" else STEPS:
        timing = status.timings.get(name)
        if timing and timing.seconds is not None:
            out.append(StepProgress(name=name, state="done", percent=100, seconds=timing.seconds))
        elif name == status.step and running:
            out.append(StepProgress(name=name, state="running", percent=0))
        elif status.state in FINAL_STATES:
            out.append(StepProgress(name=name, state="skipped", percent=0))
        else:
            out.append(StepProgress(name=name, state="pending", percent=0))
    return out


async def snapshot(client: Client, workflow_id: str) -> Progress:
    handle = client.get_workflow_handle(workflow_id)
    described = await handle.describe()
    status = await read_status(client, workflow_id)
    running = described.status == WorkflowExecutionStatus.RUNNING
    tables = {name: table.model_copy() for name, table in status.tables.items()}
    steps = _steps(status, running, described.workflow_type)
    beat = await _import_heartbeat(client, workflow_id) if running and status.step == "import" else None
    if beat is not None:
        for name in beat.done:
            table = tables.setdefault(name, TableProgress())
            table.rows_done, table.done = table.rows_total, True
        if beat.table:
            tables.setdefault(beat.table, TableProgress(rows_total=beat.rows_expected or 0)).rows_done = beat.rows
        total = sum(t.rows_total for t in tables.values())
        current = next(s for s in steps if s.name == "import")
        current.percent = min(99, round(100 * sum(t.rows_done for t in tables.values()) / total)) if total else 0
    return Progress(
        id=workflow_id, kind=described.workflow_type, tenant=status.tenant_id, state=status.state.value, execution=execution_name(described.status),
        step=status.step, percent=status.progress, table=beat.table if beat else None,
        rows=beat.rows if beat else None, rows_expected=beat.rows_expected if beat else None,
        steps=steps, tables=tables, last_error=status.last_error,
        # The run's end, not its last state: the state is final a moment before the workflow returns.
        finished=not running)


async def events(client: Client, workflow_id: str, interval: float = 0.5, keepalive: float = 15.0
                 ) -> AsyncIterator[str]:
    """`progress` whenever something changed, a comment line now and then so proxies keep the connection,
    then `end` with the final picture once the workflow has ended."""
    last, number, quiet = "", 0, 0.0
    while True:
        current = await snapshot(client, workflow_id)
        data = current.model_dump_json()
        if data != last:
            number += 1
            yield f"id: {number}\nevent: {'end' if current.finished else 'progress'}\ndata: {data}\n\n"
            last, quiet = data, 0.0
        elif quiet >= keepalive:
            yield ": keepalive\n\n"
            quiet = 0.0
        if current.finished:
            return
        await asyncio.sleep(interval)
        quiet += interval


def sse_error(message: str) -> str:
    return f"event: error\ndata: {json.dumps({'detail': message})}\n\n"
