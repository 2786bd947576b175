"""The tenant row's migration columns (database type and URL, migratedAt, maintenance) and their audit rows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from tenantmove.db import mask_dsn, settle
from tenantmove.errors import ConfigError, TenantNotFound


@dataclass(frozen=True)
class TenantColumns:
    """Column names on the tenant table (StageSub's by default) and the database-type values.
    `updated_at` is set to CURRENT_TIMESTAMP on every write when named (Prisma's @updatedAt is set by the
    client, not the database, so nobody else would); "" leaves it alone."""

    database_type: str = "databaseType"
    database_url: str = "databaseUrl"
    migrated_at: str = "migratedAt"
    maintenance: str = "maintenanceMode"
    updated_at: str = "updatedAt"
    shared_value: str = "shared"
    dedicated_value: str = "dedicated"


@dataclass(frozen=True)
class TenantState:
    """What the tenant row says, without the URL itself (it holds a password): safe in workflow history."""

    tenant: str
    database_type: str
    has_database_url: bool
    migrated_at: datetime | None
    maintenance: bool


@dataclass(frozen=True)
class AuditSpec:
    """The audit table and its columns (StageSub's AuditLog); rows get id uuid4().hex and a NULL user."""

    table: str = "AuditLog"
    id: str = "id"
    tenant: str = "tenantId"
    action: str = "action"
    entity: str = "entity"
    entity_id: str = "entityId"
    changes: str = "changes"
    created_at: str = "createdAt"


@dataclass(frozen=True)
class _Row:
    database_type: str
    url: str | None
    migrated_at: datetime | None
    maintenance: bool

    def state(self, tenant: str) -> TenantState:
        return TenantState(tenant, self.database_type, self.url is not None, self.migrated_at, self.maintenance)

    def public(self, columns: TenantColumns) -> dict[str, Any]:
        """The row for an audit entry: the URL's password masked."""
        return {
            columns.database_type: self.database_type,
            columns.database_url: mask_dsn(self.url) if self.url is not None else None,
            columns.migrated_at: self.migrated_at.isoformat() if self.migrated_at else None,
            columns.maintenance: self.maintenance,
        }


def _utc(value: datetime | None) -> datetime | None:
    # Prisma keeps DateTime in `timestamp(3)` holding UTC; db.connect sessions run in UTC too.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class TenantRegistry:
    """Reads and switches one tenant table's migration columns. Every write commits its own transaction
    (db.settle first, so it is never a savepoint inside a caller's implicit transaction)."""

    def __init__(self, schema: str, table: str, key: str, columns: TenantColumns = TenantColumns(),
                 audit: AuditSpec | None = AuditSpec()) -> None:
        self.schema, self.table, self.key = schema, table, key
        self.columns = columns
        self.audit = audit

    # ---- reads ---------------------------------------------------------------------------------------
    async def _row(self, conn: psycopg.AsyncConnection, tenant: str, *, lock: bool = False) -> _Row:
        c = self.columns
        if "\x00" in tenant:  # Postgres text cannot hold NUL, so no tenant has it; the driver would raise DataError
            raise TenantNotFound(f"expected a tenant id without NUL characters, found {tenant!r}", tenant=tenant,
                                 table=self.table)
        query = sql.SQL("SELECT {}::text, {}, {}, {} FROM {} WHERE {} = %(tenant)s{}").format(
            sql.Identifier(c.database_type), sql.Identifier(c.database_url), sql.Identifier(c.migrated_at),
            sql.Identifier(c.maintenance), sql.Identifier(self.schema, self.table), sql.Identifier(self.key),
            sql.SQL(" FOR UPDATE") if lock else sql.SQL(""))
        async with self._mapped():
            cur = await conn.execute(query, {"tenant": tenant})
            row = await cur.fetchone()
        if row is None:
            raise TenantNotFound(f"expected a row with {self.key} = {tenant!r} in {self.schema}.{self.table}, "
                                 "found none", tenant=tenant, table=self.table)
        return _Row(str(row[0]), row[1], _utc(row[2]), bool(row[3]))

    async def read(self, conn: psycopg.AsyncConnection, tenant: str) -> TenantState:
        return (await self._row(conn, tenant)).state(tenant)

    async def database_url(self, conn: psycopg.AsyncConnection, tenant: str) -> str | None:
        """What the application connects to for this tenant: the URL when the type says dedicated, else None
        (the shared database)."""
        row = await self._row(conn, tenant)
        return row.url if row.database_type == self.columns.dedicated_value else None

    # ---- writes --------------------------------------------------------------------------------------
    async def set_maintenance(self, conn: psycopg.AsyncConnection, tenant: str, on: bool) -> bool:
        """Turn maintenance mode on or off; returns the previous value (unchanged rows are not written)."""
        await settle(conn)
        async with conn.transaction():
            row = await self._row(conn, tenant, lock=True)
            if row.maintenance != on:
                await self._update(conn, tenant, {self.columns.maintenance: on})
        return row.maintenance

    async def switch_to_dedicated(self, conn: psycopg.AsyncConnection, tenant: str, dsn: str, *, at: datetime
                                  ) -> TenantState:
        """Point the tenant at its dedicated database and write one audit row, in one transaction; returns
        the state before. Idempotent: a tenant already dedicated to this very URL is left alone and its
        current state is returned (so a retry after a lost reply sees it already dedicated)."""
        c = self.columns
        await settle(conn)
        async with conn.transaction():
            before = await self._row(conn, tenant, lock=True)
            if before.database_type == c.dedicated_value and before.url == dsn:
                return before.state(tenant)
            after = _Row(c.dedicated_value, dsn, at, before.maintenance)
            await self._update(conn, tenant, {c.database_type: c.dedicated_value, c.database_url: dsn,
                                              c.migrated_at: at})
            await self._write_audit(conn, tenant, "tenant.database.switch", before, after, at)
        return before.state(tenant)

    async def switch_to_shared(self, conn: psycopg.AsyncConnection, tenant: str, *,
                               previous: TenantState | None = None) -> TenantState:
        """Point the tenant back at the shared database, with one audit row; returns the state before.

        The URL becomes NULL whatever `previous` says: TenantState never carries the URL (it holds a
        password), and a shared tenant needs none. migratedAt comes back from `previous` when that was a
        shared state (a tenant moved before, then back), else NULL. Idempotent: no write, no audit row when
        the row already says exactly that."""
        c = self.columns
        migrated = previous.migrated_at if previous and previous.database_type != c.dedicated_value else None
        await settle(conn)
        async with conn.transaction():
            before = await self._row(conn, tenant, lock=True)
            after = _Row(c.shared_value, None, migrated, before.maintenance)
            if (before.database_type, before.url, before.migrated_at) == (c.shared_value, None, migrated):
                return before.state(tenant)
            await self._update(conn, tenant, {c.database_type: c.shared_value, c.database_url: None,
                                              c.migrated_at: migrated})
            await self._write_audit(conn, tenant, "tenant.database.switch_back", before, after,
                                    datetime.now(UTC))
        return before.state(tenant)

    async def copy_latest_audit(self, src: psycopg.AsyncConnection, dst: psycopg.AsyncConnection, tenant: str,
                                action: str) -> int:
        """Copy the tenant's latest audit row of `action` from src to dst (same id, so a retry adds nothing).

        The switch is audited in shared, after the export; cleanup then deletes the tenant's audit rows from
        shared, so without this copy the tenant's own audit log would never show its move. Returns how many
        such rows dst holds now (1, or 0 when src has none): the count a row check on dst must add."""
        spec = self.audit
        if spec is None or not spec.table:
            return 0
        cols = [spec.id, spec.tenant, spec.action, spec.entity, spec.entity_id, spec.changes, spec.created_at]
        table = sql.Identifier(self.schema, spec.table)
        query = sql.SQL("SELECT {} FROM {} WHERE {} = %s AND {} = %s ORDER BY {} DESC LIMIT 1").format(
            sql.SQL(", ").join(map(sql.Identifier, cols)), table, sql.Identifier(spec.tenant),
            sql.Identifier(spec.action), sql.Identifier(spec.created_at))
        async with self._mapped():
            cur = await src.execute(query, (tenant, action))
            row = await cur.fetchone()
        await settle(src)
        if row is None:
            return 0
        insert = sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO NOTHING").format(
            table, sql.SQL(", ").join(map(sql.Identifier, cols)), sql.SQL(", ").join(sql.Placeholder() for _ in cols),
            sql.Identifier(spec.id))
        await settle(dst)
        async with dst.transaction(), self._mapped():
            await dst.execute(insert, [Jsonb(v) if i == 5 else v for i, v in enumerate(row)])
        return 1

    async def _update(self, conn: psycopg.AsyncConnection, tenant: str, values: dict[str, Any]) -> None:
        sets = [sql.SQL("{} = {}").format(sql.Identifier(col), sql.Placeholder(f"v{i}"))
                for i, col in enumerate(values)]
        params: dict[str, Any] = {f"v{i}": value for i, value in enumerate(values.values())}
        if self.columns.updated_at:
            sets.append(sql.SQL("{} = CURRENT_TIMESTAMP").format(sql.Identifier(self.columns.updated_at)))
        query = sql.SQL("UPDATE {} SET {} WHERE {} = %(tenant)s").format(
            sql.Identifier(self.schema, self.table), sql.SQL(", ").join(sets), sql.Identifier(self.key))
        async with self._mapped():
            await conn.execute(query, {**params, "tenant": tenant})

    async def _write_audit(self, conn: psycopg.AsyncConnection, tenant: str, action: str, before: _Row,
                           after: _Row, at: datetime) -> bool:
        """One audit row with before/after (passwords masked); False when there is no audit table."""
        spec = self.audit
        if spec is None or not spec.table:
            return False
        cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                                 (sql.Identifier(self.schema, spec.table).as_string(conn),))
        row = await cur.fetchone()
        if not row or not row[0]:
            return False
        changes = {"before": before.public(self.columns), "after": after.public(self.columns),
                   "by": "stagesub-migrate"}
        values = {spec.id: uuid.uuid4().hex, spec.tenant: tenant, spec.action: action, spec.entity: self.table,
                  spec.entity_id: tenant, spec.changes: Jsonb(changes), spec.created_at: at}
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(self.schema, spec.table), sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(sql.Placeholder() for _ in values))
        async with self._mapped():
            await conn.execute(query, list(values.values()))
        return True

    @asynccontextmanager
    async def _mapped(self) -> AsyncIterator[None]:
        """A misnamed table or column is a setting to fix, not a retry."""
        try:
            yield
        except (psycopg.errors.UndefinedColumn, psycopg.errors.UndefinedTable) as exc:
            raise ConfigError(f"expected the tenant columns of {self.schema}.{self.table} "
                              f"({', '.join(_names(self.columns))}), found: {str(exc).strip()}",
                              table=self.table) from exc


def _names(columns: TenantColumns) -> list[str]:
    return [columns.database_type, columns.database_url, columns.migrated_at, columns.maintenance]
