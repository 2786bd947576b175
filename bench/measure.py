"""Benchmark measurements of one tenant's copy: the COPY-pipe limit, per-row INSERT seed, engine import, verify."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from tenantmove import db
from tenantmove.deferred import defer_for_load, finish_load
from tenantmove.parallel import load_tenant, verify_tenant_parallel
from tenantmove.plan import Plan, plan_schema
from tenantmove.selection import tenant_selection
from tenantmove.settings import Settings

# COPY TO sends one message per row; gathering them into large writes is what any careful pipe does (the
# engine does the same, tenantmove/copy.py), so the limit is not slowed by one write per row.
CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class Measurement:
    """One row of the results table. `rss` in bytes when a process was measured, else None."""

    name: str
    rows: int
    seconds: float
    rss: int | None = None
    note: str = ""

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


# ---- databases ----------------------------------------------------------------------------------------
def create_database(admin_dsn: str, name: str, template: str | None = None) -> str:
    """A new database (a file copy of `template` when given) on the server of admin_dsn; returns its DSN."""
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(query)
    return db.with_database(admin_dsn, name)


def fresh_target(admin_dsn: str, schema_template: str, label: str) -> str:
    """A new database holding the schema and no rows: every measurement loads into one of its own."""
    return create_database(admin_dsn, f"{label}_{uuid.uuid4().hex[:8]}", schema_template)


def settle_servers(*admin_dsns: str) -> None:
    """CHECKPOINT each server before a measurement, so none pays for the dirty pages of the one before."""
    for dsn in admin_dsns:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CHECKPOINT")


def vacuum(dsn: str) -> None:
    """VACUUM ANALYZE a freshly seeded database: the first reader of new rows sets their hint bits (writes
    every page), which would land on whichever measurement reads first. A long-lived shared database has
    them set already."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def database_name(dsn: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])


def drop_database(admin_dsn: str, dsn: str) -> None:
    name = database_name(dsn)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def tenant_plan(dsn: str) -> Plan:
    """The plan the worker would build: same settings (environment), same catalog."""
    settings = Settings()
    async with db.connection(dsn) as conn:
        return await plan_schema(conn, settings.db_schema, settings.plan_rules())


def _drop_cycle_links(conn: psycopg.Connection[Any], plan: Plan) -> None:
    # One side of a foreign-key cycle has to be loaded before its parent exists: the engine drops these
    # links too (mover.suspend_cycle_links), so the limit pays no more and no less for constraints.
    for fk in plan.cycle_links:
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
            sql.Identifier(plan.schema, fk.table), sql.Identifier(fk.name)))
    conn.commit()


# ---- the limit: a hand-written sequential binary COPY pipe --------------------------------------------
def copy_pipe_limit(src_dsn: str, dst_dsn: str, plan: Plan, tenant: str) -> Measurement:
    """Each table's tenant rows (the engine's own selections) COPY'd out in binary and into the target, one
    table after the other, one transaction per table: the sequential speed of light of this machine."""
    rows = 0
    with db.connect_sync(src_dsn) as src, db.connect_sync(dst_dsn) as dst:
        _drop_cycle_links(dst, plan)
        started = time.perf_counter()
        for name in plan.load_order:
            selection = tenant_selection(plan, name, tenant)
            copy_out = sql.SQL("COPY ({}) TO STDOUT (FORMAT binary)").format(selection.query)
            copy_in = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
                selection.qualified, selection.column_list)
            with src.cursor() as out_cur, dst.cursor() as in_cur:
                with in_cur.copy(copy_in) as writer, out_cur.copy(copy_out, dict(selection.params)) as reader:
                    buffer = bytearray()
                    for data in reader:
                        buffer += data
                        if len(buffer) >= CHUNK_BYTES:
                            writer.write(buffer)
                            buffer = bytearray()
                    if buffer:
                        writer.write(buffer)
                rows += in_cur.rowcount
            dst.commit()
            src.commit()
        seconds = time.perf_counter() - started
    return Measurement("limit", rows, seconds, note="sequential binary COPY pipe, table by table")


# ---- the seed: one INSERT per row, one transaction ----------------------------------------------------
def insert_per_row(src_dsn: str, dst_dsn: str, plan: Plan, tenant: str, limit: int | None) -> Measurement:
    """Read the tenant's rows as text and INSERT them one statement per row, all in one transaction; with
    `limit`, only the first `limit` rows in load order (parents first, so every foreign key still holds)."""
    rows = 0
    with db.connect_sync(src_dsn) as src, db.connect_sync(dst_dsn) as dst:
        _drop_cycle_links(dst, plan)
        started = time.perf_counter()
        for name in plan.load_order:
            if limit is not None and rows >= limit:
                break
            selection = tenant_selection(plan, name, tenant)
            text = sql.SQL(", ").join(sql.SQL("s.{}::text").format(sql.Identifier(c)) for c in selection.columns)
            read = sql.SQL("SELECT {} FROM ({}) AS s ({})").format(text, selection.query, selection.column_list)
            if limit is not None:
                read = sql.SQL("{} LIMIT {}").format(read, sql.Literal(limit - rows))
            # Text parameters are sent untyped, so the server casts each to its column's type (enums, jsonb).
            insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                selection.qualified, selection.column_list,
                sql.SQL(", ").join(sql.Placeholder() for _ in selection.columns))
            with dst.cursor() as cur:
                for row in src.execute(read, dict(selection.params)):
                    cur.execute(insert, row)
                    rows += 1
        dst.commit()
        seconds = time.perf_counter() - started
    return Measurement("seed", rows, seconds, note="one INSERT per row, one transaction")


# ---- the engine: the project's import and verify ---------------------------------------------------------
async def engine_import(src_dsn: str, dst_dsn: str, plan: Plan, tenant: str, connections: int) -> Measurement:
    """As the import activity does it (load_tenant): plain indexes and foreign keys deferred, tables in
    parallel, largest first, each table's put back as it loads, the rest after."""
    started = time.perf_counter()
    async with db.connection(dst_dsn) as dst:
        deferred = await defer_for_load(dst, plan.schema, plan.load_order)
    results = await load_tenant(src_dsn, dst_dsn, plan, tenant, deferred, connections=connections)
    await finish_load(dst_dsn, connections=connections)
    seconds = time.perf_counter() - started
    return Measurement("engine import", sum(r.rows for r in results), seconds,
                       note=f"parallel, {connections} connections, one exported snapshot, largest tables first; "
                            f"{len(deferred)} plain indexes and foreign keys put back as their tables load")


async def engine_verify(src_dsn: str, dst_dsn: str, plan: Plan, tenant: str, connections: int) -> Measurement:
    """Checksums of every copied table on both servers (raises ChecksumMismatch when they differ)."""
    started = time.perf_counter()
    sums = await verify_tenant_parallel(src_dsn, dst_dsn, plan, tenant, connections=connections)
    seconds = time.perf_counter() - started
    return Measurement("verify", sum(s.rows for s in sums.values()), seconds,
                       note=f"checksums on both servers at once, {connections} connections each")
