"""An archive directory that is full, read-only or not writable: the migration stops before any delete from
shared, with an ArchiveError naming the directory (offline: rolled back; online: failed after the cutover)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError

from activities.models import State
from tenantmove import db
from workflows.client import start_migration
from workflows.migrate import MigrateTenant

from .world import approve, shared_sums

TENANT = "sibelius-sinfonia"
ROOT = Path(__file__).resolve().parent.parent
SETPRIV = shutil.which("setpriv")


def _mount(path: Path, options: str) -> None:
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a small tmpfs is not permitted here: {done.stderr.decode().strip()}")


@pytest.fixture
def full_dir(tmp_path: Path) -> Iterator[Path]:
    """A 128 kB tmpfs filled up to its last 4 kB: the export's first table files run it out of space."""
    path = tmp_path / "full"
    _mount(path, "size=128k,mode=0700")
    try:
        fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\1" * 4096):
                pass
        except OSError:  # ENOSPC: full
            os.ftruncate(fd, os.fstat(fd).st_size - 4096)
        finally:
            os.close(fd)
        yield path / "archives"
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A read-only mount: even root cannot write there (EROFS)."""
    path = tmp_path / "ro"
    _mount(path, "size=64k,ro")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


async def _run(temporal_env, world, mode: str) -> tuple[WorkflowFailureError, object]:
    client = temporal_env.client
    async with world.worker(client):
        handle = await start_migration(client, world.input(TENANT, mode=mode), task_queue=world.queue,
                                       workflow_id=f"migrate-{TENANT}-{world.queue}")
        await approve(handle)
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        return info.value, await handle.query(MigrateTenant.query_status)


async def _assert_stopped_before_any_delete(world, mode: str, error, status, before, reason: str) -> None:
    cause = error.cause.cause
    assert cause.type == "ArchiveError", cause
    assert "archive directory" in cause.message and reason in cause.message, cause.message
    async with db.connection(world.shared) as conn:
        state = await world.deps.registry.read(conn, TENANT)
    after = await shared_sums(world.shared)
    if mode == "offline":  # the export comes first: the saga undoes everything
        assert status.state is State.ROLLED_BACK, status.log[-6:]
        assert after == before
        assert world.dedicated_databases() == []
        assert (state.database_type, state.maintenance) == ("shared", False)
        return
    # online: the export follows the cutover, so the tenant stays on its dedicated database; nothing deleted
    assert status.state is State.FAILED and "after the cutover" in status.log[-2], status.log[-6:]
    assert (state.database_type, state.maintenance) == ("dedicated", False)
    assert len(world.dedicated_databases()) == 1
    assert {t: v for t, v in after.items() if t not in ("Tenant", "AuditLog")} == \
        {t: v for t, v in before.items() if t not in ("Tenant", "AuditLog")}


@pytest.mark.parametrize("mode", ["offline", "online"])
async def test_archive_directory_full(temporal_env, world, full_dir, mode):
    world.deps.settings = world.settings.model_copy(update={"archive_dir": full_dir})
    before = await shared_sums(world.shared)
    error, status = await _run(temporal_env, world, mode)
    await _assert_stopped_before_any_delete(world, mode, error, status, before, "no space left")
    # the partial table file was removed: no half archive left to be mistaken for one
    assert not any(full_dir.rglob("*.copy.gz")) and not any(full_dir.rglob("manifest.json"))


@pytest.mark.parametrize("mode", ["offline", "online"])
async def test_archive_directory_read_only(temporal_env, world, read_only_dir, mode):
    world.deps.settings = world.settings.model_copy(update={"archive_dir": read_only_dir / "archives"})
    before = await shared_sums(world.shared)
    error, status = await _run(temporal_env, world, mode)
    await _assert_stopped_before_any_delete(world, mode, error, status, before, "read-only file system")


@pytest.mark.skipif(SETPRIV is None, reason="setpriv (util-linux) is not installed")
async def test_archive_directory_not_writable(dev_env, world, tmp_path):
    """chmod 0500: root ignores it, so the worker process runs without CAP_DAC_OVERRIDE (as a service user
    would run), and the directory's mode then holds for it."""
    archives = tmp_path / "archives"
    archives.mkdir(mode=0o500)
    os.chmod(archives, 0o500)
    client = dev_env.client
    env = {**os.environ, "SHARED_DATABASE_URL": world.shared, "POSTGRES_ADMIN_URL": world.target_server.dsn(),
           "STATE_DIR": str(world.settings.state_dir), "ARCHIVE_DIR": str(archives),
           "TEMPORAL_ADDRESS": client.service_client.config.target_host, "TASK_QUEUE": world.queue,
           "DEDICATED_NAME_PREFIX": world.prefix, "LOG_FORMAT": "json"}
    caps = "-dac_override,-dac_read_search"
    log = tmp_path / "worker.log"
    worker = subprocess.Popen([SETPRIV, f"--inh-caps={caps}", f"--bounding-set={caps}", sys.executable,
                               str(ROOT / "worker.py")], env=env, cwd=ROOT, stdout=log.open("ab"),
                              stderr=subprocess.STDOUT)
    try:
        before = await shared_sums(world.shared)
        handle = await start_migration(client, world.input(TENANT, mode="offline", advance_notice_days=0),
                                       task_queue=world.queue, workflow_id=f"migrate-{TENANT}-{world.queue}")
        await approve(handle)
        with pytest.raises(WorkflowFailureError) as info:
            await asyncio.wait_for(handle.result(), 120)
        status = await handle.query(MigrateTenant.query_status)
    finally:
        worker.terminate()
        worker.wait(15)
    await _assert_stopped_before_any_delete(world, "offline", info.value, status, before, "permission denied")
    assert list(archives.iterdir()) == []
