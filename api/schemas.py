"""Request and response bodies of the HTTP API: what its OpenAPI document describes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from activities.models import MigrationStatus, TableProgress, TargetKind
from console.listing import MigrationRow


class Body(BaseModel):
    # The guide's JSON is camelCase (preferredTimeframe); unknown fields are refused, not ignored.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def parse_timeframe(text: str, now: datetime) -> tuple[datetime, datetime]:
    """An ISO 8601 interval `start/end`: times with a zone, or dates (whole UTC days, the end day included)."""
    parts = text.strip().split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError("expected an ISO 8601 interval START/END, e.g. 2026-12-24T22:00:00+01:00/"
                         "2026-12-27T06:00:00+01:00 or 2026-12-24/2026-12-27")
    bounds = []
    for index, part in enumerate(parts):
        part = part.strip()
        try:
            if len(part) == 10:  # a date: from its midnight, or (the end) until the next one
                day = date.fromisoformat(part) + timedelta(days=index)
                bounds.append(datetime.combine(day, time(), tzinfo=UTC))
                continue
            value = datetime.fromisoformat(part)
        except ValueError:
            raise ValueError(f"cannot read {part!r} as an ISO 8601 date or time") from None
        if value.tzinfo is None:
            raise ValueError(f"time {part!r} has no time zone; add one, e.g. {part}+00:00")
        bounds.append(value)
    start, end = bounds
    if end <= start:
        raise ValueError(f"the time frame ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    if end <= now:
        raise ValueError(f"the time frame is over (it ended {end.isoformat()})")
    return start, end


class MigrationRequest(Body):
    reason: str = Field(min_length=1, max_length=2000, description="why the orchestra wants its own database")
    preferred_timeframe: str = Field(alias="preferredTimeframe", max_length=200, description=(
        "ISO 8601 interval START/END, times with a zone or dates (whole UTC days, end day included)"))
    target: TargetKind = "postgres"

    @field_validator("reason")
    @classmethod
    def _reason_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("reason must not be blank")
        return value.strip()

    @field_validator("preferred_timeframe")
    @classmethod
    def _timeframe_parses(cls, value: str) -> str:
        start, end = parse_timeframe(value, datetime.now(UTC))
        return f"{start.isoformat()}/{end.isoformat()}"


class ApproveRequest(Body):
    comment: str = Field(default="", max_length=2000)
    scheduled_at: AwareDatetime | None = Field(default=None, alias="scheduledAt",
                                               description="start time; default: as soon as the notice allows")


class RejectRequest(Body):
    reason: str = Field(min_length=1, max_length=2000)


class ScheduleRequest(Body):
    scheduled_at: AwareDatetime = Field(alias="scheduledAt")


class Started(BaseModel):
    id: str
    tenant: str
    state: str
    status_url: str
    events_url: str


class Problem(BaseModel):
    """Every error: a message for people, the request id for the logs, and the migration id when one exists."""

    detail: str
    request_id: str | None = None
    id: str | None = None
    state: str | None = None


class MigrationList(BaseModel):
    migrations: list[MigrationRow]


class StepProgress(BaseModel):
    name: str
    state: str  # done | running | pending | skipped
    percent: int
    seconds: float | None = None


class Progress(BaseModel):
    """One event of the live stream: the whole picture, so a client that joins late misses nothing."""

    id: str
    kind: str  # MigrateTenant or RollbackTenant
    tenant: str
    state: str
    execution: str
    step: str
    percent: int
    table: str | None = None  # the table the import is copying now (from its heartbeat)
    rows: int | None = None  # rows of that table copied so far
    rows_expected: int | None = None
    steps: list[StepProgress]
    tables: dict[str, TableProgress]
    last_error: str | None = None
    finished: bool


__all__ = ["MigrationRow", "MigrationStatus"]
