"""Activities of the online mode: start and stop change capture, and replay what it recorded."""

from __future__ import annotations

import time

from temporalio import activity

from activities.common import Deps, boundary
from activities.models import (
    CaptureInput,
    CaptureResult,
    ReplayInput,
    ReplayResult,
    StopCaptureResult,
    VerifyChangesInput,
    VerifyInput,
    VerifyResult,
)
from tenantmove import db
from tenantmove.capture import Capture, backlog, start_capture, stop_capture, writers_barrier
from tenantmove.logs import get_logger
from tenantmove.online_verify import verify_at_snapshot, verify_changes
from tenantmove.replay import apply_changes


class OnlineActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn
    @boundary
    async def start_capture(self, input: CaptureInput) -> CaptureResult:
        """Triggers on every copied table of the shared database; idempotent (a retry replaces them)."""
        async with db.connection(self.deps.shared_dsn) as conn:
            plan = await self.deps.plan(conn)
            tables = await start_capture(conn, plan, input.tenant_id, Capture(input.capture_id))
        return CaptureResult(tables=tables)

    @activity.defn
    @boundary
    async def stop_capture(self, input: CaptureInput) -> StopCaptureResult:
        """Drop the triggers, function and change table; nothing to drop is no error (saga and retries)."""
        async with db.connection(self.deps.shared_dsn) as conn:
            dropped = await stop_capture(conn, Capture(input.capture_id))
        return StopCaptureResult(triggers_dropped=dropped)

    @activity.defn
    @boundary
    async def replay_changes(self, input: ReplayInput) -> ReplayResult:
        """Replay rounds until the backlog is small (catch-up) or, under maintenance, until everything
        recorded is on the target (final). Each round commits on its own, so a retry loses nothing."""
        capture, started = Capture(input.capture_id), time.monotonic()
        log = get_logger(tenant=input.tenant_id, step="replay", final=input.final)
        totals = ReplayTotals()
        async with db.connection(self.deps.shared_dsn) as src, \
                db.connection(self.deps.dedicated_dsn(input.database)) as dst:
            plan = await self.deps.plan(src)
            if input.final:
                await writers_barrier(src, plan)
            limit = 20_000
            while True:
                round_ = await apply_changes(src, dst, plan, input.tenant_id, capture, limit=limit,
                                             record=input.final)
                totals.add(round_.changes, round_.upserted, round_.deleted)
                waiting = await backlog(src, capture)
                activity.heartbeat(f"replayed {totals.changes:,} change(s), {waiting:,} waiting")
                # Final: a round that took less than a full batch has read every change committed before
                # it began, which includes every write acknowledged before the freeze.
                if (input.final and round_.changes < limit) or (not input.final and waiting <= input.until_backlog):
                    break
                if not input.final and time.monotonic() - started > input.max_seconds:
                    log.warning("catch-up stopped by its time budget", backlog=waiting)
                    break
        log.info("changes replayed", changes=totals.changes, rounds=totals.rounds, backlog=waiting)
        return ReplayResult(changes=totals.changes, rounds=totals.rounds, backlog=waiting,
                            upserted=totals.upserted, deleted=totals.deleted, seconds=time.monotonic() - started)


    @activity.defn
    @boundary
    async def verify_at_snapshot(self, input: VerifyInput) -> VerifyResult:
        """Every table compared while the tenant still writes (see tenantmove/online_verify.py)."""
        assert input.capture_id is not None, "the online verify needs the capture"
        async with db.connection(self.deps.shared_dsn) as conn:
            plan = await self.deps.plan(conn)
        sums = await verify_at_snapshot(self.deps.shared_dsn, self.deps.dedicated_dsn(input.database), plan,
                                        input.tenant_id, Capture(input.capture_id), connections=input.parallel_tables)
        return VerifyResult(tables={name: s.rows for name, s in sums.items()})

    @activity.defn
    @boundary
    async def verify_changes(self, input: VerifyChangesInput) -> VerifyResult:
        """Under the freeze: the keys replayed since verify_at_snapshot, compared on both sides."""
        async with db.connection(self.deps.shared_dsn) as src, \
                db.connection(self.deps.dedicated_dsn(input.database)) as dst:
            plan = await self.deps.plan(src)
            counts = await verify_changes(src, dst, plan, input.tenant_id, Capture(input.capture_id))
        return VerifyResult(tables=counts)


class ReplayTotals:
    def __init__(self) -> None:
        self.changes = self.rounds = 0
        self.upserted: dict[str, int] = {}
        self.deleted: dict[str, int] = {}

    def add(self, changes: int, upserted: dict[str, int], deleted: dict[str, int]) -> None:
        self.changes += changes
        self.rounds += 1
        for total, part in ((self.upserted, upserted), (self.deleted, deleted)):
            for name, rows in part.items():
                total[name] = total.get(name, 0) + rows
