"""A worker killed (SIGKILL) in the middle of the import, then a new worker: the import resumes from its
heartbeat details, not from zero, and the dedicated database ends with every row exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
from temporalio.client import WorkflowHandle

from activities.models import ImportProgress, State
from workflows.client import start_migration

from . import stagesub_expect as expect
from .test_workflow import _expected_sums, _target_sums
from .world import approve

TENANT = "sibelius-sinfonia"
ROOT = Path(__file__).resolve().parent.parent




def _worker(world, address: str, log: Path, rows_per_second: int = 3000, script: Path = ROOT / "worker.py",
            **extra: str) -> subprocess.Popen:
    """A worker process; its copies are slowed to `rows_per_second` so that a test can act mid-import."""
    env = {**os.environ, "SHARED_DATABASE_URL": world.shared, "POSTGRES_ADMIN_URL": world.target_server.dsn(),
           "STATE_DIR": str(world.settings.state_dir), "TEMPORAL_ADDRESS": address, "TASK_QUEUE": world.queue,
           "DEDICATED_NAME_PREFIX": world.prefix, "COPY_MAX_ROWS_PER_SECOND": str(rows_per_second),
           "LOG_FORMAT": "json", **extra}
    return subprocess.Popen([sys.executable, str(script)], env=env, cwd=ROOT,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def _tables_done(handle: WorkflowHandle) -> list[str]:
    description = await handle.describe()
    for pending in description.raw_description.pending_activities:
        if pending.activity_type.name == "import_tenant" and pending.heartbeat_details.payloads:
            import json

            progress = ImportProgress.model_validate(json.loads(pending.heartbeat_details.payloads[0].data))
            assert "import" in progress.note  # what the UI shows on the pending activity
            return progress.done
    return []


async def test_import_resumes_after_the_worker_is_killed(dev_env, world, tmp_path):
    client = dev_env.client
    address = client.service_client.config.target_host
    log = tmp_path / "workers.log"
    moved = [*expect.OWNED, "User"]
    expected = await _expected_sums(world.shared, moved)
    first = _worker(world, address, log)
    try:
        handle = await start_migration(client, world.input(TENANT, advance_notice_days=0, heartbeat_timeout_seconds=3),
                                       task_queue=world.queue, workflow_id=f"migrate-{TENANT}-{world.queue}")
        await approve(handle)
        for _ in range(600):  # until the heartbeat shows some tables done, then kill mid-import
            done = await _tables_done(handle)
            if len(done) >= 5:
                break
            await asyncio.sleep(0.05)
        assert len(done) >= 5, "the import never reported progress"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = _worker(world, address, log)
        try:
            report = await asyncio.wait_for(handle.result(), 90)
            status = await handle.query("status")
        finally:
            second.terminate()
            second.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert report.state is State.COMPLETED
    assert any("import resumed after a retry" in line for line in status["log"]), status["log"][-8:]
    # every row exactly once: the dedicated tables equal the tenant's rows by checksum (a duplicate would differ)
    assert await _target_sums(world.deps.dedicated_dsn(report.database), moved) == expected
    password = psycopg.conninfo.conninfo_to_dict(world.deps.dedicated_dsn(report.database))["password"]
    assert password and password not in log.read_text()  # the workers' own log lines never show it
