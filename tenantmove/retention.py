"""Archive retention: which archives are past ARCHIVE_RETENTION_DAYS and of a completed migration, and removal."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from tenantmove.archive import MANIFEST, valid_archive_id
from tenantmove.archive_read import read_manifest
from tenantmove.errors import ArchiveError, TenantNotFound
from tenantmove.tenant_state import TenantRegistry, TenantState

# An archive is renamed to this prefix before it is deleted: a purge interrupted half-way leaves a folder
# no reader takes for an archive (ids never start with a dot), and the next purge finishes it.
PURGING = ".purging-"


@dataclass(frozen=True)
class Decision:
    archive_id: str
    tenant: str | None
    delete: bool
    reason: str


@dataclass(frozen=True)
class RetentionRules:
    retention: timedelta = timedelta(days=30)
    # Cleanup of the shared rows waits this long after the switch and needs the archive; the migration has
    # not completed before.
    cleanup_grace: timedelta = timedelta(0)


def _newest_mtime(folder: Path) -> datetime:
    stamps = [folder.stat().st_mtime, *(p.stat().st_mtime for p in folder.iterdir() if not p.is_symlink())]
    return datetime.fromtimestamp(max(stamps), UTC)


def _days(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 86400:.1f} days"


def decide(archive_id: str, created_at: datetime, state: TenantState | None, rules: RetentionRules,
           now: datetime, shared_value: str = "shared") -> Decision:
    """The decision for one finished archive. `state` None: the tenant row no longer exists.

    The migration that wrote an archive has completed once the tenant row shows none under way: maintenance
    off (a migration holds it on from before the export to its end, a rollback while it restores, and a
    compensation that could not finish leaves it on) and, for a tenant on its dedicated database, the
    cleanup grace period after the switch over. Retention counts from the later of the archive's creation
    and that completion: a completed migration keeps its way back for the whole retention period."""
    tenant = state.tenant if state else None
    if state is not None and state.maintenance:
        return Decision(archive_id, tenant, False, "tenant in maintenance: a migration or rollback is under way "
                                                   "(or a compensation did not finish)")
    since = created_at
    if state is not None and state.database_type != shared_value:
        if state.migrated_at is None:
            return Decision(archive_id, tenant, False, f"tenant is {state.database_type} without a migration time")
        since = max(since, state.migrated_at + rules.cleanup_grace)
    age = now - since
    if age < rules.retention:
        return Decision(archive_id, tenant, False, f"within retention: {_days(rules.retention - age)} left")
    where = "tenant row gone" if state is None else f"tenant {state.database_type}"
    return Decision(archive_id, tenant, True, f"past retention by {_days(age - rules.retention)} ({where})")


async def plan_purge(conn: psycopg.AsyncConnection, registry: TenantRegistry, root: Path, rules: RetentionRules,
                     now: datetime) -> list[Decision]:
    """One decision per folder under root that looks like an archive (an id-shaped name, not a symlink)."""
    decisions: list[Decision] = []
    states: dict[str, TenantState | None] = {}
    if not root.is_dir():
        return decisions
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(PURGING) and folder.is_dir() and not folder.is_symlink():
            decisions.append(Decision(folder.name, None, True, "an interrupted purge's leftovers"))
            continue
        if not valid_archive_id(folder.name) or folder.is_symlink() or not folder.is_dir():
            continue
        if not (folder / MANIFEST).exists():
            # Unfinished: an export under way writes constantly; one untouched for the whole retention
            # period was abandoned (nothing reads an archive without its manifest).
            idle = now - _newest_mtime(folder)
            delete = idle >= rules.retention
            decisions.append(Decision(folder.name, None, delete, f"unfinished archive, untouched for {_days(idle)}"))
            continue
        try:
            manifest = read_manifest(folder)
        except ArchiveError as exc:
            decisions.append(Decision(folder.name, None, False, f"kept for an operator: {exc.message}"))
            continue
        if manifest.tenant not in states:
            try:
                states[manifest.tenant] = await registry.read(conn, manifest.tenant)
            except TenantNotFound:
                states[manifest.tenant] = None
        decisions.append(decide(folder.name, manifest.created_at, states[manifest.tenant], rules, now,
                                registry.columns.shared_value))
    return decisions


def remove_archive(root: Path, archive_id: str) -> None:
    """Rename out of the archive namespace first, then delete: never a half-deleted folder under an archive id."""
    folder = root / archive_id
    if not archive_id.startswith(PURGING):
        if not folder.is_dir():
            return
        target = root / f"{PURGING}{archive_id}"
        if target.exists():
            shutil.rmtree(target)
        os.replace(folder, target)
        folder = target
    shutil.rmtree(folder, ignore_errors=False)


async def purge_archives(conn: psycopg.AsyncConnection, registry: TenantRegistry, root: Path, rules: RetentionRules,
                         *, now: datetime | None = None, dry_run: bool = False) -> list[Decision]:
    """Decide for every archive under root, and delete the ones past retention unless dry_run."""
    decisions = await plan_purge(conn, registry, root, rules, now or datetime.now(UTC))
    if not dry_run:
        for decision in decisions:
            if decision.delete:
                remove_archive(root, decision.archive_id)
    return decisions
