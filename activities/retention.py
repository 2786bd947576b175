"""The archive purge activity and its models: remove archives past retention whose migration completed."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import activity

from activities.common import Deps, boundary
from activities.models import Frozen
from tenantmove import db
from tenantmove.logs import get_logger
from tenantmove.retention import RetentionRules, purge_archives


class PurgeArchivesInput(Frozen):
    """Empty from the schedule: the worker's ARCHIVE_RETENTION_DAYS applies."""

    retention_days: float | None = Field(default=None, gt=0)
    dry_run: bool = False


class PurgeArchivesResult(BaseModel):
    deleted: list[str] = []
    kept: dict[str, str] = {}  # archive id -> why it stays


class RetentionActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn
    @boundary
    async def purge_archives(self, input: PurgeArchivesInput) -> PurgeArchivesResult:
        settings = self.deps.settings
        rules = RetentionRules(retention=timedelta(days=input.retention_days or settings.archive_retention_days),
                               cleanup_grace=timedelta(hours=settings.cleanup_grace_hours))
        async with db.connection(self.deps.shared_dsn) as conn:
            decisions = await purge_archives(conn, self.deps.registry, settings.archive_root, rules,
                                             dry_run=input.dry_run)
        log = get_logger(step="purge_archives", dry_run=input.dry_run)
        for decision in decisions:
            log.info("archive deleted" if decision.delete else "archive kept", archive=decision.archive_id,
                     reason=decision.reason)
        return PurgeArchivesResult(deleted=[d.archive_id for d in decisions if d.delete],
                                   kept={d.archive_id: d.reason for d in decisions if not d.delete})
