"""Post-migration smoke tests on the dedicated database: row counts, a write and delete, a long foreign-key join."""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

from tenantmove.catalog import ForeignKey, Table
from tenantmove.db import settle
from tenantmove.errors import PostCheckFailed
from tenantmove.plan import Plan, Role

SMOKE_SUFFIX = "-smoketest"
_TEXT = re.compile(r"^(text|character varying(\(\d+\))?|varchar(\(\d+\))?|citext)$")
_INTEGER = {"smallint", "integer", "bigint"}


async def post_migration_checks(dedicated: psycopg.AsyncConnection, plan: Plan, tenant: str,
                                expected_rows: dict[str, int]) -> list[str]:
    """Run the three checks through `dedicated` (the application's own credentials) and return what each
    checked; PostCheckFailed naming every failure. Generic: tables and keys come from the plan."""
    done: list[str] = []
    failures = await _counts(dedicated, plan, expected_rows, done)
    if failures:
        raise PostCheckFailed("post-migration checks failed: " + "; ".join(failures), tenant=tenant,
                              step="post-check")
    try:
        done.append(await _write_and_delete(dedicated, plan))
        done.append(await _join_chain(dedicated, plan))
    except psycopg.Error as exc:
        raise PostCheckFailed(f"post-migration checks failed: {str(exc).strip()}", tenant=tenant,
                              step="post-check") from exc
    return done


async def _count(conn: psycopg.AsyncConnection, plan: Plan, table: str) -> int:
    cur = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(plan.schema, table)))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _counts(conn: psycopg.AsyncConnection, plan: Plan, expected: dict[str, int], done: list[str]
                  ) -> list[str]:
    failures = []
    unknown = sorted(set(expected) - set(plan.copied_tables))
    if unknown:
        failures.append(f"expected counts for tables the plan does not copy: {', '.join(unknown)}")
    missing = [name for name in plan.copied_tables if name not in expected]
    if missing:
        failures.append(f"expected a row count for every copied table, found none for {', '.join(missing)}")
    for table in plan.copied_tables:
        if table not in expected:
            continue
        try:
            found = await _count(conn, plan, table)
        except psycopg.Error as exc:
            await conn.rollback()
            failures.append(f"{table}: cannot be read: {str(exc).strip()}")
            continue
        if found != expected[table]:
            failures.append(f"{table}: expected {expected[table]} rows, found {found}")
    await settle(conn)
    done.append(f"read: row counts of {len(plan.copied_tables) - len(missing)} copied tables match")
    return failures


def _candidate(plan: Plan, table: Table) -> str | None:
    """The key column when the table takes a copied row with a new key: one-column text or integer primary
    key, and no other unique key that the copy would collide on."""
    if plan.tables[table.name].role is not Role.OWNED or len(table.primary_key) != 1 or table.unique_keys:
        return None
    column = table.column(table.primary_key[0])
    if column is None or column.generated:
        return None
    return column.name if _TEXT.match(column.type) or column.type in _INTEGER else None


async def _write_and_delete(conn: psycopg.AsyncConnection, plan: Plan) -> str:
    for name in plan.load_order:
        table = plan.catalog.table(name)
        key = _candidate(plan, table)
        if key is None:
            continue
        column = table.column(key)
        assert column is not None
        qualified, ident = sql.Identifier(plan.schema, name), sql.Identifier(key)
        cur = await conn.execute(sql.SQL("SELECT {k} FROM {t} WHERE {k}::text NOT LIKE %s ORDER BY {k} LIMIT 1")
                                 .format(k=ident, t=qualified), (f"%{SMOKE_SUFFIX}",))
        row = await cur.fetchone()
        if row is None:
            continue  # an empty table proves nothing; the next candidate may have rows
        source = row[0]
        others = [c for c in table.writable_columns if c != key]
        if column.type in _INTEGER and (column.default or column.identity):
            new_key: sql.Composable | None = None  # the column's own default (sequence or identity) picks it
        elif column.type in _INTEGER:
            new_key = sql.SQL("(SELECT max({k}) + 1 FROM {t})").format(k=ident, t=qualified)
        else:
            new_key = sql.SQL("{k} || {s}").format(k=ident, s=sql.Literal(SMOKE_SUFFIX))
        await settle(conn)
        async with conn.transaction():
            if new_key is not None and column.type not in _INTEGER:
                # A smoke row left by a run that died between its two commits would collide with this one.
                await conn.execute(sql.SQL("DELETE FROM {t} WHERE {k} = %s").format(t=qualified, k=ident),
                                   (f"{source}{SMOKE_SUFFIX}",))
            cols = [*([ident] if new_key is not None else []), *map(sql.Identifier, others)]
            values = [*([new_key] if new_key is not None else []), *map(sql.Identifier, others)]
            cur = await conn.execute(sql.SQL("INSERT INTO {t} ({c}) SELECT {v} FROM {t} WHERE {k} = %s RETURNING {k}")
                                     .format(t=qualified, c=sql.SQL(", ").join(cols), v=sql.SQL(", ").join(values),
                                             k=ident), (source,))
            inserted = await cur.fetchone()
        assert inserted is not None
        async with conn.transaction():
            cur = await conn.execute(sql.SQL("DELETE FROM {t} WHERE {k} = %s").format(t=qualified, k=ident),
                                     (inserted[0],))
            if cur.rowcount != 1:
                raise PostCheckFailed(f"{name}: expected to delete the 1 smoke-test row, deleted {cur.rowcount}",
                                      table=name, step="post-check")
        return f"write: inserted and deleted a copy of {name} row {source!r} as {inserted[0]!r}"
    return "write: skipped, no owned table with rows and a one-column text or integer primary key"


def _chain_edges(plan: Plan) -> dict[str, list[ForeignKey]]:
    owned = {name for name, tp in plan.tables.items() if tp.role is Role.OWNED}
    return {name: sorted((fk for fk in plan.catalog.table(name).foreign_keys
                          if fk.not_null and fk.ref_table in owned and fk.ref_table != name), key=lambda f: f.name)
            for name in sorted(owned)}


def longest_chain(plan: Plan) -> list[ForeignKey]:
    """The longest path of NOT NULL foreign keys between owned tables (ties: first by name), as its links."""
    edges = _chain_edges(plan)
    best: dict[str, list[ForeignKey]] = {}
    on_path: set[str] = set()

    def walk(name: str) -> list[ForeignKey]:
        if name in best:
            return best[name]
        on_path.add(name)
        longest: list[ForeignKey] = []
        for fk in edges.get(name, []):
            if fk.ref_table in on_path:
                continue  # a cycle of NOT NULL keys cannot be loaded anyway; do not walk it round
            path = [fk, *walk(fk.ref_table)]
            if len(path) > len(longest):
                longest = path
        on_path.discard(name)
        best[name] = longest
        return longest

    chains = [walk(name) for name in edges]
    return max(chains, key=len, default=[])


async def _join_chain(conn: psycopg.AsyncConnection, plan: Plan) -> str:
    chain = longest_chain(plan)
    if not chain:
        return "join: skipped, no NOT NULL foreign key between owned tables"
    first = chain[0].table
    joins = sql.SQL("FROM {} t0").format(sql.Identifier(plan.schema, first))
    for i, fk in enumerate(chain, start=1):
        on = sql.SQL(" AND ").join(sql.SQL("{} = {}").format(sql.Identifier(f"t{i - 1}", a), sql.Identifier(f"t{i}", b))
                                   for a, b in zip(fk.columns, fk.ref_columns, strict=True))
        joins = sql.SQL("{} JOIN {} {} ON {}").format(joins, sql.Identifier(plan.schema, fk.ref_table),
                                                      sql.Identifier(f"t{i}"), on)
    cur = await conn.execute(sql.SQL("SELECT count(*) {}").format(joins))
    row = await cur.fetchone()
    joined = int(row[0]) if row else 0
    rows = await _count(conn, plan, first)
    await settle(conn)
    path = " -> ".join([first, *(fk.ref_table for fk in chain)])
    if joined != rows:
        raise PostCheckFailed(f"join {path}: expected {rows} rows (all of {first}), found {joined}",
                              table=first, step="post-check")
    return f"join: {path} joins all {rows} rows of {first}"
