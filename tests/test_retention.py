"""Archive retention: purge decisions on real archive folders, PurgeArchives in Temporal, and its Schedule."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from activities.retention import PurgeArchivesInput, PurgeArchivesResult
from tenantmove import db
from tenantmove.archive import ArchiveWriter
from tenantmove.retention import PURGING, RetentionRules, decide, purge_archives
from tenantmove.tenant_state import TenantState
from workflows.retention import PurgeArchives
from workflows.schedules import ensure_retention_schedule, retention_schedule_id

SHARED, BUSY, MOVED = "kammerorchester-basel", "o'brien-ensemble", "sibelius-sinfonia"
NOW = datetime.now(UTC)


def archive(root: Path, tenant: str, age: timedelta = timedelta(0)) -> str:
    """A finished (empty) archive whose manifest says it was written `age` ago."""
    archive_id = f"{tenant.replace(chr(39), '_')}-{uuid.uuid4()}"
    ArchiveWriter(root, archive_id, tenant).finish()
    if age:
        manifest = root / archive_id / "manifest.json"
        data = json.loads(manifest.read_text())
        data["created_at"] = (datetime.fromisoformat(data["created_at"]) - age).isoformat()
        manifest.write_text(json.dumps(data))
    return archive_id


def unfinished(root: Path, idle: timedelta) -> str:
    folder = root / f"x-{uuid.uuid4()}"
    folder.mkdir(parents=True)
    (folder / "001_t.copy.gz").write_bytes(b"partial")
    stamp = (NOW - idle).timestamp()
    for path in (folder / "001_t.copy.gz", folder):
        os.utime(path, (stamp, stamp))
    return folder.name


async def test_purge_decisions_on_real_archives(world):
    root, registry = world.settings.archive_root, world.deps.registry
    async with db.connection(world.shared) as conn:
        await registry.set_maintenance(conn, BUSY, True)
        await registry.switch_to_dedicated(conn, MOVED, "postgresql://u:pw@h/d", at=NOW + timedelta(days=10))
        old_shared, new_shared = archive(root, SHARED, timedelta(days=31)), archive(root, SHARED, timedelta(days=5))
        busy, moved = archive(root, BUSY, timedelta(days=400)), archive(root, MOVED, timedelta(days=31))
        ghost = archive(root, "no-such-tenant", timedelta(days=31))
        stale, active = unfinished(root, timedelta(days=31)), unfinished(root, timedelta(hours=1))
        broken = archive(root, SHARED, timedelta(days=31))
        (root / broken / "manifest.json").write_text("{oops")
        leftover = root / f"{PURGING}{uuid.uuid4()}"
        leftover.mkdir()
        (root / "notes.txt").write_text("not an archive")
        (root / "elsewhere").symlink_to(root / new_shared)
        rules = RetentionRules(retention=timedelta(days=30))

        dry = {d.archive_id: d for d in await purge_archives(conn, registry, root, rules, dry_run=True)}
        assert {a for a, d in dry.items() if d.delete} == {old_shared, ghost, stale, leftover.name}
        assert "maintenance" in dry[busy].reason and "left" in dry[moved].reason
        assert "operator" in dry[broken].reason and "unfinished" in dry[active].reason
        assert "elsewhere" not in dry and "notes.txt" not in dry
        assert len(list(root.iterdir())) == 11  # a dry run deletes nothing

        await purge_archives(conn, registry, root, rules)
        assert sorted(p.name for p in root.iterdir()) == sorted(
            [new_shared, busy, moved, active, broken, "notes.txt", "elsewhere"])
        # The dedicated tenant's migration completed at its switch (10 days after the archive): its way
        # back is kept for 30 days from then.
        later = await purge_archives(conn, registry, root, rules, now=NOW + timedelta(days=41))
        assert moved in {d.archive_id for d in later if d.delete} and not (root / moved).exists()
        assert (root / busy).exists() and not (root / new_shared).exists()  # 46 days old by then


def test_cleanup_grace_extends_a_dedicated_tenants_archive():
    state = TenantState(MOVED, "dedicated", True, NOW - timedelta(days=30, hours=1), False)
    rules = RetentionRules(retention=timedelta(days=30))
    assert decide("a", NOW - timedelta(days=40), state, rules, NOW).delete
    graced = RetentionRules(retention=timedelta(days=30), cleanup_grace=timedelta(hours=48))
    assert not decide("a", NOW - timedelta(days=40), state, graced, NOW).delete
    no_time = TenantState(MOVED, "dedicated", True, None, False)
    assert not decide("a", NOW - timedelta(days=400), no_time, rules, NOW).delete


async def test_purge_workflow_in_the_time_skipping_server(temporal_env, world):
    root = world.settings.archive_root
    async with db.connection(world.shared) as conn:
        await world.deps.registry.set_maintenance(conn, BUSY, True)
    done, busy = archive(root, SHARED, timedelta(days=2)), archive(root, BUSY, timedelta(days=2))
    async with world.worker(temporal_env.client):
        result = await temporal_env.client.execute_workflow(
            PurgeArchives.run, PurgeArchivesInput(retention_days=1), id=f"purge-{world.queue}",
            task_queue=world.queue)
    assert result.deleted == [done] and "maintenance" in result.kept[busy]
    assert not (root / done).exists() and (root / busy).exists()


async def test_schedule_is_idempotent_and_a_triggered_run_purges(dev_env, world):
    client, root = dev_env.client, world.settings.archive_root
    old, fresh = archive(root, SHARED, timedelta(days=45)), archive(root, SHARED, timedelta(days=1))
    async with world.worker(client):
        assert "created" in await ensure_retention_schedule(client, world.settings)
        assert "up to date" in await ensure_retention_schedule(client, world.settings)
        handle = client.get_schedule_handle(retention_schedule_id(world.queue))
        try:
            description = await handle.describe()
            assert description.schedule.spec.intervals[0].every == timedelta(days=1)
            await handle.trigger()
            for _ in range(200):
                actions = (await handle.describe()).info.recent_actions
                if actions:
                    break
                await asyncio.sleep(0.1)
            started = actions[0].action
            run = client.get_workflow_handle(started.workflow_id, run_id=started.first_execution_run_id,
                                            result_type=PurgeArchivesResult)
            result = await run.result()
        finally:
            await handle.delete()
    assert result.deleted == [old] and fresh in result.kept
    assert not (root / old).exists() and (root / fresh).exists()
