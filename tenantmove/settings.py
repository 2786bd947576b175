"""Typed settings read from the environment: the one place every knob of the tool is named."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tenantmove.crypto import KeyRing
from tenantmove.plan import PlanRules
from tenantmove.precheck import PrecheckRules
from tenantmove.tenant_state import AuditSpec, TenantColumns

# The guide's figures for a migration request (and its automatic triggers), for StageSub's schema.
STAGESUB_STATS: dict[str, str] = {
    "musicians": 'SELECT count(*) FROM "Musician" WHERE "tenantId" = %(tenant)s',
    "active_projects": 'SELECT count(*) FROM "Project" WHERE "tenantId" = %(tenant)s AND status = \'active\'',
    "monthly_requests": 'SELECT count(*) FROM "Request" r JOIN "ProjectNeed" n ON n.id = r."projectNeedId" '
                        'JOIN "Project" p ON p.id = n."projectId" WHERE p."tenantId" = %(tenant)s '
                        "AND r.\"createdAt\" > now() - interval '30 days'",
}


_PRECHECK = PrecheckRules()
_COLUMNS = TenantColumns()


def _default_state_dir() -> Path:
    return Path(platformdirs.user_state_dir("stagesub-migrate"))


def _split_names(value: object) -> object:
    # A comma-separated list is what people type in a shell; a JSON list also works.
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("["):
            import json

            return json.loads(value)
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every setting, with its environment variable name (case-insensitive)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    shared_database_url: str | None = Field(
        default=None,
        description="DSN of the shared multi-tenant database; unset = embedded Postgres under STATE_DIR",
    )
    db_schema: str = Field(default="public", description="schema that holds the application's tables")
    tenant_table: str = Field(default="Tenant", description="table whose rows are the tenants")
    tenant_column: str = Field(
        default="tenantId",
        description="column name that holds a tenant id without a foreign key (audit logs)",
    )
    keep_tables: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["User"],
        description="tables that stay in the shared database; rows moved rows reference are copied",
    )
    global_tables: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="reference-data tables copied whole to the dedicated database, never deleted",
    )
    state_dir: Path = Field(default_factory=_default_state_dir, description="embedded Postgres, secrets")
    archive_dir: Path | None = Field(default=None, description="export archives; default STATE_DIR/archives")
    log_format: str = Field(default="auto", description="auto | console | json")
    temporal_address: str = Field(default="localhost:7233", description="Temporal frontend host:port")
    temporal_namespace: str = Field(default="default", description="Temporal namespace")
    task_queue: str = Field(default="stagesub-migrate", description="Temporal task queue of the worker")
    metrics_address: str = Field(
        default="", description="host:port where the worker serves Temporal SDK metrics for Prometheus; empty = off")
    recommend_thresholds: dict[str, int] = Field(
        default_factory=lambda: {"musicians": 300, "monthly_requests": 1000, "active_projects": 50},
        description="JSON object: STATS_QUERIES name -> the figure above which a dedicated database is advised")
    dedicated_name_prefix: str = Field(default="tenant_", description="prefix of dedicated database and role names")
    copy_max_rows_per_second: float = Field(
        default=0, ge=0, description="cap on rows/s per table copy, to spare a busy shared database; 0 = no cap")
    stats_queries: dict[str, str] = Field(
        default_factory=lambda: dict(STAGESUB_STATS),
        description="JSON object: name -> SQL returning one number for %(tenant)s; shown with each request",
    )
    postgres_admin_url: str | None = Field(
        default=None,
        description="admin DSN (CREATEROLE, CREATEDB) of the Postgres server that hosts dedicated databases for "
                    "the postgres provider; unset = the embedded 'dedicated' server",
    )
    notify_webhook_url: str | None = Field(
        default=None, description="URL that receives every notification as a JSON POST; unset = log only")
    prisma_migrations_dir: Path | None = Field(
        default=None, description="Prisma migrations folder checked against the shared _prisma_migrations; "
                                  "unset = StageSub's prisma/migrations")
    advance_notice_days: float = Field(default=7, description="days between announcing a migration and its start")
    approval_timeout_hours: float = Field(default=72, description="hours to wait for approval before giving up")
    cleanup_grace_hours: float = Field(
        default=0, description="hours between the switch and deleting the tenant's rows from the shared database")
    migration_mode: Literal["online", "offline"] = Field(
        default="online", description="online: copy while the tenant writes, freeze only for the cutover; "
                                      "offline: maintenance mode for the whole copy")
    parallel_tables: int = Field(default=4, ge=1, le=32,
                                 description="connections per server for import and verify (tables in parallel)")
    worker_max_activities: int | None = Field(
        default=None, ge=1, description="activities one worker runs at once; unset = the SDK's default (100)")
    defer_target_constraints: bool = Field(
        default=True, description="drop the dedicated database's plain secondary indexes and foreign keys for "
                                  "the import and put them back once its rows are in (as pg_restore does)")
    import_fanout: bool = Field(default=False, description="import as one activity per table, so that every "
                                                           "worker on the task queue shares the copy")
    freeze_backlog: int = Field(default=2000, ge=0,
                                description="online: captured changes left to replay when the write freeze starts")
    precheck_active_minutes: int = Field(
        default=_PRECHECK.active_minutes, description="a user seen within this many minutes counts as active")
    precheck_max_active_users: int | None = Field(
        default=_PRECHECK.max_active_users, description="most active users a migration may start with; empty = no limit")
    precheck_max_running_jobs: int | None = Field(
        default=_PRECHECK.max_running_jobs, description="most running background jobs; empty = no limit")
    precheck_max_pending_requests: int | None = Field(
        default=_PRECHECK.max_pending_requests, description="most pending requests; empty = no limit")
    precheck_max_tenant_bytes: int | None = Field(
        default=_PRECHECK.max_tenant_bytes, description="largest tenant (bytes of its rows); empty = no limit")
    precheck_max_backup_age_hours: float | None = Field(
        default=_PRECHECK.max_backup_age_hours, description="oldest acceptable last backup; empty = no limit")
    tenant_type_column: str = Field(default=_COLUMNS.database_type,
                                    description="tenant table column: 'shared' or 'dedicated'")
    tenant_url_column: str = Field(default=_COLUMNS.database_url,
                                   description="tenant table column: the dedicated database's URL")
    tenant_migrated_column: str = Field(default=_COLUMNS.migrated_at,
                                        description="tenant table column: when the tenant moved")
    tenant_maintenance_column: str = Field(default=_COLUMNS.maintenance,
                                           description="tenant table column: maintenance mode on/off")
    audit_table: str = Field(default=AuditSpec.table,
                             description="table that receives an audit row per switch; empty = no audit rows")

    @field_validator("precheck_max_active_users", "precheck_max_running_jobs", "precheck_max_pending_requests",
                     "precheck_max_tenant_bytes", "precheck_max_backup_age_hours", mode="before")
    @classmethod
    def _no_limit(cls, value: object) -> object:
        # An empty variable (or none/off) is how a shell says "no limit".
        if isinstance(value, str) and value.strip().lower() in ("", "none", "off"):
            return None
        return value

    def precheck_rules(self) -> PrecheckRules:
        return PrecheckRules(
            active_minutes=self.precheck_active_minutes, max_active_users=self.precheck_max_active_users,
            max_running_jobs=self.precheck_max_running_jobs,
            max_pending_requests=self.precheck_max_pending_requests,
            max_tenant_bytes=self.precheck_max_tenant_bytes,
            max_backup_age_hours=self.precheck_max_backup_age_hours)

    def tenant_columns(self) -> TenantColumns:
        return TenantColumns(database_type=self.tenant_type_column, database_url=self.tenant_url_column,
                             migrated_at=self.tenant_migrated_column, maintenance=self.tenant_maintenance_column)

    def audit_spec(self) -> AuditSpec | None:
        return AuditSpec(table=self.audit_table) if self.audit_table else None

    @field_validator("keep_tables", "global_tables", mode="before")
    @classmethod
    def _names(cls, value: object) -> object:
        return _split_names(value)

    @property
    def archive_root(self) -> Path:
        return self.archive_dir or self.state_dir / "archives"

    def plan_rules(self) -> PlanRules:
        return PlanRules(tenant_table=self.tenant_table, tenant_column=self.tenant_column,
                         keep_tables=tuple(self.keep_tables), global_tables=tuple(self.global_tables))

    @property
    def embedded_data_dir(self) -> Path:
        return self.state_dir / "pg-shared"

    # ---- Neon target (issue 5); appended here, read by worker.py when NEON_API_KEY is set --------------
    neon_api_key: SecretStr | None = Field(
        default=None, description="Neon API key (bearer); unset = no neon target. Never shown in repr or logs")
    neon_api_url: str = Field(default="https://console.neon.tech/api/v2", description="Neon API v2 base URL")
    neon_region: str = Field(default="aws-eu-north-1", description="region_id of new Neon projects")
    neon_pg_version: int = Field(default=15, ge=14, le=18, description="Postgres major version of new Neon projects")
    neon_min_cu: float = Field(default=0.5, ge=0.25, description="autoscaling minimum compute units")
    neon_max_cu: float = Field(default=2, ge=0.25, description="autoscaling maximum compute units")
    neon_project_prefix: str = Field(default="stagesub-", description="Neon project name = prefix + tenant slug")

    # ---- TLS (issue 8) -----------------------------------------------------------------------------------
    database_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = Field(
        default=None, description="libpq sslmode added to every DSN the tool uses (shared, admin, dedicated) "
                                  "that names none; a DSN's own sslmode is kept. Unset = libpq's default")

    @field_validator("database_sslmode", mode="before")
    @classmethod
    def _no_sslmode(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    # ---- HTTP API (issue 10); read by api/ and `starter.py serve` ----------------------------------------
    api_tokens: SecretStr = Field(
        default=SecretStr("{}"),
        description='JSON object: bearer token -> "superadmin", "approval_service", "orchestra_admin:TENANT", '
                    'or {"role": ..., "tenant": ..., "name": ...}. A secret: never shown in repr or logs')
    api_address: str = Field(default="127.0.0.1:8000", description="host:port where `starter.py serve` listens")

    # ---- encryption and retention (issue 8, security); appended so merges stay easy -------------------
    payload_encryption_key: SecretStr | None = Field(
        default=None, description="base64 of 32 random bytes: Temporal payloads are AES-GCM encrypted; several "
                                  "comma-separated during a rotation (the first encrypts, any decrypts); unset = off")
    archive_encryption_key: SecretStr | None = Field(
        default=None, description="base64 of 32 random bytes: archive files are AES-GCM encrypted at rest; several "
                                  "comma-separated during a rotation (the first encrypts, any decrypts); unset = off")
    archive_retention_days: float = Field(
        default=30, gt=0, description="archives older than this, of migrations that completed, are removed daily")
    codec_server_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:8233", "http://127.0.0.1:8233"],
        description="browser origins (the Temporal UI) allowed to call the codec server")
    codec_server_token: SecretStr | None = Field(
        default=None, description="when set, the codec server requires 'Authorization: Bearer <token>'")

    @field_validator("codec_server_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        return _split_names(value)

    def payload_keys(self) -> KeyRing | None:
        key = self.payload_encryption_key
        return KeyRing.parse(key.get_secret_value(), "PAYLOAD_ENCRYPTION_KEY") if key is not None else None

    def archive_keys(self) -> KeyRing | None:
        key = self.archive_encryption_key
        return KeyRing.parse(key.get_secret_value(), "ARCHIVE_ENCRYPTION_KEY") if key is not None else None
