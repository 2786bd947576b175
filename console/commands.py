"""Migration commands against a Temporal server: migrate, approve, reject, status, rollback."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from activities.models import (
    Approval,
    MigrateTenantInput,
    MigrationOptions,
    MigrationReport,
    Rejection,
    State,
)
from console.listing import list_migrations
from console.progress import render_status
from tenantmove.settings import Settings
from workflows.client import RequestRefused, migration_id, rollback_id, start_migration, start_rollback
from workflows.migrate import MigrateTenant


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise RequestRefused(f"cannot read {text!r} as a time; expected ISO 8601 like 2026-12-24T22:00:00+01:00")\
            from None
    if value.tzinfo is None:
        raise RequestRefused(f"time {text!r} has no time zone; add one, e.g. {text}+00:00")
    return value


def options_from(settings: Settings) -> MigrationOptions:
    return MigrationOptions(advance_notice_days=settings.advance_notice_days,
                            approval_timeout_hours=settings.approval_timeout_hours,
                            cleanup_grace_hours=settings.cleanup_grace_hours, mode=settings.migration_mode,
                            parallel_tables=settings.parallel_tables, freeze_backlog=settings.freeze_backlog,
                            fanout=settings.import_fanout)


async def migrate(client: Client, settings: Settings, args: argparse.Namespace) -> str:
    input = MigrateTenantInput(tenant_id=args.tenant, reason=args.reason or "", target=args.target,
                               preferred_timeframe=args.timeframe or "", scheduled_at=parse_time(args.at),
                               options=options_from(settings))
    handle = await start_migration(client, input, task_queue=settings.task_queue)
    return f"started {handle.id}: waiting for approval (starter.py approve --tenant {args.tenant} --approver NAME)"


async def approve(client: Client, args: argparse.Namespace) -> str:
    handle = client.get_workflow_handle(migration_id(args.tenant))
    status = await handle.execute_update(MigrateTenant.approve_migration, Approval(
        approver=args.approver, comment=args.comment or "", scheduled_at=parse_time(args.at)))
    return f"approved by {status.approved_by}; state {status.state.value}"


async def reject(client: Client, args: argparse.Namespace) -> str:
    handle = client.get_workflow_handle(migration_id(args.tenant))
    status = await handle.execute_update(MigrateTenant.reject_migration,
                                         Rejection(approver=args.approver, reason=args.reason))
    return f"rejected by {status.rejected_by}"


async def status(client: Client, args: argparse.Namespace) -> str:
    handle = client.get_workflow_handle(args.id or migration_id(args.tenant))
    current = await handle.query(MigrateTenant.query_status)
    return current.model_dump_json(indent=2) if args.json else render_status(current)


async def pending(client: Client, args: argparse.Namespace) -> str:
    """Migrations waiting for approval, found through Temporal visibility (search attributes), each with the
    tenant's figures as its request recorded them: the guide's superadmin view."""
    rows: list[dict[str, Any]] = [{"workflow_id": row.workflow_id, "tenant": row.tenant,
             "requested_at": row.requested_at.isoformat() if row.requested_at else None,
             "figures": row.status.stats.figures if row.status and row.status.stats else {},
             "rows": row.status.stats.rows if row.status and row.status.stats else 0}
            for row in await list_migrations(client, State.AWAITING_APPROVAL, limit=1000)]
    if args.json:
        return json.dumps(rows, indent=2)
    if not rows:
        return "no migration is waiting for approval"
    return "\n".join(f"{r['tenant']:<32} requested {r['requested_at']}  {r['rows']:,} rows  "
                     + ", ".join(f"{k} {v:,}" for k, v in r["figures"].items()) for r in rows)


async def watch(client: Client, args: argparse.Namespace) -> str:
    """Follow a migration until it ends: the status re-rendered on a terminal, new log lines otherwise."""
    import asyncio
    import sys

    handle = client.get_workflow_handle(args.id or migration_id(args.tenant))
    printed, tty = 0, sys.stdout.isatty()
    while True:
        current = await handle.query(MigrateTenant.query_status)
        if tty:
            print("\x1b[2J\x1b[H" + render_status(current), flush=True)
        else:
            for line in current.log[printed:]:
                print(line, flush=True)
            printed = len(current.log)
        if current.state.value in ("completed", "failed", "rolled_back", "rejected", "expired"):
            return f"{current.tenant_id}: {current.state.value}"
        await asyncio.sleep(args.interval)


async def begin_rollback(client: Client, workflow_id: str, task_queue: str) -> WorkflowHandle[Any, MigrationReport]:
    """Start RollbackTenant from a completed migration's report; refused (nothing started) otherwise, and
    when this migration was already rolled back."""
    described = await client.get_workflow_handle(workflow_id).describe()
    handle = client.get_workflow_handle(described.id, run_id=described.run_id, result_type=MigrationReport)
    if described.status != WorkflowExecutionStatus.COMPLETED:
        raise RequestRefused(f"{handle.id} is {described.status.name.lower() if described.status else 'unknown'};"
                             " only a completed migration can be rolled back (cancel a running one instead)")
    report = await handle.result()
    if report.state is not State.COMPLETED:  # rejected or expired: the run ended cleanly but moved nothing
        raise RequestRefused(f"{handle.id} ended {report.state.value}; there is nothing to roll back")
    try:
        earlier = await client.get_workflow_handle(rollback_id(report.tenant_id)).describe()
    except RPCError:
        earlier = None
    if earlier is not None and earlier.status == WorkflowExecutionStatus.COMPLETED and described.close_time \
            and earlier.start_time > described.close_time:
        raise RequestRefused(f"{handle.id} was already rolled back by {earlier.id}")
    return await start_rollback(client, report, task_queue=task_queue)


async def rollback(client: Client, settings: Settings, args: argparse.Namespace) -> str:
    rolled = await begin_rollback(client, migration_id(args.tenant), settings.task_queue)
    result = await rolled.result()
    return json.dumps(result.model_dump(mode="json"), indent=2)
