"""MigrateMany: a fleet of tenants migrated as child workflows, a few at a time, with one approval or each its own."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.models import (
        Approval,
        FleetReport,
        MigrateManyInput,
        MigrateTenantInput,
        RecommendInput,
        State,
    )
    from activities.tenant import TenantActivities
    from workflows.base import describe
    from workflows.migrate import MigrateTenant
    from workflows.steps import QUICK


@workflow.defn
class MigrateMany:
    def __init__(self) -> None:
        self._approval: Approval | None = None
        self._results: dict[str, str] = {}
        self._tenants: list[str] = []
        self._state = State.REQUESTED

    @workflow.run
    async def run(self, input: MigrateManyInput) -> FleetReport:
        tenants = list(dict.fromkeys(input.tenant_ids))
        if not tenants:
            found = await workflow.execute_activity_method(
                TenantActivities.recommended_tenants, RecommendInput(), start_to_close_timeout=timedelta(minutes=10),
                retry_policy=QUICK)
            tenants = found.tenant_ids
        self._tenants = tenants
        if input.batch_approval and tenants:
            self._state = State.AWAITING_APPROVAL
            try:
                await workflow.wait_condition(lambda: self._approval is not None,
                                              timeout=timedelta(hours=input.options.approval_timeout_hours))
            except TimeoutError:
                self._state = State.EXPIRED
                return FleetReport(state=State.EXPIRED, results={t: "expired" for t in tenants})
        self._state = State.RUNNING
        # A semaphore bounds how many migrations run at once: each one freezes its tenant and loads the servers.
        gate = asyncio.Semaphore(input.max_concurrent)
        await asyncio.gather(*(self._one(gate, tenant, input) for tenant in tenants))
        self._state = State.COMPLETED
        return FleetReport(state=State.COMPLETED, results=dict(self._results))

    async def _one(self, gate: asyncio.Semaphore, tenant: str, input: MigrateManyInput) -> None:
        async with gate:
            child_input = MigrateTenantInput(tenant_id=tenant, reason=input.reason or "fleet migration",
                                             target=input.target, options=input.options)
            try:
                # Child ids are the ordinary migrate-<tenant>: a tenant already migrating is refused as usual.
                handle = await workflow.start_child_workflow(MigrateTenant.run, child_input, id=f"migrate-{tenant}")
                if self._approval is not None:
                    await handle.signal(MigrateTenant.approve, self._approval.model_dump(mode="json"))
                report = await handle
                self._results[tenant] = report.state.value
            except ChildWorkflowError as err:
                self._results[tenant] = describe(err.cause or err)
            except Exception as err:  # e.g. the child could not start: recorded, the others go on
                self._results[tenant] = f"{type(err).__name__}: {err}"

    @workflow.update
    async def approve_batch(self, approval: Approval) -> list[str]:
        self._approval = approval
        return self._tenants

    @approve_batch.validator
    def _validate(self, approval: Approval) -> None:
        if self._approval is not None:
            raise ValueError(f"the batch was already approved by {self._approval.approver}")

    @workflow.query
    def fleet_status(self) -> dict[str, object]:
        return {"state": self._state.value, "tenants": self._tenants, "results": dict(self._results),
                "approved_by": self._approval.approver if self._approval else None}
