"""Two worker processes on one task queue run two tenants' migrations at once: both complete, each dedicated
database holds exactly its tenant's rows, and nobody else's rows in shared change."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from activities.models import State
from workflows.client import start_migration

from . import stagesub_expect as expect
from .test_hostile_tenant import _sums
from .world import approve, shared_sums

TENANTS = ("sibelius-sinfonia", "kammerorchester-basel")
BYSTANDER = "o'brien-ensemble"
ROOT = Path(__file__).resolve().parent.parent


def _worker(world, address: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "SHARED_DATABASE_URL": world.shared, "POSTGRES_ADMIN_URL": world.target_server.dsn(),
           "STATE_DIR": str(world.settings.state_dir), "TEMPORAL_ADDRESS": address, "TASK_QUEUE": world.queue,
           "DEDICATED_NAME_PREFIX": world.prefix, "LOG_FORMAT": "json"}
    return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env, cwd=ROOT,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def test_two_workers_two_tenants_at_once(dev_env, world, tmp_path):
    client = dev_env.client
    address = client.service_client.config.target_host
    moved = [*expect.OWNED, "User"]
    expected = {t: await _sums(world.shared, t, moved) for t in TENANTS}
    bystander = await _sums(world.shared, BYSTANDER, [*expect.OWNED, "Tenant"])
    before = await shared_sums(world.shared)
    logs = [tmp_path / f"worker-{i}.log" for i in (1, 2)]
    workers = [_worker(world, address, log) for log in logs]
    try:
        handles = [await start_migration(client, world.input(t, advance_notice_days=0), task_queue=world.queue,
                                         workflow_id=f"migrate-{t}-{world.queue}") for t in TENANTS]
        await asyncio.gather(*(approve(h) for h in handles))
        reports = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 180)
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.wait(15)
    assert [r.state for r in reports] == [State.COMPLETED, State.COMPLETED]
    databases = {r.database.database for r in reports if r.database}
    assert len(databases) == 2 and sorted(world.dedicated_databases()) == sorted(databases)
    for tenant, report in zip(TENANTS, reports, strict=True):
        assert report.database is not None
        dedicated = await _sums(world.deps.dedicated_dsn(report.database), tenant,
                                [t for t in moved if t != "AuditLog"], whole=True)
        assert dedicated == {t: v for t, v in expected[tenant].items() if t != "AuditLog"}, tenant
        assert all(v[0] == 0 for v in (await _sums(world.shared, tenant, list(expect.OWNED))).values()), tenant
    # the third tenant's rows, and every table no tenant owns, are exactly as they were
    assert await _sums(world.shared, BYSTANDER, [*expect.OWNED, "Tenant"]) == bystander
    after = await shared_sums(world.shared)
    assert {t: v for t, v in after.items() if t not in expect.OWNED and t != "Tenant"} == \
        {t: v for t, v in before.items() if t not in expect.OWNED and t != "Tenant"}
    # both processes polled the queue and came up; which one ran which step is Temporal's choice
    assert all("worker started" in log.read_text() for log in logs)
