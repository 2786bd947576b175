"""Delete the tenant's owned rows from the shared database, in reverse load order, in one transaction."""

from __future__ import annotations

import psycopg
from psycopg import sql

from tenantmove.db import settle
from tenantmove.errors import IntegrityProblem
from tenantmove.plan import Plan
from tenantmove.selection import SelectionBuilder


def _delete_key(plan: Plan, table: str) -> tuple[str, ...]:
    # Without a key the physical row address is the only handle; it is stable inside this transaction
    # because nothing here updates those rows before deleting them.
    return plan.catalog.table(table).row_key or ("ctid",)


async def delete_tenant_rows(conn: psycopg.AsyncConnection, plan: Plan, tenant: str) -> dict[str, int]:
    """Delete every owned row of `tenant`; kept, referenced, global rows and other tenants are never touched.

    Every table's key set is taken before the first delete: a row owned from the parent side is known by
    the rows that reference it, and those are deleted first. Before deleting, any row outside the sets that
    still references a row inside them stops the cleanup (its ON DELETE action would touch data that is not
    the tenant's). Runs in one transaction: all or nothing.
    """
    builder = SelectionBuilder(plan)
    params = {"tenant": tenant}
    deleted: dict[str, int] = {}
    order = plan.delete_order
    temp = {name: f"stagesub_del_{i}" for i, name in enumerate(order)}
    await settle(conn)
    async with conn.transaction():
        for name in order:
            key = _delete_key(plan, name)
            selection = builder.owned_rows(name, columns=key)
            await conn.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS {}").format(
                sql.Identifier(temp[name]), selection.query), params)
            # Autovacuum never analyzes temp tables: without statistics the planner takes a 400k-row key set
            # for a few hundred rows and anti-joins it once per parent row (bench/run.py, 1M-row tenant:
            # the reference check ran for minutes; 3 s with statistics).
            await conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(temp[name])))
        await _refuse_outside_references(conn, plan, temp)
        # One statement for every table: foreign keys are checked at its end, so tables that point at each
        # other (a cycle) delete as cleanly as a parent and its children.
        ctes, counts = [], []
        for i, name in enumerate(order):
            key = _delete_key(plan, name)
            match = sql.SQL(" AND ").join(
                sql.SQL("{} = {}").format(sql.Identifier("x", c), sql.Identifier("d", c)) for c in key)
            ctes.append(sql.SQL("{} AS (DELETE FROM {} x USING {} d WHERE {} RETURNING 1)").format(
                sql.Identifier(f"deleted_{i}"), sql.Identifier(plan.schema, name), sql.Identifier(temp[name]), match))
            counts.append(sql.SQL("(SELECT count(*) FROM {})").format(sql.Identifier(f"deleted_{i}")))
        if order:
            cur = await conn.execute(sql.SQL("WITH {} SELECT {}").format(sql.SQL(", ").join(ctes),
                                                                        sql.SQL(", ").join(counts)))
            row = await cur.fetchone()
            deleted = {name: int(count) for name, count in zip(order, row or (), strict=True)}
    return deleted


async def _refuse_outside_references(conn: psycopg.AsyncConnection, plan: Plan, temp: dict[str, str]) -> None:
    problems = []
    for parent, parent_temp in temp.items():
        for fk in plan.catalog.referrers(parent):
            child = fk.table
            parent_key = _delete_key(plan, parent)
            in_parent = sql.SQL(" AND ").join(
                sql.SQL("{} = {}").format(sql.Identifier("p", rc), sql.Identifier("c", c))
                for c, rc in zip(fk.columns, fk.ref_columns, strict=True))
            key_join = sql.SQL(" AND ").join(
                sql.SQL("{} = {}").format(sql.Identifier("p", k), sql.Identifier("d", k)) for k in parent_key)
            child_outside: sql.Composable = sql.SQL("TRUE")
            if child in temp:
                child_key = _delete_key(plan, child)
                child_outside = sql.SQL("NOT EXISTS (SELECT 1 FROM {} e WHERE {})").format(
                    sql.Identifier(temp[child]), sql.SQL(" AND ").join(
                        sql.SQL("{} = {}").format(sql.Identifier("e", k), sql.Identifier("c", k))
                        for k in child_key))
            query = sql.SQL(
                "SELECT c::text FROM {} c JOIN {} p ON {} WHERE EXISTS (SELECT 1 FROM {} d WHERE {}) AND {} LIMIT 5"
            ).format(sql.Identifier(plan.schema, child), sql.Identifier(plan.schema, parent), in_parent,
                     sql.Identifier(parent_temp), key_join, child_outside)
            cur = await conn.execute(query)
            rows = [r[0] for r in await cur.fetchall()]
            if rows:
                problems.append(f"{fk.describe()}: {', '.join(rows)}")
    if problems:
        raise IntegrityProblem("rows that are not being deleted still reference the tenant's rows; nothing was "
                               "deleted: " + "; ".join(problems))
