"""The saga machinery the workflows share: status bookkeeping, one activity call shape, compensations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.models import MigrationStatus, State, StepTiming
    from workflows.steps import (
        LONG,
        MIGRATION_STATE,
        MIGRATION_STEP,
        PROGRESS_AT_END,
        PROGRESS_ONLINE,
        QUICK,
    QUICK_HEARTBEAT,
        TENANT_ID,
        TIMEOUTS,
        UNDO,
    )

LOG_LINES = 200
__all__ = ["PROGRESS_ONLINE", "SagaWorkflow", "Stop", "describe"]


class Stop(Exception):
    """A decision that ends the workflow before anything changed: rejected or expired."""

    def __init__(self, state: State, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


@dataclass
class Compensation:
    name: str
    method: Callable[..., Any]
    arg: Any  # the activity input, or a callable building it once the step's result is known
    when: Callable[[], bool] | None = None


def timing_key(step: str) -> str:
    return {"maintenance_on": "maintenance", "maintenance_off": "maintenance", "announce": "notify"}.get(step, step)


def describe(exc: BaseException) -> str:
    """The innermost application error's type and message: what an operator needs from a failure chain."""
    cause: BaseException | None = exc
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type or 'ApplicationError'}: {cause.message}"
    if isinstance(cause, CancelledError | asyncio.CancelledError):
        return "cancelled"
    return f"{type(cause).__name__}: {cause}"


class SagaWorkflow:
    def __init__(self, status: MigrationStatus, heartbeat_timeout: timedelta | None = None) -> None:
        self.status = status
        self.compensations: list[Compensation] = []
        self.heartbeat_timeout = heartbeat_timeout
        self.progress_at_end = PROGRESS_AT_END

    # ---- status -------------------------------------------------------------------------------------
    def log(self, line: str) -> None:
        stamp = workflow.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        self.status.log = [*self.status.log, f"{stamp} {line}"][-LOG_LINES:]
        workflow.logger.info(line, extra={"tenant": self.status.tenant_id, "step": self.status.step})

    def publish(self) -> None:
        """Search attributes for `workflow list --query`, and the current details the Temporal UI shows.
        Only upserted when the workflow was started with TenantId: then the namespace has the attributes
        registered; upserting unregistered ones would fail every workflow task."""
        s = self.status
        workflow.set_current_details(f"{s.state.value}: {s.step} ({s.progress}%)")
        if workflow.info().typed_search_attributes.get(TENANT_ID) is not None:
            workflow.upsert_search_attributes([MIGRATION_STATE.value_set(s.state.value),
                                               MIGRATION_STEP.value_set(s.step)])

    def set_state(self, state: State, step: str | None = None) -> None:
        self.status.state = state
        if step:
            self.status.step = step
        self.log(f"state {state.value}" + (f" at {step}" if step else ""))
        self.publish()

    def begin(self, step: str) -> None:
        self.status.step = step
        self.status.timings[step] = StepTiming(started_at=workflow.now())
        self.publish()

    def advance(self, step: str) -> None:
        timing = self.status.timings.get(step)
        if timing:
            timing.finished_at = workflow.now()
            timing.seconds = (timing.finished_at - timing.started_at).total_seconds()
        self.status.progress = max(self.status.progress, self.progress_at_end.get(step, self.status.progress))
        self.log(f"{step} done")
        self.publish()

    def finish(self, state: State, message: str | None = None) -> None:
        if message:
            self.log(message)
        self.set_state(state)

    # ---- steps and compensations --------------------------------------------------------------------
    async def step(self, name: str, method: Callable[..., Any], arg: Any) -> Any:
        self.begin(name)
        timing = TIMEOUTS[timing_key(name)]
        # Every step heartbeats (activities.common keeps short ones alive): a worker killed mid-step is noticed
        # after the heartbeat timeout, not after the step's start-to-close timeout.
        heartbeat = self.heartbeat_timeout or timing.heartbeat or QUICK_HEARTBEAT
        result = await workflow.execute_activity_method(
            method, arg, start_to_close_timeout=timing.start_to_close, heartbeat_timeout=heartbeat,
            retry_policy=LONG if timing.heartbeat else QUICK, summary=f"{name} {self.status.tenant_id}",
            # Wait for a cancelled activity to stop before compensating: dropping a database while an
            # import still writes to it would race.
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        # An activity that finished despite a cancel request hands back its result and the workflow's
        # CancelledError is consumed; the task still counts the request, so honour it here.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError(f"cancelled during {name}")
        self.advance(name)
        return result

    def register(self, name: str, method: Callable[..., Any], arg: Any,
                 when: Callable[[], bool] | None = None) -> None:
        self.compensations.append(Compensation(name, method, arg, when))

    async def unwind(self, exc: BaseException) -> None:
        """Run the registered compensations in reverse, each until it succeeds or its retries run out."""
        self.status.last_error = describe(exc)
        pending = [c for c in reversed(self.compensations) if c.when is None or c.when()]
        self.log(f"failed at {self.status.step}: {self.status.last_error}; undoing {len(pending)} step(s)")
        failed = []
        for comp in pending:
            arg = comp.arg() if callable(comp.arg) else comp.arg
            try:
                await workflow.execute_activity_method(
                    comp.method, arg, start_to_close_timeout=TIMEOUTS["restore"].start_to_close,
                    heartbeat_timeout=self.heartbeat_timeout or QUICK_HEARTBEAT,
                    retry_policy=UNDO, summary=f"undo: {comp.name}")
                self.log(f"undone: {comp.name}")
            except ActivityError as err:
                failed.append(comp.name)
                self.log(f"could not undo {comp.name}: {describe(err)}")
        self.compensations.clear()
        self.status.timings.setdefault("undo", StepTiming(started_at=workflow.now()))
        self.finish(State.FAILED if failed else State.ROLLED_BACK,
                    f"compensation failed for: {', '.join(failed)}" if failed else "all changes undone")


