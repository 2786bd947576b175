"""Count, per table, the tenant's rows and bytes, the orphans nobody owns and the rows two tenants claim."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from tenantmove.concurrent import in_one_snapshot
from tenantmove.errors import IntegrityProblem
from tenantmove.plan import Plan, Role
from tenantmove.rows import RowSelection
from tenantmove.selection import SelectionBuilder

SAMPLE = 10


@dataclass(frozen=True)
class TableSurvey:
    table: str
    role: str
    rows: int
    bytes: int
    orphans: int = 0
    orphan_sample: tuple[str, ...] = ()
    conflicts: int = 0
    conflict_sample: tuple[str, ...] = ()


@dataclass(frozen=True)
class CrossReference:
    link: str
    rows: int
    sample: tuple[str, ...]


@dataclass
class Survey:
    tenant: str
    tables: dict[str, TableSurvey] = field(default_factory=dict)
    cross_references: list[CrossReference] = field(default_factory=list)

    @property
    def conflicts(self) -> dict[str, tuple[str, ...]]:
        return {name: t.conflict_sample for name, t in self.tables.items() if t.conflicts}

    @property
    def problems(self) -> list[str]:
        out = [f"{name}: {len(rows)} row(s) lead to tenant {self.tenant!r} and to another tenant: "
               f"{', '.join(rows)}" for name, rows in self.conflicts.items()]
        out += [f"{ref.link}: {ref.rows} copied row(s) point at another tenant's row: {', '.join(ref.sample)}"
                for ref in self.cross_references]
        return out

    def raise_on_problems(self) -> None:
        """Rows two tenants claim, or references into another tenant, stop a migration before it copies."""
        if self.problems:
            raise IntegrityProblem("integrity problems: " + "; ".join(self.problems), tenant=self.tenant)


async def _count(conn: psycopg.AsyncConnection, selection: RowSelection, tenant: str) -> tuple[int, int]:
    query = sql.SQL("SELECT count(*), coalesce(sum(pg_column_size(r.*)), 0)::bigint FROM ({}) r").format(
        selection.query)
    cur = await conn.execute(query, {"tenant": tenant})
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def telling_columns(plan: Plan, table: str) -> tuple[str, ...]:
    """The key, tenant and foreign-key columns: what a person needs to find a row and see its links."""
    t = plan.catalog.table(table)
    cols = [*t.row_key, *plan.tables[table].tenant_columns, *(c for fk in t.foreign_keys for c in fk.columns)]
    return tuple(dict.fromkeys(cols)) or t.column_names


async def _sample(conn: psycopg.AsyncConnection, selection: RowSelection, tenant: str) -> tuple[int, tuple[str, ...]]:
    query = sql.SQL("SELECT count(*) OVER (), {} FROM ({}) r LIMIT {}").format(
        sql.SQL(", ").join(sql.Identifier("r", c) for c in selection.columns), selection.query, SAMPLE)
    cur = await conn.execute(query, {"tenant": tenant})
    rows = await cur.fetchall()
    described = tuple(" ".join(f"{c}={v!r}" for c, v in zip(selection.columns, r[1:], strict=True)) for r in rows)
    return (int(rows[0][0]) if rows else 0), described


def has_several_rules(plan: Plan, table: str) -> bool:
    """Only a table with two or more ways to reach a tenant can have a row that reaches two tenants."""
    tp = plan.tables[table]
    rules = len(tp.tenant_columns) + len([fk for fk in tp.owner_edges if fk.ref_table != table])
    return rules + len(tp.parent_side_edges) > 1


async def survey_tenant(conn: psycopg.AsyncConnection, plan: Plan, tenant: str, *,
                        orphans: bool = True, conflicts: bool = True) -> Survey:
    """The survey over one connection, table by table (in the caller's transaction, if any)."""
    builder = SelectionBuilder(plan)
    result = Survey(tenant)
    for name in plan.tables:
        table, references = await survey_table(conn, plan, builder, name, tenant, orphans, conflicts)
        result.tables[name] = table
        result.cross_references += references
    return result


async def survey_tenant_parallel(dsn: str, plan: Plan, tenant: str, *, connections: int,
                                 orphans: bool = True, conflicts: bool = True) -> Survey:
    """The same survey over `connections` connections that share one exported snapshot, so that its counts
    agree with each other as one transaction's would; each table's queries run on one of them."""
    builder = SelectionBuilder(plan)
    names = list(plan.tables)

    async def one(conn: psycopg.AsyncConnection, name: str) -> tuple[TableSurvey, list[CrossReference]]:
        return await survey_table(conn, plan, builder, name, tenant, orphans, conflicts)

    result = Survey(tenant)
    for name, (table, references) in zip(names, await in_one_snapshot(dsn, names, connections, one), strict=True):
        result.tables[name] = table
        result.cross_references += references
    return result


async def survey_table(conn: psycopg.AsyncConnection, plan: Plan, builder: SelectionBuilder, name: str,
                       tenant: str, orphans: bool, conflicts: bool) -> tuple[TableSurvey, list[CrossReference]]:
    tp = plan.tables[name]
    if not tp.copied:
        return TableSurvey(name, tp.role.value, 0, 0), []
    rows, size = await _count(conn, builder.rows(name), tenant)
    orphan_count, conflict_count = 0, 0
    orphan_sample: tuple[str, ...] = ()
    conflict_sample: tuple[str, ...] = ()
    if tp.role is Role.OWNED and orphans:
        orphan_count, orphan_sample = await _sample(
            conn, builder.orphan_rows(name, telling_columns(plan, name)), tenant)
    if tp.role is Role.OWNED and conflicts and has_several_rules(plan, name):
        conflict_count, conflict_sample = await _sample(
            conn, builder.conflict_rows(name, telling_columns(plan, name)), tenant)
    references = await _cross_references(conn, plan, builder, name, tenant) if conflicts else []
    return TableSurvey(name, tp.role.value, rows, size, orphan_count, orphan_sample, conflict_count,
                       conflict_sample), references


async def _cross_references(conn: psycopg.AsyncConnection, plan: Plan, builder: SelectionBuilder, table: str,
                            tenant: str) -> list[CrossReference]:
    found = []
    for fk in plan.catalog.table(table).foreign_keys:
        if plan.tables[fk.ref_table].role not in (Role.TENANT, Role.OWNED, Role.KEPT):
            continue
        count, sample = await _sample(conn, builder.cross_tenant_rows(fk, telling_columns(plan, table)),
                                      tenant)
        if count:
            found.append(CrossReference(fk.describe(), count, sample))
    return found
