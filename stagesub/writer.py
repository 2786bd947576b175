"""A StageSub application stand-in that keeps writing to one orchestra while it is migrated.

It follows the application's contract with the migration: every write transaction first reads the tenant
row FOR SHARE (so turning maintenance on waits for writes in flight), writes nothing while maintenance mode
is on, and writes to the database the tenant row names (shared until the switch, then the dedicated one).
It remembers every write it got an acknowledgement for, so a test can check that each one is where the
tenant's data now lives, and it measures the longest stretch it could not write (the write freeze).
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
    """What the writer was told succeeded, and how long it was kept from writing."""

    audit: dict[str, str] = field(default_factory=dict)  # AuditLog id -> action, for live rows
    requests: set[str] = field(default_factory=set)  # Request ids inserted and not deleted
    deleted: set[str] = field(default_factory=set)  # ids of rows inserted, then deleted
    notes: dict[str, str] = field(default_factory=dict)  # Musician id -> the last notes written
    writes: int = 0
    blocked: int = 0
    longest_freeze: float = 0.0
    writes_to_dedicated: int = 0


class TenantWriter:
    """Writes AuditLog and Request rows (direct and foreign-key-derived ownership), updates Musicians, deletes
    its own rows, at up to `rate` transactions per second."""

    def __init__(self, shared_dsn: str, tenant: str, *, seed: int = 7, rate: float = 200) -> None:
        self.shared_dsn, self.tenant, self.rate = shared_dsn, tenant, rate
        self.random = random.Random(seed)
        self.log = WriteLog()
        self._counter = 0
        self._needs: list[str] = []
        self._musicians: list[str] = []
        self._pending: tuple[str, str, str] | None = None

    async def run(self, stop: asyncio.Event) -> WriteLog:
        async with db.connection(self.shared_dsn, application_name=APPLICATION_NAME) as shared:
            await self._load_parents(shared)
            dedicated: psycopg.AsyncConnection | None = None
            blocked_since: float | None = None
            try:
                while not stop.is_set():
                    started = time.monotonic()
                    done, url = await self._one_write(shared, dedicated)
                    if url and dedicated is None:
                        dedicated = await db.connect(url, application_name=APPLICATION_NAME)
                        done, _ = await self._one_write(shared, dedicated)
                    now = time.monotonic()
                    if done:
                        if blocked_since is not None:
                            self.log.longest_freeze = max(self.log.longest_freeze, now - blocked_since)
                            blocked_since = None
                    else:
                        self.log.blocked += 1
                        blocked_since = blocked_since or started
                    await asyncio.sleep(max(0.0, 1 / self.rate - (now - started)))
            finally:
                if dedicated is not None:
                    await dedicated.close()
        return self.log

    async def _load_parents(self, conn: psycopg.AsyncConnection) -> None:
        cur = await conn.execute('SELECT n.id FROM "ProjectNeed" n JOIN "Project" p ON p.id = n."projectId" '
                                 'WHERE p."tenantId" = %s ORDER BY n.id LIMIT 50', (self.tenant,))
        self._needs = [r[0] for r in await cur.fetchall()]
        cur = await conn.execute('SELECT id FROM "Musician" WHERE "tenantId" = %s ORDER BY id LIMIT 50',
                                 (self.tenant,))
        self._musicians = [r[0] for r in await cur.fetchall()]
        await conn.commit()

    async def _one_write(self, shared: psycopg.AsyncConnection, dedicated: psycopg.AsyncConnection | None
                         ) -> tuple[bool, str | None]:
        """One transaction: (written, the database URL the tenant row names)."""
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


async def missing_writes(dsn: str, log: WriteLog) -> list[str]:
    """Every acknowledged write that the database at dsn does not show (empty when none was lost)."""
    problems: list[str] = []
    async with db.connection(dsn) as conn:
        cur = await conn.execute('SELECT id, action FROM "AuditLog" WHERE id = ANY(%s)', (list(log.audit),))
        found = dict(await cur.fetchall())
        problems += [f"AuditLog {k}: expected {v!r}, found {found.get(k)!r}" for k, v in log.audit.items()
                     if found.get(k) != v]
        cur = await conn.execute('SELECT id FROM "Request" WHERE id = ANY(%s)', (list(log.requests),))
        problems += [f"Request {k}: missing" for k in log.requests - {r[0] for r in await cur.fetchall()}]
        cur = await conn.execute('SELECT id, notes FROM "Musician" WHERE id = ANY(%s)', (list(log.notes),))
        notes = dict(await cur.fetchall())
        problems += [f"Musician {k}: expected notes {v!r}, found {notes.get(k)!r}" for k, v in log.notes.items()
                     if notes.get(k) != v]
        for table in ("AuditLog", "Request"):
            cur = await conn.execute(sql.SQL("SELECT id FROM {} WHERE id = ANY(%s)").format(sql.Identifier(table)),
                                     (list(log.deleted),))
            problems += [f"{table} {r[0]}: deleted, still there" for r in await cur.fetchall()]
    return problems
