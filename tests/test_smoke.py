"""Post-migration smoke tests on a moved orchestra (and on the docs schema), passing and failing."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from stagesub.schema import deploy_reference_schema
from stagesub.seed import OrchestraSpec, seed
from tenantmove import db
from tenantmove.errors import PostCheckFailed
from tenantmove.mover import copy_tenant
from tenantmove.plan import PlanRules, plan_schema
from tenantmove.smoke import longest_chain, post_migration_checks

from . import docs_schema
from .conftest import copy_database, create_database

MOVED = "smoke-sinfonietta"


def _clone(server, dsn: str) -> str:
    return copy_database(server, dsn, "smoke")


@pytest.fixture(scope="module")
async def moved(pg_shared, pg_target):
    """(plan, expected rows, target template DSN): one small orchestra of two, copied once."""
    shared = create_database(pg_shared, "smoke_shared")
    deploy_reference_schema(shared)
    seed(shared, [OrchestraSpec(MOVED, "Smoke Sinfonietta", "small"), OrchestraSpec("neighbours", "N", "small")])
    target = create_database(pg_target, "smoke_tpl")
    deploy_reference_schema(target)
    async with db.connection(shared) as src, db.connection(target) as dst:
        plan = await plan_schema(src, "public", PlanRules())
        results = await copy_tenant(src, dst, plan, MOVED)
    return plan, {r.table: r.rows for r in results}, target


async def _counts(dsn: str, tables) -> dict[str, int]:
    async with db.connection(dsn) as conn:
        out = {}
        for t in tables:
            cur = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t)))
            out[t] = (await cur.fetchone())[0]
        return out


async def test_moved_orchestra_passes(pg_target, moved):
    plan, expected, template = moved
    target = _clone(pg_target, template)
    async with db.connection(target) as conn:
        done = await post_migration_checks(conn, plan, MOVED, expected)
    assert done[0] == f"read: row counts of {len(plan.copied_tables)} copied tables match"
    assert done[1].startswith("write: inserted and deleted a copy of ") and "-smoketest" in done[1]
    assert done[2].startswith("join: RequestToken -> Request -> ProjectNeed -> ") and done[2].count("->") == 4
    assert await _counts(target, expected) == expected  # the smoke row is gone again
    chain = longest_chain(plan)
    assert [fk.table for fk in chain][:3] == ["RequestToken", "Request", "ProjectNeed"]


async def test_a_missing_row_fails_the_read_check(pg_target, moved):
    plan, expected, template = moved
    target = _clone(pg_target, template)
    async with db.connection(target, autocommit=True) as conn:
        await conn.execute('DELETE FROM "CommunicationLog" WHERE id = (SELECT min(id) FROM "CommunicationLog")')
        with pytest.raises(PostCheckFailed, match=f"CommunicationLog: expected {expected['CommunicationLog']} rows, "
                                                  f"found {expected['CommunicationLog'] - 1}"):
            await post_migration_checks(conn, plan, MOVED, expected)
        with pytest.raises(PostCheckFailed, match="found none for Tenant"):
            await post_migration_checks(conn, plan, MOVED, {k: v for k, v in expected.items() if k != "Tenant"})


async def test_a_read_only_role_fails_the_write_check(pg_target, moved):
    plan, expected, template = moved
    target = _clone(pg_target, template)
    role = f"reader_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(role)))
    async with db.connection(psycopg.conninfo.make_conninfo(target, user=role)) as conn:
        with pytest.raises(PostCheckFailed, match="permission denied for table"):
            await post_migration_checks(conn, plan, MOVED, expected)


async def test_a_broken_chain_fails_the_join_check(pg_target, moved):
    plan, expected, template = moved
    target = _clone(pg_target, template)
    async with db.connection(target, autocommit=True) as conn:
        await conn.execute('ALTER TABLE "RequestToken" DROP CONSTRAINT "RequestToken_requestId_fkey"')
        await conn.execute('DELETE FROM "Request" WHERE id = (SELECT min("requestId") FROM "RequestToken")')
        changed = {**expected, "Request": expected["Request"] - 1}
        with pytest.raises(PostCheckFailed, match=r"join RequestToken -> Request -> .*: expected \d+ rows \(all of "
                                                  r"RequestToken\), found \d+"):
            await post_migration_checks(conn, plan, MOVED, changed)


async def test_integer_keys_on_the_docs_schema(pg_shared, pg_target):
    shared = create_database(pg_shared, "smoke_docs")
    target = create_database(pg_target, "smoke_docs")
    docs_schema.create(shared)
    docs_schema.create(target, data=False)
    async with db.connection(shared) as src, db.connection(target) as dst:
        plan = await plan_schema(src, "public", docs_schema.RULES)
        results = await copy_tenant(src, dst, plan, "1")
        expected = {r.table: r.rows for r in results}
        done = await post_migration_checks(dst, plan, "1", expected)
    assert done[1].startswith("write: inserted and deleted a copy of ")
    assert await _counts(target, expected) == expected
