"""A 60-table, 120-foreign-key schema plans, and every selection is valid, bounded SQL that runs."""

from __future__ import annotations

from bench.wide_schema import wide_schema_sql
from tenantmove import db
from tenantmove.plan import PlanRules, plan_schema
from tenantmove.selection import SelectionBuilder
from tenantmove.survey import survey_tenant

from .conftest import create_database


async def test_wide_schema_plans_and_every_selection_runs(pg_shared):
    dsn = create_database(pg_shared, "wide")
    async with db.connection(dsn, autocommit=True) as conn:
        await conn.execute(wide_schema_sql(60, 120))
        plan = await plan_schema(conn, "public", PlanRules(tenant_table="tenant", keep_tables=()))
        assert len(plan.catalog.tables) == 61
        assert sum(len(t.foreign_keys) for t in plan.catalog.tables.values()) >= 120
        builder = SelectionBuilder(plan)
        sizes = []
        for name in plan.load_order:
            for selection in (builder.rows(name), builder.orphan_rows(name) if plan.tables[name].role.value == "owned"
                              else builder.rows(name)):
                text = selection.query.as_string(conn)
                sizes.append(len(text))
                await conn.execute(b"EXPLAIN " + text.encode(), {"tenant": "a"})
        # Each parent's rows are one CTE, so no query grows with the number of paths through the schema.
        assert max(sizes) < 60_000, max(sizes)
        survey = await survey_tenant(conn, plan, "a")
        assert survey.tables["tenant"].rows == 1
        assert sum(t.rows for t in survey.tables.values()) > 1
