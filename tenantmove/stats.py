"""The figures recorded with a migration request (musicians, active projects, monthly requests for StageSub)."""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from psycopg import sql


async def tenant_figures(conn: psycopg.AsyncConnection, queries: Mapping[str, str], tenant: str) -> dict[str, int]:
    """Run each configured query (SQL text from STATS_QUERIES, bound to %(tenant)s) and keep its number.
    The text is an operator's setting, like a DSN: it is trusted, and the tenant id is always a parameter."""
    figures = {}
    for name, query in queries.items():
        cur = await conn.execute(sql.SQL(query), {"tenant": tenant})
        row = await cur.fetchone()
        figures[name] = int(row[0]) if row and row[0] is not None else 0
    return figures
