"""Migration commands against a Temporal server: migrate, approve, reject, status, rollback."""

from __future__ import annotations

import argparse
import json
from datetime import datetime

from temporalio.client import Client, WorkflowExecutionStatus

from activities.models import Approval, MigrateTenantInput, MigrationOptions, MigrationReport, Rejection
from console.progress import render_status
from tenantmove.settings import Settings
from workflows.client import RequestRefused, migration_id, start_migration, start_rollback
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
                            cleanup_grace_hours=settings.cleanup_grace_hours)


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


async def rollback(client: Client, settings: Settings, args: argparse.Namespace) -> str:
    described = await client.get_workflow_handle(migration_id(args.tenant)).describe()
    handle = client.get_workflow_handle(described.id, run_id=described.run_id, result_type=MigrationReport)
    if described.status != WorkflowExecutionStatus.COMPLETED:
        raise RequestRefused(f"{handle.id} is {described.status.name.lower() if described.status else 'unknown'};"
                             " only a completed migration can be rolled back (cancel a running one instead)")
    report = await handle.result()
    rolled = await start_rollback(client, report, task_queue=settings.task_queue)
    result = await rolled.result()
    return json.dumps(result.model_dump(mode="json"), indent=2)
