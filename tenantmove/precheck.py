"""Pre-migration checks: is the tenant quiet (users, jobs, requests), small, backed up and free of conflicts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from tenantmove.db import settle
from tenantmove.errors import ConfigError, PrecheckFailed, TenantNotFound
from tenantmove.plan import Plan
from tenantmove.survey import Survey, survey_tenant


@dataclass(frozen=True)
class PrecheckRules:
    """Limits; None turns a limit off (the value is still reported). `check_integrity` runs the full survey
    (rows two tenants claim, references into another tenant), which reads every copied table once more."""

    active_minutes: int = 15
    max_active_users: int | None = 0
    max_running_jobs: int | None = 0
    max_pending_requests: int | None = None
    max_tenant_bytes: int | None = None
    max_backup_age_hours: float | None = 48.0
    check_integrity: bool = True


# StageSub's queries. They run with search_path set to the plan's schema, take %(tenant)s and %(minutes)s,
# and return one value; Prisma stores DateTime as timestamp(3) in UTC, hence "now() AT TIME ZONE 'UTC'".
_ACTIVE_USERS = """
SELECT count(DISTINCT s."userId") FROM "Session" s JOIN "User" u ON u.id = s."userId"
WHERE u."tenantId" = %(tenant)s
  AND s."lastSeenAt" > (now() AT TIME ZONE 'UTC') - make_interval(mins => %(minutes)s)
  AND s.expires > (now() AT TIME ZONE 'UTC')"""
_RUNNING_JOBS = """
SELECT count(*) FROM "BackgroundJob" WHERE "tenantId" = %(tenant)s AND status = 'running'"""
_PENDING_REQUESTS = """
SELECT count(*) FROM "Request" r JOIN "ProjectNeed" n ON n.id = r."projectNeedId"
JOIN "Project" p ON p.id = n."projectId" WHERE p."tenantId" = %(tenant)s AND r.status = 'pending'"""
# A global backup (no tenant) covers every tenant.
_LAST_BACKUP = """
SELECT max("createdAt") FROM "Backup" WHERE "tenantId" = %(tenant)s OR "tenantId" IS NULL"""


@dataclass(frozen=True)
class PrecheckQueries:
    """SQL text of each check (one value per query); "" skips that check."""

    active_users: str = _ACTIVE_USERS
    running_jobs: str = _RUNNING_JOBS
    pending_requests: str = _PENDING_REQUESTS
    last_backup_at: str = _LAST_BACKUP


@dataclass(frozen=True)
class Finding:
    check: str
    value: float | int | str | None
    limit: float | int | None
    blocking: bool
    message: str


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.blocking]


def raise_on_blocking(findings: list[Finding], tenant: str) -> None:
    """PrecheckFailed naming every blocking finding, or nothing."""
    stops = blocking(findings)
    if stops:
        raise PrecheckFailed("pre-checks block the migration: " + "; ".join(f.message for f in stops),
                             findings=[f.message for f in stops], tenant=tenant, step="precheck")


async def _scalar(conn: psycopg.AsyncConnection, check: str, query: str, params: dict[str, object]) -> Any:
    try:
        # The queries are settings (configured SQL text), not built here; they are the one place where
        # text reaches execute() unchanged, which is their purpose.
        cur = await conn.execute(sql.SQL(query), params)
        row = await cur.fetchone()
    except psycopg.errors.ProgrammingError as exc:
        raise ConfigError(f"expected the {check} pre-check query to run, found: {str(exc).strip()}") from exc
    return row[0] if row else None


def _count_finding(check: str, what: str, value: int, limit: int | None) -> Finding:
    if limit is None:
        return Finding(check, value, None, False, f"{value} {what} (no limit)")
    bad = value > limit
    return Finding(check, value, limit, bad,
                   f"{value} {what}, expected at most {limit}" if bad else f"{value} {what} (limit {limit})")


async def run_precheck(conn: psycopg.AsyncConnection, plan: Plan, tenant: str, rules: PrecheckRules,
                       queries: PrecheckQueries, *, survey: Survey | None = None) -> list[Finding]:
    """Every check's finding, blocking or not; the caller decides (see blocking / raise_on_blocking).
    Reads only, in one transaction that is rolled back (db.settle first). `survey`: one the caller made
    already (survey_tenant_parallel, with conflicts=rules.check_integrity), else it is made here."""
    findings: list[Finding] = []
    params: dict[str, object] = {"tenant": tenant, "minutes": rules.active_minutes}
    await settle(conn)
    async with conn.transaction(force_rollback=True):
        if survey is None:
            survey = await survey_tenant(conn, plan, tenant, orphans=False, conflicts=rules.check_integrity)
        if survey.tables[plan.tenant_table].rows == 0:
            raise TenantNotFound(f"expected tenant {tenant!r} in {plan.schema}.{plan.tenant_table}, found none",
                                 tenant=tenant, table=plan.tenant_table)
        # The configured queries name tables without a schema: they mean the schema the plan is for.
        await conn.execute("SELECT set_config('search_path', %s, true)",
                           (sql.Identifier(plan.schema).as_string(conn),))
        counts = (("active_users", queries.active_users, f"active user(s) in the last {rules.active_minutes} "
                   "minutes", rules.max_active_users),
                  ("running_jobs", queries.running_jobs, "running background job(s)", rules.max_running_jobs),
                  ("pending_requests", queries.pending_requests, "pending request(s)",
                   rules.max_pending_requests))
        for check, query, what, limit in counts:
            if query.strip():
                value = await _scalar(conn, check, query, params)
                findings.append(_count_finding(check, what, int(value or 0), limit))
        if queries.last_backup_at.strip():
            findings.append(await _backup_finding(conn, queries.last_backup_at, params,
                                                  rules.max_backup_age_hours))
    size = sum(t.bytes for t in survey.tables.values())
    findings.append(_size_finding(size, rules.max_tenant_bytes))
    findings += [Finding("integrity", problem, None, True, problem) for problem in survey.problems]
    return findings


def _size_finding(size: int, limit: int | None) -> Finding:
    if limit is None:
        return Finding("tenant_bytes", size, None, False, f"tenant rows hold {size} bytes (no limit)")
    bad = size > limit
    return Finding("tenant_bytes", size, limit, bad, f"tenant rows hold {size} bytes, expected at most {limit}"
                   if bad else f"tenant rows hold {size} bytes (limit {limit})")


async def _backup_finding(conn: psycopg.AsyncConnection, query: str, params: dict[str, object],
                          limit: float | None) -> Finding:
    value = await _scalar(conn, "last_backup_at", query, params)
    if value is None:
        return Finding("backup_age", None, limit, limit is not None,
                       "no backup found" + (f", expected one at most {limit:g} hours old" if limit is not None
                                            else " (no limit)"))
    if not isinstance(value, datetime):
        raise ConfigError(f"expected the last_backup_at pre-check query to return a timestamp, found {value!r}")
    taken = value if value.tzinfo else value.replace(tzinfo=UTC)
    cur = await conn.execute("SELECT now()")
    row = await cur.fetchone()
    now = row[0] if row else datetime.now(UTC)  # the server's clock: the one the backups were stamped with
    age = round((now - taken).total_seconds() / 3600, 2)
    when = taken.astimezone(UTC).isoformat(timespec="seconds")
    if limit is None:
        return Finding("backup_age", age, None, False, f"last backup {age:g} hours ago at {when} (no limit)")
    bad = age > limit
    return Finding("backup_age", age, limit, bad,
                   f"last backup {age:g} hours ago at {when}, expected at most {limit:g} hours"
                   if bad else f"last backup {age:g} hours ago at {when} (limit {limit:g})")
