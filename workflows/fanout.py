"""The import as one activity per table, scheduled as soon as a table's parents are loaded, on any worker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.fanout import FanoutActivities
    from activities.models import (
        CopyTableInput,
        DatabaseRef,
        HoldSnapshotInput,
        PlanImportResult,
    )
    from workflows.steps import LONG, ONCE, TIMEOUTS

SNAPSHOT_ATTEMPTS = 3
# Histories recorded before the copies waited for the snapshot replay without that step.
SNAPSHOT_BEFORE_COPIES = "snapshot-before-copies"


def _snapshot_lost(exc: BaseException) -> bool:
    cause = exc.cause if isinstance(exc, ActivityError) else None
    return isinstance(cause, ApplicationError) and cause.type == "SnapshotLost"


async def copy_tables(tenant: str, database: DatabaseRef, planned: PlanImportResult, parallel: int,
                      heartbeat_timeout: timedelta | None, on_table: Callable[[str, int], None]) -> None:
    """Hold one snapshot while every table is copied by its own activity, at most `parallel` at once. A holder
    that dies takes its snapshot along: the copies still to start fail with SnapshotLost, and all tables run
    again on a new snapshot (each copy is idempotent, so tables already right are only checksummed)."""
    for attempt in range(SNAPSHOT_ATTEMPTS):
        import_id = f"{workflow.info().run_id}-{attempt}"
        hold = TIMEOUTS["hold_snapshot"]
        holder = workflow.start_activity_method(
            FanoutActivities.hold_snapshot, HoldSnapshotInput(tenant_id=tenant, import_id=import_id),
            start_to_close_timeout=hold.start_to_close, heartbeat_timeout=hold.heartbeat, retry_policy=ONCE,
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, summary=f"snapshot {tenant}")
        try:
            if workflow.patched(SNAPSHOT_BEFORE_COPIES):
                ready = TIMEOUTS["await_snapshot"]
                await workflow.execute_activity_method(
                    FanoutActivities.await_snapshot, HoldSnapshotInput(tenant_id=tenant, import_id=import_id),
                    start_to_close_timeout=ready.start_to_close, retry_policy=LONG, summary=f"snapshot ready {tenant}")
            await _copy_all(tenant, database, planned, parallel, heartbeat_timeout, import_id, on_table)
            return
        except ActivityError as exc:
            if not _snapshot_lost(exc) or attempt == SNAPSHOT_ATTEMPTS - 1:
                raise
            workflow.logger.warning("snapshot lost; copying again on a new one", extra={"tenant": tenant})
        finally:
            holder.cancel()
            try:
                await holder
            except (ActivityError, CancelledError, asyncio.CancelledError):
                pass


async def _copy_all(tenant: str, database: DatabaseRef, planned: PlanImportResult, parallel: int,
                    heartbeat_timeout: timedelta | None, import_id: str,
                    on_table: Callable[[str, int], None]) -> None:
    loaded = {name: asyncio.Event() for name in planned.order}
    slots = asyncio.Semaphore(parallel)
    timing = TIMEOUTS["import"]

    async def one(name: str) -> None:
        for parent in planned.parents.get(name, []):
            await loaded[parent].wait()
        async with slots:
            result = await workflow.execute_activity_method(
                FanoutActivities.copy_table,
                CopyTableInput(tenant_id=tenant, database=database, table=name, import_id=import_id),
                start_to_close_timeout=timing.start_to_close, heartbeat_timeout=heartbeat_timeout or timing.heartbeat,
                retry_policy=LONG, summary=f"copy {name}",
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)
        on_table(name, result.rows)
        loaded[name].set()

    tasks = [asyncio.create_task(one(name)) for name in planned.order]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
