"""A StageSub application stand-in that keeps writing to one orchestra while it is migrated.

It follows the application's contract with the migration: every write transaction first reads the tenant
row FOR SHARE (so turning maintenance on waits for writes in flight), writes nothing while maintenance mode
is on, and writes to the database the tenant row names (shared until the switch, then the dedicated one).
It remembers every write it got an acknowledgement for, so a test or the benchmark can check that each one
is where the tenant's data now lives, and it measures the longest time between two acknowledged writes (the
write freeze as the application sees it, lock waits included).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from tenantmove import db

# Not the migration's application_name: fault tests tell the migration's backends from the application's by it.
APPLICATION_NAME = "stagesub-writer"
_TENANT_ROW = sql.SQL('SELECT "maintenanceMode", "databaseUrl" FROM "Tenant" WHERE id = %s FOR SHARE')


@dataclass
class WriteLog:
    """What the writer was told succeeded, how long it was kept from writing, and what failed."""

    audit: dict[str, str] = field(default_factory=dict)  # AuditLog id -> action, for live rows
    requests: set[str] = field(default_factory=set)  # Request ids inserted and not deleted
    deleted: set[str] = field(default_factory=set)  # ids of rows inserted, then deleted
    notes: dict[str, str] = field(default_factory=dict)  # Musician id -> the last notes written
    writes: int = 0
    blocked: int = 0  # transactions that found the tenant in maintenance
    longest_gap: float = 0.0  # seconds between two acknowledged writes, at the most
    writes_to_dedicated: int = 0
    errors: int = 0  # database errors counted, not raised (count_errors)
    last_error: str = ""


class TenantWriter:
    """Writes AuditLog and Request rows (direct and foreign-key-derived ownership), updates Musicians, deletes
    its own rows, at up to `rate` transactions per second.

    A database error ends run() unless count_errors: the tests want to see it; the benchmark reports it and
    writes on, as an application that retries would."""

    def __init__(self, shared_dsn: str, tenant: str, *, seed: int = 7, rate: float = 200,
                 count_errors: bool = False) -> None:
        self.shared_dsn, self.tenant, self.rate, self.count_errors = shared_dsn, tenant, rate, count_errors
        self.random = random.Random(seed)
        self.log = WriteLog()
        self._counter = 0
        self._needs: list[str] = []
        self._musicians: list[str] = []
        self._pending: tuple[str, str, str] | None = None
        self._dedicated: psycopg.AsyncConnection | None = None

    async def run(self, stop: asyncio.Event) -> WriteLog:
        async with db.connection(self.shared_dsn, application_name=APPLICATION_NAME) as shared:
            await self._load_parents(shared)
            last_ack = time.monotonic()
            try:
                while not stop.is_set():
                    started = time.monotonic()
                    if await self._attempt(shared):
                        now = time.monotonic()
                        self.log.longest_gap = max(self.log.longest_gap, now - last_ack)
                        last_ack = now
                    await asyncio.sleep(max(0.0, 1 / self.rate - (time.monotonic() - started)))
            finally:
                if self._dedicated is not None:
                    await self._dedicated.close()
        return self.log

    async def _attempt(self, shared: psycopg.AsyncConnection) -> bool:
        """One write where the tenant row points; True once it is acknowledged."""
        try:
            done, url = await self._one_write(shared)
            if url and self._dedicated is None:
                self._dedicated = await db.connect(url, application_name=APPLICATION_NAME)
                done, _ = await self._one_write(shared)
        except psycopg.Error as exc:
            if not self.count_errors:
                raise
            self.log.errors += 1
            self.log.last_error = db.mask_dsn(str(exc).strip())[:200]
            if self._dedicated is not None and (self._dedicated.closed or self._dedicated.broken):
                await self._dedicated.close()
                self._dedicated = None  # the next write connects again
            return False
        if not done:
            self.log.blocked += 1
        return done

    async def _load_parents(self, conn: psycopg.AsyncConnection) -> None:
        cur = await conn.execute('SELECT n.id FROM "ProjectNeed" n JOIN "Project" p ON p.id = n."projectId" '
                                 'WHERE p."tenantId" = %s ORDER BY n.id LIMIT 50', (self.tenant,))
        self._needs = [r[0] for r in await cur.fetchall()]
        cur = await conn.execute('SELECT id FROM "Musician" WHERE "tenantId" = %s ORDER BY id LIMIT 50',
                                 (self.tenant,))
        self._musicians = [r[0] for r in await cur.fetchall()]
        await conn.commit()

    async def _one_write(self, shared: psycopg.AsyncConnection) -> tuple[bool, str | None]:
        """One transaction: (written, the database URL the tenant row names)."""
        dedicated = self._dedicated
        async with shared.transaction():
            cur = await shared.execute(_TENANT_ROW, (self.tenant,))
            row = await cur.fetchone()
            assert row is not None, f"tenant {self.tenant} is gone"
            maintenance, url = bool(row[0]), row[1]
            if maintenance or (url and dedicated is None):
                return False, url
            target = dedicated if url else shared
            assert target is not None
            if target is shared:
                await self._write(shared)
            else:
                async with target.transaction():
                    await self._write(target)
                self.log.writes_to_dedicated += 1
        self._acknowledge()
        return True, url

    async def _write(self, conn: psycopg.AsyncConnection) -> None:
        self._counter += 1
        n, choice = self._counter, self.random.random()
        self._pending = None
        if choice < 0.35 or not (self.log.audit or self.log.requests):
            key = f"w-{self.tenant}-{n}"
            await conn.execute('INSERT INTO "AuditLog" (id, "tenantId", action, entity, "entityId") '
                               "VALUES (%s, %s, 'write', 'Writer', %s)", (key, self.tenant, str(n)))
            self._pending = ("audit", key, "write")
        elif choice < 0.6 and self._needs and self._musicians:
            key = f"wr-{self.tenant}-{n}"
            await conn.execute('INSERT INTO "Request" (id, "projectNeedId", "musicianId", "sentAt") '
                               "VALUES (%s, %s, %s, now())",
                               (key, self.random.choice(self._needs), self.random.choice(self._musicians)))
            self._pending = ("request", key, "")
        elif choice < 0.8 and self._musicians:
            musician, notes = self.random.choice(self._musicians), f"note {n}"
            await conn.execute('UPDATE "Musician" SET notes = %s WHERE id = %s', (notes, musician))
            self._pending = ("notes", musician, notes)
        elif choice < 0.9 and self.log.audit:
            key = self.random.choice(sorted(self.log.audit))
            await conn.execute('UPDATE "AuditLog" SET action = %s WHERE id = %s', (f"edit {n}", key))
            self._pending = ("audit", key, f"edit {n}")
        else:
            key = self.random.choice(sorted(self.log.audit) + sorted(self.log.requests))
            table = "AuditLog" if key in self.log.audit else "Request"
            await conn.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(sql.Identifier(table)), (key,))
            self._pending = ("delete", key, table)

    def _acknowledge(self) -> None:
        kind, key, value = self._pending or ("", "", "")
        self.log.writes += 1
        if kind == "audit":
            self.log.audit[key] = value
        elif kind == "request":
            self.log.requests.add(key)
        elif kind == "notes":
            self.log.notes[key] = value
        elif kind == "delete":
            self.log.audit.pop(key, None)
            self.log.requests.discard(key)
            self.log.deleted.add(key)


@dataclass(frozen=True)
class WriteCheck:
    """A write log against the database the tenant now lives in, in counts."""

    expected: int  # live rows the log expects
    found: int  # rows of the log (live or deleted) the database holds
    missing: int
    wrong: int  # present with another value (a lost update) or present though deleted
    left_in_shared: int = 0  # rows of the log shared still holds (cleanup deletes the tenant's rows there)

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.wrong == 0 and self.found == self.expected


# The column that shows a row's last write; a Request is never updated, so its id only has to be there.
_SHOWN = {"AuditLog": "action", "Request": "id", "Musician": "notes"}


def _expected(log: WriteLog) -> dict[tuple[str, str], str]:
    """(table, id) -> what the row must show, for every live row the writer wrote."""
    return {**{("AuditLog", k): v for k, v in log.audit.items()}, **{("Request", k): k for k in log.requests},
            **{("Musician", k): v for k, v in log.notes.items()}}


async def _rows(dsn: str, log: WriteLog) -> dict[tuple[str, str], str | None]:
    """(table, id) -> what the row shows, for every row of the log, live or deleted, that dsn holds."""
    wanted = {"AuditLog": [*log.audit, *log.deleted], "Request": [*log.requests, *log.deleted],
              "Musician": list(log.notes)}
    found: dict[tuple[str, str], str | None] = {}
    async with db.connection(dsn) as conn:
        for table, ids in wanted.items():
            cur = await conn.execute(sql.SQL("SELECT id, {} FROM {} WHERE id = ANY(%s)").format(
                sql.Identifier(_SHOWN[table]), sql.Identifier(table)), (ids,))
            found.update({(table, key): value for key, value in await cur.fetchall()})
    return found


async def missing_writes(dsn: str, log: WriteLog) -> list[str]:
    """Every acknowledged write that the database at dsn does not show (empty when none was lost)."""
    expected, found = _expected(log), await _rows(dsn, log)
    problems = [f"{table} {key}: expected {value!r}, found {found.get((table, key))!r}"
                for (table, key), value in expected.items() if found.get((table, key)) != value]
    return problems + [f"{table} {key}: deleted, still there" for table, key in found.keys() - expected.keys()]


async def check_writes(dsn: str, log: WriteLog, *, shared_dsn: str) -> WriteCheck:
    """The log against dsn (where the tenant now lives) and shared_dsn, in counts for the benchmark's table."""
    expected, found = _expected(log), await _rows(dsn, log)
    wrong = sum(1 for key, value in found.items() if key not in expected or expected[key] != value)
    return WriteCheck(expected=len(expected), found=len(found), missing=len(expected.keys() - found.keys()),
                      wrong=wrong, left_in_shared=len(await _rows(shared_dsn, log)))
