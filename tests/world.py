"""A migration world for workflow tests: a shared StageSub database, a dedicated server, a worker's deps."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from psycopg import sql
from temporalio.client import WorkflowHandle
from temporalio.worker import Worker

import worker as worker_module
from activities.common import Deps
from activities.context import LogContext
from activities.models import Approval, MigrateTenantInput, MigrationOptions, MigrationStatus
from bench.faults import as_activity as _as
from bench.faults import failing  # noqa: F401 - the tests import it from here
from stagesub.schema import deploy_reference_schema
from stagesub.seed import DEFAULT_ORCHESTRAS, seed
from tenantmove import db
from tenantmove.checksum import table_checksum
from tenantmove.logs import configure
from tenantmove.pgserver import LocalPostgres
from tenantmove.providers.postgres import PostgresProvider
from tenantmove.rows import RowSelection
from tenantmove.settings import Settings
from workflows.migrate import MigrateTenant

from .conftest import copy_database, create_database

# Seeded an hour in the past: the seed's "active" sessions are then an hour old, so the pre-check passes.
SEED_NOW = datetime.now(UTC) - timedelta(hours=1)
SWITCH_ACTIONS = ("tenant.database.switch", "tenant.database.switch_back")


def make_template(server: LocalPostgres) -> str:
    dsn = create_database(server, "wf_tpl")
    deploy_reference_schema(dsn)
    seed(dsn, DEFAULT_ORCHESTRAS, now=SEED_NOW)
    return dsn




@dataclass
class World:
    shared: str
    target_server: LocalPostgres
    settings: Settings
    deps: Deps
    queue: str
    log: io.StringIO
    prefix: str

    def input(self, tenant: str, **options: object) -> MigrateTenantInput:
        return MigrateTenantInput(tenant_id=tenant, reason="grew past the shared tier",
                                  options=MigrationOptions(**options))  # type: ignore[arg-type]

    def worker(self, client, replace: dict[str, Callable] | None = None) -> Worker:  # noqa: ANN001
        if not replace:
            return worker_module.make_worker(client, self.deps, task_queue=self.queue)
        acts = [replace.get(getattr(a, "__temporal_activity_definition").name, a)
                for a in worker_module.activities_for(self.deps)]
        return Worker(client, task_queue=self.queue, workflows=worker_module.WORKFLOWS, activities=acts,
                      interceptors=[LogContext()])

    def dedicated_databases(self) -> list[str]:
        with psycopg.connect(self.target_server.dsn(), autocommit=True) as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [self.prefix + "%"])
            return [r[0] for r in rows]


async def make_world(pg_shared: LocalPostgres, pg_target: LocalPostgres, template: str, tmp_path: Path,
                     http: httpx.AsyncClient) -> World:
    shared = copy_database(pg_shared, template, "wf")
    queue = f"q-{uuid.uuid4()}"
    settings = Settings(shared_database_url=shared, state_dir=tmp_path, postgres_admin_url=pg_target.dsn(),
                        log_format="json", task_queue=queue)
    log = io.StringIO()
    configure("json", stream=log)
    deps = await worker_module.build_deps(settings, http)
    prefix = f"w{uuid.uuid4().hex[:6]}_"
    deps.providers = {"postgres": PostgresProvider(pg_target.dsn(), deps.secrets, prefix=prefix)}
    return World(shared, pg_target, settings, deps, queue, log, prefix)


def real_activity(deps: Deps, name: str) -> Callable:
    """The worker's own activity of that name, to wrap."""
    return next(a for a in worker_module.activities_for(deps) if getattr(a, "__temporal_activity_definition").name == name)


def slowed(real: Callable, seconds: float) -> Callable:
    """The same activity, lingering after its work: a window in which a test can cancel the run."""

    async def slow(input):  # noqa: ANN001, ANN202
        result = await real(input)
        await asyncio.sleep(seconds)
        return result

    return _as(real, slow)


async def wait_for(handle: WorkflowHandle, predicate: Callable[[MigrationStatus], bool], timeout: float = 30
                   ) -> MigrationStatus:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = await handle.query(MigrateTenant.query_status)
        if predicate(status):
            return status
        finished = status.state.value in ("completed", "failed", "rolled_back", "rejected", "expired")
        if finished or asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"status never matched; last: {status.state} {status.step} {status.log[-3:]}")
        await asyncio.sleep(0.05)


async def approve(handle: WorkflowHandle, approver: str = "ops@stagesub") -> None:
    await wait_for(handle, lambda s: s.state.value == "awaiting_approval")
    await handle.execute_update(MigrateTenant.approve_migration, Approval(approver=approver, comment="go"))


TABLES = ["Tenant", "User", "Session", "Musician", "Instrument", "Position", "MusicianQualification", "RankingList",
          "Ranking", "Project", "ProjectNeed", "ProjectNeedFile", "ProjectFile", "Request", "CommunicationLog",
          "RequestToken", "EmailTemplate", "AuditLog", "BackgroundJob", "Backup", "_prisma_migrations"]


async def shared_sums(dsn: str) -> dict[str, tuple[int, str]]:
    """Every table of the shared database, except the audit rows a switch (and its undo) adds by design."""
    out = {}
    async with db.connection(dsn) as conn:
        for table in TABLES:
            query = sql.SQL("SELECT * FROM {}").format(sql.Identifier("public", table))
            if table == "Tenant":  # updatedAt moves with any write to the row, as the application's would
                query = sql.SQL("SELECT to_jsonb(t) - 'updatedAt' AS row FROM {} t").format(
                    sql.Identifier("public", table))
            if table == "AuditLog":
                query = sql.SQL("SELECT * FROM {} WHERE action <> ALL(%(skip)s)").format(
                    sql.Identifier("public", table))
            s = await table_checksum(conn, RowSelection("public", table, ("*",), query, {"skip": list(SWITCH_ACTIONS)}))
            out[table] = (s.rows, s.digest)
        await conn.rollback()
    return out
