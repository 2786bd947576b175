"""Read a COPY ... TO STDOUT in chunks of many rows, straight from libpq.

PostgreSQL sends one CopyData message per row (copyto.c), and psycopg's COPY object hands them out one at a
time, each through a coroutine, a generator and a look at the event loop. For a tenant's million rows that
cost the worker more CPU than the target server spent loading them, on machines where the worker shares two
cores with both servers (bench: 1.4-2.2 s of the worker's CPU to read 574k rows, 0.7 s here). After each
socket read libpq holds every complete message that came in, so this reader takes all of them in one plain
loop and awaits the socket only when libpq holds no complete row.

It drives the low-level connection psycopg exposes for such needs (`AsyncConnection.pgconn`: send, results,
copy data) and leaves it as psycopg's own COPY does: after the last row, idle in the caller's transaction;
after a failure, a cancellation or a consumer that stopped early, with the server's COPY cancelled and the
rest drained, so that the caller's rollback works (or closed, when even that fails). One task per
connection, as everywhere in the engine: nothing else may use the connection while the COPY runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any

import psycopg
from psycopg import pq, sql
from psycopg.errors import error_from_result
from psycopg.pq.abc import PGresult

# Cancelling an abandoned COPY takes a round trip to the server and a read of what it still sends; a
# server that does not answer within this leaves a connection nobody can use, so it is closed instead.
ABANDON_SECONDS = 10.0


class CopyOut:
    """`async with CopyOut(conn, statement, params) as rows:` then `async for chunk in rows:` yields bytearrays
    of whole rows, `chunk_bytes` or a little more each, the last one shorter; `rows.messages` counts the
    CopyData messages read so far (one per row, and in binary format a trailer), and `rows.rows` is the
    server's count (the COPY command tag), set once the server ended the COPY, before the last chunk."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], statement: sql.Composed,
                 params: Mapping[str, Any] | None = None, *, chunk_bytes: int = 256 * 1024) -> None:
        self._conn = conn
        self._pgconn = conn.pgconn
        self._statement = statement
        self._params = dict(params) if params else None
        self._chunk_bytes = chunk_bytes
        self._encoding = "utf-8"
        self._started = False
        self.messages = 0
        self.rows: int | None = None

    async def __aenter__(self) -> CopyOut:
        # COPY takes no bind parameters: psycopg merges them into the text on the client for its own COPY,
        # and mogrify is the public way to do the same.
        query = psycopg.AsyncClientCursor(self._conn).mogrify(self._statement, self._params)
        self._encoding = self._conn.info.encoding
        self._pgconn.send_query(query.encode(self._encoding))
        self._started = True
        while self._pgconn.flush():  # nonblocking: 1 while part of the query is still unsent
            await self._wait(readable=False)
        result = await self._result()
        if result is None or result.status != pq.ExecStatus.COPY_OUT:
            await self._drain_results()
            if result is not None and result.status == pq.ExecStatus.FATAL_ERROR:
                raise error_from_result(result, encoding=self._encoding)
            found = "no result" if result is None else pq.ExecStatus(result.status).name
            raise psycopg.ProgrammingError(f"expected COPY TO STDOUT to start a copy, found {found}")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._started and self.rows is None:
            await self._abandon()

    def __aiter__(self) -> AsyncIterator[bytearray]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytearray]:
        pgconn, limit = self._pgconn, self._chunk_bytes
        buffer = bytearray()
        messages = 0  # a local in the per-row loop; self.messages is set before each chunk is handed out
        while True:
            nbytes, data = pgconn.get_copy_data(1)  # 1: never block; -2 raises OperationalError
            if nbytes > 0:
                buffer += data
                messages += 1
                if len(buffer) >= limit:
                    self.messages = messages
                    yield buffer
                    buffer = bytearray()
            elif nbytes == 0:  # no complete row buffered: wait for the socket, then let libpq read it
                await self._wait(readable=True)
                pgconn.consume_input()
            else:
                break
        self.messages = messages
        # The count comes before the last chunk, so that a consumer can tell the last one (rows is set).
        self.rows = await self._finish()
        if buffer:
            yield buffer

    async def _finish(self) -> int:
        """The command tag after the last row (or the error that ended the COPY), then the connection idle."""
        result = await self._result()
        await self._drain_results()
        if result is not None and result.status == pq.ExecStatus.FATAL_ERROR:
            raise error_from_result(result, encoding=self._encoding)
        if result is None or result.status != pq.ExecStatus.COMMAND_OK or result.command_tuples is None:
            found = "no result" if result is None else pq.ExecStatus(result.status).name
            raise psycopg.ProgrammingError(f"expected the COPY's command tag after its rows, found {found}")
        return result.command_tuples

    async def _abandon(self) -> None:
        """Stop the server's COPY and read what it still sends, as psycopg's COPY does on an error."""
        pgconn = self._pgconn
        if pgconn.status != pq.ConnStatus.OK or pgconn.transaction_status != pq.TransactionStatus.ACTIVE:
            return
        try:
            async with asyncio.timeout(ABANDON_SECONDS):
                await self._conn.cancel_safe(timeout=ABANDON_SECONDS)
                while (nbytes := pgconn.get_copy_data(1)[0]) >= 0:
                    if nbytes == 0:
                        await self._wait(readable=True)
                        pgconn.consume_input()
                await self._drain_results()  # the cancel's error, or the tag if the COPY had ended anyway
        except asyncio.CancelledError:
            await self._conn.close()
            raise
        except Exception:
            await self._conn.close()

    async def _result(self) -> PGresult | None:
        pgconn = self._pgconn
        pgconn.consume_input()
        while pgconn.is_busy():
            await self._wait(readable=True)
            pgconn.consume_input()
        return pgconn.get_result()

    async def _drain_results(self) -> None:
        while await self._result() is not None:
            pass

    async def _wait(self, *, readable: bool) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        fd = self._pgconn.socket

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        if readable:
            loop.add_reader(fd, wake)
        else:
            loop.add_writer(fd, wake)
        try:
            await ready
        finally:
            if readable:
                loop.remove_reader(fd)
            else:
                loop.remove_writer(fd)
