"""Dedicated databases as a login role plus a database it owns, on a Postgres server reached by an admin DSN."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import unicodedata
from secrets import token_urlsafe
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tenantmove.db import connect, mask_dsn, with_database
from tenantmove.errors import ConfigError, DatabaseUnavailable, ProviderError
from tenantmove.providers.base import DatabaseProvider, DedicatedDatabase
from tenantmove.secrets import SecretStore

MAX_NAME_BYTES = 63  # NAMEDATALEN - 1: Postgres silently truncates longer identifiers
_PREFIX = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
_ROLE_OPTIONS = sql.SQL("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS")
_APP_SUFFIX = "_app"
# What the application does with its data: rows in, out, changed, deleted, and ids drawn from sequences.
# No TRUNCATE, REFERENCES or TRIGGER, no CREATE anywhere: DDL stays with the owner, which the tool keeps.
_APP_TABLE_RIGHTS = sql.SQL("SELECT, INSERT, UPDATE, DELETE")
_APP_SEQUENCE_RIGHTS = sql.SQL("USAGE, SELECT, UPDATE")


def _check_prefix(prefix: str) -> str:
    if not _PREFIX.fullmatch(prefix) or prefix.startswith("pg_"):
        raise ConfigError(f"expected a name prefix of lower-case letters, digits and _ (at most 41, not "
                          f"starting with pg_), found {prefix!r}")
    return prefix


def database_name(tenant: str, prefix: str = "tenant_") -> str:
    """prefix + ASCII slug of the tenant id + _ + 8 hex of sha256(tenant): readable, deterministic, <= 63 bytes.

    The hash keeps ids apart that slug alike ("O'Brien" and "o-brien"); the slug only helps people.
    """
    _check_prefix(prefix)
    digest = hashlib.sha256(tenant.encode("utf-8")).hexdigest()[:8]
    plain = unicodedata.normalize("NFKD", tenant).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "_", plain.lower()).strip("_")
    slug = slug[: MAX_NAME_BYTES - len(prefix) - 1 - len(digest)].rstrip("_")
    return f"{prefix}{slug}_{digest}" if slug else f"{prefix}{digest}"


def app_role_name(provider_id: str) -> str:
    """The application role of a database: its name + _app, the slug cut so that it still fits in 63 bytes.
    It ends in _app, never in the 8 hex an owner's name ends with, so the two kinds never collide."""
    if len(provider_id) + len(_APP_SUFFIX) > MAX_NAME_BYTES:
        head, digest = provider_id[:-9], provider_id[-8:]
        provider_id = f"{head[:MAX_NAME_BYTES - len(_APP_SUFFIX) - 9].rstrip('_')}_{digest}"
    return provider_id + _APP_SUFFIX


def scram_verifier(password: str, *, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier Postgres stores for password (RFC 5802/7677, as libpq's
    PQencryptPasswordConn builds it): sent instead of the password, so the plain password never reaches
    the server's statement log or pg_stat_statements. Callers pass ASCII passwords, for which SASLprep is
    the identity."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)


def _url_host(host: str) -> str:
    if host.startswith("/"):
        return quote(host, safe="")  # a socket directory: percent-encoded, as libpq's URI parser expects
    return f"[{host}]" if ":" in host else host


class PostgresProvider(DatabaseProvider):
    """Each tenant gets a database closed to PUBLIC and two LOGIN roles (no superuser, createdb, createrole,
    inherit, replication or bypassrls): the owner, whose DSN the tool keeps to deploy the schema and load
    rows, and `<name>_app`, the application's, which may only read and write rows (default privileges give
    it every table and sequence the owner creates) and whose DSN goes into the tenant row. Database and owner
    share one name, which is also the provider id."""

    kind = "postgres"

    def __init__(self, admin_dsn: str, secrets: SecretStore, *, prefix: str = "tenant_") -> None:
        self.admin_dsn = admin_dsn
        self.secrets = secrets
        self.prefix = _check_prefix(prefix)
        self._sslmode = conninfo_to_dict(admin_dsn).get("sslmode")

    def name(self, tenant: str) -> str:
        return database_name(tenant, self.prefix)

    @staticmethod
    def secret_ref(name: str) -> str:
        return f"dsn/{name}"

    def _describe(self, conn: psycopg.AsyncConnection, name: str) -> DedicatedDatabase:
        app = app_role_name(name)
        return DedicatedDatabase(kind=self.kind, provider_id=name, database=name, role=name,
                                 host=conn.info.host, port=int(conn.info.port), secret_ref=self.secret_ref(name),
                                 app_role=app, app_secret_ref=self.secret_ref(app))

    def _dsn_for(self, db: DedicatedDatabase, role: str, password: str) -> str:
        query = f"?sslmode={quote(str(self._sslmode))}" if self._sslmode else ""
        return (f"postgresql://{quote(role, safe='')}:{quote(password, safe='')}@{_url_host(db.host)}:"
                f"{db.port}/{quote(db.database, safe='')}{query}")

    def _secret_matches(self, db: DedicatedDatabase, role: str, ref: str) -> bool:
        """A stored DSN still names this role, database and server (the admin DSN may have moved)."""
        if not self.secrets.exists(ref):
            return False
        stored = conninfo_to_dict(self.secrets.get(ref))
        return (stored.get("user"), stored.get("dbname"), stored.get("host"), str(stored.get("port"))) == (
            role, db.database, db.host, str(db.port))

    async def _admin(self) -> psycopg.AsyncConnection:
        return await connect(self.admin_dsn, autocommit=True, application_name="stagesub-migrate-provider")

    async def _exists(self, conn: psycopg.AsyncConnection, name: str) -> tuple[bool, bool]:
        cur = await conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = %(n)s), "
            "EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %(n)s)", {"n": name})
        row = await cur.fetchone()
        assert row is not None
        return bool(row[0]), bool(row[1])

    async def create(self, tenant: str) -> DedicatedDatabase:
        name = self.name(tenant)
        conn = await self._admin()
        try:
            # Two attempts for one tenant (a retry racing a slow first try) take turns, so neither sees the
            # other's half-made role.
            await conn.execute("SELECT pg_advisory_lock(%s)", (_lock_key(name),))
            db = self._describe(conn, name)
            assert db.app_role is not None and db.app_secret_ref is not None
            has_db, _ = await self._exists(conn, name)
            passwords = {db.secret_ref: await self._ensure_role(conn, db, name, db.secret_ref, tenant),
                         db.app_secret_ref: await self._ensure_role(conn, db, db.app_role, db.app_secret_ref,
                                                                    tenant)}
            owner, app, ident = sql.Identifier(name), sql.Identifier(db.app_role), sql.Identifier(name)
            await self._own_role(conn, owner, tenant)
            if not has_db:
                await run_ddl(conn, sql.SQL("CREATE DATABASE {} OWNER {}").format(ident, owner), tenant)
            else:
                await run_ddl(conn, sql.SQL("ALTER DATABASE {} OWNER TO {}").format(ident, owner), tenant)
            await run_ddl(conn, sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident), tenant)
            await run_ddl(conn, sql.SQL("GRANT CONNECT ON DATABASE {} TO {}, {}").format(ident, owner, app), tenant)
            await self._grant_app(name, owner, app, tenant)
            for ref, password in passwords.items():
                if password is not None:
                    role = name if ref == db.secret_ref else db.app_role
                    self.secrets.put(ref, self._dsn_for(db, role, password))
            return db
        finally:
            await conn.close()

    async def _ensure_role(self, conn: psycopg.AsyncConnection, db: DedicatedDatabase, role_name: str, ref: str,
                           tenant: str) -> str | None:
        """Create the role, or bring an existing one back to our options; a new password (returned) when
        the role is new or its stored DSN is missing or stale, None when the stored one still holds."""
        cur = await conn.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", (role_name,))
        role = sql.Identifier(role_name)
        if await cur.fetchone() is None:
            password = token_urlsafe(24)
            await run_ddl(conn, sql.SQL("CREATE ROLE {} WITH {} PASSWORD {}").format(
                role, _ROLE_OPTIONS, sql.Literal(scram_verifier(password))), tenant)
            return password
        await run_ddl(conn, sql.SQL("ALTER ROLE {} WITH {}").format(role, _ROLE_OPTIONS), tenant)
        if self._secret_matches(db, role_name, ref):
            return None
        # A crash between CREATE ROLE and storing the DSN lost the only copy of the password.
        password = token_urlsafe(24)
        await run_ddl(conn, sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
            role, sql.Literal(scram_verifier(password))), tenant)
        return password

    async def _grant_app(self, name: str, owner: sql.Identifier, app: sql.Identifier, tenant: str) -> None:
        conn = await connect(with_database(self.admin_dsn, name), autocommit=True,
                             application_name="stagesub-migrate-provider")
        try:
            await grant_app(conn, name, app, tenant)
        finally:
            await conn.close()

    async def _own_role(self, conn: psycopg.AsyncConnection, role: sql.Identifier, tenant: str) -> None:
        """A non-superuser admin (managed services) must be a member of a role to create a database it owns
        and to drop it later; PG16 no longer gives a CREATEROLE user that membership implicitly."""
        cur = await conn.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user")
        row = await cur.fetchone()
        if row is not None and not row[0]:
            await run_ddl(conn, sql.SQL("GRANT {} TO CURRENT_USER").format(role), tenant)

    async def find(self, tenant: str) -> DedicatedDatabase | None:
        name = self.name(tenant)
        conn = await self._admin()
        try:
            has_db, _ = await self._exists(conn, name)
            return self._describe(conn, name) if has_db else None
        finally:
            await conn.close()

    async def delete(self, provider_id: str) -> bool:
        self._check_provider_id(provider_id)
        conn = await self._admin()
        try:
            has_db, has_role = await self._exists(conn, provider_id)
            app = app_role_name(provider_id)
            _, has_app = await self._exists(conn, app)
            refs = (self.secret_ref(provider_id), self.secret_ref(app))
            had_secret = any(self.secrets.exists(ref) for ref in refs)
            ident = sql.Identifier(provider_id)
            if has_db:
                await conn.execute(
                    "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_catalog.pg_backend_pid()", (provider_id,))
                force = sql.SQL(" WITH (FORCE)") if conn.info.server_version >= 130000 else sql.SQL("")
                await run_ddl(conn, sql.SQL("DROP DATABASE IF EXISTS {}{}").format(ident, force), None)
            # Their rights lived in the dropped database (default privileges included), so nothing holds
            # them back; the app role first, as it was made second.
            if has_app:
                await run_ddl(conn, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(app)), None)
            if has_role:
                await run_ddl(conn, sql.SQL("DROP ROLE IF EXISTS {}").format(ident), None)
            for ref in refs:
                self.secrets.delete(ref)
            return has_db or has_role or has_app or had_secret
        finally:
            await conn.close()

    def _check_provider_id(self, provider_id: str) -> None:
        # A typo or a tampered payload must never drop `postgres` or another application's database.
        pattern = re.escape(self.prefix) + r"(?:[a-z0-9_]*_)?[0-9a-f]{8}"
        if not re.fullmatch(pattern, provider_id) or len(provider_id) > MAX_NAME_BYTES:
            raise ConfigError(f"expected a provider id made by this provider ({self.prefix}<slug>_<8 hex>), "
                              f"found {provider_id!r}")

    def dsn(self, db: DedicatedDatabase) -> str:
        return self.secrets.get(db.secret_ref)

    def app_dsn(self, db: DedicatedDatabase) -> str:
        return self.secrets.get(db.app_secret_ref or db.secret_ref)


async def grant_app(conn: psycopg.AsyncConnection, owner_name: str, app: sql.Identifier, tenant: str) -> None:
    """On a connection inside the tenant's database (default privileges are per database): the app role may
    use the schemas and the rows of every table and sequence the owner creates later (the schema is deployed
    after this), or created already (a database made before the app role existed). Nobody else may create
    objects in public (PUBLIC's CREATE on it, Postgres < 15)."""
    owner = sql.Identifier(owner_name)
    await run_ddl(conn, sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"), tenant)
    await run_ddl(conn, sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(app), tenant)
    for kind, rights in (("SCHEMAS", sql.SQL("USAGE")), ("TABLES", _APP_TABLE_RIGHTS),
                         ("SEQUENCES", _APP_SEQUENCE_RIGHTS)):
        await run_ddl(conn, sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT {} ON {} TO {}").format(
            owner, rights, sql.SQL(kind), app), tenant)
    cur = await conn.execute(
        "SELECT nspname FROM pg_catalog.pg_namespace WHERE nspowner = %s::regrole OR nspname = 'public'",
        (owner_name,))
    for (schema,) in await cur.fetchall():
        s = sql.Identifier(schema)
        await run_ddl(conn, sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, app), tenant)
        await run_ddl(conn, sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(
            _APP_TABLE_RIGHTS, s, app), tenant)
        await run_ddl(conn, sql.SQL("GRANT {} ON ALL SEQUENCES IN SCHEMA {} TO {}").format(
            _APP_SEQUENCE_RIGHTS, s, app), tenant)


async def run_ddl(conn: psycopg.AsyncConnection, statement: sql.SQL | sql.Composed, tenant: str | None) -> None:
    try:
        await conn.execute(statement)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"provider statement failed: {mask_dsn(str(exc)).strip()}",
                                  tenant=tenant) from exc
    except psycopg.errors.InsufficientPrivilege as exc:
        raise ConfigError(f"expected the admin role to create roles and databases, found: {str(exc).strip()}",
                          tenant=tenant) from exc
    except psycopg.Error as exc:
        raise ProviderError(f"provider statement failed: {str(exc).strip()}", tenant=tenant) from exc
