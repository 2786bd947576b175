"""MigrateTenant: request, approval, schedule, then the steps that move one tenant, with a saga that undoes them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.models import (
        Approval,
        DatabaseRef,
        MigrateTenantInput,
        MigrationReport,
        MigrationStatus,
        PrecheckInput,
        Rejection,
        RequestInput,
        Reschedule,
        State,
        TableProgress,
    )
    from activities.tenant import TenantActivities
    from workflows.base import PROGRESS_ONLINE, Stop
    from workflows.moves import MoveSteps


def schedule_problem(at: datetime | None, now: datetime, notice_days: float) -> str | None:
    """Why a scheduled time is refused, or None. Shared by the workflow, its validators and the starter."""
    if at is None:
        return None
    if at.tzinfo is None:
        return f"scheduled time {at.isoformat()} has no time zone"
    if at <= now:
        return f"scheduled time {at.isoformat()} is in the past (now {now.isoformat()})"
    if at < now + timedelta(days=notice_days):
        return (f"scheduled time {at.isoformat()} gives less than the required {notice_days:g} days of "
                f"advance notice (earliest {(now + timedelta(days=notice_days)).isoformat()})")
    return None


def _not_a(model: type, value: object) -> str | None:
    # The converter hands a JSON null to an update as None, not as a validation error; accepted, it would
    # crash the handler and with it every workflow task from then on.
    if isinstance(value, model):
        return None
    return f"expected a {model.__name__} object, found {type(value).__name__}"


@workflow.defn
class MigrateTenant(MoveSteps):
    @workflow.init
    def __init__(self, input: MigrateTenantInput) -> None:
        # Built from the input before any handler runs: a signal or query that arrives with the first
        # workflow task already finds the status and the notice period.
        super().__init__(MigrationStatus(tenant_id=input.tenant_id, target=input.target,
                                         scheduled_at=input.scheduled_at),
                         timedelta(seconds=input.options.heartbeat_timeout_seconds))
        self._notice_days = input.options.advance_notice_days
        self._approval: Approval | None = None
        self._rejection: Rejection | None = None
        self._database: DatabaseRef | None = None
        self._rows: dict[str, int] = {}
        self._verified: dict[str, int] = {}
        self._reschedule_to: datetime | None = None
        self._frozen_at: datetime | None = None
        self._cut_over = False  # online: the tenant writes to its dedicated database (no automatic undo)
        self.status.mode = input.options.mode
        if input.options.mode == "online":
            self.progress_at_end = PROGRESS_ONLINE

    # ---- platform concerns: run the steps, unwind on any failure or cancellation --------------------
    @workflow.run
    async def run(self, input: MigrateTenantInput) -> MigrationReport:
        self.publish()
        try:
            await self._migrate(input)
        except Stop as stop:  # rejected or expired before anything changed
            self.finish(stop.state, stop.message)
            return self._report()
        except BaseException as exc:
            await self.unwind(exc)
            if self._cut_over:
                self.finish(State.FAILED, "failed after the cutover: the tenant stays on its dedicated database "
                                          "and its rows in shared are intact; RollbackTenant undoes the move")
            raise
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._report()

    # ---- the happy path: each compensation is registered before its step ----------------------------
    async def _migrate(self, input: MigrateTenantInput) -> None:
        tenant, options = input.tenant_id, input.options
        problem = schedule_problem(input.scheduled_at, workflow.now(), options.advance_notice_days)
        if problem:
            raise ApplicationError(problem, type="ScheduleRejected", non_retryable=True)
        requested = await self.step("request", TenantActivities.request_migration,
                                    RequestInput(tenant_id=tenant, target=input.target))
        self.status.stats = requested.stats
        self.status.tables = {name: TableProgress(rows_total=rows) for name, rows in requested.stats.tables.items()}
        await self._await_approval(options.approval_timeout_hours)
        await self._await_schedule(input)
        self.set_state(State.RUNNING)
        await self.step("precheck", TenantActivities.precheck, PrecheckInput(tenant_id=tenant))

        if options.mode == "offline":
            await self._move_offline(input, requested.stats.tables)
        else:
            await self._move_online(input, requested.stats.tables)
        # From here on the migration stands: nothing is undone if only the notification fails.
        self.compensations.clear()
        await self._notify(tenant, "completed", "migration to the dedicated database completed")
        self.status.progress = 100
        self.set_state(State.COMPLETED)

    # ---- approval and schedule ----------------------------------------------------------------------
    async def _await_approval(self, timeout_hours: float) -> None:
        self.set_state(State.AWAITING_APPROVAL, step="approval")
        try:
            await workflow.wait_condition(lambda: self._approval is not None or self._rejection is not None,
                                          timeout=timedelta(hours=timeout_hours))
        except TimeoutError:
            raise Stop(State.EXPIRED, f"no decision within {timeout_hours:g} hours") from None
        if self._rejection is not None:
            raise Stop(State.REJECTED, f"rejected by {self._rejection.approver}: {self._rejection.reason}")
        self.advance("approval")

    async def _await_schedule(self, input: MigrateTenantInput) -> None:
        notice = input.options.advance_notice_days
        chosen = self._reschedule_to or (self._approval.scheduled_at if self._approval else None) \
            or input.scheduled_at
        # A time someone chose is checked again now (the approval may have come late); without one the
        # migration starts as soon as the notice period allows.
        problem = schedule_problem(chosen, workflow.now(), notice)
        if problem:
            raise ApplicationError(problem, type="ScheduleRejected", non_retryable=True)
        at = chosen or workflow.now() + timedelta(days=notice)
        self.status.scheduled_at = at
        self.set_state(State.SCHEDULED, step="schedule")
        await self._notify(input.tenant_id, "scheduled", f"migration scheduled for {at.isoformat()}",
                           step="announce", scheduled_at=at.isoformat())
        if not workflow.patched("reschedule"):  # runs recorded before the Update existed sleep as they did
            while (delay := at - workflow.now()) > timedelta(0):
                await workflow.sleep(delay)
        else:
            while (delay := at - workflow.now()) > timedelta(0):
                try:  # a reschedule wakes the wait and starts it over with the new time
                    await workflow.wait_condition(functools.partial(self._moved_from, at), timeout=delay)
                except TimeoutError:
                    break
                at = self._reschedule_to or at
                await self._notify(input.tenant_id, "scheduled", f"migration moved to {at.isoformat()}",
                                   step="announce", scheduled_at=at.isoformat())
        self.advance("schedule")

    # ---- signals, updates, query --------------------------------------------------------------------
    def _decision_problem(self) -> str | None:
        if self._approval is not None or self._rejection is not None:
            return "a decision was already recorded"
        if self.status.state not in (State.REQUESTED, State.AWAITING_APPROVAL):
            return f"the migration is {self.status.state.value}, not awaiting approval"
        return None

    @workflow.signal
    def approve(self, payload: Any) -> None:
        self._take_signal("approve", payload, Approval, self._set_approval)

    @workflow.signal
    def reject(self, payload: Any) -> None:
        self._take_signal("reject", payload, Rejection, self._set_rejection)

    def _take_signal(self, name: str, payload: Any, model: type, apply: Callable[[Any], None]) -> None:
        """A malformed or late signal is recorded in the status and ignored: it must never fail the run."""
        try:
            value = model.model_validate(payload)  # type: ignore[attr-defined]
        except ValidationError as exc:
            self.status.ignored_signals.append(f"{name}: malformed payload ({exc.error_count()} error(s))")
            return
        problem = self._decision_problem() or self._schedule_problem_of(value)
        if problem:
            self.status.ignored_signals.append(f"{name}: ignored, {problem}")
            return
        apply(value)

    def _schedule_problem_of(self, value: Any) -> str | None:
        return schedule_problem(getattr(value, "scheduled_at", None), workflow.now(), self._notice_days)

    def _set_approval(self, approval: Approval) -> None:
        self._approval = approval
        self.status.approved_by = approval.approver
        self.log(f"approved by {approval.approver}")

    def _set_rejection(self, rejection: Rejection) -> None:
        self._rejection = rejection
        self.status.rejected_by = rejection.approver
        self.log(f"rejected by {rejection.approver}")

    @workflow.update
    async def approve_migration(self, approval: Approval) -> MigrationStatus:
        self._set_approval(approval)
        return self.status

    @approve_migration.validator
    def _validate_approval(self, approval: Approval) -> None:
        problem = _not_a(Approval, approval) or self._decision_problem() or self._schedule_problem_of(approval)
        if problem:
            raise ValueError(problem)

    @workflow.update
    async def reject_migration(self, rejection: Rejection) -> MigrationStatus:
        self._set_rejection(rejection)
        return self.status

    @reject_migration.validator
    def _validate_rejection(self, rejection: Rejection) -> None:
        problem = _not_a(Rejection, rejection) or self._decision_problem()
        if problem:
            raise ValueError(problem)

    def _moved_from(self, at: datetime) -> bool:
        return self._reschedule_to is not None and self._reschedule_to != at

    @workflow.update
    async def reschedule(self, change: Reschedule) -> MigrationStatus:
        self._reschedule_to = change.scheduled_at
        self.status.scheduled_at = change.scheduled_at
        self.log(f"rescheduled to {change.scheduled_at.isoformat()} by {change.by}")
        return self.status

    @reschedule.validator
    def _validate_reschedule(self, change: Reschedule) -> None:
        if not isinstance(change, Reschedule):
            raise ValueError("expected a Reschedule with scheduled_at and by")
        if self.status.state not in (State.REQUESTED, State.AWAITING_APPROVAL, State.SCHEDULED):
            raise ValueError(f"the migration is {self.status.state.value}; only a waiting one can be rescheduled")
        problem = schedule_problem(change.scheduled_at, workflow.now(), self._notice_days)
        if problem:
            raise ValueError(problem)

    @workflow.query(name="status")
    def query_status(self) -> MigrationStatus:
        return self.status

    def _report(self) -> MigrationReport:
        return MigrationReport(
            tenant_id=self.status.tenant_id, state=self.status.state, database=self._database,
            archive_id=self.status.archive_id, cleanup_done=self.status.cleanup_done, tables=dict(self._rows),
            timings={name: t.seconds or 0.0 for name, t in self.status.timings.items()},
            mode=self.status.mode, write_freeze_seconds=self.status.write_freeze_seconds,
            changes_replayed=self.status.changes_replayed,
        )

