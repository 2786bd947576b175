"""Activities on the tenant's row and its people: request checks, pre-check, maintenance, switch, notify."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from activities.common import Deps, boundary
from activities.models import (
    MaintenanceInput,
    MaintenanceResult,
    NotifyInput,
    NotifyResult,
    PrecheckInput,
    PrecheckResult,
    RecommendInput,
    RecommendResult,
    RequestInput,
    RequestResult,
    SwitchBackInput,
    SwitchBackResult,
    SwitchInput,
    SwitchResult,
    TenantStats,
)
from tenantmove import db
from tenantmove.errors import PrecheckFailed, TenantStateError
from tenantmove.logs import get_logger
from tenantmove.notify import Notification
from tenantmove.precheck import PrecheckQueries, blocking, run_precheck
from tenantmove.recommend import recommend
from tenantmove.stats import tenant_figures
from tenantmove.survey import survey_tenant_parallel


class TenantActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def _log(self, tenant: str, **bound: object) -> Any:  # a structlog bound logger
        info = activity.info()
        return get_logger(tenant=tenant, workflow_id=info.workflow_id, activity=info.activity_type, **bound)

    @activity.defn
    @boundary
    async def request_migration(self, input: RequestInput) -> RequestResult:
        """Refuse what cannot be migrated (unknown, already dedicated, in maintenance); record the figures."""
        async with db.connection(self.deps.shared_dsn) as conn:
            state = await self.deps.registry.read(conn, input.tenant_id)
            if state.database_type != "shared":
                raise TenantStateError(f"tenant {input.tenant_id!r} is already {state.database_type}, expected "
                                       "shared", tenant=input.tenant_id)
            if state.maintenance:
                raise TenantStateError(f"tenant {input.tenant_id!r} is in maintenance mode, expected it off "
                                       "(another migration or an operator holds it)", tenant=input.tenant_id)
            self.deps.provider(input.target)
            plan = await self.deps.plan(conn)
            figures = await tenant_figures(conn, self.deps.settings.stats_queries, input.tenant_id)
            await conn.rollback()
        survey = await survey_tenant_parallel(self.deps.shared_dsn, plan, input.tenant_id, orphans=False,
                                              conflicts=False, connections=self.deps.settings.parallel_tables)
        tables = {name: t.rows for name, t in survey.tables.items() if plan.tables[name].copied}
        stats = TenantStats(figures=figures, rows=sum(tables.values()),
                            bytes=sum(t.bytes for t in survey.tables.values()), tables=tables)
        self._log(input.tenant_id).info("migration requested", **figures, rows=stats.rows)
        return RequestResult(stats=stats)

    @activity.defn
    @boundary
    async def precheck(self, input: PrecheckInput) -> PrecheckResult:
        rules = self.deps.settings.precheck_rules()
        async with db.connection(self.deps.shared_dsn) as conn:
            plan = await self.deps.plan(conn)
            await conn.rollback()
            # The survey reads every copied table (and, for integrity, every row that could reach two
            # tenants): spread over the connections the import will use, as verify is.
            survey = await survey_tenant_parallel(self.deps.shared_dsn, plan, input.tenant_id, orphans=False,
                                                  conflicts=rules.check_integrity,
                                                  connections=self.deps.settings.parallel_tables)
            findings = await run_precheck(conn, plan, input.tenant_id, rules, PrecheckQueries(), survey=survey)
            await conn.rollback()
        stopping = blocking(findings)
        if stopping:
            raise PrecheckFailed("pre-check found blocking conditions: " + "; ".join(f.message for f in stopping),
                                 findings=[f.message for f in stopping], tenant=input.tenant_id)
        return PrecheckResult(findings=[f.message for f in findings])

    @activity.defn
    @boundary
    async def set_maintenance(self, input: MaintenanceInput) -> MaintenanceResult:
        async with db.connection(self.deps.shared_dsn) as conn:
            previous = await self.deps.registry.set_maintenance(conn, input.tenant_id, input.on)
        self._log(input.tenant_id).info("maintenance mode", on=input.on, previous=previous)
        return MaintenanceResult(previous=previous)

    @activity.defn
    @boundary
    async def switch_to_dedicated(self, input: SwitchInput) -> SwitchResult:
        # The tenant row gets the application's role, which can read and write rows but change no schema.
        dsn = self.deps.app_dsn(input.database)
        registry = self.deps.registry
        async with db.connection(self.deps.shared_dsn) as conn, db.connection(dsn) as dedicated:
            before = await registry.switch_to_dedicated(conn, input.tenant_id, dsn, at=activity.info().started_time)
            copied = await registry.copy_latest_audit(conn, dedicated, input.tenant_id, "tenant.database.switch")
        added = {registry.audit.table: copied} if registry.audit and copied else {}
        return SwitchResult(previous_type=before.database_type, switched=before.database_type != "dedicated",
                            added_rows=added)

    @activity.defn
    @boundary
    async def switch_to_shared(self, input: SwitchBackInput) -> SwitchBackResult:
        async with db.connection(self.deps.shared_dsn) as conn:
            before = await self.deps.registry.switch_to_shared(conn, input.tenant_id)
        return SwitchBackResult(switched_back=before.database_type != "shared")

    @activity.defn
    @boundary
    async def recommended_tenants(self, input: RecommendInput) -> RecommendResult:
        async with db.connection(self.deps.shared_dsn) as conn:
            found = await recommend(conn, self.deps.registry, self.deps.settings.stats_queries,
                                    self.deps.settings.recommend_thresholds)
        return RecommendResult(tenant_ids=[r.tenant for r in found])

    @activity.defn
    @boundary
    async def notify(self, input: NotifyInput) -> NotifyResult:
        await self.deps.notifier.notify(Notification(input.tenant_id, input.kind, input.message,
                                                     dict(input.details)))
        return NotifyResult(delivered=True)
