"""The Temporal Schedule that runs PurgeArchives daily, created or brought up to date idempotently."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from activities.retention import PurgeArchivesInput
from tenantmove.settings import Settings
from workflows.retention import PurgeArchives


def retention_schedule_id(task_queue: str) -> str:
    # One per task queue: the purge runs where that queue's workers keep their ARCHIVE_DIR.
    return f"purge-archives-{task_queue}"


def retention_schedule(task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(PurgeArchives.run, PurgeArchivesInput(),
                                           id=f"purge-archives-{task_queue}", task_queue=task_queue,
                                           execution_timeout=timedelta(hours=1)),
        # Daily, offset from midnight so it does not meet the nightly backups most shops run at 00:00.
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(days=1), offset=timedelta(hours=3))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note="archives past ARCHIVE_RETENTION_DAYS of completed migrations are removed"))


async def ensure_retention_schedule(client: Client, settings: Settings) -> str:
    """Create the schedule, or reset an existing one to this definition (a changed task queue or a paused
    schedule someone forgot); running it twice changes nothing."""
    schedule_id = retention_schedule_id(settings.task_queue)
    wanted = retention_schedule(settings.task_queue)
    try:
        await client.create_schedule(schedule_id, wanted)
        return f"schedule {schedule_id} created: PurgeArchives daily"
    except ScheduleAlreadyRunningError:
        def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=wanted)

        await client.get_schedule_handle(schedule_id).update(update)
        return f"schedule {schedule_id} up to date: PurgeArchives daily"
