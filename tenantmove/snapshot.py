"""Exported snapshots: one transaction's view of the shared database, shared by parallel copiers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg import sql

from tenantmove.capture import SCHEMA, ensure_schema
from tenantmove.db import settle
from tenantmove.errors import SnapshotLost

_READ_ONLY = sql.SQL("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


@asynccontextmanager
async def exported_snapshot(conn: psycopg.AsyncConnection) -> AsyncIterator[str]:
    """Open a REPEATABLE READ transaction on conn and yield its snapshot id; other sessions can adopt the
    snapshot (use_snapshot) for as long as this block runs, and no longer."""
    await settle(conn)
    async with conn.transaction():
        await conn.execute(_READ_ONLY)
        cur = await conn.execute(sql.SQL("SELECT pg_export_snapshot()"))
        row = await cur.fetchone()
        assert row is not None
        yield str(row[0])


@asynccontextmanager
async def use_snapshot(conn: psycopg.AsyncConnection, snapshot_id: str | None) -> AsyncIterator[None]:
    """Run the block in a REPEATABLE READ, READ ONLY transaction that sees exactly the exported snapshot
    (a fresh one when snapshot_id is None). Raises SnapshotLost when the exporting transaction has ended."""
    await settle(conn)
    async with conn.transaction():
        await conn.execute(_READ_ONLY)
        if snapshot_id is not None:
            try:
                # SET TRANSACTION SNAPSHOT takes no bind parameters; the id is quoted as a literal.
                await conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id)))
            except psycopg.errors.InvalidParameterValue as exc:
                raise SnapshotLost(f"snapshot {snapshot_id} is no longer available: {str(exc).strip()}"
                                   ) from exc
        yield


# Workers on other machines find a held snapshot here, by the name of the import that holds it.
def _registry() -> sql.Identifier:
    return sql.Identifier(SCHEMA, "snapshots")


async def publish_snapshot(conn: psycopg.AsyncConnection, name: str, snapshot_id: str) -> None:
    """Record (autocommit) which snapshot the import `name` shares; replaces an earlier holder's."""
    async with conn.transaction():
        await ensure_schema(conn)
        await conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, snapshot text NOT NULL, "
                                   "published timestamptz NOT NULL DEFAULT now())").format(_registry()))
        await conn.execute(sql.SQL("INSERT INTO {} (name, snapshot) VALUES (%s, %s) ON CONFLICT (name) DO "
                                   "UPDATE SET snapshot = excluded.snapshot, published = now()").format(_registry()),
                           (name, snapshot_id))


async def published_snapshot(conn: psycopg.AsyncConnection, name: str) -> str | None:
    cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (_registry().as_string(conn),))
    row = await cur.fetchone()
    if not (row and row[0]):
        await settle(conn)
        return None
    cur = await conn.execute(sql.SQL("SELECT snapshot FROM {} WHERE name = %s").format(_registry()), (name,))
    row = await cur.fetchone()
    await settle(conn)
    return str(row[0]) if row else None


async def withdraw_snapshot(conn: psycopg.AsyncConnection, name: str) -> None:
    if await published_snapshot(conn, name) is not None:
        await conn.execute(sql.SQL("DELETE FROM {} WHERE name = %s").format(_registry()), (name,))
        await settle(conn)
