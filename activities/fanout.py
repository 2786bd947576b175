"""Import as one activity per table: any worker on the task queue copies a table, all from one held snapshot."""

from __future__ import annotations

import asyncio
import os
import socket
import time

import psycopg
from temporalio import activity

from activities.common import Deps, boundary
from activities.models import (
    CopyTableInput,
    CopyTableResult,
    FinishImportInput,
    FinishImportResult,
    HoldSnapshotInput,
    HoldSnapshotResult,
    PlanImportInput,
    PlanImportResult,
    SnapshotReadyResult,
)
from tenantmove import db
from tenantmove.deferred import defer_for_load, finish_load
from tenantmove.errors import TransientError
from tenantmove.mover import restore_cycle_links, suspend_cycle_links
from tenantmove.parallel import copy_table, enforced_parents, largest_first
from tenantmove.sequences import advance_sequences
from tenantmove.snapshot import exported_snapshot, publish_snapshot, published_snapshot, withdraw_snapshot

HOLD_BEAT_SECONDS = 1.0
SNAPSHOT_WAIT_SECONDS = 30.0


class FanoutActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn
    @boundary
    async def plan_import(self, input: PlanImportInput) -> PlanImportResult:
        """The tables largest first with the parents each waits for (those whose foreign keys the target
        checks); cycle links suspended, plain indexes and foreign keys deferred on the target."""
        async with db.connection(self.deps.shared_dsn) as src, \
                db.connection(self.deps.dedicated_dsn(input.database)) as dst:
            plan = await self.deps.plan(src)
            await suspend_cycle_links(dst, plan)
            if self.deps.settings.defer_target_constraints:
                await defer_for_load(dst, plan.schema, plan.load_order)
            parents = await enforced_parents(dst, plan)
        return PlanImportResult(order=largest_first(plan, plan.load_order), parents=parents)

    @activity.defn
    @boundary
    async def hold_snapshot(self, input: HoldSnapshotInput) -> HoldSnapshotResult:
        """Export a snapshot of shared, publish its id, and keep its transaction open until cancelled. If this
        worker dies the snapshot dies with it, and copies that have not adopted it yet fail (SnapshotLost)."""
        started = time.monotonic()
        async with db.connection(self.deps.shared_dsn) as holder, \
                db.connection(self.deps.shared_dsn, autocommit=True) as registry, \
                exported_snapshot(holder) as snapshot_id:
            await publish_snapshot(registry, input.import_id, snapshot_id)
            try:
                while True:
                    activity.heartbeat(snapshot_id)
                    await asyncio.sleep(HOLD_BEAT_SECONDS)
            except asyncio.CancelledError:
                await withdraw_snapshot(registry, input.import_id)
        return HoldSnapshotResult(snapshot_id=snapshot_id, seconds=time.monotonic() - started)

    @activity.defn
    @boundary
    async def copy_table(self, input: CopyTableInput) -> CopyTableResult:
        """One table in the held snapshot; idempotent like every copy (a retry skips or repairs it)."""
        async with db.connection(self.deps.shared_dsn) as src, \
                db.connection(self.deps.dedicated_dsn(input.database)) as dst:
            snapshot_id = await self._wait_for_snapshot(src, input.import_id, input.table)
            plan = await self.deps.plan(src)
            last_beat = 0.0

            def beat(table: str, rows: int, _bytes: int) -> None:
                nonlocal last_beat
                if time.monotonic() - last_beat >= HOLD_BEAT_SECONDS:
                    last_beat = time.monotonic()
                    activity.heartbeat(f"copying {table} {rows:,}")

            result = await copy_table(src, dst, plan, input.tenant_id, input.table, snapshot_id, on_progress=beat,
                                      max_rows_per_second=self.deps.settings.copy_max_rows_per_second)
        return CopyTableResult(table=result.table, rows=result.rows, method=result.method,
                               worker=f"{os.getpid()}@{socket.gethostname()}")

    @activity.defn
    @boundary
    async def await_snapshot(self, input: HoldSnapshotInput) -> SnapshotReadyResult:
        """Return once the holder has published the import's snapshot. The workflow schedules the copies only
        then: copies scheduled with the holder could take every activity slot and wait for a snapshot whose
        holder waited for a slot (34 s lost in a test, until the copies' own wait ran out)."""
        async with db.connection(self.deps.shared_dsn) as conn:
            return SnapshotReadyResult(snapshot_id=await self._wait_for_snapshot(conn, input.import_id))

    async def _wait_for_snapshot(self, conn: psycopg.AsyncConnection, import_id: str, table: str = "*") -> str:
        # The holder starts alongside; give it a moment before failing to the retry policy.
        deadline = time.monotonic() + SNAPSHOT_WAIT_SECONDS
        while (snapshot_id := await published_snapshot(conn, import_id)) is None:
            if time.monotonic() > deadline:
                raise TransientError(f"no snapshot published for import {import_id}", table=table)
            activity.heartbeat("waiting for the snapshot")
            await asyncio.sleep(0.1)
        return snapshot_id

    @activity.defn
    @boundary
    async def finish_import(self, input: FinishImportInput) -> FinishImportResult:
        """Add back the suspended cycle links (validating them), advance the copied tables' sequences and
        put back the deferred indexes and foreign keys."""
        async with db.connection(self.deps.shared_dsn) as src, \
                db.connection(self.deps.dedicated_dsn(input.database)) as dst:
            plan = await self.deps.plan(src)
            await restore_cycle_links(src, dst, plan)
            moved = await advance_sequences(dst, plan, input.tables)
            await dst.commit()
        await finish_load(self.deps.dedicated_dsn(input.database), connections=self.deps.settings.parallel_tables)
        return FinishImportResult(sequences=moved)
