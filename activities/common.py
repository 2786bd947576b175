"""What every activity class is given (built once in worker.py) and the boundary that types its errors."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.models import DatabaseRef
from tenantmove.db import mask_dsn
from tenantmove.errors import ConfigError, DatabaseUnavailable, EngineError
from tenantmove.notify import Notifier
from tenantmove.plan import Plan, plan_schema
from tenantmove.providers import DatabaseProvider, DedicatedDatabase
from tenantmove.secrets import SecretStore
from tenantmove.settings import Settings
from tenantmove.tenant_state import TenantRegistry

R = TypeVar("R")


@dataclass
class Deps:
    settings: Settings
    shared_dsn: str
    secrets: SecretStore
    providers: Mapping[str, DatabaseProvider]
    notifier: Notifier
    registry: TenantRegistry
    migrations_dir: Path

    async def plan(self, conn: psycopg.AsyncConnection) -> Plan:
        return await plan_schema(conn, self.settings.db_schema, self.settings.plan_rules())

    def provider(self, kind: str) -> DatabaseProvider:
        try:
            return self.providers[kind]
        except KeyError:
            raise ConfigError(f"no database provider {kind!r} configured (have: {', '.join(self.providers)})") \
                from None

    def dedicated_dsn(self, ref: DatabaseRef) -> str:
        return self.provider(ref.kind).dsn(to_dedicated(ref))

    def app_dsn(self, ref: DatabaseRef) -> str:
        """What the application connects with (its least-privileged role): the tenant row's URL."""
        return self.provider(ref.kind).app_dsn(to_dedicated(ref))


def to_ref(db: DedicatedDatabase) -> DatabaseRef:
    return DatabaseRef(kind=db.kind, provider_id=db.provider_id, database=db.database, role=db.role,  # type: ignore[arg-type]
                       host=db.host, port=db.port, secret_ref=db.secret_ref, app_role=db.app_role,
                       app_secret_ref=db.app_secret_ref)


def to_dedicated(ref: DatabaseRef) -> DedicatedDatabase:
    return DedicatedDatabase(kind=ref.kind, provider_id=ref.provider_id, database=ref.database, role=ref.role,
                             host=ref.host, port=ref.port, secret_ref=ref.secret_ref, app_role=ref.app_role,
                             app_secret_ref=ref.app_secret_ref)


def boundary(fn: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Engine errors leave an activity as ApplicationError typed by class: permanent ones non-retryable, so
    Temporal stops retrying and the saga unwinds; transient ones retried by the activity's RetryPolicy.
    Messages are masked: a DSN in a driver message must not reach the history."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> R:
        beat = _keep_alive() if not getattr(fn, "heartbeats_itself", False) else None
        try:
            return await fn(*args, **kwargs)
        except EngineError as exc:
            details = getattr(exc, "tables", None) or getattr(exc, "findings", None) or \
                getattr(exc, "differences", None) or []
            raise ApplicationError(mask_dsn(exc.message), *[mask_dsn(str(d)) for d in details],
                                   type=exc.type_name, non_retryable=not exc.retryable) from None
        except psycopg.OperationalError as exc:
            # A connection lost mid-statement (server restart or failover, backend terminated) where the engine
            # did not type it: transient, named as the runbook names it. Other driver errors stay as they are.
            if (exc.sqlstate or "").startswith(("08", "57P")) or not exc.sqlstate:
                raise ApplicationError(f"database connection lost: {mask_dsn(str(exc)).strip()}",
                                       type=DatabaseUnavailable.__name__) from None
            raise
        finally:
            if beat is not None:
                beat.cancel()

    return wrapper


def heartbeats_itself(fn: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Marks an activity whose heartbeats carry details it resumes from: the keep-alive's empty heartbeats
    would replace them. Put it under @boundary."""
    fn.heartbeats_itself = True  # type: ignore[attr-defined]
    return fn


async def _beat_forever(interval: float, details: Callable[[], Any] | None = None) -> None:
    while True:
        await asyncio.sleep(interval)
        activity.heartbeat(*([details()] if details is not None else []))


def _keep_alive(details: Callable[[], Any] | None = None) -> asyncio.Task[None] | None:
    """Heartbeats while the activity runs, when its step has a heartbeat timeout: that timeout is how Temporal
    notices a killed worker, so a step retried elsewhere within seconds instead of after its start-to-close
    timeout (hours for verify and cleanup). A hung query still ends at the start-to-close timeout."""
    if not activity.in_activity():
        return None
    timeout = activity.info().heartbeat_timeout
    if not timeout:
        return None
    return asyncio.create_task(_beat_forever(max(timeout.total_seconds() / 4, 0.1), details))


@asynccontextmanager
async def beating(details: Callable[[], Any]) -> AsyncIterator[None]:
    """The keep-alive for one long stretch (an index build) of an activity that heartbeats itself: it beats
    with `details()`, so the progress a retry resumes from is kept."""
    beat = _keep_alive(details)
    try:
        yield
    finally:
        if beat is not None:
            beat.cancel()
