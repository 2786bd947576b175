"""Change capture for online moves: triggers record the keys of changed rows; replay re-reads them by key.

Why triggers and not logical decoding: a replication slot needs wal_level=logical (a restart of the shared
production server) and the REPLICATION privilege, and a slot left behind by a crashed migration holds WAL
until the shared server's disk fills. Triggers work on any Postgres the migration role owns tables on, cost
nothing once dropped, and a forgotten one only costs a row per write. They record keys only, never row
images: replay reads each changed row's current state from shared, so replays are idempotent and the order
of changes within a batch does not matter.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from tenantmove.copy import engine_error
from tenantmove.db import settle
from tenantmove.errors import TransientError
from tenantmove.plan import Plan
from tenantmove.plan_model import Role
from tenantmove.selection import tenant_selection

SCHEMA = "tenantmove_capture"
DEFAULT_BATCH = 50_000

# SECURITY DEFINER: the application's role, whose writes fire the trigger, has no rights on our schema.
# The row is filtered on the tenant column when the table has exactly one way of belonging to a tenant,
# so other tenants' writes to such tables cost one comparison; other tables record every change.
_FUNCTION = """\
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS {body}"""

_BODY = """\
DECLARE
    new_row jsonb;
    old_row jsonb;
    keys text[] := TG_ARGV[2:TG_NARGS - 1];
BEGIN
    IF TG_OP <> 'INSERT' THEN old_row := to_jsonb(OLD); END IF;
    IF TG_OP <> 'DELETE' THEN new_row := to_jsonb(NEW); END IF;
    IF TG_ARGV[0] <> ''
       AND (new_row IS NULL OR new_row ->> TG_ARGV[0] IS DISTINCT FROM TG_ARGV[1])
       AND (old_row IS NULL OR old_row ->> TG_ARGV[0] IS DISTINCT FROM TG_ARGV[1]) THEN
        RETURN NULL;
    END IF;
    IF new_row IS NOT NULL THEN
        INSERT INTO {changes} (relid, key)
        SELECT TG_RELID, coalesce(jsonb_object_agg(k, new_row -> k), '{{}}') FROM unnest(keys) AS k;
    END IF;
    IF old_row IS NOT NULL AND (new_row IS NULL OR EXISTS (
            SELECT FROM unnest(keys) AS k WHERE new_row -> k IS DISTINCT FROM old_row -> k)) THEN
        INSERT INTO {changes} (relid, key)
        SELECT TG_RELID, coalesce(jsonb_object_agg(k, old_row -> k), '{{}}') FROM unnest(keys) AS k;
    END IF;
    RETURN NULL;
END"""


@dataclass(frozen=True)
class Capture:
    """One migration's capture: a change table, a trigger function and one trigger per copied table."""

    capture_id: str

    @classmethod
    def named(cls, reference: str) -> Capture:
        """A short identifier-safe name derived from any reference (a workflow run id)."""
        return cls(hashlib.sha256(reference.encode()).hexdigest()[:16])

    @property
    def changes(self) -> sql.Identifier:
        return sql.Identifier(SCHEMA, f"changes_{self.capture_id}")

    @property
    def applied(self) -> sql.Identifier:
        """Keys replayed since the last full verify: what the verify under the freeze compares."""
        return sql.Identifier(SCHEMA, f"applied_{self.capture_id}")

    @property
    def function(self) -> sql.Identifier:
        return sql.Identifier(SCHEMA, f"record_{self.capture_id}")

    @property
    def trigger_name(self) -> str:
        return f"tenantmove_capture_{self.capture_id}"


@dataclass
class ApplyResult:
    """One replay round: changes taken from the capture, rows written and deleted on the target per table."""

    changes: int = 0
    upserted: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)


def _tenant_filter(plan: Plan, table: str) -> str:
    tp = plan.tables[table]
    simple = tp.role is Role.TENANT and len(tp.tenant_columns) == 1 and not tp.owner_edges \
        and not tp.parent_side_edges
    return tp.tenant_columns[0] if simple else ""


async def ensure_schema(conn: psycopg.AsyncConnection) -> None:
    """Create the capture schema once: two migrations starting at the same moment would both find it missing,
    and the second CREATE ... IF NOT EXISTS fails on the catalog's unique index; a transaction-scoped advisory
    lock makes them take turns (the caller is inside a transaction)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (SCHEMA,))
    await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))


async def start_capture(conn: psycopg.AsyncConnection, plan: Plan, tenant: str, capture: Capture, *,
                        lock_timeout_ms: int = 5000) -> list[str]:
    """Install the change table, function and triggers (idempotent). All triggers commit together, and
    CREATE TRIGGER waits for the writers already on each table, so every write the copy's later snapshot
    does not see is recorded. Returns the tables watched."""
    body = sql.SQL(_BODY).format(changes=capture.changes).as_string(conn)
    await settle(conn)
    try:
        async with conn.transaction():
            await conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(lock_timeout_ms)))
            await ensure_schema(conn)
            await conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, relid oid NOT NULL,"
                                       " key jsonb NOT NULL)").format(capture.changes))
            await conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (relid oid NOT NULL, key jsonb NOT NULL)")
                               .format(capture.applied))
            await conn.execute(sql.SQL(_FUNCTION).format(function=capture.function, body=sql.Literal(body)))
            for name in plan.load_order:
                key = tenant_selection(plan, name, tenant).key
                args = [sql.Literal(_tenant_filter(plan, name)), sql.Literal(tenant), *map(sql.Literal, key)]
                await conn.execute(sql.SQL(
                    "CREATE OR REPLACE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW "
                    "EXECUTE FUNCTION {}({})").format(sql.Identifier(capture.trigger_name),
                                                      sql.Identifier(plan.schema, name), capture.function,
                                                      sql.SQL(", ").join(args)))
    except psycopg.Error as exc:
        raise engine_error(exc, table="*", action="starting change capture") from exc
    return list(plan.load_order)


async def stop_capture(conn: psycopg.AsyncConnection, capture: Capture) -> int:
    """Drop the triggers (found by name, wherever they are), the function and the change table. Idempotent;
    returns the number of triggers dropped."""
    await settle(conn)
    try:
        async with conn.transaction():
            cur = await conn.execute(
                "SELECT n.nspname, c.relname FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid ="
                " t.tgrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE t.tgname = %s",
                (capture.trigger_name,))
            tables = await cur.fetchall()
            for schema, table in tables:
                await conn.execute(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
                    sql.Identifier(capture.trigger_name), sql.Identifier(schema, table)))
            await conn.execute(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(capture.function))
            await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(capture.changes))
            await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(capture.applied))
    except psycopg.Error as exc:
        raise engine_error(exc, table="*", action="stopping change capture") from exc
    return len(tables)


async def capture_exists(conn: psycopg.AsyncConnection, capture: Capture) -> bool:
    cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                             (capture.changes.as_string(conn),))
    row = await cur.fetchone()
    await settle(conn)
    return bool(row and row[0])


async def backlog(conn: psycopg.AsyncConnection, capture: Capture) -> int:
    """Changes recorded and not yet replayed (committed ones only)."""
    cur = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(capture.changes))
    row = await cur.fetchone()
    await settle(conn)
    return int(row[0]) if row else 0


# Transactions that began before the barrier and hold a write lock on one of the tables.
_WRITERS = """\
SELECT count(DISTINCT l.pid) FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
  AND l.relation = ANY(%(tables)s::regclass[])
  AND l.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
  AND a.xact_start < %(since)s"""


async def writers_barrier(conn: psycopg.AsyncConnection, plan: Plan, *, timeout_seconds: float = 30) -> int:
    """Wait until every transaction that was writing to a copied table when this began has ended, so that a
    write the application began before maintenance mode went on is committed, and captured, before the final
    replay reads the capture. It watches pg_locks instead of taking a lock: a lock would queue every other
    tenant's writes behind the slowest transaction. (A transaction that read the tenant row FOR SHARE and had
    not written yet was already waited for by the maintenance flag's own update.) Returns the writers waited
    for; TransientError when some still run at the timeout."""
    tables = [sql.Identifier(plan.schema, name).as_string(conn) for name in plan.load_order]
    cur = await conn.execute("SELECT clock_timestamp()")
    row = await cur.fetchone()
    assert row is not None
    params = {"tables": tables, "since": row[0]}
    waited, deadline = 0, asyncio.get_running_loop().time() + timeout_seconds
    while True:
        cur = await conn.execute(_WRITERS, params)
        count = await cur.fetchone()
        running = int(count[0]) if count else 0
        await settle(conn)
        waited = max(waited, running)
        if not running:
            return waited
        if asyncio.get_running_loop().time() > deadline:
            raise TransientError(f"{running} transaction(s) writing to the tenant's tables since before the "
                                 f"freeze still run after {timeout_seconds:g} s")
        await asyncio.sleep(0.05)
