"""The import as one activity per table: in-process, and shared by two worker processes on one task queue."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import EventType

from activities.models import State
from tenantmove import db
from workflows.client import start_migration

from . import stagesub_expect as expect
from .test_worker_kill import _worker
from .test_workflow import _expected_sums, _target_sums, schema_shape
from .world import approve

TENANT = "sibelius-sinfonia"
MOVED = [*expect.OWNED, "User"]


async def _copy_workers(handle) -> dict[str, str]:
    """table -> identity of the worker whose copy_table activity completed it, read from the history."""
    scheduled: dict[int, str] = {}
    started: dict[int, str] = {}
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "copy_table":
                import json

                scheduled[event.event_id] = json.loads(attrs.input.payloads[0].data)["table"]
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            if attrs.scheduled_event_id in scheduled:
                started[attrs.scheduled_event_id] = attrs.identity
    return {scheduled[i]: started[i] for i in sorted(started)}  # in the order the copies were scheduled


async def _snapshot_ready_before_copies(handle) -> bool:
    """The snapshot was published (await_snapshot completed) before the first copy was scheduled: copies
    scheduled with the holder could take every activity slot while the holder waited for one."""
    kinds: dict[int, str] = {}
    ready = first_copy = None
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            kinds[event.event_id] = name = event.activity_task_scheduled_event_attributes.activity_type.name
            if name == "copy_table" and first_copy is None:
                first_copy = event.event_id
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled = event.activity_task_completed_event_attributes.scheduled_event_id
            if kinds.get(scheduled) == "await_snapshot" and ready is None:
                ready = event.event_id
    return ready is not None and first_copy is not None and ready < first_copy


async def _pollers(client, queue: str, count: int) -> None:
    """Wait until `count` worker processes poll the queue for activities: both must be there from the start."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    for _ in range(300):
        reply = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY))
        if len({p.identity for p in reply.pollers}) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} workers polling {queue}")


async def test_fanout_copies_each_table_in_its_own_activity(temporal_env, world):
    client = temporal_env.client
    expected = await _expected_sums(world.shared, MOVED)
    async with world.worker(client):
        handle = await start_migration(client, world.input(TENANT, advance_notice_days=0, fanout=True,
                                                           parallel_tables=3),
                                       task_queue=world.queue, workflow_id=f"migrate-{TENANT}-{world.queue}")
        await approve(handle)
        report = await handle.result()
        workers = await _copy_workers(handle)
    assert report.state is State.COMPLETED
    assert set(workers) >= set(MOVED) and len(workers) == len(set(workers))  # each table copied once
    assert await _target_sums(world.deps.dedicated_dsn(report.database), MOVED) == expected
    assert await schema_shape(world.deps.dedicated_dsn(report.database)) == await schema_shape(world.shared)
    # The keys deferred, no table waits for its parents: the largest ones are scheduled first.
    async with db.connection(world.shared) as conn:
        plan = await world.deps.plan(conn)
    sizes = {name: plan.catalog.table(name).total_bytes for name in workers}
    first = list(workers)[:3]
    assert sorted(sizes[name] for name in first) == sorted(sizes.values())[-3:], (first, sizes)


async def test_two_worker_processes_share_the_copy(dev_env, world, tmp_path):
    client = dev_env.client
    address = client.service_client.config.target_host
    expected = await _expected_sums(world.shared, MOVED)
    log = tmp_path / "workers.log"
    # Two activity slots each: the snapshot holder takes one, so neither process can run every copy alone.
    workers = [_worker(world, address, log, 0, WORKER_MAX_ACTIVITIES="2") for _ in range(2)]
    try:
        await _pollers(client, world.queue, 2)
        handle = await start_migration(client, world.input(TENANT, advance_notice_days=0, fanout=True,
                                                           parallel_tables=4),
                                       task_queue=world.queue, workflow_id=f"migrate-{TENANT}-{world.queue}")
        await approve(handle)
        report = await asyncio.wait_for(handle.result(), 120)
        copied_by = await _copy_workers(handle)
    finally:
        for process in workers:
            process.terminate()
        for process in workers:
            process.wait(10)
    assert report.state is State.COMPLETED
    assert len(set(copied_by.values())) == 2, copied_by  # both processes copied tables
    assert await _snapshot_ready_before_copies(handle)
    assert await _target_sums(world.deps.dedicated_dsn(report.database), MOVED) == expected
    assert await schema_shape(world.deps.dedicated_dsn(report.database)) == await schema_shape(world.shared)
