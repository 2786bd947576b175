"""A tenant id made of SQL metacharacters migrates like any other: identifiers are never formatted into SQL."""

from __future__ import annotations

import psycopg
import pytest

from activities.models import State
from stagesub.seed import OrchestraSpec, seed
from tenantmove import db
from workflows.client import start_migration

from . import stagesub_expect as expect
from .world import SEED_NOW, approve, shared_sums

# Quotes of every kind, a statement terminator and comment, psycopg and str.format placeholders, dollar
# quoting, a backslash, whitespace controls and text outside ASCII: whatever formats it into SQL breaks.
HOSTILE = 'x\'); DROP TABLE "Tenant"; -- \\ `q` %s %(tenant)s {} {0} $1 $$ ;\t交響楽団 🎻 O\'Brien'


async def _sums(dsn: str, tenant: str, tables, *, whole: bool = False, negate: bool = False
                ) -> dict[str, tuple[int, str]]:
    from tenantmove.checksum import table_checksum

    def chosen(table: str):  # noqa: ANN202
        return expect.whole(table) if whole else expect.rows_of(table, tenant, negate=negate)

    async with db.connection(dsn) as conn:
        out = {t: await table_checksum(conn, chosen(t)) for t in tables}
        await conn.rollback()
    return {t: (c.rows, c.digest) for t, c in out.items()}


@pytest.mark.parametrize("tenant", [HOSTILE])
async def test_a_tenant_id_full_of_metacharacters_migrates_and_nothing_else_changes(temporal_env, world, tenant):
    client = temporal_env.client
    seed(world.shared, [OrchestraSpec(tenant, f"name of {tenant}", "small")], now=SEED_NOW)
    owned = list(expect.OWNED)
    expected = await _sums(world.shared, tenant, [*owned, "User"])
    assert all(rows for rows, _ in (expected[t] for t in ("Musician", "Project", "Request", "AuditLog")))
    others = await shared_sums(world.shared)
    not_theirs = await _sums(world.shared, tenant, owned, negate=True)  # every other tenant's owned rows
    async with world.worker(client):
        handle = await start_migration(client, world.input(tenant), task_queue=world.queue,
                                       workflow_id=f"migrate-hostile-{world.queue}")
        await approve(handle)
        report = await handle.result()
    assert report.state is State.COMPLETED and report.database is not None
    assert report.database.database.isascii() and report.database.database.startswith(world.prefix)
    # the dedicated database holds exactly the tenant's rows, table by table (the switch's audit row aside)
    dedicated = await _sums(world.deps.dedicated_dsn(report.database), tenant, [t for t in owned if t != "AuditLog"]
                            + ["User"], whole=True)
    assert dedicated == {t: v for t, v in expected.items() if t != "AuditLog"}
    # shared: the tenant's owned rows are gone; every other table and every other tenant's row is untouched
    after = await shared_sums(world.shared)
    assert {t: (await _sums(world.shared, tenant, [t]))[t][0] for t in owned} == dict.fromkeys(owned, 0)
    assert await _sums(world.shared, tenant, owned, negate=True) == not_theirs
    for table in after:
        if table not in expect.OWNED and table != "Tenant":
            assert after[table] == others[table], table
    neighbours = await _sums(world.shared, tenant, ["Tenant"], whole=True)
    assert neighbours["Tenant"][0] == others["Tenant"][0]  # every tenant row is still there, none dropped
    # the tenant row points at the application's role, which works with rows and cannot touch the schema
    async with db.connection(world.shared) as conn:
        url = await world.deps.registry.database_url(conn, tenant)
    assert url == world.deps.app_dsn(report.database)
    with psycopg.connect(url) as app:
        assert app.execute('SELECT id FROM "Tenant"').fetchall() == [(tenant,)]
        assert app.execute("SELECT current_user").fetchone() == (report.database.app_role,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute('DROP TABLE "Musician"')
