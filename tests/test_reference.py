"""Tests of the StageSub reference schema (Prisma migrations) and of the deterministic tenant seeder."""

from __future__ import annotations

import hashlib
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, LiteralString

import psycopg
import pytest
from psycopg import sql

from stagesub import seed as seeding
from stagesub.schema import MIGRATIONS_DIR, deploy_reference_schema
from tenantmove.db import with_database
from tenantmove.errors import ConfigError, PlanError, TenantStateError
from tenantmove.pgserver import LocalPostgres
from tenantmove.prisma import PrismaMigration, apply_migrations, find_migrations, recorded_migrations

# Both determinism runs must share the anchor of the relative timestamps.
NOW = datetime.now(UTC)
TABLES = [
    "Tenant", "User", "Session", "Musician", "Instrument", "Position", "MusicianQualification", "RankingList",
    "Ranking", "Project", "ProjectNeed", "ProjectNeedFile", "ProjectFile", "Request", "CommunicationLog",
    "RequestToken", "EmailTemplate", "AuditLog", "BackgroundJob", "Backup",
]
# How each table reaches its tenant: the joins the engine has to discover from the catalog.
TENANT_OF: dict[str, LiteralString] = {
    "Tenant": 'SELECT x.id AS tenant FROM "Tenant" x',
    "User": 'SELECT x."tenantId" AS tenant FROM "User" x',
    "Session": 'SELECT u."tenantId" AS tenant FROM "Session" x JOIN "User" u ON u.id = x."userId"',
    "Musician": 'SELECT x."tenantId" AS tenant FROM "Musician" x',
    "Instrument": 'SELECT x."tenantId" AS tenant FROM "Instrument" x',
    "Position": 'SELECT x."tenantId" AS tenant FROM "Position" x',
    "MusicianQualification": 'SELECT m."tenantId" AS tenant FROM "MusicianQualification" x '
                             'JOIN "Musician" m ON m.id = x."musicianId"',
    "RankingList": 'SELECT x."tenantId" AS tenant FROM "RankingList" x',
    "Ranking": 'SELECT l."tenantId" AS tenant FROM "Ranking" x JOIN "RankingList" l ON l.id = x."rankingListId"',
    "Project": 'SELECT x."tenantId" AS tenant FROM "Project" x',
    "ProjectNeed": 'SELECT p."tenantId" AS tenant FROM "ProjectNeed" x JOIN "Project" p ON p.id = x."projectId"',
    "ProjectNeedFile": 'SELECT p."tenantId" AS tenant FROM "ProjectNeedFile" x JOIN "ProjectNeed" n '
                       'ON n.id = x."projectNeedId" JOIN "Project" p ON p.id = n."projectId"',
    "ProjectFile": 'SELECT p."tenantId" AS tenant FROM "ProjectFile" x JOIN "Project" p ON p.id = x."projectId"',
    "Request": 'SELECT p."tenantId" AS tenant FROM "Request" x JOIN "ProjectNeed" n ON n.id = x."projectNeedId" '
               'JOIN "Project" p ON p.id = n."projectId"',
    "CommunicationLog": 'SELECT x."tenantId" AS tenant FROM "CommunicationLog" x',
    "RequestToken": 'SELECT p."tenantId" AS tenant FROM "RequestToken" x JOIN "Request" r ON r.id = x."requestId" '
                    'JOIN "ProjectNeed" n ON n.id = r."projectNeedId" JOIN "Project" p ON p.id = n."projectId"',
    "EmailTemplate": 'SELECT x."tenantId" AS tenant FROM "EmailTemplate" x',
    "AuditLog": 'SELECT x."tenantId" AS tenant FROM "AuditLog" x',
    "BackgroundJob": 'SELECT x."tenantId" AS tenant FROM "BackgroundJob" x',
    "Backup": 'SELECT x."tenantId" AS tenant FROM "Backup" x',
}
# Pairs of tenant paths that must agree on every row: a row never points into another tenant.
SAME_TENANT = [
    'SELECT count(*) FROM "Request" x JOIN "Musician" m ON m.id = x."musicianId" JOIN "ProjectNeed" n '
    'ON n.id = x."projectNeedId" JOIN "Project" p ON p.id = n."projectId" WHERE m."tenantId" <> p."tenantId"',
    'SELECT count(*) FROM "Ranking" x JOIN "Musician" m ON m.id = x."musicianId" JOIN "RankingList" l '
    'ON l.id = x."rankingListId" WHERE m."tenantId" <> l."tenantId"',
    'SELECT count(*) FROM "MusicianQualification" x JOIN "Musician" m ON m.id = x."musicianId" '
    'JOIN "Position" o ON o.id = x."positionId" WHERE m."tenantId" <> o."tenantId"',
    'SELECT count(*) FROM "CommunicationLog" x JOIN "Musician" m ON m.id = x."musicianId" '
    'WHERE m."tenantId" <> x."tenantId"',
    'SELECT count(*) FROM "AuditLog" x JOIN "User" u ON u.id = x."userId" WHERE u."tenantId" <> x."tenantId"',
    'SELECT count(*) FROM "ProjectNeed" x JOIN "Project" p ON p.id = x."projectId" JOIN "Position" o '
    'ON o.id = x."positionId" WHERE p."tenantId" <> o."tenantId"',
]
INSTITUTION = "sibelius-sinfonia"
QUOTED = "o'brien-ensemble"


def _rows(dsn: str, query: Any, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def _one(dsn: str, query: Any, params: Any = None) -> Any:
    return _rows(dsn, query, params)[0][0]


def _table_digests(dsn: str) -> dict[str, tuple[int, str]]:
    digests = {}
    for table in TABLES:
        query = sql.SQL("SELECT count(*), md5(string_agg(t::text, '' ORDER BY id)) FROM {} t").format(
            sql.Identifier(table))
        digests[table] = _rows(dsn, query)[0]
    return digests


@pytest.fixture(scope="module")
def seeded(pg_shared: LocalPostgres) -> Iterator[tuple[str, dict[str, dict[str, int]]]]:
    """One database with the three default orchestras, anchored at NOW, shared by the read-only tests."""
    # new_database is function-scoped, so this module-wide database is created the same way by hand.
    name = f"ref_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_shared.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = with_database(pg_shared.dsn(), name)
    deploy_reference_schema(dsn)
    yield dsn, seeding.seed(dsn, list(seeding.DEFAULT_ORCHESTRAS), now=NOW)


# --- Prisma migrations ---------------------------------------------------------------------------------


def test_deploy_records_migrations_like_prisma(pg_shared: LocalPostgres, new_database: Callable[..., str]) -> None:
    dsn = new_database(pg_shared)
    assert recorded_migrations(dsn) == []
    names = sorted(p.name for p in MIGRATIONS_DIR.iterdir() if p.is_dir())
    assert len(names) >= 3 and (MIGRATIONS_DIR / "migration_lock.toml").read_text().count('"postgresql"') == 1

    assert deploy_reference_schema(dsn) == names
    expected = [(n, hashlib.sha256((MIGRATIONS_DIR / n / "migration.sql").read_bytes()).hexdigest()) for n in names]
    assert recorded_migrations(dsn) == expected
    columns = _rows(dsn, "SELECT column_name, data_type, character_maximum_length, is_nullable FROM "
                         "information_schema.columns WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position")
    assert columns == [
        ("id", "character varying", 36, "NO"), ("checksum", "character varying", 64, "NO"),
        ("finished_at", "timestamp with time zone", None, "YES"),
        ("migration_name", "character varying", 255, "NO"), ("logs", "text", None, "YES"),
        ("rolled_back_at", "timestamp with time zone", None, "YES"),
        ("started_at", "timestamp with time zone", None, "NO"), ("applied_steps_count", "integer", None, "NO"),
    ]
    assert _rows(dsn, "SELECT DISTINCT applied_steps_count, finished_at >= started_at, length(id) "
                      "FROM _prisma_migrations") == [(1, True, 36)]

    assert deploy_reference_schema(dsn) == []
    assert _one(dsn, "SELECT count(*) FROM _prisma_migrations") == len(names)


def test_changed_checksum_is_refused(pg_shared: LocalPostgres, new_database: Callable[..., str]) -> None:
    dsn = new_database(pg_shared)
    deploy_reference_schema(dsn)
    first = find_migrations(MIGRATIONS_DIR)[0]
    _rows(dsn, "UPDATE _prisma_migrations SET checksum = repeat('ab', 32) WHERE migration_name = %s RETURNING 1",
          (first.name,))
    with pytest.raises(PlanError) as info:
        deploy_reference_schema(dsn)
    assert "ab" * 32 in info.value.message and first.checksum in info.value.message


def test_edited_file_and_failed_script(pg_shared: LocalPostgres, new_database: Callable[..., str],
                                       tmp_path: Path) -> None:
    dsn = new_database(pg_shared)
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder)
    assert apply_migrations(dsn, find_migrations(folder))
    # CRLF line endings (a Windows checkout) still match, as in prisma-engines' checksum.rs.
    script = folder / "20240110120000_init" / "migration.sql"
    script.write_bytes(script.read_bytes().replace(b"\n", b"\r\n"))
    assert apply_migrations(dsn, find_migrations(folder)) == []
    script.write_bytes(script.read_bytes() + b"-- edited\n")
    with pytest.raises(PlanError, match="checksum"):
        apply_migrations(dsn, find_migrations(folder))

    shutil.rmtree(folder)
    shutil.copytree(MIGRATIONS_DIR, folder)
    (folder / "20990101000000_broken").mkdir()
    (folder / "20990101000000_broken" / "migration.sql").write_text(
        'CREATE TABLE "Half" (id int);\nSELECT * FROM "NoSuchTable";\n')
    with pytest.raises(PlanError, match="20990101000000_broken"):
        apply_migrations(dsn, find_migrations(folder))
    assert _one(dsn, "SELECT to_regclass('\"Half\"')") is None
    assert "20990101000000_broken" not in [name for name, _ in recorded_migrations(dsn)]


def test_find_migrations_order_and_checksum(tmp_path: Path) -> None:
    for name in ("20240201000000_b", "20240101000000_a"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "migration.sql").write_bytes(b"hello")
    (tmp_path / "migration_lock.toml").write_text('provider = "postgresql"\n')
    found = find_migrations(tmp_path)
    assert [m.name for m in found] == ["20240101000000_a", "20240201000000_b"]
    # The value prisma-engines' own test expects for "hello".
    assert found[0].checksum == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    old_style = "".join(f"{b:x}" for b in hashlib.sha256(b"hello").digest())
    assert PrismaMigration.from_bytes("x", b"hello").matches(old_style)
    (tmp_path / "20240301000000_empty").mkdir()
    with pytest.raises(PlanError, match="migration.sql"):
        find_migrations(tmp_path)


def test_schema_shape(seeded: tuple[str, dict[str, dict[str, int]]]) -> None:
    dsn, _ = seeded
    tables = {r[0] for r in _rows(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == {*TABLES, "_prisma_migrations"}
    assert _one(dsn, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'Request' "
                     "AND column_name = 'tenantId'") == 0
    fk_of_tenant = _rows(dsn, """
        SELECT c.conrelid::regclass::text FROM pg_constraint c JOIN pg_attribute a
          ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.contype = 'f' AND a.attname = 'tenantId' ORDER BY 1""")
    assert '"AuditLog"' not in [r[0] for r in fk_of_tenant] and len(fk_of_tenant) == 10
    # Every tenantId and every foreign-key column leads some index.
    unindexed = _rows(dsn, """
        SELECT a.attrelid::regclass::text, a.attname FROM pg_attribute a
        JOIN pg_class t ON t.oid = a.attrelid JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'public' AND t.relkind = 'r' AND a.attnum > 0
          AND (a.attname = 'tenantId' OR EXISTS (SELECT 1 FROM pg_constraint c WHERE c.contype = 'f'
                                                 AND c.conrelid = a.attrelid AND a.attnum = ANY (c.conkey)))
          AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indkey[0] = a.attnum)""")
    assert unindexed == []


def _prisma_models(text: str) -> dict[str, dict[str, bool]]:
    """{model: {scalar field: optional}} from schema.prisma; relation fields are left out."""
    blocks = re.findall(r"^model (\w+) \{\n(.*?)^\}", text, flags=re.M | re.S)
    names = {name for name, _ in blocks}
    models: dict[str, dict[str, bool]] = {}
    for name, body in blocks:
        fields = {}
        for line in body.splitlines():
            parts = line.split()
            if len(parts) < 2 or parts[0].startswith(("@@", "//")):
                continue
            base = parts[1].rstrip("?[]")
            if base not in names:
                fields[parts[0]] = parts[1].endswith("?")
        models[name] = fields
    return models


def test_schema_prisma_matches_migrations(seeded: tuple[str, dict[str, dict[str, int]]]) -> None:
    dsn, _ = seeded
    models = _prisma_models((MIGRATIONS_DIR.parent / "schema.prisma").read_text())
    columns: dict[str, dict[str, bool]] = {}
    for table, column, nullable in _rows(dsn, "SELECT table_name, column_name, is_nullable = 'YES' "
                                              "FROM information_schema.columns WHERE table_schema = 'public' "
                                              "AND table_name <> '_prisma_migrations'"):
        columns.setdefault(table, {})[column] = nullable
    assert models == columns


# --- Seeding -------------------------------------------------------------------------------------------


def test_seed_counts_and_sizes(seeded: tuple[str, dict[str, dict[str, int]]]) -> None:
    dsn, result = seeded
    assert list(result) == [spec.tenant_id for spec in seeding.DEFAULT_ORCHESTRAS]
    for spec in seeding.DEFAULT_ORCHESTRAS:
        assert result[spec.tenant_id] == seeding.planned_rows(spec)
    for table, query in TENANT_OF.items():
        counted = dict(_rows(dsn, sql.SQL("SELECT tenant, count(*) FROM ({}) s GROUP BY tenant").format(
            sql.SQL(query))))
        for tenant, rows in result.items():
            assert counted.get(tenant, 0) == rows[table], (tenant, table)
    assert _one(dsn, 'SELECT count(*) FROM "Backup" WHERE "tenantId" IS NULL') == 3
    for query in SAME_TENANT:
        assert _one(dsn, query) == 0, query

    small = result["kammerorchester-basel"]
    assert 10 <= small["Musician"] < 100 and small["Project"] <= 10
    institution = result[INSTITUTION]
    assert institution["Musician"] >= 300
    month_ago = NOW - timedelta(days=30)
    assert _one(dsn, 'SELECT count(*) FROM "Request" r JOIN "ProjectNeed" n ON n.id = r."projectNeedId" '
                     'JOIN "Project" p ON p.id = n."projectId" WHERE p."tenantId" = %s AND r."sentAt" > %s',
                (INSTITUTION, month_ago)) >= 1000
    assert _one(dsn, 'SELECT count(*) FROM "Project" WHERE "tenantId" = %s AND status = \'active\'',
                (INSTITUTION,)) >= 50
    assert _rows(dsn, 'SELECT DISTINCT "databaseType"::text, "maintenanceMode", "databaseUrl" FROM "Tenant"') == [
        ("shared", False, None)]


def test_pre_check_signals(seeded: tuple[str, dict[str, dict[str, int]]]) -> None:
    dsn, result = seeded
    for tenant in result:
        recent = _one(dsn, 'SELECT count(DISTINCT s."userId") FROM "Session" s JOIN "User" u ON u.id = s."userId" '
                           'WHERE u."tenantId" = %s AND s."lastSeenAt" > %s',
                      (tenant, (NOW - timedelta(minutes=15)).replace(tzinfo=None)))
        assert recent >= 1
        newest = _one(dsn, 'SELECT max("createdAt") FROM "Backup" WHERE "tenantId" = %s', (tenant,))
        assert NOW.replace(tzinfo=None) - newest < timedelta(hours=24)
    assert _one(dsn, "SELECT count(*) FROM \"BackgroundJob\" WHERE status = 'running'") == 0


def test_awkward_data_in_every_tenant(seeded: tuple[str, dict[str, dict[str, int]]]) -> None:
    dsn, result = seeded
    checks = {
        "null phone": 'SELECT count(*) FROM "Musician" WHERE "tenantId" = %(t)s AND phone IS NULL',
        "null notes": 'SELECT count(*) FROM "Musician" WHERE "tenantId" = %(t)s AND notes IS NULL',
        "non-ascii": 'SELECT count(*) FROM "Musician" WHERE "tenantId" = %(t)s AND "lastName" ~ \'[^\\x01-\\x7e]\'',
        "emoji": 'SELECT count(*) FROM "CommunicationLog" WHERE "tenantId" = %(t)s AND body LIKE \'%%🎻%%\'',
        "single quote": 'SELECT count(*) FROM "Musician" WHERE "tenantId" = %(t)s '
                        "AND strpos(\"firstName\" || \"lastName\" || coalesce(notes, ''), chr(39)) > 0",
        "backslash": 'SELECT count(*) FROM "Musician" WHERE "tenantId" = %(t)s '
                     "AND strpos(\"lastName\" || coalesce(notes, ''), chr(92)) > 0",
        "100 KB body": 'SELECT count(*) FROM "CommunicationLog" WHERE "tenantId" = %(t)s AND length(body) >= 100000',
        "100 KB template": 'SELECT count(*) FROM "EmailTemplate" WHERE "tenantId" = %(t)s AND length(body) >= 100000',
        "nested jsonb": 'SELECT count(*) FROM "Project" WHERE "tenantId" = %(t)s '
                        "AND jsonb_path_exists(metadata, '$.deep.a.b[*] ? (@ == \"zwei\")')",
        "null metadata": 'SELECT count(*) FROM "Project" WHERE "tenantId" = %(t)s AND metadata IS NULL',
        "time zones": 'SELECT count(DISTINCT metadata->>\'timezone\') - 2 FROM "Project" WHERE "tenantId" = %(t)s',
        "unanswered request": 'SELECT count(*) FROM "Request" r JOIN "ProjectNeed" n ON n.id = r."projectNeedId" '
                              'JOIN "Project" p ON p.id = n."projectId" '
                              'WHERE p."tenantId" = %(t)s AND r."respondedAt" IS NULL',
        "log without request": 'SELECT count(*) FROM "CommunicationLog" WHERE "tenantId" = %(t)s '
                               'AND "requestId" IS NULL',
        "audit without user": 'SELECT count(*) FROM "AuditLog" WHERE "tenantId" = %(t)s AND "userId" IS NULL',
        "over 4 GB file": 'SELECT count(*) FROM "ProjectNeedFile" WHERE "storageKey" LIKE %(prefix)s '
                          "AND size > 4294967296",
    }
    for tenant in result:
        prefix = "tenants/" + tenant.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
        for name, query in checks.items():
            assert _one(dsn, query, {"t": tenant, "prefix": prefix}) > 0, (tenant, name)
    assert _one(dsn, 'SELECT count(*) FROM "Musician" WHERE id LIKE %s', (QUOTED + "-mus-0000%",)) > 0


def test_seed_is_deterministic(pg_shared: LocalPostgres, new_database: Callable[..., str],
                               seeded: tuple[str, dict[str, dict[str, int]]]) -> None:
    first, _ = seeded
    second = new_database(pg_shared)
    deploy_reference_schema(second)
    seeding.seed(second, list(seeding.DEFAULT_ORCHESTRAS), now=NOW)
    assert _table_digests(second) == _table_digests(first)
    assert _one(first, 'SELECT id FROM "Musician" ORDER BY id LIMIT 1') == "kammerorchester-basel-mus-000001"

    other = new_database(pg_shared)
    deploy_reference_schema(other)
    seeding.seed(other, list(seeding.DEFAULT_ORCHESTRAS), seed=7, now=NOW)
    assert _table_digests(other)["Musician"] != _table_digests(first)["Musician"]


def test_seed_refuses_existing_tenant_and_bad_input(pg_shared: LocalPostgres, new_database: Callable[..., str],
                                                    seeded: tuple[str, dict[str, dict[str, int]]]) -> None:
    dsn, _ = seeded
    before = _table_digests(dsn)
    fresh = seeding.OrchestraSpec("brand-new", "Brand New", "small")
    with pytest.raises(TenantStateError, match="o'brien-ensemble"):
        seeding.seed(dsn, [fresh, seeding.DEFAULT_ORCHESTRAS[2]], now=NOW)
    assert _table_digests(dsn) == before
    with pytest.raises(ConfigError, match="size"):
        seeding.seed(dsn, [seeding.OrchestraSpec("x", "X", "huge")])
    with pytest.raises(ConfigError, match="distinct"):
        seeding.seed(dsn, [fresh, fresh])
    with pytest.raises(PlanError, match="Tenant"):
        seeding.seed(new_database(pg_shared), [fresh])


def test_running_jobs_option(pg_shared: LocalPostgres, new_database: Callable[..., str]) -> None:
    dsn = new_database(pg_shared)
    deploy_reference_schema(dsn)
    seeding.seed(dsn, [seeding.OrchestraSpec("busy", "Busy Band", "small", running_jobs=2)])
    assert _rows(dsn, 'SELECT status::text, count(*), count("finishedAt") FROM "BackgroundJob" '
                      "WHERE status = 'running' GROUP BY 1") == [("running", 2, 0)]


@pytest.mark.parametrize("large_rows", [200_000])
def test_large_tenant_is_set_based(pg_shared: LocalPostgres, new_database: Callable[..., str],
                                   monkeypatch: pytest.MonkeyPatch, large_rows: int) -> None:
    dsn = new_database(pg_shared)
    deploy_reference_schema(dsn)
    calls: list[object] = []
    original = psycopg.Connection.execute

    def counting(self: psycopg.Connection, query: Any, params: Any = None, **kwargs: Any) -> Any:
        calls.append(query)
        return original(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", counting)
    started = time.monotonic()
    result = seeding.seed_for_bench(dsn, large_rows=large_rows)
    elapsed = time.monotonic() - started
    monkeypatch.undo()

    rows = result["bench-large"]
    assert sum(rows.values()) >= large_rows
    assert rows["AuditLog"] + rows["CommunicationLog"] > sum(rows.values()) / 2
    # Set-based: the number of statements does not depend on the number of rows.
    assert len(calls) < 150
    assert _one(dsn, 'SELECT count(*) FROM "AuditLog" WHERE "tenantId" = %s', ("bench-large",)) == rows["AuditLog"]
    assert set(result) == {"bench-large", *(s.tenant_id for s in seeding.DEFAULT_ORCHESTRAS)}
    print(f"seeded {sum(rows.values())} rows for bench-large in {elapsed:.1f}s")
