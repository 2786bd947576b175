"""Work spread over several connections at once: all of it succeeds, or the first failure stops the rest and
is raised as one typed error (the activity boundary maps engine errors; an ExceptionGroup it would not know)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from typing import TypeVar

import psycopg

from tenantmove import db
from tenantmove.errors import EngineError
from tenantmove.snapshot import exported_snapshot, use_snapshot

T = TypeVar("T")
X = TypeVar("X")


async def all_or_none(*work: Coroutine[object, object, T]) -> list[T]:
    """Await every coroutine at once; the first failure cancels the rest before it is raised. (Plain
    asyncio.gather leaves the others running: they would go on writing to connections and files that the
    caller is already closing and removing, and fail later with a misleading second error.)"""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one) for one in work]
    except ExceptionGroup as failed:
        raise the_error(failed) from failed
    return [task.result() for task in tasks]


def the_error(failed: ExceptionGroup) -> Exception:
    """One error out of a TaskGroup's, typed: the activity boundary maps engine errors (a permanent one is not
    retried, its message is masked) and would see an ExceptionGroup as an unknown, retryable error. A
    permanent error wins over a transient one (a lost server fails every table at once)."""
    leaves: list[Exception] = []
    pending: list[Exception] = [failed]
    while pending:
        exc = pending.pop(0)
        if isinstance(exc, ExceptionGroup):
            pending[:0] = list(exc.exceptions)
        else:
            leaves.append(exc)
    engine = [exc for exc in leaves if isinstance(exc, EngineError)]
    return next((exc for exc in engine if not exc.retryable), None) or (engine or leaves)[0]


async def in_one_snapshot(dsn: str, chosen: Sequence[X], connections: int,
                          work: Callable[[psycopg.AsyncConnection, X], Awaitable[T]],
                          snapshot_id: str | None = None) -> list[T]:
    """work(conn, selection) for every selection, over up to `connections` connections that all adopt one
    exported snapshot (the caller's, or one exported here); each connection takes the next selection when
    it is free. Results in input order."""
    async with AsyncExitStack() as stack:
        if snapshot_id is None:
            coordinator = await stack.enter_async_context(db.connection(dsn))
            snapshot = await stack.enter_async_context(exported_snapshot(coordinator))
        else:
            snapshot = snapshot_id
        conns = [await stack.enter_async_context(db.connection(dsn))
                 for _ in range(min(connections, len(chosen)) or 1)]
        results: dict[int, T] = {}
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(chosen)):
            queue.put_nowait(index)

        async def drain(conn: psycopg.AsyncConnection) -> None:
            while not queue.empty():
                index = queue.get_nowait()
                async with use_snapshot(conn, snapshot):
                    results[index] = await work(conn, chosen[index])

        await all_or_none(*(drain(conn) for conn in conns))
    return [results[index] for index in range(len(chosen))]
