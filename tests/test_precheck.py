"""Pre-checks on seeded StageSub orchestras: a quiet one passes, a busy one is stopped with reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stagesub.schema import deploy_reference_schema
from stagesub.seed import OrchestraSpec, seed
from tenantmove import db
from tenantmove.errors import PrecheckFailed, TenantNotFound
from tenantmove.plan import PlanRules, plan_schema
from tenantmove.precheck import PrecheckQueries, PrecheckRules, blocking, raise_on_blocking, run_precheck

from .conftest import copy_database, create_database

QUIET = "quiet-quartet"
BUSY = "busy-band"
QUERIES = PrecheckQueries()
DEFAULT_RULES = PrecheckRules()


@pytest.fixture(scope="module")
def template(pg_shared) -> str:
    dsn = create_database(pg_shared, "precheck_tpl")
    deploy_reference_schema(dsn)
    now = datetime.now(UTC)
    # Seeded an hour ago: its sessions were last seen over an hour ago, its backups are 7 hours old.
    seed(dsn, [OrchestraSpec(QUIET, "Quiet Quartet", "small")], now=now - timedelta(hours=1))
    # Seeded now: one user seen in the last ten minutes, and two jobs running.
    seed(dsn, [OrchestraSpec(BUSY, "Busy Band", "small", running_jobs=2)], now=now)
    return dsn


@pytest.fixture
def shared(pg_shared, template) -> str:
    return copy_database(pg_shared, template, "precheck")


async def _check(dsn: str, tenant: str, rules: PrecheckRules = DEFAULT_RULES, queries=QUERIES):
    async with db.connection(dsn) as conn:
        plan = await plan_schema(conn, "public", PlanRules())
        return await run_precheck(conn, plan, tenant, rules, queries)


async def test_quiet_tenant_passes(shared):
    findings = await _check(shared, QUIET)
    assert blocking(findings) == []
    by_check = {f.check: f for f in findings}
    assert set(by_check) == {"active_users", "running_jobs", "pending_requests", "backup_age", "tenant_bytes"}
    assert by_check["active_users"].value == 0 and by_check["running_jobs"].value == 0
    assert 6.9 < by_check["backup_age"].value < 7.5
    assert by_check["tenant_bytes"].value > 10_000
    assert by_check["pending_requests"].limit is None  # reported, limit off by default
    raise_on_blocking(findings, QUIET)


async def test_busy_tenant_is_blocked_with_reasons(shared):
    findings = await _check(shared, BUSY)
    stops = {f.check: f for f in blocking(findings)}
    assert set(stops) == {"active_users", "running_jobs"}
    assert stops["active_users"].value == 1 and stops["running_jobs"].value == 2
    assert stops["running_jobs"].message == "2 running background job(s), expected at most 0"
    with pytest.raises(PrecheckFailed, match="active user") as info:
        raise_on_blocking(findings, BUSY)
    assert len(info.value.findings) == 2 and info.value.tenant == BUSY
    # None turns a limit off; "" skips a query.
    relaxed = PrecheckRules(max_active_users=None, max_running_jobs=None, max_backup_age_hours=None)
    assert blocking(await _check(shared, BUSY, relaxed)) == []
    skipped = await _check(shared, BUSY, queries=PrecheckQueries(active_users="", running_jobs=""))
    assert blocking(skipped) == [] and {f.check for f in skipped} == {"pending_requests", "backup_age",
                                                                       "tenant_bytes"}


async def test_limits_on_size_and_pending_requests(shared):
    findings = await _check(shared, QUIET, PrecheckRules(max_pending_requests=0, max_tenant_bytes=1000))
    assert {f.check for f in blocking(findings)} == {"pending_requests", "tenant_bytes"}


async def test_old_or_missing_backup_blocks(shared):
    async with db.connection(shared, autocommit=True) as conn:
        await conn.execute('UPDATE "Backup" SET "createdAt" = "createdAt" - interval \'10 days\'')
    (old,) = [f for f in blocking(await _check(shared, QUIET)) if f.check == "backup_age"]
    assert old.value > 48 and "expected at most 48 hours" in old.message
    async with db.connection(shared, autocommit=True) as conn:
        await conn.execute('DELETE FROM "Backup"')
    (none,) = blocking(await _check(shared, QUIET))
    assert none.check == "backup_age" and none.value is None and none.message.startswith("no backup found")


async def test_integrity_problem_and_unknown_tenant(shared):
    # One of the quiet tenant's messages now names a musician of the busy tenant: it reaches both tenants.
    async with db.connection(shared, autocommit=True) as conn:
        await conn.execute(
            'UPDATE "CommunicationLog" SET "musicianId" = (SELECT id FROM "Musician" WHERE "tenantId" = %s '
            'ORDER BY id LIMIT 1) WHERE id = (SELECT id FROM "CommunicationLog" WHERE "tenantId" = %s '
            'ORDER BY id LIMIT 1)', (BUSY, QUIET))
    stops = blocking(await _check(shared, QUIET))
    assert stops and {f.check for f in stops} == {"integrity"}
    assert any("CommunicationLog" in f.message for f in stops)
    with pytest.raises(TenantNotFound, match="expected tenant 'nobody'"):
        await _check(shared, "nobody")


def test_settings_give_the_rules(monkeypatch):
    from tenantmove.settings import Settings

    monkeypatch.setenv("PRECHECK_MAX_ACTIVE_USERS", "")
    monkeypatch.setenv("PRECHECK_MAX_TENANT_BYTES", "5000000")
    monkeypatch.setenv("PRECHECK_MAX_BACKUP_AGE_HOURS", "off")
    rules = Settings().precheck_rules()
    assert rules == PrecheckRules(max_active_users=None, max_tenant_bytes=5_000_000, max_backup_age_hours=None)
