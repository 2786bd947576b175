"""Shared types of the workflow layer: one frozen Input and one Result per activity, the workflow's own
input, status and report. They travel through Temporal history, so they hold ids and references only."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tenantmove.settings import Settings

TargetKind = Literal["postgres", "neon"]
TASK_QUEUE: str = Settings.model_fields["task_queue"].default  # defined once, in the settings


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class State(StrEnum):
    REQUESTED = "requested"
    AWAITING_APPROVAL = "awaiting_approval"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    REJECTED = "rejected"
    EXPIRED = "expired"


# ---- the workflow's input and decisions ---------------------------------------------------------------
class MigrationOptions(Frozen):
    """Filled from settings by the starter: a workflow cannot read the environment."""

    advance_notice_days: float = Field(default=7, ge=0)
    approval_timeout_hours: float = Field(default=72, gt=0)
    cleanup_grace_hours: float = Field(default=0, ge=0)
    cleanup_shared: bool = True  # False keeps the tenant's rows in shared after the move (cheapest rollback)
    # How long a data step may go without a heartbeat before Temporal retries it elsewhere: a killed worker
    # costs this much time, a too-short value retries a healthy step that paused (a lock wait).
    heartbeat_timeout_seconds: float = Field(default=120, gt=0)
    # online: copy while the tenant keeps writing (changes captured and replayed), freeze only for the
    # cutover; offline: maintenance mode for the whole copy, as the guide describes.
    mode: Literal["online", "offline"] = "online"
    parallel_tables: int = Field(default=4, ge=1, le=32)  # connections per side for import and verify
    # Online: replay until at most this many captured changes wait, then freeze writes for the last ones.
    freeze_backlog: int = Field(default=2000, ge=0)
    # One activity per table on the task queue, so that every worker polling it shares the copy.
    fanout: bool = False


class MigrateTenantInput(Frozen):
    tenant_id: str = Field(min_length=1, max_length=200)
    reason: str = ""
    preferred_timeframe: str = ""
    scheduled_at: datetime | None = None
    target: TargetKind = "postgres"
    options: MigrationOptions = MigrationOptions()


class Reschedule(Frozen):
    """Set or move the start time of a migration not yet running."""

    scheduled_at: datetime
    by: str = Field(min_length=1, max_length=200)


class Approval(Frozen):
    approver: str = Field(min_length=1, max_length=200)
    comment: str = ""
    scheduled_at: datetime | None = None

    @field_validator("approver")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("approver must not be blank")
        return value


class Rejection(Frozen):
    approver: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1)


# ---- status -------------------------------------------------------------------------------------------
class TableProgress(BaseModel):
    rows_total: int = 0
    rows_done: int = 0
    done: bool = False


class StepTiming(BaseModel):
    started_at: datetime
    finished_at: datetime | None = None
    seconds: float | None = None


class TenantStats(Frozen):
    figures: dict[str, int] = {}  # STATS_QUERIES: musicians, active projects, monthly requests for StageSub
    rows: int = 0
    bytes: int = 0
    tables: dict[str, int] = {}


class MigrationStatus(BaseModel):
    tenant_id: str
    state: State = State.REQUESTED
    step: str = "request"
    progress: int = 0
    target: TargetKind = "postgres"
    stats: TenantStats | None = None
    scheduled_at: datetime | None = None
    approved_by: str | None = None
    rejected_by: str | None = None
    tables: dict[str, TableProgress] = {}
    timings: dict[str, StepTiming] = {}
    log: list[str] = []
    last_error: str | None = None
    ignored_signals: list[str] = []
    database_id: str | None = None
    archive_id: str | None = None
    cleanup_done: bool = False
    mode: Literal["online", "offline"] = "online"
    # Maintenance on to maintenance off: how long the orchestra could not write.
    write_freeze_seconds: float | None = None
    changes_replayed: int = 0


class DatabaseRef(Frozen):
    """Where the dedicated database is: names and a secret-store reference, never the DSN."""

    kind: TargetKind
    provider_id: str
    database: str
    role: str
    host: str
    port: int
    secret_ref: str
    app_role: str | None = None  # the application's least-privileged login, when the provider made one
    app_secret_ref: str | None = None


class MigrationReport(Frozen):
    tenant_id: str
    state: State
    database: DatabaseRef | None = None
    archive_id: str | None = None
    cleanup_done: bool = False
    tables: dict[str, int] = {}
    timings: dict[str, float] = {}
    mode: Literal["online", "offline"] = "online"
    write_freeze_seconds: float | None = None
    changes_replayed: int = 0


# ---- activity inputs and results ----------------------------------------------------------------------
class RequestInput(Frozen):
    tenant_id: str
    target: TargetKind


class RequestResult(Frozen):
    stats: TenantStats


class PrecheckInput(Frozen):
    tenant_id: str


class PrecheckResult(Frozen):
    findings: list[str]


class MaintenanceInput(Frozen):
    tenant_id: str
    on: bool


class MaintenanceResult(Frozen):
    previous: bool


class ExportInput(Frozen):
    tenant_id: str
    archive_id: str
    parallel_tables: int = 1


class ExportResult(Frozen):
    archive_id: str
    tables: dict[str, int]
    bytes: int


class CreateDatabaseInput(Frozen):
    tenant_id: str
    target: TargetKind


class CreateDatabaseResult(Frozen):
    database: DatabaseRef


class DropDatabaseInput(Frozen):
    """provider_id when known; otherwise the provider finds the tenant's database by its derived name (a
    create whose reply was lost still left a database behind)."""

    target: TargetKind
    tenant_id: str
    provider_id: str | None = None


class DropDatabaseResult(Frozen):
    deleted: bool


class DeploySchemaInput(Frozen):
    tenant_id: str
    database: DatabaseRef


class DeploySchemaResult(Frozen):
    applied: list[str]


class ImportInput(Frozen):
    tenant_id: str
    database: DatabaseRef
    rows_expected: dict[str, int] = {}  # from the request's survey: lets the heartbeat say "412,000/800,000"
    parallel_tables: int = 1


class ImportProgress(Frozen):
    """Heartbeat details: a retried attempt skips the tables listed done."""

    done: list[str] = []
    table: str | None = None
    rows: int = 0
    rows_expected: int | None = None
    note: str = ""  # what the Temporal UI shows on the pending activity: "importing CommunicationLog 412,000/800,000"


class ImportResult(Frozen):
    tables: dict[str, int]
    resumed_from: list[str] = []


class VerifyInput(Frozen):
    tenant_id: str
    database: DatabaseRef
    parallel_tables: int = 1
    # Online: compare at a snapshot of shared while the tenant writes, replaying what that snapshot shows.
    capture_id: str | None = Field(default=None, pattern=r"^[a-z0-9]{1,32}$")


class VerifyResult(Frozen):
    tables: dict[str, int]


class SwitchInput(Frozen):
    tenant_id: str
    database: DatabaseRef


class SwitchResult(Frozen):
    previous_type: str
    switched: bool
    added_rows: dict[str, int] = {}  # rows the switch itself wrote to the dedicated database (its audit row)


class SwitchBackInput(Frozen):
    tenant_id: str


class SwitchBackResult(Frozen):
    switched_back: bool


class PostCheckInput(Frozen):
    tenant_id: str
    expected_rows: dict[str, int]


class PostCheckResult(Frozen):
    checks: list[str]


class CleanupInput(Frozen):
    tenant_id: str
    archive_id: str


class CleanupResult(Frozen):
    deleted: dict[str, int]


class RestoreInput(Frozen):
    tenant_id: str
    archive_id: str


class RestoreResult(Frozen):
    restored: dict[str, int]


class NotifyInput(Frozen):
    tenant_id: str
    kind: str
    message: str
    details: dict[str, str] = {}


class NotifyResult(Frozen):
    delivered: bool


class RecommendInput(Frozen):
    pass


class RecommendResult(Frozen):
    tenant_ids: list[str]


class MigrateManyInput(Frozen):
    """A fleet: these tenants, or (empty) every shared tenant past the automatic triggers."""

    tenant_ids: list[str] = []
    reason: str = ""
    target: TargetKind = "postgres"
    max_concurrent: int = Field(default=2, ge=1, le=50)
    batch_approval: bool = True  # one decision for the batch; False: each migration waits for its own
    options: MigrationOptions = MigrationOptions()


class FleetReport(Frozen):
    state: State
    results: dict[str, str]  # tenant -> completed / rolled_back / rejected / an error


class RollbackInput(Frozen):
    tenant_id: str
    report: MigrationReport


# ---- online mode: change capture ----------------------------------------------------------------------
class CaptureInput(Frozen):
    tenant_id: str
    capture_id: str = Field(pattern=r"^[a-z0-9]{1,32}$")


class CaptureResult(Frozen):
    tables: list[str]


class StopCaptureResult(Frozen):
    triggers_dropped: int


class ReplayInput(Frozen):
    tenant_id: str
    capture_id: str = Field(pattern=r"^[a-z0-9]{1,32}$")
    database: DatabaseRef
    # Catch-up: replay until at most `until_backlog` changes wait. Final (under maintenance): first wait for
    # writes in flight, then replay everything recorded.
    final: bool = False
    until_backlog: int = 0
    max_seconds: float = 600


class VerifyChangesInput(Frozen):
    tenant_id: str
    capture_id: str = Field(pattern=r"^[a-z0-9]{1,32}$")
    database: DatabaseRef


class ReplayResult(Frozen):
    changes: int
    rounds: int
    backlog: int
    upserted: dict[str, int] = {}
    deleted: dict[str, int] = {}
    seconds: float = 0


# ---- fan-out import: one activity per table, on any worker ---------------------------------------------
class PlanImportInput(Frozen):
    tenant_id: str
    database: DatabaseRef


class PlanImportResult(Frozen):
    order: list[str]
    parents: dict[str, list[str]]


class HoldSnapshotInput(Frozen):
    tenant_id: str
    import_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")


class HoldSnapshotResult(Frozen):
    snapshot_id: str
    seconds: float


class SnapshotReadyResult(Frozen):
    snapshot_id: str


class CopyTableInput(Frozen):
    tenant_id: str
    database: DatabaseRef
    table: str
    import_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")


class CopyTableResult(Frozen):
    table: str
    rows: int
    method: str
    worker: str


class FinishImportInput(Frozen):
    tenant_id: str
    database: DatabaseRef
    tables: list[str]


class FinishImportResult(Frozen):
    sequences: dict[str, int]
