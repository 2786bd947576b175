"""Dedicated databases as Neon projects, one per tenant, found again by a name derived from the tenant id."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import replace
from secrets import token_urlsafe
from urllib.parse import quote, urlsplit, urlunsplit

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tenantmove.db import connect, with_sslmode
from tenantmove.errors import ConfigError, NeonDuplicateProjects, NeonUnavailable
from tenantmove.logs import get_logger
from tenantmove.neon.client import NeonClient
from tenantmove.neon.models import (
    CreatedProject,
    DefaultEndpointSettings,
    ProjectBranchCreate,
    ProjectCreate,
    ProjectCreateRequest,
)
from tenantmove.providers.base import DatabaseProvider, DedicatedDatabase
from tenantmove.providers.postgres import grant_app, run_ddl, scram_verifier
from tenantmove.secrets import SecretStore

_PROJECT_ID = re.compile(r"^[a-z0-9-]{1,60}$")  # the spec's pattern for project_id
_POST_ATTEMPTS = 3


def project_name(tenant: str, prefix: str = "stagesub-") -> str:
    """prefix + the tenant's slug; a tenant id that is not already its own slug ("O'Brien") gets 8 hex of
    sha256 appended, so two ids that slug alike never share a project (find-by-name would mix them up)."""
    plain = unicodedata.normalize("NFKD", tenant).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:200].rstrip("-")
    if slug and slug == tenant:
        return f"{prefix}{slug}"
    digest = hashlib.sha256(tenant.encode("utf-8")).hexdigest()[:8]
    return f"{prefix}{slug}-{digest}" if slug else f"{prefix}{digest}"


class NeonProvider(DatabaseProvider):
    """Each tenant gets a Neon project named prefix + slug, holding `database` owned by `role`. The provider
    id is the project id; the DSN (with its password) lives in the secret store under dsn/neon/<id>."""

    kind = "neon"

    def __init__(self, client: NeonClient, secrets: SecretStore, *, region: str = "aws-eu-north-1",
                 pg_version: int = 15, min_cu: float = 0.5, max_cu: float = 2, name_prefix: str = "stagesub-",
                 database: str = "stagesub", role: str = "stagesub_owner", operation_timeout: float = 300,
                 sslmode: str | None = "require") -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,40}", name_prefix):
            raise ConfigError(f"expected a neon project prefix of lower-case letters, digits and -, found "
                              f"{name_prefix!r}")
        self.client = client
        self.secrets = secrets
        self.region = region
        self.pg_version = pg_version
        self.min_cu = min_cu
        self.max_cu = max_cu
        self.prefix = name_prefix
        self.database = database
        self.role = role
        self.operation_timeout = operation_timeout
        # Neon accepts TLS connections only; its URIs say sslmode=require, and one that says nothing gets it.
        self.sslmode = sslmode
        self.log = get_logger(component="neon-provider")

    def name(self, tenant: str) -> str:
        return project_name(tenant, self.prefix)

    @staticmethod
    def secret_ref(project_id: str) -> str:
        return f"dsn/neon/{project_id}"

    @staticmethod
    def app_secret_ref(project_id: str) -> str:
        return f"dsn/neon-app/{project_id}"

    @staticmethod
    def app_role_name(project_id: str) -> str:
        return f"app_{project_id.replace('-', '_')}"[:63]

    def create_request(self, tenant: str) -> ProjectCreateRequest:
        return ProjectCreateRequest(project=ProjectCreate(
            name=self.name(tenant), region_id=self.region, pg_version=self.pg_version, provisioner="k8s-neonvm",
            default_endpoint_settings=DefaultEndpointSettings(autoscaling_limit_min_cu=self.min_cu,
                                                              autoscaling_limit_max_cu=self.max_cu),
            branch=ProjectBranchCreate(database_name=self.database, role_name=self.role)))

    def _describe(self, project_id: str, dsn: str) -> DedicatedDatabase:
        info = conninfo_to_dict(dsn)
        return DedicatedDatabase(kind=self.kind, provider_id=project_id, database=str(info.get("dbname")),
                                 role=str(info.get("user")), host=str(info.get("host")),
                                 port=int(info.get("port") or 5432), secret_ref=self.secret_ref(project_id))

    async def _find_id(self, tenant: str) -> str | None:
        name = self.name(tenant)
        found = await self.client.find_projects(name)
        if len(found) > 1:
            ids = sorted(p.id for p in found)
            raise NeonDuplicateProjects(f"expected at most one neon project named {name!r}, found {len(ids)}: "
                                        + ", ".join(ids), project_ids=ids, tenant=tenant)
        return found[0].id if found else None

    async def create(self, tenant: str) -> DedicatedDatabase:
        for _ in range(_POST_ATTEMPTS):
            project_id = await self._find_id(tenant)
            if project_id is not None:
                self.log.info("neon project found, reused", tenant=tenant, project_id=project_id)
                return await self._adopt(project_id)
            try:
                created = await self.client.create_project(self.create_request(tenant))
            except NeonUnavailable as exc:
                # The POST may have created the project with its reply lost: look for it before a new POST.
                self.log.warning("neon create reply lost, looking the project up", tenant=tenant, error=str(exc))
                continue
            self.log.info("neon project created", tenant=tenant, project_id=created.project.id)
            return await self._finish(created)
        raise NeonUnavailable(f"expected neon to create project {self.name(tenant)!r}, found neither it nor a "
                              f"reply after {_POST_ATTEMPTS} attempts", tenant=tenant)

    async def _finish(self, created: CreatedProject) -> DedicatedDatabase:
        project_id = created.project.id
        # The password is stored first: a crash while waiting leaves a project whose secret a retry reuses.
        uri = next((c.connection_uri for c in created.connection_uris
                    if c.connection_parameters.role == self.role
                    and c.connection_parameters.database == self.database), None)
        if uri is None:
            uri = await self._uri(project_id)
        uri = with_sslmode(uri, self.sslmode)
        self.secrets.put(self.secret_ref(project_id), uri)
        await self.client.wait_operations(project_id, self.operation_timeout)
        return await self._with_app_role(self._describe(project_id, uri), uri)

    async def _adopt(self, project_id: str) -> DedicatedDatabase:
        """A project an earlier attempt created: wait for it, and get its credentials again when that attempt
        crashed before storing them."""
        await self.client.wait_operations(project_id, self.operation_timeout)
        ref = self.secret_ref(project_id)
        if self.secrets.exists(ref):
            uri = self.secrets.get(ref)
        else:
            uri = with_sslmode(await self._uri(project_id), self.sslmode)
            self.secrets.put(ref, uri)
        return await self._with_app_role(self._describe(project_id, uri), uri)

    async def _with_app_role(self, db: DedicatedDatabase, owner_uri: str) -> DedicatedDatabase:
        """Neon's own roles are members of neon_superuser; the application gets a role made over SQL with
        row rights only (grant_app), in a database closed to PUBLIC. Idempotent: an existing role keeps its
        password while the stored DSN holds, and gets a new one when it was lost."""
        app, ref = self.app_role_name(db.provider_id), self.app_secret_ref(db.provider_id)
        conn = await connect(owner_uri, autocommit=True, application_name="stagesub-migrate-provider")
        try:
            cur = await conn.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", (app,))
            exists = await cur.fetchone() is not None
            if not exists or not self.secrets.exists(ref):
                password = token_urlsafe(24)
                # A role made by a non-superuser is created without privileges; an existing one only gets a
                # new password (changing SUPERUSER-class attributes, even to their value, needs a superuser).
                options = sql.SQL("PASSWORD {}" if exists else "LOGIN NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD {}")
                await run_ddl(conn, sql.SQL("{} ROLE {} WITH {}").format(
                    sql.SQL("ALTER" if exists else "CREATE"), sql.Identifier(app),
                    options.format(sql.Literal(scram_verifier(password)))), db.provider_id)
                parts = urlsplit(owner_uri)
                host = parts.netloc.rsplit("@", 1)[-1]
                self.secrets.put(ref, urlunsplit(parts._replace(netloc=f"{app}:{quote(password, safe='')}@{host}")))
            database = sql.Identifier(db.database)
            await run_ddl(conn, sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database), db.provider_id)
            await run_ddl(conn, sql.SQL("GRANT CONNECT ON DATABASE {} TO {}, {}").format(
                database, sql.Identifier(db.role), sql.Identifier(app)), db.provider_id)
            await grant_app(conn, db.role, sql.Identifier(app), db.provider_id)
        finally:
            await conn.close()
        return replace(db, app_role=app, app_secret_ref=ref)

    def app_dsn(self, db: DedicatedDatabase) -> str:
        return self.secrets.get(db.app_secret_ref) if db.app_secret_ref else self.dsn(db)

    async def _uri(self, project_id: str) -> str:
        uri = await self.client.connection_uri(project_id, self.database, self.role)
        if conninfo_to_dict(uri).get("password"):
            return uri
        # No password in the URI: reveal the stored one, or reset it when the project stores none (412).
        branch = await self.client.default_branch_id(project_id)
        try:
            password = await self.client.reveal_password(project_id, branch, self.role)
        except Exception as exc:  # noqa: BLE001 - 412 "storing passwords is disabled" and kin
            self.log.info("neon password not revealed, resetting it", project_id=project_id,
                          error=type(exc).__name__)
            password = await self.client.reset_password(project_id, branch, self.role, self.operation_timeout)
        parts = urlsplit(uri)
        host = parts.netloc.rsplit("@", 1)[-1]
        user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0] if "@" in parts.netloc else quote(self.role)
        return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))

    async def find(self, tenant: str) -> DedicatedDatabase | None:
        project_id = await self._find_id(tenant)
        if project_id is None:
            return None
        ref = self.secret_ref(project_id)
        uri = self.secrets.get(ref) if self.secrets.exists(ref) else await self.client.connection_uri(
            project_id, self.database, self.role)
        found = self._describe(project_id, uri)
        app_ref = self.app_secret_ref(project_id)
        if self.secrets.exists(app_ref):  # made by create(); find makes nothing
            found = replace(found, app_role=self.app_role_name(project_id), app_secret_ref=app_ref)
        return found

    async def delete(self, provider_id: str) -> bool:
        if not _PROJECT_ID.fullmatch(provider_id):
            raise ConfigError(f"expected a neon project id ([a-z0-9-]{{1,60}}), found {provider_id!r}")
        ref = self.secret_ref(provider_id)
        had_secret = self.secrets.exists(ref)
        project = await self.client.get_project(provider_id)
        deleted = False
        if project is not None:
            # A typo or a tampered payload must never delete another application's project.
            if not project.name.startswith(self.prefix):
                raise ConfigError(f"expected neon project {provider_id} to be named {self.prefix}..., found "
                                  f"{project.name!r}; not deleting it")
            deleted = await self.client.delete_project(provider_id)
            self.log.info("neon project deleted", project_id=provider_id, deleted=deleted)
        self.secrets.delete(ref)
        self.secrets.delete(self.app_secret_ref(provider_id))
        return deleted or had_secret

    def dsn(self, db: DedicatedDatabase) -> str:
        return self.secrets.get(db.secret_ref)
