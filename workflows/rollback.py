"""RollbackTenant: undo a completed migration: back to shared, rows restored from the archive, database dropped."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.data import DataActivities
    from activities.database import DatabaseActivities
    from activities.models import (
        DropDatabaseInput,
        MaintenanceInput,
        MigrationReport,
        MigrationStatus,
        NotifyInput,
        RestoreInput,
        RollbackInput,
        State,
        SwitchBackInput,
    )
    from activities.tenant import TenantActivities
    from workflows.base import SagaWorkflow


@workflow.defn
class RollbackTenant(SagaWorkflow):
    """The tenant is frozen (maintenance) while it moves back; the dedicated database is dropped only after
    the shared rows are back and checked against the archive's manifest. Rows written on the dedicated
    database after the migration are not carried back: the archive is the state at migration time."""

    @workflow.init
    def __init__(self, input: RollbackInput) -> None:
        super().__init__(MigrationStatus(tenant_id=input.tenant_id, target=input.report.database.kind
                                         if input.report.database else "postgres"))

    @workflow.run
    async def run(self, input: RollbackInput) -> MigrationReport:
        report = input.report
        if report.state is not State.COMPLETED:
            raise ApplicationError(f"only a completed migration can be rolled back; this one is {report.state.value}",
                                   type="RollbackRefused", non_retryable=True)
        tenant = input.tenant_id
        self.set_state(State.RUNNING, step="maintenance_on")
        try:
            self.register("maintenance off", TenantActivities.set_maintenance,
                          MaintenanceInput(tenant_id=tenant, on=False))
            await self.step("maintenance_on", TenantActivities.set_maintenance,
                            MaintenanceInput(tenant_id=tenant, on=True))
            # Rows back first, then the switch: the switch audits itself in shared, and a restore must find
            # the tenant's tables holding none of its rows or exactly the archive's.
            if report.cleanup_done and report.archive_id:
                restored = await self.step("restore", DataActivities.restore_from_archive,
                                           RestoreInput(tenant_id=tenant, archive_id=report.archive_id))
                self.log(f"restored {sum(restored.restored.values())} rows from archive {report.archive_id}")
            await self.step("switch", TenantActivities.switch_to_shared, SwitchBackInput(tenant_id=tenant))
            await self.step("maintenance_off", TenantActivities.set_maintenance,
                            MaintenanceInput(tenant_id=tenant, on=False))
            self.compensations.clear()
            if report.database:
                await self.step("drop_database", DatabaseActivities.drop_database,
                                DropDatabaseInput(target=report.database.kind, tenant_id=tenant,
                                                  provider_id=report.database.provider_id))
            await self.step("notify", TenantActivities.notify,
                            NotifyInput(tenant_id=tenant, kind="rolled_back", message="tenant moved back to shared"))
        except BaseException as exc:
            await self.unwind(exc)
            raise
        self.finish(State.ROLLED_BACK, "rollback complete")
        return MigrationReport(tenant_id=tenant, state=State.ROLLED_BACK, archive_id=report.archive_id)

    @workflow.query(name="status")
    def query_status(self) -> MigrationStatus:
        return self.status
