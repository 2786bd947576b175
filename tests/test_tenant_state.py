"""TenantRegistry on StageSub's Tenant table: states, idempotent switches, masked audit rows, unknown tenants."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stagesub.schema import deploy_reference_schema
from stagesub.seed import OrchestraSpec, seed
from tenantmove import db
from tenantmove.errors import ConfigError, TenantNotFound
from tenantmove.tenant_state import AuditSpec, TenantColumns, TenantRegistry, TenantState

from .conftest import copy_database, create_database

TENANT = "o'brien-ensemble"
OTHER = "kammer-basel"
PASSWORD = "s3cr3t-Pa55word-xyz"
DSN = f"postgresql://tenant_obrien_1234abcd:{PASSWORD}@127.0.0.1:5432/tenant_obrien_1234abcd"
AT = datetime(2026, 11, 2, 3, 4, 5, 678000, tzinfo=UTC)
REGISTRY = TenantRegistry("public", "Tenant", "id")


@pytest.fixture(scope="module")
def template(pg_shared) -> str:
    dsn = create_database(pg_shared, "tstate_tpl")
    deploy_reference_schema(dsn)
    seed(dsn, [OrchestraSpec(TENANT, "O'Brien Ensemble", "small"), OrchestraSpec(OTHER, "Basel", "small")],
         now=AT)
    return dsn


@pytest.fixture
def shared(pg_shared, template) -> str:
    return copy_database(pg_shared, template, "tstate")


async def _audit(conn, action: str) -> list[tuple]:
    cur = await conn.execute('SELECT "tenantId", entity, "entityId", "userId", changes, "createdAt" '
                             'FROM "AuditLog" WHERE action = %s ORDER BY "createdAt"', (action,))
    return await cur.fetchall()


async def test_switch_to_dedicated_and_back(shared):
    async with db.connection(shared) as conn:
        start = await REGISTRY.read(conn, TENANT)
        assert start == TenantState(TENANT, "shared", False, None, False)
        assert await REGISTRY.database_url(conn, TENANT) is None
        before = await REGISTRY.switch_to_dedicated(conn, TENANT, DSN, at=AT)
        assert before == start
        again = await REGISTRY.switch_to_dedicated(conn, TENANT, DSN, at=AT)  # a retry: no second row
        assert again == TenantState(TENANT, "dedicated", True, AT, False)
        assert await REGISTRY.database_url(conn, TENANT) == DSN
        rows = await _audit(conn, "tenant.database.switch")
        assert len(rows) == 1
        tenant_id, entity, entity_id, user_id, changes, created = rows[0]
        assert (tenant_id, entity, entity_id, user_id, created) == (TENANT, "Tenant", TENANT, None,
                                                                     AT.replace(tzinfo=None))
        assert changes["before"]["databaseType"] == "shared" and changes["before"]["databaseUrl"] is None
        assert changes["after"]["databaseUrl"] == DSN.replace(PASSWORD, "****")
        back = await REGISTRY.switch_to_shared(conn, TENANT, previous=start)
        assert back == again
        assert await REGISTRY.switch_to_shared(conn, TENANT, previous=start) == start  # idempotent
        assert await REGISTRY.read(conn, TENANT) == start
        assert len(await _audit(conn, "tenant.database.switch_back")) == 1
        # Nothing anywhere in the audit table holds the password, and the other tenant was not touched.
        cur = await conn.execute('SELECT count(*) FROM "AuditLog" a WHERE a::text LIKE %s', (f"%{PASSWORD}%",))
        assert await cur.fetchone() == (0,)
        assert await REGISTRY.read(conn, OTHER) == TenantState(OTHER, "shared", False, None, False)
    # Every write committed: a new session sees the final state.
    async with db.connection(shared) as conn:
        assert await REGISTRY.read(conn, TENANT) == start


async def test_maintenance_returns_previous_value(shared):
    async with db.connection(shared) as conn:
        assert await REGISTRY.set_maintenance(conn, TENANT, True) is False
        assert await REGISTRY.set_maintenance(conn, TENANT, True) is True
    async with db.connection(shared) as conn:
        assert (await REGISTRY.read(conn, TENANT)).maintenance is True
        assert (await REGISTRY.read(conn, OTHER)).maintenance is False
        assert await REGISTRY.set_maintenance(conn, TENANT, False) is True
        assert (await REGISTRY.read(conn, TENANT)).maintenance is False


async def test_unknown_tenant_and_misnamed_columns(shared):
    async with db.connection(shared) as conn:
        with pytest.raises(TenantNotFound, match="expected a row with id = 'nobody'"):
            await REGISTRY.read(conn, "nobody")
        with pytest.raises(TenantNotFound):
            await REGISTRY.switch_to_dedicated(conn, "nobody", DSN, at=AT)
        bad = TenantRegistry("public", "Tenant", "id", TenantColumns(database_url="dbUrl"))
        with pytest.raises(ConfigError, match="dbUrl"):
            await bad.read(conn, TENANT)


async def test_without_audit_table(shared):
    async with db.connection(shared) as conn:
        registry = TenantRegistry("public", "Tenant", "id", audit=AuditSpec(table="NoSuchAudit"))
        await registry.switch_to_dedicated(conn, TENANT, DSN, at=AT)
        assert await _audit(conn, "tenant.database.switch") == []
        none = TenantRegistry("public", "Tenant", "id", audit=None)
        await none.switch_to_shared(conn, TENANT)
        assert await none.read(conn, TENANT) == TenantState(TENANT, "shared", False, None, False)
