"""Worker: build settings, the shared database, secret store, providers and notifier; run workflows and activities."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.common import Deps
from activities.context import LogContext
from activities.data import DataActivities
from activities.database import DatabaseActivities
from activities.fanout import FanoutActivities
from activities.models import TASK_QUEUE
from activities.online import OnlineActivities
from activities.retention import RetentionActivities
from activities.tenant import TenantActivities
from stagesub.local import shared_dsn
from stagesub.schema import MIGRATIONS_DIR
from tenantmove import db
from tenantmove.logs import configure, get_logger
from tenantmove.neon.client import NeonClient
from tenantmove.notify import FanoutNotifier, LogNotifier, Notifier, WebhookNotifier
from tenantmove.pgserver import LocalPostgres
from tenantmove.plan import plan_schema
from tenantmove.providers import DatabaseProvider
from tenantmove.providers.neon import NeonProvider
from tenantmove.providers.postgres import PostgresProvider
from tenantmove.secrets import FileSecretStore
from tenantmove.settings import Settings
from tenantmove.tenant_state import TenantRegistry
from workflows import codec
from workflows.fleet import MigrateMany
from workflows.migrate import MigrateTenant
from workflows.retention import PurgeArchives
from workflows.rollback import RollbackTenant
from workflows.schedules import ensure_retention_schedule


async def build_deps(settings: Settings, http: httpx.AsyncClient) -> Deps:
    shared = shared_dsn(settings)
    async with db.connection(shared) as conn:  # fail fast on a schema the settings cannot plan
        plan = await plan_schema(conn, settings.db_schema, settings.plan_rules())
    admin = db.with_sslmode(settings.postgres_admin_url or LocalPostgres(settings.state_dir / "pg-dedicated")
                            .start().dsn(), settings.database_sslmode)
    secrets = FileSecretStore(settings.state_dir / "secrets")
    notifiers: list[Notifier] = [LogNotifier()]
    if settings.notify_webhook_url:
        notifiers.append(WebhookNotifier(http, settings.notify_webhook_url))
    registry = TenantRegistry(settings.db_schema, settings.tenant_table, plan.tenant_key, settings.tenant_columns(),
                              settings.audit_spec())
    providers: dict[str, DatabaseProvider] = {
        "postgres": PostgresProvider(admin, secrets, prefix=settings.dedicated_name_prefix)}
    if settings.neon_api_key is not None:
        neon = NeonClient(http, settings.neon_api_url, settings.neon_api_key.get_secret_value())
        providers["neon"] = NeonProvider(neon, secrets, region=settings.neon_region,
                                         pg_version=settings.neon_pg_version, min_cu=settings.neon_min_cu,
                                         max_cu=settings.neon_max_cu, name_prefix=settings.neon_project_prefix,
                                         sslmode=settings.database_sslmode or "require")
    return Deps(settings=settings, shared_dsn=shared, secrets=secrets, providers=providers,
                notifier=FanoutNotifier(*notifiers),
                registry=registry, migrations_dir=Path(settings.prisma_migrations_dir or MIGRATIONS_DIR))


WORKFLOWS = [MigrateTenant, RollbackTenant, MigrateMany, PurgeArchives]


def activities_for(deps: Deps) -> list[Callable[..., Any]]:
    tenant, data, database = TenantActivities(deps), DataActivities(deps), DatabaseActivities(deps)
    online, fanout = OnlineActivities(deps), FanoutActivities(deps)
    return [tenant.request_migration, tenant.recommended_tenants, tenant.precheck, tenant.set_maintenance, tenant.switch_to_dedicated,
            tenant.switch_to_shared, tenant.notify, data.export_archive, data.import_tenant, data.verify_import,
            data.post_migration_checks, data.cleanup_shared, data.restore_from_archive,
            database.create_database, database.drop_database, database.deploy_schema,
            online.start_capture, online.stop_capture, online.replay_changes, online.verify_at_snapshot,
            online.verify_changes,
            fanout.plan_import, fanout.hold_snapshot, fanout.await_snapshot, fanout.copy_table, fanout.finish_import,
            RetentionActivities(deps).purge_archives]


def make_worker(client: Client, deps: Deps, task_queue: str = TASK_QUEUE, max_activities: int | None = None
                ) -> Worker:
    # max_activities bounds what one machine takes on: a fan-out import then spreads over the workers.
    return Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activities=activities_for(deps),
                  interceptors=[LogContext()], max_concurrent_activities=max_activities)


async def connect(settings: Settings) -> Client:
    # The SDK's own metrics (task latencies, slots, failures) served for Prometheus at METRICS_ADDRESS.
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=settings.metrics_address))) \
        if settings.metrics_address else None
    return await codec.connect(settings, runtime)


async def main() -> None:
    settings = Settings()
    configure(settings.log_format)
    async with httpx.AsyncClient(timeout=10) as http:
        deps = await build_deps(settings, http)
        client = await connect(settings)
        # At start, so a deployment never runs without its retention; idempotent, so every worker may do it.
        get_logger().info(await ensure_retention_schedule(client, settings))
        worker = make_worker(client, deps, task_queue=settings.task_queue,
                             max_activities=settings.worker_max_activities)
        get_logger(task_queue=settings.task_queue, temporal=settings.temporal_address).info("worker started")
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
