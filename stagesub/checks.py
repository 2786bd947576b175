"""Per-tenant row checksums of a StageSub database, less the rows an application writer touched (fault tests, soak)."""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import sql

from stagesub.writer import WriteLog
from tenantmove import db
from tenantmove.checksum import table_checksum
from tenantmove.plan import plan_schema
from tenantmove.rows import RowSelection
from tenantmove.selection import tenant_selection
from tenantmove.settings import Settings

Sums = dict[str, tuple[int, str]]
# Audit rows a switch (and its undo) adds by design: not the tenant's data.
SWITCH_ACTIONS = ("tenant.database.switch", "tenant.database.switch_back")


def touched(logs: Iterable[WriteLog]) -> set[str]:
    """Ids of every row the writers inserted, updated or deleted."""
    out: set[str] = set()
    for log in logs:
        out |= set(log.audit) | log.requests | log.deleted | set(log.notes)
    return out


async def tenant_sums(dsn: str, tenant: str, skip_ids: Iterable[str] = ()) -> Sums:
    """(rows, digest) of each table's rows of `tenant` (the rows a migration of it would copy), except the
    rows whose id is in skip_ids and the switch's audit rows. Works on shared and on a dedicated database."""
    settings = Settings()
    skip = sorted(skip_ids)
    out: Sums = {}
    async with db.connection(dsn) as conn:
        plan = await plan_schema(conn, settings.db_schema, settings.plan_rules())
        for table in plan.copied_tables:
            base = tenant_selection(plan, table, tenant)
            query: sql.Composable = base.query
            conditions: list[sql.Composable] = []
            if "id" in base.columns:
                conditions.append(sql.SQL("s.id <> ALL(%(tm_skip)s)"))
            if table == "AuditLog" and "action" in base.columns:
                conditions.append(sql.SQL("s.action <> ALL(%(tm_switch)s)"))
            if conditions:
                query = sql.SQL("SELECT s.* FROM ({}) s WHERE {}").format(query, sql.SQL(" AND ").join(conditions))
            selection = RowSelection(base.schema, base.table, base.columns, query,
                                     {**base.params, "tm_skip": skip, "tm_switch": list(SWITCH_ACTIONS)}, base.key)
            found = await table_checksum(conn, selection)
            out[table] = (found.rows, found.digest)
        await conn.rollback()
    return out


def rows_lost(before: Sums, after: Sums, ignore: Iterable[str] = ("Tenant",)) -> int:
    """Rows present before and missing after, by table counts (the tenant row itself legitimately changes)."""
    skip = set(ignore)
    return sum(max(0, rows - after.get(table, (0, ""))[0]) for table, (rows, _) in before.items()
               if table not in skip)


def changed_tables(before: Sums, after: Sums) -> list[str]:
    return sorted(t for t in before.keys() | after.keys() if before.get(t) != after.get(t))
