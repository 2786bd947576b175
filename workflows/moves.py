"""The data-moving half of MigrateTenant: its two orders of steps (online, offline) and their compensations."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.data import DataActivities
    from activities.database import DatabaseActivities
    from activities.fanout import FanoutActivities
    from activities.models import (
        CaptureInput,
        CleanupInput,
        CreateDatabaseInput,
        DatabaseRef,
        DeploySchemaInput,
        DropDatabaseInput,
        ExportInput,
        FinishImportInput,
        ImportInput,
        MaintenanceInput,
        MigrateTenantInput,
        NotifyInput,
        PlanImportInput,
        PostCheckInput,
        ReplayInput,
        RestoreInput,
        SwitchBackInput,
        SwitchInput,
        TableProgress,
        VerifyChangesInput,
        VerifyInput,
    )
    from activities.online import OnlineActivities
    from activities.tenant import TenantActivities
    from tenantmove.capture import Capture
    from workflows.base import SagaWorkflow, describe
    from workflows.fanout import copy_tables


class MoveSteps(SagaWorkflow):
    """Each compensation is registered before its step. MigrateTenant sets the fields below in __init__."""

    _database: DatabaseRef | None
    _rows: dict[str, int]
    _verified: dict[str, int]
    _frozen_at: datetime | None
    _cut_over: bool

    async def _move_offline(self, input: MigrateTenantInput, expected: dict[str, int]) -> None:
        """The guide's order: maintenance for the whole move, the archive taken before anything is copied."""
        tenant, options = input.tenant_id, input.options
        await self._maintenance_on(tenant)
        archive_id = await self._export(tenant, options.parallel_tables)
        await self._create_database(input)
        await self._import(input, expected)
        await self._verify(input)
        await self._switch_and_check(tenant)
        if options.cleanup_grace_hours > 0:
            await self._maintenance_off(tenant)
            await self._grace(tenant, options.cleanup_grace_hours)
        await self._cleanup(tenant, archive_id, options.cleanup_shared)
        if options.cleanup_grace_hours <= 0:
            await self._maintenance_off(tenant)

    async def _move_online(self, input: MigrateTenantInput, expected: dict[str, int]) -> None:
        """Copy while the tenant keeps writing, its changes captured by triggers and replayed; writes freeze
        only for the last replay, the verify and the switch."""
        tenant, options = input.tenant_id, input.options
        capture = CaptureInput(tenant_id=tenant, capture_id=Capture.named(workflow.info().run_id).capture_id)
        await self._create_database(input)
        self.register("stop change capture", OnlineActivities.stop_capture, capture)
        await self.step("capture_start", OnlineActivities.start_capture, capture)
        await self._import(input, expected)
        caught_up = await self.step("catch_up", OnlineActivities.replay_changes, ReplayInput(
            tenant_id=tenant, capture_id=capture.capture_id, database=self._db(), until_backlog=options.freeze_backlog))
        # Every table is compared before the freeze, at a snapshot of shared; the freeze compares only the
        # keys replayed since, so its length does not grow with the tenant.
        verified = await self.step("verify", OnlineActivities.verify_at_snapshot, VerifyInput(
            tenant_id=tenant, database=self._db(), parallel_tables=options.parallel_tables,
            capture_id=capture.capture_id))
        self._record_rows(verified.tables)
        await self._maintenance_on(tenant)
        final = await self.step("final_sync", OnlineActivities.replay_changes, ReplayInput(
            tenant_id=tenant, capture_id=capture.capture_id, database=self._db(), final=True))
        self.status.changes_replayed = caught_up.changes + final.changes
        counted = await self.step("verify_changes", OnlineActivities.verify_changes, VerifyChangesInput(
            tenant_id=tenant, capture_id=capture.capture_id, database=self._db()))
        self._record_rows(counted.tables)
        self._verified = dict(counted.tables)
        await self._switch_and_check(tenant)
        await self._maintenance_off(tenant)
        # The tenant now writes to its dedicated database: undoing the switch would lose those writes, so
        # from here a failure leaves the tenant where it is (RollbackTenant is the way back).
        self.compensations = [c for c in self.compensations if c.name == "stop change capture"]
        self._cut_over = True
        await self.step("capture_stop", OnlineActivities.stop_capture, capture)
        self.compensations.clear()
        archive_id = await self._export(tenant, options.parallel_tables)
        if options.cleanup_grace_hours > 0:
            await self._grace(tenant, options.cleanup_grace_hours)
        await self._cleanup(tenant, archive_id, options.cleanup_shared)

    def _db(self) -> DatabaseRef:
        assert self._database is not None, "the dedicated database is created before it is used"
        return self._database

    async def _maintenance_on(self, tenant: str) -> None:
        self.register("maintenance off", TenantActivities.set_maintenance, MaintenanceInput(tenant_id=tenant, on=False))
        await self.step("maintenance_on", TenantActivities.set_maintenance, MaintenanceInput(tenant_id=tenant, on=True))
        self._frozen_at = workflow.now()

    async def _export(self, tenant: str, parallel_tables: int) -> str:
        # A file name: tenant ids may hold quotes, slashes or spaces; the run id alone makes it unique.
        archive_id = f"{re.sub(r'[^A-Za-z0-9._-]+', '_', tenant)[:60]}-{workflow.info().run_id}"
        await self.step("export", DataActivities.export_archive,
                        ExportInput(tenant_id=tenant, archive_id=archive_id, parallel_tables=parallel_tables))
        self.status.archive_id = archive_id
        return archive_id

    async def _create_database(self, input: MigrateTenantInput) -> None:
        tenant = input.tenant_id
        # Registered without waiting for the step's reply: a create that succeeded but whose reply was lost
        # still left a database, which the provider finds by the tenant's derived name.
        self.register("drop database", DatabaseActivities.drop_database, lambda: DropDatabaseInput(
            target=input.target, tenant_id=tenant, provider_id=self._database.provider_id if self._database else None))
        created = await self.step("create_database", DatabaseActivities.create_database,
                                  CreateDatabaseInput(tenant_id=tenant, target=input.target))
        self._database = created.database
        self.status.database_id = created.database.provider_id
        await self.step("deploy_schema", DatabaseActivities.deploy_schema,
                        DeploySchemaInput(tenant_id=tenant, database=self._database))

    async def _import(self, input: MigrateTenantInput, expected: dict[str, int]) -> None:
        if input.options.fanout:
            await self._import_fanout(input)
            return
        imported = await self.step("import", DataActivities.import_tenant, ImportInput(
            tenant_id=input.tenant_id, database=self._db(), rows_expected=dict(expected),
            parallel_tables=input.options.parallel_tables))
        self._record_rows(imported.tables)
        if imported.resumed_from:
            self.log(f"import resumed after a retry: {len(imported.resumed_from)} table(s) were already copied")

    async def _import_fanout(self, input: MigrateTenantInput) -> None:
        tenant, database = input.tenant_id, self._db()
        planned = await self.step("plan_import", FanoutActivities.plan_import,
                                  PlanImportInput(tenant_id=tenant, database=database))
        self.begin("import")
        await copy_tables(tenant, database, planned, input.options.parallel_tables, self.heartbeat_timeout,
                          lambda name, rows: self._record_rows({name: rows}))
        self.advance("import")
        await self.step("finish_import", FanoutActivities.finish_import,
                        FinishImportInput(tenant_id=tenant, database=database, tables=planned.order))

    async def _verify(self, input: MigrateTenantInput) -> None:
        verified = await self.step("verify", DataActivities.verify_import, VerifyInput(
            tenant_id=input.tenant_id, database=self._db(), parallel_tables=input.options.parallel_tables))
        self._record_rows(verified.tables)
        self._verified = dict(verified.tables)

    async def _switch_and_check(self, tenant: str) -> None:
        self.register("switch back", TenantActivities.switch_to_shared, SwitchBackInput(tenant_id=tenant))
        switched = await self.step("switch", TenantActivities.switch_to_dedicated,
                                   SwitchInput(tenant_id=tenant, database=self._db()))
        expected = {name: rows + switched.added_rows.get(name, 0) for name, rows in self._verified.items()}
        await self.step("post_checks", DataActivities.post_migration_checks,
                        PostCheckInput(tenant_id=tenant, expected_rows=expected))

    async def _grace(self, tenant: str, hours: float) -> None:
        # The tenant works on its dedicated database during the grace period; rollback stays cheap
        # because its rows are still in shared until the timer fires.
        await self._notify(tenant, "migrated", "migration complete; shared rows kept for the grace period",
                           step="announce")
        self.log(f"cleanup deferred by {hours:g} h")
        await workflow.sleep(timedelta(hours=hours))

    async def _cleanup(self, tenant: str, archive_id: str, enabled: bool) -> None:
        if not enabled:
            self.log("cleanup skipped: the tenant's rows stay in shared")
            return
        # Unconditional: a cleanup that committed but whose reply was lost has deleted the rows all the
        # same. Restore skips every table whose rows still match the archive, so it costs checksums only.
        self.register("restore shared rows", DataActivities.restore_from_archive,
                      RestoreInput(tenant_id=tenant, archive_id=archive_id))
        await self.step("cleanup", DataActivities.cleanup_shared, CleanupInput(tenant_id=tenant, archive_id=archive_id))
        self.status.cleanup_done = True

    async def _maintenance_off(self, tenant: str) -> None:
        await self.step("maintenance_off", TenantActivities.set_maintenance,
                        MaintenanceInput(tenant_id=tenant, on=False))
        self.compensations = [c for c in self.compensations if c.name != "maintenance off"]
        if self._frozen_at is not None:
            self.status.write_freeze_seconds = (workflow.now() - self._frozen_at).total_seconds()

    async def _notify(self, tenant: str, kind: str, message: str, *, step: str = "notify", **details: str) -> None:
        try:
            await self.step(step, TenantActivities.notify,
                            NotifyInput(tenant_id=tenant, kind=kind, message=message, details=details))
        except ActivityError as exc:  # recorded; the migration itself stands
            self.log(f"notification {kind} failed: {describe(exc)}")

    def _record_rows(self, tables: dict[str, int]) -> None:
        for name, rows in tables.items():
            progress = self.status.tables.setdefault(name, TableProgress(rows_total=rows))
            progress.rows_done, progress.done = rows, True
            self._rows[name] = rows

