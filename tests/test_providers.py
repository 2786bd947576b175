"""PostgresProvider on a server that checks passwords: idempotent create, isolation, crash recovery, delete."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tenantmove.errors import ConfigError, SecretMissing
from tenantmove.pgserver import LocalPostgres
from tenantmove.providers import DedicatedDatabase, PostgresProvider, database_name
from tenantmove.secrets import FileSecretStore

# Only the cluster's own superuser is trusted; every other role must present its password, so a test that
# connects with a stored DSN proves the password in it is the right one.
HBA = """\
local all postgres trust
host  all postgres 127.0.0.1/32 trust
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    pg = LocalPostgres(tmp_path_factory.mktemp("pg-dedicated") / "data").start()
    (pg.data_dir / "pg_hba.conf").write_text(HBA)
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
    yield pg
    pg.destroy()


@pytest.fixture
def provider(server, tmp_path) -> PostgresProvider:
    return PostgresProvider(server.dsn(), FileSecretStore(tmp_path / "secrets"))


def _tenant(label: str = "orchestra") -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


def _count(server: LocalPostgres, name: str) -> tuple[int, int]:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM pg_database WHERE datname = %(n)s), "
                           "(SELECT count(*) FROM pg_roles WHERE rolname = %(n)s)", {"n": name}).fetchone()
    return int(row[0]), int(row[1])


def test_names_are_deterministic_ascii_and_fit():
    assert database_name("sibelius-sinfonia") == database_name("sibelius-sinfonia")
    assert database_name("sibelius-sinfonia").startswith("tenant_sibelius_sinfonia_")
    assert database_name("O'Brien") != database_name("o-brien")  # same slug, different hash
    long = database_name("Ä" * 40 + "x" * 300)
    assert len(long.encode()) == 63 and long.isascii()
    assert database_name("交響楽団").startswith("tenant_") and len(database_name("交響楽団")) == 15
    with pytest.raises(ConfigError, match="expected a name prefix"):
        database_name("x", prefix="pg_bad")


async def test_create_is_idempotent_and_the_role_works_only_in_its_database(server, provider):
    tenant = _tenant()
    first = await provider.create(tenant)
    dsn = provider.dsn(first)
    second = await provider.create(tenant)
    assert first == second and provider.dsn(second) == dsn  # the password was not reset
    assert _count(server, first.database) == (1, 1)
    assert "****" not in dsn and first.role in dsn and first == await provider.find(tenant)
    password = psycopg.conninfo.conninfo_to_dict(dsn)["password"]
    assert len(password) >= 32 and password not in repr(first)  # history carries names, never the password
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int primary key)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.execute("SELECT current_user, current_setting('is_superuser')").fetchone() == (
            first.role, "off")
        attrs = conn.execute("SELECT rolsuper, rolcreatedb, rolcreaterole, rolinherit FROM pg_roles "
                             "WHERE rolname = current_user").fetchone()
        assert attrs == (False, False, False, False)
    other = await provider.create(_tenant("neighbour"))
    b_as_a = psycopg.conninfo.make_conninfo(dsn, dbname=other.database)
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(b_as_a)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(psycopg.conninfo.make_conninfo(dsn, password="wrong"))
    await provider.delete(first.provider_id)
    await provider.delete(other.provider_id)


async def test_lost_secret_is_replaced_by_a_new_password(server, provider):
    tenant = _tenant()
    db = await provider.create(tenant)
    old = provider.dsn(db)
    provider.secrets.delete(db.secret_ref)  # a crash after CREATE ROLE, before the DSN was stored
    with pytest.raises(SecretMissing):
        provider.dsn(db)
    assert await provider.create(tenant) == db
    new = provider.dsn(db)
    assert new != old
    with psycopg.connect(new) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (db.database,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(old)
    await provider.delete(db.provider_id)


async def test_delete_twice_and_refuses_foreign_names(server, provider):
    db = await provider.create(_tenant())
    busy = psycopg.connect(provider.dsn(db))  # an open session does not stop the drop
    assert await provider.delete(db.provider_id) is True
    with pytest.raises(psycopg.OperationalError):
        busy.execute("SELECT 1")
    busy.close()
    assert _count(server, db.database) == (0, 0)
    assert not provider.secrets.exists(db.secret_ref)
    assert await provider.delete(db.provider_id) is False
    assert await provider.find("never-created") is None
    for name in ("postgres", "template1", "tenant_x", 'tenant_"; DROP'):
        with pytest.raises(ConfigError, match="expected a provider id made by this provider"):
            await provider.delete(name)
    assert _count(server, "postgres") == (1, 1)


async def test_tenant_id_with_quotes_and_unicode(server, provider):
    tenant = "O'Brien \"Ensemble\" \\ Dublin – Dvořák 交響楽団 🎻"
    db = await provider.create(tenant)
    assert db.database == database_name(tenant) and db.database.isascii()
    with psycopg.connect(provider.dsn(db)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (db.role,)
    assert await provider.delete(db.provider_id)


async def test_non_superuser_admin(server, tmp_path):
    """Managed services give an admin with CREATEROLE and CREATEDB, not a superuser."""
    admin = f"admin_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB PASSWORD 'adminpw'").format(
            sql.Identifier(admin)))
    provider = PostgresProvider(f"postgresql://{admin}:adminpw@127.0.0.1:{server.port}/postgres",
                                FileSecretStore(tmp_path / "s"), prefix="ded_")
    db = await provider.create(_tenant())
    assert db.database.startswith("ded_")
    with psycopg.connect(provider.dsn(db)) as conn:
        conn.execute("CREATE TABLE t (id int)")
        conn.commit()
    assert await provider.delete(db.provider_id) is True
    assert _count(server, db.database) == (0, 0)
    assert isinstance(db, DedicatedDatabase)
