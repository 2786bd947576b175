"""Activities on the dedicated database: create it through its provider, drop it, deploy the schema."""

from __future__ import annotations

from temporalio import activity

from activities.common import Deps, boundary, to_ref
from activities.models import (
    CreateDatabaseInput,
    CreateDatabaseResult,
    DeploySchemaInput,
    DeploySchemaResult,
    DropDatabaseInput,
    DropDatabaseResult,
)
from tenantmove import db
from tenantmove.errors import SchemaMismatch
from tenantmove.schema_sync import deploy_schema, diff_schemas


class DatabaseActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn
    @boundary
    async def create_database(self, input: CreateDatabaseInput) -> CreateDatabaseResult:
        """Idempotent: the provider finds what an earlier attempt created (names are derived from the
        tenant id) instead of creating a second database."""
        created = await self.deps.provider(input.target).create(input.tenant_id)
        return CreateDatabaseResult(database=to_ref(created))

    @activity.defn
    @boundary
    async def drop_database(self, input: DropDatabaseInput) -> DropDatabaseResult:
        provider = self.deps.provider(input.target)
        provider_id = input.provider_id
        if provider_id is None:
            found = await provider.find(input.tenant_id)
            provider_id = found.provider_id if found else None
        deleted = await provider.delete(provider_id) if provider_id else False
        return DropDatabaseResult(deleted=deleted)

    @activity.defn
    @boundary
    async def deploy_schema(self, input: DeploySchemaInput) -> DeploySchemaResult:
        target = self.deps.dedicated_dsn(input.database)
        applied = await deploy_schema(self.deps.shared_dsn, target, self.deps.migrations_dir,
                                      schema=self.deps.settings.db_schema)
        async with db.connection(self.deps.shared_dsn) as src, db.connection(target) as dst:
            plan = await self.deps.plan(src)
            differences = await diff_schemas(src, dst, plan.schema, plan.load_order)
        if differences:
            raise SchemaMismatch(f"the dedicated schema differs from shared in {len(differences)} place(s): "
                                 + "; ".join(differences[:10]), differences=differences,
                                 tenant=input.tenant_id)
        return DeploySchemaResult(applied=applied)
