"""A steady application writer for one tenant during a migration: routing, write freeze seen, writes kept."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from tenantmove import db
from tenantmove.settings import Settings
from tenantmove.tenant_state import TenantRegistry

COMM = "CommunicationLog"
AUDIT = "AuditLog"


@dataclass
class WriterReport:
    writes: int = 0                   # acknowledged (committed) writes
    to_dedicated: int = 0             # of which routed to the dedicated database
    blocked_polls: int = 0            # reads that found the tenant in maintenance
    errors: int = 0
    last_error: str = ""
    longest_gap: float = 0.0          # longest time between two acknowledged writes: the freeze as seen
    gap_end: float = 0.0              # monotonic time the longest gap ended
    expected: dict[tuple[str, str], int] = field(default_factory=dict)  # live rows -> version


@dataclass(frozen=True)
class WriterCheck:
    expected: int
    found: int
    missing: int
    wrong: int  # present with another version (a lost update) or present though deleted
    left_in_shared: int = 0

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.wrong == 0 and self.found == self.expected


class Writer:
    """Simulates the application for one tenant: before each write it reads the tenant row (maintenance flag,
    database type and URL) under FOR SHARE, so the write is ordered against the migration's own updates of
    that row, as an application's must be; it writes only when the tenant is not in maintenance, to whichever
    database the row routes it to. Inserts, updates and deletes rows of CommunicationLog and AuditLog."""

    def __init__(self, shared_dsn: str, tenant: str, *, interval: float = 0.02) -> None:
        settings = Settings()
        self.shared_dsn, self.tenant, self.interval = shared_dsn, tenant, interval
        self.schema = settings.db_schema
        self.registry = TenantRegistry(settings.db_schema, settings.tenant_table, "id", settings.tenant_columns())
        self.prefix = f"benchw-{uuid.uuid4().hex[:6]}-"
        self.report = WriterReport()
        self._conns: dict[str, psycopg.AsyncConnection] = {}
        self._n = 0

    async def run(self, stop: asyncio.Event) -> WriterReport:
        last_ok = time.monotonic()
        async with db.connection(self.shared_dsn) as ctl:
            try:
                while not stop.is_set():
                    if await self._step(ctl):
                        now = time.monotonic()
                        if now - last_ok > self.report.longest_gap:
                            self.report.longest_gap, self.report.gap_end = now - last_ok, now
                        last_ok = now
                    await asyncio.sleep(self.interval)
            finally:
                for conn in self._conns.values():
                    await conn.close()
        return self.report

    async def _step(self, ctl: psycopg.AsyncConnection) -> bool:
        try:
            async with ctl.transaction():
                await ctl.execute(sql.SQL("SELECT 1 FROM {} WHERE {} = %s FOR SHARE").format(
                    sql.Identifier(self.schema, self.registry.table), sql.Identifier(self.registry.key)),
                    (self.tenant,))
                state = await self.registry.read(ctl, self.tenant)
                if state.maintenance:
                    self.report.blocked_polls += 1
                    return False
                url = await self.registry.database_url(ctl, self.tenant)
                if url is None:
                    change = await self._write(ctl)
                else:
                    target = await self._connection(url)
                    async with target.transaction():
                        change = await self._write(target)
                    self.report.to_dedicated += 1
        except psycopg.Error as exc:
            self.report.errors += 1
            self.report.last_error = db.mask_dsn(str(exc).strip())[:200]
            await self._forget_broken()
            return False
        key, version = change
        if version < 0:
            self.report.expected.pop(key, None)
        else:
            self.report.expected[key] = version
        self.report.writes += 1
        return True

    async def _connection(self, url: str) -> psycopg.AsyncConnection:
        if url not in self._conns:
            self._conns[url] = await db.connect(url)
        return self._conns[url]

    async def _forget_broken(self) -> None:
        for url, conn in list(self._conns.items()):
            if conn.closed or conn.broken:
                del self._conns[url]

    async def _write(self, conn: psycopg.AsyncConnection) -> tuple[tuple[str, str], int]:
        """One insert, update or delete; returns the row touched and its new version (-1: deleted). The
        bookkeeping is applied by the caller only once the write committed."""
        n, self._n = self._n, self._n + 1
        live = sorted(self.report.expected, key=lambda k: self.report.expected[k])
        op = n % 5
        if op == 2 and live:  # update the oldest live message
            table, row_id = next((k for k in live if k[0] == COMM), live[0])
            await self._update(conn, table, row_id, n)
            return (table, row_id), n
        if op == 4 and live:  # delete the oldest live row
            table, row_id = live[0]
            await conn.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(
                sql.Identifier(self.schema, table)), (row_id,))
            return (table, row_id), -1
        row_id = f"{self.prefix}{n}"
        if op == 1:
            await conn.execute(sql.SQL(
                "INSERT INTO {} (id, \"tenantId\", action, entity, \"entityId\", changes) "
                "VALUES (%s, %s, 'bench.write', 'Tenant', %s, %s)").format(sql.Identifier(self.schema, AUDIT)),
                (row_id, self.tenant, self.tenant, Jsonb({"v": n})))
            return (AUDIT, row_id), n
        await conn.execute(sql.SQL(
            "INSERT INTO {} (id, \"tenantId\", channel, subject, body, metadata) "
            "VALUES (%s, %s, 'email', 'bench', %s, %s)").format(sql.Identifier(self.schema, COMM)),
            (row_id, self.tenant, f"v{n}", Jsonb({"v": n})))
        return (COMM, row_id), n

    async def _update(self, conn: psycopg.AsyncConnection, table: str, row_id: str, n: int) -> None:
        if table == COMM:
            query = sql.SQL("UPDATE {} SET body = %s, metadata = %s WHERE id = %s")
            params: tuple[Any, ...] = (f"v{n}", Jsonb({"v": n}), row_id)
        else:
            query = sql.SQL("UPDATE {} SET changes = %s WHERE id = %s")
            params = (Jsonb({"v": n}), row_id)
        await conn.execute(query.format(sql.Identifier(self.schema, table)), params)

    async def check(self, dedicated_dsn: str, shared_dsn: str) -> WriterCheck:
        """Compare the writer's rows in the dedicated database with every acknowledged write, and count those
        still in shared (cleanup deletes the tenant's rows there)."""
        found = await self._rows(dedicated_dsn)
        expected = self.report.expected
        missing = sum(1 for key in expected if key not in found)
        wrong = sum(1 for key, version in found.items() if expected.get(key) != version)
        return WriterCheck(expected=len(expected), found=len(found), missing=missing, wrong=wrong,
                           left_in_shared=len(await self._rows(shared_dsn)))

    async def _rows(self, dsn: str) -> dict[tuple[str, str], int]:
        found: dict[tuple[str, str], int] = {}
        async with db.connection(dsn) as conn:
            for table, column in ((COMM, "metadata"), (AUDIT, "changes")):
                cur = await conn.execute(sql.SQL("SELECT id, ({}->>'v')::int FROM {} WHERE id LIKE %s").format(
                    sql.Identifier(column), sql.Identifier(self.schema, table)), (self.prefix + "%",))
                found.update({(table, row_id): version for row_id, version in await cur.fetchall()})
        return found
