"""Discovery and plan on a schema that is not StageSub's: roles, tenant columns by foreign key, paths, order."""

from __future__ import annotations

import pytest

from tenantmove import db
from tenantmove.catalog import read_catalog
from tenantmove.errors import ConfigError, PlanError
from tenantmove.plan import PlanRules, Role, build_plan, plan_schema
from tenantmove.selection import SelectionBuilder

from . import docs_schema


@pytest.fixture(scope="module")
def docs_dsn(pg_shared):
    from .conftest import create_database

    dsn = create_database(pg_shared, "docs")
    docs_schema.create(dsn)
    return dsn


@pytest.fixture
async def plan(docs_dsn):
    async with db.connection(docs_dsn) as conn:
        return await plan_schema(conn, "public", docs_schema.RULES)


async def test_catalog_reads_composite_self_and_unique_keys(docs_dsn):
    async with db.connection(docs_dsn) as conn:
        catalog = await read_catalog(conn)
    team = catalog.table("team")
    assert team.primary_key == ("org_id", "team_no")
    document = catalog.table("document")
    composite = next(fk for fk in document.foreign_keys if fk.ref_table == "team")
    assert composite.columns == ("team_org", "team_no") and composite.ref_columns == ("org_id", "team_no")
    assert composite.not_null and not composite.unique
    one_to_one = next(fk for fk in document.foreign_keys if fk.ref_table == "document_data")
    assert one_to_one.unique and not one_to_one.not_null
    assert any(fk.ref_table == "folder" for fk in catalog.table("folder").foreign_keys)
    assert [(col, seq.split(".")[-1]) for col, seq in document.sequences] == [("id", "document_id_seq")]
    assert catalog.table("link").unique_keys == (("slug",),)


async def test_roles_follow_the_rules(plan):
    roles = {name: tp.role for name, tp in plan.tables.items()}
    assert roles["organisation"] is Role.TENANT
    for name in docs_schema.OWNED:
        assert roles[name] is Role.OWNED, name
    assert roles["app_user"] is Role.KEPT  # KEEP_TABLES
    assert roles["session"] is Role.KEPT  # reaches the tenant only through app_user
    assert roles["country"] is Role.REFERENCED
    assert roles["currency"] is Role.GLOBAL
    assert roles["changelog"] is Role.UNRELATED
    assert "parent side" in plan.tables["document_data"].reason
    assert "parent side" in plan.tables["org_settings"].reason


async def test_tenant_columns_found_by_foreign_key_whatever_their_name(plan):
    assert plan.tables["team"].tenant_columns == ["org_id"]
    assert plan.tables["dataroom"].tenant_columns == ["organizationId"]
    assert plan.tables["link"].tenant_columns == ["team_id"]
    assert plan.tables["audit"].tenant_columns == ["tenantId"]  # TENANT_COLUMN, no foreign key
    assert plan.tables["document"].tenant_columns == []  # its composite key to team is a path, not a column


async def test_paths_cover_every_polymorphic_parent(plan):
    paths = plan.tables["view"].paths
    for parent in ("agreement", "dataroom", "document", "organisation"):
        assert any(parent in p for p in paths), (parent, paths)
    assert any("self-reference" in p for p in plan.tables["comment"].paths)


async def test_load_order_puts_parents_first_and_delete_order_reverses_it(plan):
    position = {name: i for i, name in enumerate(plan.load_order)}
    for name in plan.load_order:
        for fk in plan.catalog.table(name).foreign_keys:
            if fk.ref_table in position and fk.ref_table != name and fk not in plan.cycle_links:
                assert position[fk.ref_table] < position[name], fk.describe()
    # the team <-> document cycle is broken at the nullable link, named in the plan
    assert [fk.describe() for fk in plan.cycle_links] == ["team(lead_doc) -> document(id)"]
    assert any("cycle" in w for w in plan.warnings)
    assert "changelog" not in position
    deleted = plan.delete_order
    assert set(deleted) == set(docs_schema.DELETED)
    assert plan.tables["org_settings"].stays_shared
    assert deleted.index("view") < deleted.index("link") < deleted.index("document") < deleted.index("team")


async def test_selection_sql_is_one_query_per_table_and_linear(plan):
    builder = SelectionBuilder(plan)
    for name in plan.load_order:
        text = builder.rows(name).query.as_string(None)
        assert text.count("SELECT") < 40, name


async def test_bad_settings_are_clear_errors(docs_dsn):
    async with db.connection(docs_dsn) as conn:
        catalog = await read_catalog(conn)
    with pytest.raises(ConfigError, match="KEEP_TABLES names tables not in schema"):
        build_plan(catalog, PlanRules(tenant_table="organisation", keep_tables=("nope",)))
    with pytest.raises(ConfigError, match="table 'Tenant' not found"):
        build_plan(catalog, PlanRules(tenant_table="Tenant"))
    with pytest.raises(PlanError, match="one-column primary key"):
        build_plan(catalog, PlanRules(tenant_table="team", keep_tables=()))
    with pytest.raises(ConfigError, match="both in KEEP_TABLES and GLOBAL_TABLES"):
        build_plan(catalog, PlanRules(tenant_table="organisation", keep_tables=("currency",),
                                      global_tables=("currency",)))
