"""The embedded default: a shared StageSub database on a local Postgres under STATE_DIR, ready to plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from psycopg import sql

from stagesub.schema import deploy_reference_schema
from stagesub.seed import DEFAULT_ORCHESTRAS, seed
from tenantmove.db import connect_sync, with_database, with_sslmode
from tenantmove.logs import get_logger
from tenantmove.pgserver import LocalPostgres
from tenantmove.settings import Settings

EMBEDDED_DATABASE = "stagesub"


def embedded_server(settings: Settings) -> LocalPostgres:
    return LocalPostgres(settings.embedded_data_dir)


def ensure_database(server: LocalPostgres, name: str) -> str:
    with connect_sync(server.dsn(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(server.dsn(), name)


def shared_dsn(settings: Settings) -> str:
    """SHARED_DATABASE_URL when set; otherwise start (or reuse) the embedded server and its database. With
    DATABASE_SSLMODE set, the DSN carries it (unless it names its own)."""
    if settings.shared_database_url:
        return with_sslmode(settings.shared_database_url, settings.database_sslmode)
    server = embedded_server(settings).start()
    return with_sslmode(ensure_database(server, EMBEDDED_DATABASE), settings.database_sslmode)


def prepare_embedded(settings: Settings) -> str:
    """The embedded default, with the reference schema deployed and the demo orchestras seeded once, so a
    first command on a fresh machine has something to show. A configured database is never touched."""
    dsn = shared_dsn(settings)
    if settings.shared_database_url:
        return dsn
    log = get_logger(component="embedded")
    applied = deploy_reference_schema(dsn)
    if applied:
        log.info("deployed the StageSub reference schema", migrations=applied)
    with connect_sync(dsn) as conn:
        tenants = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("Tenant"))).fetchone()
    if tenants and tenants[0] == 0:
        # Seeded as of an hour ago: the seed marks some users active "now", which would (rightly) stop a
        # demo migration at the pre-check.
        counts = seed(dsn, DEFAULT_ORCHESTRAS, now=datetime.now(UTC) - timedelta(hours=1))
        log.info("seeded the demo orchestras", tenants=sorted(counts))
    return dsn
