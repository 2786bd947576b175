"""deploy_schema (Prisma migrations, or pg_dump without them) and diff_schemas, on 18 and across to 15."""

from __future__ import annotations

import shutil

import psycopg
import pytest
from psycopg import sql

from stagesub.schema import MIGRATIONS_DIR, deploy_reference_schema
from tenantmove import db
from tenantmove.catalog import read_catalog
from tenantmove.errors import PlanError
from tenantmove.schema_sync import deploy_schema, diff_schemas

from .conftest import create_database

# Neither Prisma nor StageSub: composite keys, an identity, an enum array, checks, a partial and an expression
# index, a self-reference, deferrable and SET NULL foreign keys, and a schema name that needs quoting.
GENERIC = """
CREATE TYPE {s}.mood AS ENUM ('calm', 'busy', 'on fire');
CREATE TABLE {s}.org (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL UNIQUE,
                      moods {s}.mood[] NOT NULL DEFAULT '{{calm}}', CHECK (length(name) > 1));
CREATE TABLE {s}.person (org_id bigint NOT NULL REFERENCES {s}.org ON DELETE CASCADE, n int NOT NULL,
                         boss_n int, mood {s}.mood DEFAULT 'calm', email varchar(200),
                         PRIMARY KEY (org_id, n),
                         FOREIGN KEY (org_id, boss_n) REFERENCES {s}.person (org_id, n) ON DELETE SET NULL
                             DEFERRABLE INITIALLY DEFERRED,
                         CONSTRAINT n_positive CHECK (n > 0));
CREATE INDEX ON {s}.person (lower(email)) WHERE email IS NOT NULL;
CREATE TABLE {s}.note (id serial PRIMARY KEY, org_id bigint REFERENCES {s}.org ON UPDATE CASCADE,
                       body text NOT NULL DEFAULT '');
"""


async def _diff(src_dsn: str, dst_dsn: str, schema: str = "public", tables: list[str] | None = None) -> list[str]:
    async with db.connection(src_dsn) as src, db.connection(dst_dsn) as dst:
        names = tables or sorted((await read_catalog(src, schema)).tables)
        return await diff_schemas(src, dst, schema, names)


def _recorded(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT migration_name, checksum FROM _prisma_migrations WHERE finished_at IS NOT NULL "
                            "ORDER BY migration_name").fetchall()


@pytest.mark.parametrize("target_server", ["pg_target", "pg15"])
async def test_prisma_schema_deploys_without_differences(request, pg_shared, target_server):
    shared = create_database(pg_shared, "sync_shared")
    deploy_reference_schema(shared)
    target = create_database(request.getfixturevalue(target_server), "sync_target")
    applied = await deploy_schema(shared, target, MIGRATIONS_DIR)
    assert applied == sorted(p.name for p in MIGRATIONS_DIR.iterdir() if p.is_dir())
    assert await deploy_schema(shared, target, MIGRATIONS_DIR) == []  # a retry applies nothing
    assert _recorded(target) == _recorded(shared)
    diff = await _diff(shared, target)
    assert diff == []


async def test_only_the_migrations_shared_recorded_are_applied(pg_shared, pg_target, tmp_path):
    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, migrations)
    names = sorted(p.name for p in migrations.iterdir() if p.is_dir())
    shared = create_database(pg_shared, "sync_shared")
    from tenantmove.prisma import apply_migrations, find_migrations

    apply_migrations(shared, find_migrations(migrations)[:2])  # shared is one migration behind the repo
    target = create_database(pg_target, "sync_target")
    assert await deploy_schema(shared, target, migrations) == names[:2]
    # A migration file edited after the shared database applied it stops the deploy.
    script = migrations / names[1] / "migration.sql"
    script.write_bytes(script.read_bytes() + b"\n-- edited\n")
    with pytest.raises(PlanError, match=f"migration {names[1]}: the shared database recorded checksum "
                                        "[0-9a-f]{64}, the file in .* has checksum [0-9a-f]{64}"):
        await deploy_schema(shared, create_database(pg_target, "sync_target"), migrations)
    shutil.rmtree(migrations / names[0])
    with pytest.raises(PlanError, match=f"migration {names[0]} is recorded in the shared database"):
        await deploy_schema(shared, create_database(pg_target, "sync_target"), migrations)


async def test_diff_names_altered_columns_indexes_and_keys(pg_shared, pg_target):
    shared = create_database(pg_shared, "sync_shared")
    deploy_reference_schema(shared)
    target = create_database(pg_target, "sync_target")
    deploy_reference_schema(target)
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute('ALTER TABLE "Musician" ALTER COLUMN phone TYPE varchar(20)')
        conn.execute('ALTER TABLE "Musician" ALTER COLUMN "active" DROP DEFAULT')
        conn.execute('DROP INDEX "Request_status_sentAt_idx"')
        conn.execute('ALTER TABLE "Request" DROP CONSTRAINT "Request_musicianId_fkey"')
        conn.execute('ALTER TABLE "Request" ADD CONSTRAINT "Request_musicianId_fkey" FOREIGN KEY ("musicianId") '
                     'REFERENCES "Musician"(id) ON DELETE CASCADE ON UPDATE CASCADE')
        conn.execute("ALTER TYPE \"RequestStatus\" ADD VALUE 'withdrawn'")
        conn.execute('ALTER TABLE "Project" ADD CHECK ("endDate" >= "startDate")')
        conn.execute('ALTER TABLE "EmailTemplate" DROP COLUMN body')
        conn.execute('DROP TABLE "RequestToken"')
    diff = await _diff(shared, target)
    assert "Musician.phone: type text on shared, character varying(20) on target" in diff
    assert "Musician.active: default true on shared, none on target" in diff
    assert ('Request: index CREATE INDEX ON "Request" USING btree (status, "sentAt") present on shared, '
            "missing on target") in diff
    assert ('Request: foreign key (musicianId) -> Musician(id) on delete restrict on update cascade present on '
            "shared, missing on target") in diff
    assert any(line.startswith('Project: check CHECK (("endDate" >= "startDate")) missing on shared') for line in diff)
    assert 'enum "RequestStatus": labels [pending, accepted, declined, expired, cancelled] on shared, ' \
           '[pending, accepted, declined, expired, cancelled, withdrawn] on target' in diff
    assert "EmailTemplate.body: column missing on target" in diff
    assert "RequestToken: table missing on target" in diff
    assert len(diff) == 9, diff


@pytest.mark.parametrize(("schema", "target_server"), [("public", "pg_target"), ("Crm Data", "pg_target"),
                                                       ("public", "pg15")])
async def test_pg_dump_fallback_without_prisma(request, pg_shared, schema, target_server, tmp_path):
    shared = create_database(pg_shared, "sync_generic")
    ident = sql.Identifier(schema)
    with psycopg.connect(shared, autocommit=True) as conn:
        if schema != "public":
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
        conn.execute(sql.SQL(GENERIC).format(s=ident))
        conn.execute("CREATE TABLE public.elsewhere (id int)")  # another schema: not copied
    target = create_database(request.getfixturevalue(target_server), "sync_target")
    assert await deploy_schema(shared, target, tmp_path / "none", schema=schema) == [f"pg_dump:{schema}"]
    assert await deploy_schema(shared, target, tmp_path / "none", schema=schema) == []
    assert await _diff(shared, target, schema, ["note", "org", "person"]) == []
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT n_positive").format(sql.Identifier(schema, "person")))
        if schema != "public":
            assert conn.execute("SELECT to_regclass('public.elsewhere')").fetchone() == (None,)
    assert await _diff(shared, target, schema, ["note", "org", "person"]) == [
        "person: check CHECK ((n > 0)) present on shared, missing on target"]
    with pytest.raises(PlanError, match="expected schema .* on the target empty or equal"):
        await deploy_schema(shared, target, tmp_path / "none", schema=schema)
