"""The migration's step list, progress weights, timeouts and retry policies: data the workflows share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.common import RetryPolicy, SearchAttributeKey

TENANT_ID = SearchAttributeKey.for_keyword("TenantId")
MIGRATION_STATE = SearchAttributeKey.for_keyword("MigrationState")
MIGRATION_STEP = SearchAttributeKey.for_keyword("MigrationStep")
SEARCH_ATTRIBUTES = (TENANT_ID, MIGRATION_STATE, MIGRATION_STEP)

# Progress (0-100) reached when each step ends; import dominates the time, so it owns the widest band.
PROGRESS_AT_END: dict[str, int] = {
    "request": 2, "approval": 5, "schedule": 8, "precheck": 12, "maintenance_on": 14, "export": 28,
    "create_database": 32, "deploy_schema": 36, "import": 78, "verify": 86, "switch": 89, "post_checks": 92,
    "cleanup": 97, "maintenance_off": 99, "notify": 100,
}
# Online: the copy runs before the freeze; the archive and cleanup come after the cutover.
PROGRESS_ONLINE: dict[str, int] = {
    "request": 2, "approval": 5, "schedule": 8, "precheck": 12, "create_database": 15, "deploy_schema": 18,
    "capture_start": 20, "import": 70, "catch_up": 74, "verify": 82, "maintenance_on": 83, "final_sync": 85,
    "verify_changes": 87, "switch": 88, "post_checks": 90, "maintenance_off": 91, "capture_stop": 92, "export": 95, "cleanup": 99,
    "notify": 100,
}
STEPS = list(PROGRESS_AT_END)

# Heartbeat timeout of the steps whose timing names none (their activities are kept alive by a timer).
QUICK_HEARTBEAT = timedelta(minutes=1)
# Quick calls to the shared database: a few retries with backoff ride out a restart or a failover.
QUICK = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=30), maximum_attempts=6)
# Long data steps: fewer, slower retries; each attempt resumes (import) or is idempotent (export, verify).
LONG = RetryPolicy(initial_interval=timedelta(seconds=5), backoff_coefficient=2.0,
                   maximum_interval=timedelta(minutes=2), maximum_attempts=5)
# The snapshot holder is never retried: its snapshot cannot be re-created, the import starts over instead.
ONCE = RetryPolicy(maximum_attempts=1)
# Compensations must get through: they keep retrying for a long while before the workflow gives up.
UNDO = RetryPolicy(initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
                   maximum_interval=timedelta(minutes=1), maximum_attempts=30)


@dataclass(frozen=True)
class Timing:
    start_to_close: timedelta
    heartbeat: timedelta | None = None


TIMEOUTS: dict[str, Timing] = {
    "request": Timing(timedelta(minutes=5)),
    "precheck": Timing(timedelta(minutes=10)),
    "maintenance": Timing(timedelta(minutes=1)),
    "export": Timing(timedelta(hours=4), timedelta(minutes=5)),
    "create_database": Timing(timedelta(minutes=15)),
    "drop_database": Timing(timedelta(minutes=15)),
    "deploy_schema": Timing(timedelta(minutes=15)),
    "import": Timing(timedelta(hours=8), timedelta(minutes=2)),
    "verify": Timing(timedelta(hours=2)),
    "switch": Timing(timedelta(minutes=1)),
    "post_checks": Timing(timedelta(minutes=15)),
    "cleanup": Timing(timedelta(hours=2)),
    "restore": Timing(timedelta(hours=4)),
    "notify": Timing(timedelta(minutes=1)),
    "capture_start": Timing(timedelta(minutes=10)),
    "plan_import": Timing(timedelta(minutes=10)),
    "finish_import": Timing(timedelta(minutes=30)),
    # Holds a snapshot open for as long as the tables take; one attempt: a new holder means a new snapshot.
    "hold_snapshot": Timing(timedelta(hours=8), timedelta(seconds=5)),  # short: cancels arrive on heartbeats
    "await_snapshot": Timing(timedelta(minutes=2)),  # each attempt waits SNAPSHOT_WAIT_SECONDS at the most
    "capture_stop": Timing(timedelta(minutes=10)),
    "catch_up": Timing(timedelta(hours=2), timedelta(minutes=2)),
    "final_sync": Timing(timedelta(minutes=30), timedelta(minutes=2)),
    "verify_changes": Timing(timedelta(minutes=30)),
}
