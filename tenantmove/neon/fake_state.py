"""What the local Neon server holds: the fault knobs a test turns, and its project and operation records."""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class FaultPlan:
    """Knobs a test turns: each counter is spent by the next requests matching `target` ("METHOD /path"
    prefix, e.g. "POST /projects"; None = any request)."""

    target: str | None = None
    rate_limited: int = 0          # answer 429 with Retry-After
    retry_after: str = "0"
    unavailable: int = 0           # answer 503
    server_errors: int = 0         # answer 500 (before doing anything)
    locked: int = 0                # answer 423
    drop_connections: int = 0      # drop the connection before doing anything
    drop_after_post: int = 0       # do a POST /projects, then drop the connection (the reply is lost)
    slow_replies: int = 0          # wait slow_reply_seconds, then do the request: the client has timed out
    slow_reply_seconds: float = 1.0
    failed_operations: int = 0     # the next N projects' operations go `failed`, then Neon's retry finishes them
    error_operations: int = 0      # the next N projects' operations end in `error`
    slow_operations: float = 0.0   # seconds added to every new operation
    uri_without_password: bool = False

    def take(self, knob: str, key: str) -> bool:
        if self.target is not None and not key.startswith(self.target):
            return False
        left = getattr(self, knob)
        if left > 0:
            setattr(self, knob, left - 1)
            return True
        return False


_ID_SEGMENT = re.compile(r"(?<=/projects/)[^/]+|(?<=/branches/)[^/]+|(?<=/roles/)[^/]+|(?<=/operations/)[^/]+")


@dataclass
class EachCallOnce(FaultPlan):
    """One fault kind (a FaultPlan knob) at every distinct call, once: the first request of each call
    ("GET /projects/{id}/operations", ...) gets it, the retry goes through; `hit` lists the calls faulted.
    Operation knobs ("failed_operations", "error_operations") apply to the first project's operations."""

    kind: str = "unavailable"
    hit: list[str] = field(default_factory=list)

    def take(self, knob: str, key: str) -> bool:
        if knob != self.kind:
            return False
        call = _ID_SEGMENT.sub("{id}", key)
        if call in self.hit:
            return False
        self.hit.append(call)
        return True


@dataclass
class FakeOperation:
    id: str
    action: str
    created: float
    runs: float          # seconds from created to finished
    fail: str | None = None  # "failed" (recovers at `runs`) or "error" (never does)

    def status(self, now: float) -> str:
        age = now - self.created
        if self.fail == "error":
            return "running" if age < self.runs / 2 else "error"
        if age >= self.runs:
            return "finished"
        if self.fail == "failed" and age >= self.runs / 2:
            return "failed"
        return "scheduling" if age < self.runs / 4 else "running"


@dataclass
class FakeProject:
    id: str
    name: str
    region_id: str
    pg_version: int
    min_cu: float
    max_cu: float
    database: str
    role: str
    local_database: str
    local_role: str
    password: str
    branch_id: str
    endpoint_id: str
    created_at: str
    operations: list[FakeOperation] = field(default_factory=list)
