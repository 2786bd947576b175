"""Exported snapshots: one transaction's view of the shared database, shared by parallel copiers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg import sql

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
