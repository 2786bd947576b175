"""Tenants that cross the guide's automatic triggers for a dedicated database, with their figures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
from psycopg import sql

from tenantmove.stats import tenant_figures
from tenantmove.tenant_state import TenantRegistry


@dataclass(frozen=True)
class Recommendation:
    tenant: str
    figures: dict[str, int]
    crossed: list[str]  # "musicians 320 > 300"


async def recommend(conn: psycopg.AsyncConnection, registry: TenantRegistry, queries: Mapping[str, str],
                    thresholds: Mapping[str, int], *, include_all: bool = False) -> list[Recommendation]:
    """Every tenant still in the shared database whose figures exceed a threshold (or all, with include_all),
    most crossings first. The figures are STATS_QUERIES, the same numbers a migration request records."""
    query = sql.SQL("SELECT {}::text FROM {} WHERE {} = %s ORDER BY 1").format(
        sql.Identifier(registry.key), sql.Identifier(registry.schema, registry.table),
        sql.Identifier(registry.columns.database_type))
    cur = await conn.execute(query, [registry.columns.shared_value])
    tenants = [row[0] for row in await cur.fetchall()]
    found = []
    for tenant in tenants:
        figures = await tenant_figures(conn, queries, tenant)
        crossed = [f"{name} {figures[name]:,} > {limit:,}" for name, limit in thresholds.items()
                   if name in figures and figures[name] > limit]
        if crossed or include_all:
            found.append(Recommendation(tenant, figures, crossed))
    await conn.rollback()
    return sorted(found, key=lambda r: (-len(r.crossed), r.tenant))
