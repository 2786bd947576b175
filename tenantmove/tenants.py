"""Look up a tenant row by id: the first check of every command that names a tenant."""

from __future__ import annotations

import psycopg
from psycopg import sql

from tenantmove.errors import TenantNotFound
from tenantmove.plan import Plan


async def require_tenant(conn: psycopg.AsyncConnection, plan: Plan, tenant: str) -> dict[str, object]:
    """The tenant's row as a dict; TenantNotFound when no row has that id."""
    key_type = plan.catalog.table(plan.tenant_table).column(plan.tenant_key)
    query = sql.SQL("SELECT to_jsonb(t) FROM {} t WHERE {}::text = %(tenant)s").format(
        sql.Identifier(plan.schema, plan.tenant_table), sql.Identifier("t", plan.tenant_key))
    cur = await conn.execute(query, {"tenant": tenant})
    row = await cur.fetchone()
    await conn.rollback()
    if row is None:
        raise TenantNotFound(f"no tenant with {plan.tenant_table}.{plan.tenant_key} = {tenant!r} "
                             f"({key_type.type if key_type else 'unknown type'})", tenant=tenant)
    return dict(row[0])
