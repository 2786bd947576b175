"""Say why a table's rows, or one row, belong to a tenant: the rules, the paths, and each rule's verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg
from psycopg import sql

from tenantmove.errors import ConfigError
from tenantmove.plan import Plan, Role
from tenantmove.selection import SelectionBuilder, _Query


def explain_table(plan: Plan, table: str) -> list[str]:
    tp = plan.tables.get(table)
    if tp is None:
        plan.catalog.table(table)  # raises ConfigError naming the known tables
        raise AssertionError("unreachable")
    builder = SelectionBuilder(plan)
    lines = [f"{table}: {tp.role.value} ({tp.reason})"]
    if tp.copied:
        lines.append("copied to the dedicated database" + ("; deleted from shared at cleanup" if tp.deleted
                                                           else "; never deleted from shared"))
    if tp.role in (Role.OWNED, Role.KEPT):
        labels, _, _, _ = builder.part_tests(table)
        lines.append("a row is the tenant's when ANY of these holds:" if len(labels) > 1 else "rule:")
        lines += [f"  - {label}" for label in labels]
    if tp.self_edges:
        lines += [f"  - recursively: {fk.describe()} points at a row already selected" for fk in tp.self_edges]
    if tp.ref_edges and tp.role is not Role.OWNED:
        lines.append("copied rows are those referenced by:")
        lines += [f"  - {fk.describe()}" for fk in tp.ref_edges if fk.table != table]
    if tp.paths:
        lines.append("paths:")
        lines += [f"  {path}" for path in tp.paths]
    for fk in tp.unfollowed_edges:
        lines.append(f"not followed (closes a cycle): {fk.describe()}")
    return lines


def parse_row_key(plan: Plan, table: str, text: str) -> list[str]:
    key = plan.catalog.table(table).row_key
    if not key:
        raise ConfigError(f"table {table!r} has no primary key: rows cannot be named", table=table)
    values = json.loads(text) if text.startswith("[") else ([text] if len(key) == 1 else text.split(","))
    if len(values) != len(key):
        raise ConfigError(f"{table} key is ({', '.join(key)}): expected {len(key)} values, found {len(values)}",
                          table=table)
    return [str(v) for v in values]


@dataclass(frozen=True)
class RowVerdict:
    found: bool
    rules: list[tuple[str, bool]]
    copied: bool
    owned_by_any_tenant: bool
    owned_by_other_tenant: bool

    def lines(self, table: str, key: list[str], tenant: str) -> list[str]:
        if not self.found:
            return [f"{table} row {key}: not found"]
        out = [f"{table} row {key}:"]
        out += [f"  {'yes' if ok else 'no '}  {label}" for label, ok in self.rules]
        out.append(f"  => {'copied' if self.copied else 'not copied'} for tenant {tenant!r}")
        if self.owned_by_other_tenant:
            out.append("  => also reaches another tenant" + (": an integrity error" if self.copied else ""))
        elif not self.copied and not self.owned_by_any_tenant and self.rules:
            out.append("  => reaches no tenant at all: an orphan, left in place and counted in the plan")
        return out


async def explain_row(conn: psycopg.AsyncConnection, plan: Plan, table: str, key: list[str], tenant: str
                      ) -> RowVerdict:
    builder = SelectionBuilder(plan)
    tp = plan.tables[table]
    t = plan.catalog.table(table)
    q = _Query()
    alias = q.alias()
    labels: list[str] = []
    tests: list[sql.Composable] = []
    if tp.role in (Role.OWNED, Role.KEPT):
        labels, tests = builder._parts(q, table, alias, "tenant")
    copied = builder.copy_member(q, table, alias)
    any_tenant = builder.member(q, table, alias, "any")
    other = builder.member(q, table, alias, "other")
    where = sql.SQL(" AND ").join(
        sql.SQL("{}::text = {}").format(sql.Identifier(alias, c), sql.Placeholder(f"k{i}"))
        for i, c in enumerate(t.row_key))
    checks = [*tests, copied, any_tenant, other]
    query = sql.SQL("{}SELECT {} FROM {} {} WHERE {}").format(
        q.with_clause(), sql.SQL(", ").join(sql.SQL("coalesce(({}), false)").format(c) for c in checks),
        sql.Identifier(plan.schema, table), sql.Identifier(alias), where)
    params = {"tenant": tenant, **{f"k{i}": v for i, v in enumerate(key)}}
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    if row is None:
        return RowVerdict(False, [], False, False, False)
    values = list(row)
    return RowVerdict(True, list(zip(labels, values[: len(labels)], strict=True)), values[-3], values[-2],
                      values[-1])
