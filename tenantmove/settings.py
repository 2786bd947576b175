"""Typed settings read from the environment: the one place every knob of the tool is named."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tenantmove.plan import PlanRules


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
