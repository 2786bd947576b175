"""CopyOut against a real server: the same bytes as psycopg's COPY, server errors, early stops, cancellation."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg import sql

from tenantmove.copy_out import CopyOut
from tenantmove.db import connection

ROWS = 20_000
# The "endless" queries call generate_series in the select list, which streams its rows; in FROM it would
# first materialize all hundred million of them.
SELECT = sql.SQL("SELECT g, %(label)s || g, repeat('x', g %% 300), now() FROM generate_series(1, {}) AS g").format(
    sql.Literal(ROWS))
LABEL = "o'brien \\ \"ensemble\" "


@pytest.fixture
def dsn(pg_shared, new_database) -> str:
    return new_database(pg_shared)


def _copy(fmt: str, query: sql.Composable = SELECT) -> sql.Composed:
    return sql.SQL("COPY ({}) TO STDOUT (FORMAT {})").format(query, sql.SQL(fmt))


async def _psycopg_bytes(conn: psycopg.AsyncConnection, statement: sql.Composed) -> tuple[bytes, int]:
    out = bytearray()
    async with conn.cursor() as cur:
        async with cur.copy(statement, {"label": LABEL}) as copy:
            async for data in copy:
                out += data
        return bytes(out), cur.rowcount


async def _active_copies(dsn: str) -> int:
    async with connection(dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'COPY%%'"
                                 " AND pid <> pg_backend_pid()")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("fmt", ["binary", "text"])
async def test_chunks_hold_the_same_bytes_as_psycopgs_copy(dsn: str, fmt: str) -> None:
    async with connection(dsn) as conn:
        async with conn.transaction():  # one now() for both reads
            expected, expected_rows = await _psycopg_bytes(conn, _copy(fmt))
            chunks, counted = [], []
            async with CopyOut(conn, _copy(fmt), {"label": LABEL}, chunk_bytes=64 * 1024) as rows:
                async for chunk in rows:
                    chunks.append(bytes(chunk))
                    counted.append(rows.rows is not None)
            # The connection is idle in the transaction again: an ordinary query works.
            cur = await conn.execute("SELECT 1")
            assert await cur.fetchone() == (1,)
    assert b"".join(chunks) == expected
    assert rows.rows == expected_rows == ROWS
    assert rows.messages == ROWS + (1 if fmt == "binary" else 0)  # a binary COPY ends with a trailer message
    assert len(chunks) > 5 and all(len(c) >= 64 * 1024 for c in chunks[:-1])
    assert counted == [False] * (len(chunks) - 1) + [True]  # the count is there when the last chunk comes
    if fmt == "text":
        assert all(c.endswith(b"\n") for c in chunks)  # whole rows only


async def test_an_empty_result_yields_nothing_and_counts_zero(dsn: str) -> None:
    async with connection(dsn) as conn:
        async with CopyOut(conn, _copy("text", sql.SQL("SELECT 1 WHERE false"))) as rows:
            chunks = [c async for c in rows]
    assert chunks == [] and rows.rows == 0 and rows.messages == 0


async def test_a_server_error_mid_copy_is_raised_as_psycopgs_error(dsn: str) -> None:
    failing = sql.SQL("SELECT 1 / (g - {}) FROM generate_series(1, {}) AS g").format(
        sql.Literal(ROWS - 10), sql.Literal(ROWS))
    async with connection(dsn) as conn:
        received = 0
        with pytest.raises(psycopg.errors.DivisionByZero):
            async with CopyOut(conn, _copy("text", failing), chunk_bytes=1024) as rows:
                async for chunk in rows:
                    received += len(chunk)
        assert received > 0  # rows came before the error
        await conn.rollback()
        cur = await conn.execute("SELECT 2")
        assert await cur.fetchone() == (2,)


async def test_a_bad_statement_fails_before_any_chunk(dsn: str) -> None:
    async with connection(dsn) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            async with CopyOut(conn, _copy("text", sql.SQL("SELECT * FROM no_such_table"))) as rows:
                async for _ in rows:
                    pytest.fail("expected no chunk")
        await conn.rollback()
        cur = await conn.execute("SELECT 3")
        assert await cur.fetchone() == (3,)


async def test_a_consumer_that_stops_early_leaves_the_connection_usable(dsn: str) -> None:
    endless = sql.SQL("SELECT generate_series(1, 100000000), repeat('y', 200)")
    async with connection(dsn) as conn:
        with pytest.raises(OSError, match="disk full"):
            async with CopyOut(conn, _copy("text", endless), chunk_bytes=4096) as rows:
                async for _ in rows:
                    raise OSError("disk full")  # as the archive's writer would
        assert not conn.closed
        await conn.rollback()  # the cancelled COPY aborted the transaction
        cur = await conn.execute("SELECT 4")
        assert await cur.fetchone() == (4,)
    assert await _active_copies(dsn) == 0


async def test_a_cancelled_task_stops_the_servers_copy(dsn: str) -> None:
    endless = sql.SQL("SELECT generate_series(1, 100000000), repeat('z', 200)")
    chunks = 0
    started = asyncio.Event()

    async def read(conn: psycopg.AsyncConnection) -> None:
        nonlocal chunks
        async with CopyOut(conn, _copy("text", endless), chunk_bytes=4096) as rows:
            async for _ in rows:
                chunks += 1
                started.set()
                await asyncio.sleep(0)

    async with connection(dsn) as conn:
        task = asyncio.create_task(read(conn))
        await asyncio.wait_for(started.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert chunks > 0
        if not conn.closed:  # cancelled and drained (closed only when the server did not answer)
            await conn.rollback()
            cur = await conn.execute("SELECT 5")
            assert await cur.fetchone() == (5,)
    assert await _active_copies(dsn) == 0


async def test_a_terminated_backend_is_an_operational_error(dsn: str) -> None:
    endless = sql.SQL("SELECT generate_series(1, 100000000), repeat('w', 200)")
    async with connection(dsn) as conn, connection(dsn, autocommit=True) as admin:
        pid = conn.info.backend_pid
        with pytest.raises(psycopg.OperationalError):
            async with CopyOut(conn, _copy("text", endless), chunk_bytes=4096) as rows:
                async for _ in rows:
                    await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
