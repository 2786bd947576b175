"""Activities that move rows: export archive, import, verify, post-migration checks, cleanup, restore."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio import activity

from activities.common import Deps, beating, boundary, heartbeats_itself
from activities.models import (
    CleanupInput,
    CleanupResult,
    ExportInput,
    ExportResult,
    ImportInput,
    ImportProgress,
    ImportResult,
    PostCheckInput,
    PostCheckResult,
    RestoreInput,
    RestoreResult,
    VerifyInput,
    VerifyResult,
)
from tenantmove import db
from tenantmove.archive import ArchiveWriter
from tenantmove.archive_read import load_table, read_manifest, verify_archive
from tenantmove.checksum import table_checksum
from tenantmove.cleanup import delete_tenant_rows
from tenantmove.copy import CopyResult
from tenantmove.deferred import defer_for_load, finish_load
from tenantmove.errors import ArchiveError, IntegrityProblem
from tenantmove.logs import get_logger
from tenantmove.mover import restore_cycle_links, selections, suspend_cycle_links
from tenantmove.parallel import export_parallel, load_tenant, verify_tenant_parallel
from tenantmove.smoke import post_migration_checks

HEARTBEAT_SECONDS = 2.0


class DataActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def _archive_path(self, archive_id: str) -> Path:
        return self.deps.settings.archive_root / archive_id

    @activity.defn
    @boundary
    async def export_archive(self, input: ExportInput) -> ExportResult:
        """Stream every copied table to the archive, over `parallel_tables` connections on one snapshot. A
        finished archive (manifest present) is reused as is: the tenant's shared rows no longer change (in
        maintenance, or switched to its dedicated database)."""
        path = self._archive_path(input.archive_id)
        if (path / "manifest.json").exists():
            manifest = read_manifest(path)
        else:
            writer = ArchiveWriter(self.deps.settings.archive_root, input.archive_id, input.tenant_id,
                                   keys=self.deps.settings.archive_keys())
            async with db.connection(self.deps.shared_dsn) as conn:
                plan = await self.deps.plan(conn)
            await export_parallel(self.deps.shared_dsn, writer, selections(plan, input.tenant_id),
                                  connections=input.parallel_tables, on_table=activity.heartbeat)
            manifest = writer.finish()
        tables = {entry.table: entry.rows for entry in manifest.tables}
        return ExportResult(archive_id=input.archive_id, tables=tables,
                            bytes=sum(entry.file_bytes for entry in manifest.tables))

    @activity.defn
    @boundary
    @heartbeats_itself
    async def import_tenant(self, input: ImportInput) -> ImportResult:
        """Copy the tables over `parallel_tables` connection pairs, largest first, each table once the parents
        its target keys check are in, putting deferred indexes and keys back as tables load, heartbeating the
        tables done; a retry after a worker crash copies only the tables the heartbeat had
        not recorded (copy_rows would skip them anyway, at the price of a checksum on both sides)."""
        details = activity.info().heartbeat_details
        previous = ImportProgress.model_validate(details[0]) if details else ImportProgress()
        done = list(previous.done)
        log = get_logger(tenant=input.tenant_id, workflow_id=activity.info().workflow_id, step="import")
        if done:
            log.info("resuming import", tables_done=len(done))
        last_beat = 0.0

        def progress(table: str, rows: int, _bytes: int) -> None:
            nonlocal last_beat
            now = time.monotonic()
            if now - last_beat >= HEARTBEAT_SECONDS:
                last_beat = now
                expected = input.rows_expected.get(table)
                note = f"importing {table} {rows:,}" + (f"/{expected:,}" if expected is not None else "") + \
                    f" ({len(done)}/{len(plan.load_order)} tables done)"
                activity.heartbeat(ImportProgress(done=done, table=table, rows=rows, rows_expected=expected,
                                                  note=note).model_dump())

        def table_done(result: CopyResult) -> None:
            rows[result.table] = result.rows
            done.append(result.table)
            activity.heartbeat(ImportProgress(
                done=done, note=f"{len(done)}/{len(plan.load_order)} tables imported, last {result.table}").model_dump())
            log.info("table imported", table=result.table, rows=result.rows, method=result.method)

        def put_back(name: str) -> None:
            activity.heartbeat(ImportProgress(done=done, note=f"{name} put back").model_dump())
            log.info("index or foreign key put back", name=name)

        def beat(note: str) -> Callable[[], dict[str, Any]]:
            return lambda: ImportProgress(done=done, note=note).model_dump()

        rows: dict[str, int] = {}
        dedicated = self.deps.dedicated_dsn(input.database)
        async with db.connection(self.deps.shared_dsn) as src, db.connection(dedicated) as dst:
            plan = await self.deps.plan(src)
            await suspend_cycle_links(dst, plan)
            deferred = await defer_for_load(dst, plan.schema, plan.load_order) \
                if self.deps.settings.defer_target_constraints else []
            await db.settle(src)
            # The indexes and keys of the tables loaded first are built while the largest ones still load.
            async with beating(beat("importing; the indexes of loaded tables building")):
                await load_tenant(
                    self.deps.shared_dsn, dedicated, plan, input.tenant_id, deferred,
                    connections=input.parallel_tables, tables=[name for name in plan.load_order if name not in done],
                    on_progress=progress, on_table=table_done, on_item=put_back,
                    max_rows_per_second=self.deps.settings.copy_max_rows_per_second)
            await restore_cycle_links(src, dst, plan)

        # What is left (all of it after a resume that found every table done: the crash may have interrupted
        # the put-back), each key checked, and the record dropped.
        async with beating(beat("building indexes, validating keys")):
            await finish_load(dedicated, connections=input.parallel_tables, on_item=put_back)
        return ImportResult(tables=rows, resumed_from=list(previous.done))

    @activity.defn
    @boundary
    async def verify_import(self, input: VerifyInput) -> VerifyResult:
        async with db.connection(self.deps.shared_dsn) as src:
            plan = await self.deps.plan(src)
            await db.settle(src)
            sums = await verify_tenant_parallel(self.deps.shared_dsn, self.deps.dedicated_dsn(input.database), plan,
                                                input.tenant_id, connections=input.parallel_tables)
        return VerifyResult(tables={name: s.rows for name, s in sums.items()})

    @activity.defn
    @boundary
    async def post_migration_checks(self, input: PostCheckInput) -> PostCheckResult:
        """Through the application's own lookup: the tenant row's database URL, then that database."""
        async with db.connection(self.deps.shared_dsn) as conn:
            plan = await self.deps.plan(conn)
            url = await self.deps.registry.database_url(conn, input.tenant_id)
        if not url:
            raise IntegrityProblem(f"tenant {input.tenant_id!r} has no database URL after the switch",
                                   tenant=input.tenant_id)
        async with db.connection(url) as dedicated:
            checks = await post_migration_checks(dedicated, plan, input.tenant_id, dict(input.expected_rows))
        return PostCheckResult(checks=checks)

    @activity.defn
    @boundary
    async def cleanup_shared(self, input: CleanupInput) -> CleanupResult:
        """Only once the archive reads back equal to its manifest: it is the way back after this."""
        await verify_archive(self._archive_path(input.archive_id), self.deps.settings.archive_keys())
        async with db.connection(self.deps.shared_dsn) as conn:
            plan = await self.deps.plan(conn)
            deleted = await delete_tenant_rows(conn, plan, input.tenant_id)
        get_logger(tenant=input.tenant_id, step="cleanup").info("shared rows deleted", rows=sum(deleted.values()))
        return CleanupResult(deleted=deleted)

    @activity.defn
    @boundary
    async def restore_from_archive(self, input: RestoreInput) -> RestoreResult:
        """Load the tenant's deleted rows back into shared from the archive, parents first; a table whose
        rows are already there (same checksum as the manifest) is skipped, so a retry is safe."""
        path = self._archive_path(input.archive_id)
        manifest = await verify_archive(path, self.deps.settings.archive_keys())
        restored: dict[str, int] = {}
        async with db.connection(self.deps.shared_dsn) as conn:
            plan = await self.deps.plan(conn)
            chosen = {s.table: s for s in selections(plan, input.tenant_id)}
            for entry in sorted(manifest.tables, key=lambda e: e.position):
                if entry.table not in chosen or not plan.tables[entry.table].deleted:
                    continue
                now = await table_checksum(conn, chosen[entry.table])
                await db.settle(conn)
                if now.matches(entry.checksum):
                    continue
                if now.rows:
                    raise ArchiveError(f"{entry.table}: shared holds {now.rows} of the tenant's rows that differ "
                                       "from the archive; expected none or all of them", table=entry.table)
                async with conn.transaction():
                    restored[entry.table] = await load_table(conn, path, entry,
                                                             keys=self.deps.settings.archive_keys())
        return RestoreResult(restored=restored)
