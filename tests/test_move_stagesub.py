"""Move one StageSub orchestra of three to a second server (and to PostgreSQL 15) and prove it by checksum."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stagesub.schema import deploy_reference_schema
from stagesub.seed import DEFAULT_ORCHESTRAS, seed
from tenantmove import db
from tenantmove.checksum import table_checksum
from tenantmove.cleanup import delete_tenant_rows
from tenantmove.deferred import defer_for_load, finish_load
from tenantmove.errors import ChecksumMismatch
from tenantmove.mover import copy_tenant, verify_tenant
from tenantmove.parallel import copy_tenant_parallel
from tenantmove.plan import PlanRules, plan_schema
from tenantmove.plan_order import load_parents
from tenantmove.survey import survey_tenant

from . import stagesub_expect as expect
from .conftest import copy_database, create_database

MOVED = "sibelius-sinfonia"
OTHERS = [spec.tenant_id for spec in DEFAULT_ORCHESTRAS if spec.tenant_id != MOVED]
RULES = PlanRules()  # StageSub's defaults: Tenant, tenantId, KEEP_TABLES=User
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def shared_template(pg_shared):
    """Three orchestras, seeded once; each test copies it (CREATE DATABASE ... TEMPLATE) to stay independent."""
    dsn = create_database(pg_shared, "stagesub_tpl")
    deploy_reference_schema(dsn)
    seed(dsn, DEFAULT_ORCHESTRAS, now=NOW)
    return dsn


def _copy_of(server, template_dsn: str) -> str:
    return copy_database(server, template_dsn, "stagesub")


async def _sums(dsn: str, selections) -> dict[str, tuple[int, str]]:
    async with db.connection(dsn) as conn:
        out = {s.table: await table_checksum(conn, s) for s in selections}
        await conn.rollback()
    return {name: (c.rows, c.digest) for name, c in out.items()}


async def _move(shared: str, target: str) -> None:
    async with db.connection(shared) as src, db.connection(target) as dst:
        plan = await plan_schema(src, "public", RULES)
        survey = await survey_tenant(src, plan, MOVED)
        survey.raise_on_problems()
        await copy_tenant(src, dst, plan, MOVED)
        await verify_tenant(src, dst, plan, MOVED)


@pytest.mark.parametrize("target_server", ["pg_target", "pg15"])
async def test_one_orchestra_moves_to_another_server(request, pg_shared, shared_template, target_server):
    server = request.getfixturevalue(target_server)
    shared = _copy_of(pg_shared, shared_template)
    target = create_database(server, "dedicated")
    deploy_reference_schema(target)
    before = await _sums(shared, [expect.whole(t) for t in expect.ALL_TABLES])
    await _move(shared, target)
    # The dedicated database holds exactly the orchestra's rows (hand-written predicates), table by table.
    expected = await _sums(shared, [expect.rows_of(t, MOVED) for t in [*expect.OWNED, *expect.COPIED_ONLY]])
    on_target = await _sums(target, [expect.whole(t) for t in [*expect.OWNED, *expect.COPIED_ONLY]])
    assert on_target == expected
    assert expected["Request"][0] >= 1000 and expected["Musician"][0] >= 300
    assert (await _sums(target, [expect.whole("Session")]))["Session"][0] == 0
    # The copy changed nothing in the shared database.
    assert await _sums(shared, [expect.whole(t) for t in expect.ALL_TABLES]) == before


async def test_cleanup_removes_the_orchestra_and_leaves_the_others_untouched(pg_shared, pg_target, shared_template):
    shared = _copy_of(pg_shared, shared_template)
    target = create_database(pg_target, "dedicated")
    deploy_reference_schema(target)
    others_before = {t: await _sums(shared, [expect.rows_of(t, MOVED, negate=True)]) for t in expect.OWNED}
    kept_before = await _sums(shared, [expect.whole(t) for t in ("Tenant", "User", "Session", "_prisma_migrations")])
    moved_rows = await _sums(shared, [expect.rows_of(t, MOVED) for t in expect.OWNED])
    await _move(shared, target)
    async with db.connection(shared) as conn:
        plan = await plan_schema(conn, "public", RULES)
        deleted = await delete_tenant_rows(conn, plan, MOVED)
    assert deleted == {t: moved_rows[t][0] for t in expect.OWNED}
    for table in expect.OWNED:
        assert (await _sums(shared, [expect.rows_of(table, MOVED, negate=True)])) == others_before[table], table
        assert (await _sums(shared, [expect.rows_of(table, MOVED)]))[table][0] == 0, table
    assert await _sums(shared, [expect.whole(t) for t in kept_before]) == kept_before
    for other in OTHERS:  # the other orchestras still plan to the same rows
        async with db.connection(shared) as conn:
            survey = await survey_tenant(conn, plan, other)
        assert survey.tables["Musician"].rows > 0


async def test_a_value_changed_anywhere_on_the_target_is_detected(pg_shared, pg_target, shared_template):
    shared = _copy_of(pg_shared, shared_template)
    target = create_database(pg_target, "dedicated")
    deploy_reference_schema(target)
    await _move(shared, target)
    changes = [
        'UPDATE "Musician" SET "phone" = NULL WHERE id = (SELECT min(id) FROM "Musician" WHERE "phone" IS NOT NULL)',
        'UPDATE "CommunicationLog" SET metadata = metadata || \'{"x": 1}\' WHERE id = (SELECT max(id) FROM "CommunicationLog")',
        'DELETE FROM "RequestToken" WHERE id = (SELECT min(id) FROM "RequestToken")',
        'UPDATE "Tenant" SET "maintenanceMode" = NOT "maintenanceMode"',
    ]
    for change in changes:
        async with db.connection(target) as conn:
            await conn.execute("BEGIN")
            await conn.execute(change)
            async with db.connection(shared) as src:
                plan = await plan_schema(src, "public", RULES)
                with pytest.raises(ChecksumMismatch) as info:
                    await verify_tenant(src, conn, plan, MOVED)
            assert len(info.value.tables) == 1, change
            await conn.rollback()


@pytest.mark.parametrize("deferred", [False, True], ids=["keys-in-place", "keys-deferred"])
async def test_tables_load_largest_first_once_no_foreign_key_makes_them_wait(pg_shared, pg_target, shared_template,
                                                                          deferred):
    """On one connection the load order shows the schedule: parents first while the target checks foreign
    keys; with the keys deferred, the largest tables first (a child may then come before its parent), and the
    keys, put back, still hold."""
    shared = _copy_of(pg_shared, shared_template)
    target = create_database(pg_target, "order")
    deploy_reference_schema(target)
    async with db.connection(shared) as src:
        plan = await plan_schema(src, "public", RULES)
    if deferred:
        async with db.connection(target) as dst:
            await defer_for_load(dst, "public", plan.load_order)
    order: list[str] = []
    await copy_tenant_parallel(shared, target, plan, MOVED, connections=1, on_table=lambda r: order.append(r.table))
    position = {name: index for index, name in enumerate(order)}
    early = [(child, parent) for child, parents in load_parents(plan).items() for parent in parents
             if position[child] < position[parent]]
    if deferred:
        assert order == sorted(plan.load_order, key=lambda name: -plan.catalog.table(name).total_bytes)
        assert early  # at least one child loaded before its parent
        assert await finish_load(target, connections=2)  # every key validated over the loaded rows
    else:
        assert early == []
    async with db.connection(shared) as src, db.connection(target) as dst:
        sums = await verify_tenant(src, dst, plan, MOVED)
    assert sum(c.rows for c in sums.values()) > 0
