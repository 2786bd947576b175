"""A kept table's copied rows: exactly those a copied row references, by any key, found by joins."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from tenantmove import db
from tenantmove.plan import PlanRules, plan_schema
from tenantmove.selection import SelectionBuilder, _Query, tenant_selection

from .conftest import create_database

# "User" is kept on shared (PlanRules' default) and copied for the rows that reference it: Post by id and by
# email, Vote by nick and by id, some of them NULL.
SCHEMA = """
CREATE TABLE "Tenant" (id text PRIMARY KEY);
CREATE TABLE "User" (id int PRIMARY KEY, "tenantId" text REFERENCES "Tenant", email text UNIQUE, nick text UNIQUE);
CREATE TABLE "Post" (id int PRIMARY KEY, "tenantId" text NOT NULL REFERENCES "Tenant",
                     "authorId" int REFERENCES "User" (id), "editorEmail" text REFERENCES "User" (email));
CREATE TABLE "Vote" (id int PRIMARY KEY, "tenantId" text NOT NULL REFERENCES "Tenant",
                     "voterNick" text REFERENCES "User" (nick), "userId" int REFERENCES "User" (id));
INSERT INTO "Tenant" VALUES ('a'), ('b');
INSERT INTO "User" VALUES (1, 'a', 'one@x', 'one'), (2, 'a', 'two@x', 'two'), (3, 'b', 'three@x', 'three'),
    (4, 'a', 'four@x', 'four'), (5, 'a', 'five@x', 'five'), (6, NULL, NULL, NULL), (7, 'b', 'seven@x', NULL),
    (8, 'a', NULL, 'eight');
INSERT INTO "Post" VALUES (1, 'a', 1, NULL), (2, 'a', NULL, 'two@x'), (3, 'b', 4, 'four@x'), (4, 'a', NULL, NULL),
    (5, 'b', 7, NULL);
INSERT INTO "Vote" VALUES (1, 'a', 'three', NULL), (2, 'b', 'five', 5), (3, 'a', NULL, 8), (4, 'a', NULL, NULL);
"""
# Tenant a's rows reference user 1 (Post 1, by id), 2 (Post 2, by email), 3 (Vote 1, by nick: a user of
# tenant b) and 8 (Vote 3, by id). Users 4, 5 and 7 are referenced by tenant b's rows only; 6 by nobody.
EXPECTED = {"a": [1, 2, 3, 8], "b": [4, 5, 7]}


@pytest.fixture(scope="module")
def dsn(pg_shared) -> str:
    dsn = create_database(pg_shared, "selection")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL(SCHEMA))  # type: ignore[arg-type]
    return dsn


@pytest.mark.parametrize("tenant", sorted(EXPECTED))
async def test_a_kept_table_copies_the_rows_referenced_by_any_key(dsn: str, tenant: str) -> None:
    async with db.connection(dsn) as conn:
        plan = await plan_schema(conn, "public", PlanRules())
        selection = tenant_selection(plan, "User", tenant)
        cur = await conn.execute(sql.SQL("SELECT s.id FROM ({}) AS s ORDER BY 1").format(selection.query),
                                 dict(selection.params))
        assert [row[0] for row in await cur.fetchall()] == EXPECTED[tenant]


async def test_the_referenced_rows_are_found_by_joins_not_a_query_per_row(pg_shared, dsn: str) -> None:
    """With one referenced key, the test is a semi-join: no subplan that the executor runs once per candidate
    row. An OR of correlated EXISTS did that, scanning a whole log table per user when the planner guessed
    a match would come early (2 of the 5 s of a 1M-row import)."""
    async with db.connection(dsn) as conn:
        await conn.execute('ALTER TABLE "Post" DROP CONSTRAINT "Post_editorEmail_fkey"')
        await conn.execute('ALTER TABLE "Vote" DROP CONSTRAINT "Vote_voterNick_fkey"')
        plan = await plan_schema(conn, "public", PlanRules())
        selection = tenant_selection(plan, "User", "a")
        cur = await conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(selection.query),
                                 dict(selection.params))
        row = await cur.fetchone()
        await conn.rollback()
    assert row is not None
    nodes = list(_nodes(row[0][0]["Plan"]))
    assert {node.get("Relation Name") for node in nodes} >= {"User", "Post", "Vote"}
    assert [node["Node Type"] for node in nodes if node.get("Parent Relationship") == "SubPlan"] == []


async def test_a_negated_reference_test_is_true_for_a_null_key(dsn: str) -> None:
    """The IN test answers false, never NULL, for a row whose key is NULL, as the EXISTS it replaced did."""
    async with db.connection(dsn) as conn:
        plan = await plan_schema(conn, "public", PlanRules())
        builder = SelectionBuilder(plan)
        q = _Query()
        alias = q.alias()
        test = builder.copy_member(q, "User", alias)
        cur = await conn.execute(sql.SQL('{}SELECT {}.id FROM "public"."User" {} WHERE NOT ({}) ORDER BY 1').format(
            q.with_clause(), sql.Identifier(alias), sql.Identifier(alias), test), {"tenant": "a"})
        assert [r[0] for r in await cur.fetchall()] == [4, 5, 6, 7]


def _nodes(plan: dict[str, object]):  # type: ignore[no-untyped-def]
    yield plan
    for child in plan.get("Plans", []):  # type: ignore[union-attr]
        yield from _nodes(child)
