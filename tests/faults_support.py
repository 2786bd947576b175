"""Helpers of the process fault tests: worker processes to kill, step events from history, held table locks."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from temporalio.client import WorkflowHandle

from stagesub.checks import tenant_sums, touched
from stagesub.writer import TenantWriter, missing_writes
from tenantmove import db

from . import stagesub_expect as expect
from .test_worker_kill import ROOT, _worker
from .test_workflow import TENANT, _expected_sums, _target_sums
from .world import World, shared_sums

MOVED = [*expect.OWNED, "User"]
# The worker with a 1 s sticky queue timeout instead of 10 s: the workflow's next task leaves a killed worker's
# queue sooner. Everything else is worker.py's (deps, activities, workflows).
HARNESS_WORKER = ROOT / "bench" / "soak_worker.py"


@dataclass
class Workers:
    """At most one worker process at a time, killed with SIGKILL: no shutdown, no goodbye to the server."""

    world: World
    address: str
    log: Path
    rows_per_second: int = 0
    proc: subprocess.Popen | None = None
    kills: int = 0

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.proc = _worker(self.world, self.address, self.log, self.rows_per_second, script=HARNESS_WORKER,
                            SOAK_STICKY_QUEUE_SECONDS="1")

    def kill(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, "the worker died on its own; see its log"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.kills += 1

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


async def step_events(handle: WorkflowHandle) -> tuple[list[str], list[str]]:
    """(steps scheduled, steps completed) in history order, named by the summary each step's activity carries."""
    scheduled: dict[int, str] = {}
    completed: list[str] = []
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            summary = json.loads(event.user_metadata.summary.data or b'""')
            scheduled[event.event_id] = summary.split(" ")[0]
        elif event.HasField("activity_task_completed_event_attributes"):
            completed.append(scheduled[event.activity_task_completed_event_attributes.scheduled_event_id])
    return list(scheduled.values()), completed


async def wait_step_completed(handle: WorkflowHandle, step: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while step not in (await step_events(handle))[1]:
        assert asyncio.get_running_loop().time() < deadline, f"{step} never completed"
        await asyncio.sleep(0.03)


@dataclass
class HeldLock:
    """A table lock held in an open transaction, so that the step that needs the table waits on it mid-way."""

    dsn: str
    table: str  # a qualified, quoted name, as regclass reads it
    mode: str = "ACCESS EXCLUSIVE"
    conn: psycopg.AsyncConnection | None = field(default=None, repr=False)

    async def take(self) -> HeldLock:
        self.conn = await psycopg.AsyncConnection.connect(self.dsn, application_name="fault-test")
        await self.conn.execute(sql.SQL("LOCK TABLE {} IN " + self.mode + " MODE").format(  # mode: a constant
            sql.SQL(self.table)))
        return self

    async def waiters(self) -> int:
        """Migration backends waiting for this lock (the step is under way, stopped at this table)."""
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            cur = await conn.execute(
                # Databases copied from one template share table oids: the database must match too.
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE NOT l.granted "
                "AND l.relation = %s::regclass AND a.application_name = 'stagesub-migrate' "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())", [self.table])
            return int((await cur.fetchone())[0])  # type: ignore[index]

    async def release(self) -> None:
        if self.conn is not None:
            await self.conn.close()  # the transaction ends, the lock with it
            self.conn = None


async def kill_mid(workers: Workers, handle: WorkflowHandle, step: str, lock: HeldLock, timeout: float = 60) -> None:
    """Wait until `step` is under way and stopped at the locked table, kill the worker, release the lock."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        scheduled, completed = await step_events(handle)
        assert step not in completed, f"{step} completed before it reached {lock.table}"
        if step in scheduled and await lock.waiters():
            break
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{step} never waited on {lock.table}; {scheduled=} {completed=}; backends: "
                                 f"{await activity_of(lock.dsn)}")
        await asyncio.sleep(0.05)
    workers.kill()
    await lock.release()


async def queue_behind(lock: HeldLock) -> asyncio.Task[HeldLock]:
    """Ask for the lock while a migration's transaction holds the table: it is granted the moment that one
    ends, before any later request (the step after it). The task ends when it is granted."""
    task = asyncio.create_task(lock.take())
    for _ in range(600):
        async with await psycopg.AsyncConnection.connect(lock.dsn, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE NOT l.granted "
                "AND l.relation = %s::regclass AND a.application_name = 'fault-test' "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())", [lock.table])
            if (await cur.fetchone())[0] or task.done():  # type: ignore[index]
                return task
        await asyncio.sleep(0.02)
    raise AssertionError(f"the lock on {lock.table} was never asked for")


async def blocked_by(dsn: str, pid: int) -> bool:
    """Whether a migration backend waits on the backend `pid` (a gate the test holds)."""
    return any(pid in row[5] for row in await activity_of(dsn))


async def waits_in(handle: WorkflowHandle, step: str, lock: HeldLock) -> bool:
    """Whether `step` is under way and a migration backend waits on the lock."""
    return step in (await step_events(handle))[0] and await lock.waiters() > 0


async def until(check, message: str, timeout: float = 60) -> None:  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, message
        await asyncio.sleep(0.05)


async def change_table(shared: str) -> str:
    async with await psycopg.AsyncConnection.connect(shared, autocommit=True) as conn:
        cur = await conn.execute("SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n "
                                 "ON n.oid = c.relnamespace WHERE n.nspname = 'tenantmove_capture' "
                                 "AND c.relkind = 'r' AND c.relname LIKE 'changes%'")
        names = [r[0] for r in await cur.fetchall()]
    assert len(names) == 1, names
    return names[0]


def dedicated_admin_dsn(world: World) -> str:
    (name,) = world.dedicated_databases()
    return db.with_database(world.target_server.dsn(), name)


@dataclass
class Before:
    tenant: dict[str, tuple[int, str]]  # the tenant's rows, table by table
    others: dict[str, tuple[int, str]]  # every other row of shared (other tenants', kept and global tables)


async def _sums(dsn: str, selections: dict) -> dict[str, tuple[int, str]]:  # noqa: ANN001
    from tenantmove.checksum import table_checksum

    async with db.connection(dsn) as conn:
        out = {t: await table_checksum(conn, s) for t, s in selections.items()}
        await conn.rollback()
    return {t: (c.rows, c.digest) for t, c in out.items()}


async def _others(dsn: str) -> dict[str, tuple[int, str]]:
    whole = await shared_sums(dsn)  # less the switch's audit rows; Tenant less updatedAt
    owned = await _sums(dsn, {t: expect.rows_of(t, TENANT, negate=True) for t in expect.OWNED})
    return {**{t: s for t, s in whole.items() if t not in expect.OWNED and t != "Tenant"}, **owned}


async def before(world: World) -> Before:
    return Before(await _expected_sums(world.shared, MOVED), await _others(world.shared))


async def assert_completed_exactly(world: World, report, was: Before) -> None:  # noqa: ANN001
    """Every row of the tenant exactly once on its dedicated database, its owned rows gone from shared, every
    other row of shared as it was, no capture trigger left behind."""
    assert report.state.value == "completed", report
    assert await _target_sums(world.deps.dedicated_dsn(report.database), MOVED) == was.tenant
    await _assert_shared_clean(world, was)


async def assert_completed_with_writes(world: World, report, was: Before, writer: TenantWriter,  # noqa: ANN001
                                       template: str) -> None:
    """As assert_completed_exactly, for a tenant that kept writing: every write it was told succeeded is in
    its dedicated database, and every row it did not touch is there as it was in the template world copied."""
    assert report.state.value == "completed", report
    async with db.connection(world.shared) as conn:
        url = await world.deps.registry.database_url(conn, TENANT)
    assert url is not None
    assert await missing_writes(url, writer.log) == []
    ids = touched([writer.log])
    expected = await tenant_sums(template, TENANT, ids)
    found = await tenant_sums(world.deps.dedicated_dsn(report.database), TENANT, ids)
    for sums in (expected, found):
        sums.pop("Tenant")  # the switch writes the tenant row
    assert found == expected
    await _assert_shared_clean(world, was)


async def _assert_shared_clean(world: World, was: Before) -> None:
    assert await _others(world.shared) == was.others
    left = await _expected_sums(world.shared, list(expect.OWNED))
    assert all(rows == 0 for rows, _ in left.values()), left
    async with await psycopg.AsyncConnection.connect(world.shared, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'tenantmove%%'")
        assert (await cur.fetchone())[0] == 0  # type: ignore[index]


async def activity_of(dsn: str) -> list[tuple]:
    """What the migration's backends on that server are doing: for a failure message."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT pid, datname, state, wait_event_type, wait_event, pg_blocking_pids(pid), "
                                 "left(query, 70) FROM pg_stat_activity WHERE application_name = 'stagesub-migrate'")
        return list(await cur.fetchall())
