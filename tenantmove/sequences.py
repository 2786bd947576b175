"""Move each sequence owned by a copied column past the largest value now in the target's table."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg import sql

from tenantmove.plan import Plan


async def advance_sequences(conn: psycopg.AsyncConnection, plan: Plan, tables: Iterable[str] | None = None
                            ) -> dict[str, int]:
    """setval() every serial/identity sequence of the copied tables (all, or just `tables`) to max(column) when
    that is higher, so the application's next insert on the target cannot collide with a moved row. Returns
    the new values."""
    wanted = set(tables) if tables is not None else None
    moved: dict[str, int] = {}
    for name in plan.load_order:
        if wanted is not None and name not in wanted:
            continue
        table = plan.catalog.table(name)
        for column, sequence in table.sequences:
            query = sql.SQL(
                "SELECT setval(%(seq)s::regclass, m) FROM (SELECT max({}) AS m FROM {}) s "
                "WHERE m IS NOT NULL AND m > coalesce(pg_sequence_last_value(%(seq)s::regclass), 0)"
            ).format(sql.Identifier(column), sql.Identifier(plan.schema, name))
            cur = await conn.execute(query, {"seq": sequence})
            row = await cur.fetchone()
            if row is not None:
                moved[sequence] = int(row[0])
    return moved
