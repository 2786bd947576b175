"""PurgeArchives: the daily retention run the archive Schedule starts; one activity, no state of its own."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.retention import PurgeArchivesInput, PurgeArchivesResult, RetentionActivities
    from workflows.steps import QUICK


@workflow.defn
class PurgeArchives:
    @workflow.run
    async def run(self, input: PurgeArchivesInput) -> PurgeArchivesResult:
        return await workflow.execute_activity_method(
            RetentionActivities.purge_archives, input, start_to_close_timeout=timedelta(minutes=30),
            retry_policy=QUICK, summary="remove archives past retention")
