"""The docs test schema (not StageSub): loaders and hand-written expectations of organisation 1's rows."""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql

from tenantmove.plan import PlanRules
from tenantmove.rows import RowSelection

HERE = Path(__file__).parent / "schemas"
RULES = PlanRules(tenant_table="organisation", tenant_column="tenantId", keep_tables=("app_user",),
                  global_tables=("currency",))

# Written by hand from the schema, independently of the selection generator: the rows of organisation 1
# that a move must copy. A table missing here must copy nothing.
_DOCS1 = "SELECT id FROM document WHERE team_org = 1"
_LINKS1 = (f"SELECT id FROM link WHERE team_id = 1 OR document_id IN ({_DOCS1}) "
           "OR dataroom_id IN (SELECT id FROM dataroom WHERE \"organizationId\" = 1) "
           "OR agreement_id IN (SELECT id FROM agreement WHERE org_id = 1)")
_USERS1 = (f"WITH RECURSIVE u AS (SELECT owner_id AS id FROM document WHERE team_org = 1 AND owner_id IS NOT NULL "
           f"UNION SELECT viewer_id FROM view WHERE link_id IN ({_LINKS1}) AND viewer_id IS NOT NULL "
           "UNION SELECT a.invited_by FROM app_user a JOIN u ON a.id = u.id WHERE a.invited_by IS NOT NULL) "
           "SELECT id FROM u")
EXPECTED_ONE: dict[str, str] = {
    "organisation": "id = 1",
    "org_settings": "id = (SELECT settings_id FROM organisation WHERE id = 1)",
    "team": "org_id = 1",
    "document": "team_org = 1",
    "document_data": "id IN (SELECT document_data_id FROM document WHERE team_org = 1)",
    "dataroom": "\"organizationId\" = 1",
    "agreement": "org_id = 1",
    "link": f"id IN ({_LINKS1})",
    "view": f"link_id IN ({_LINKS1})",
    "folder": "org_id = 1",
    "comment": (f"id IN (WITH RECURSIVE c AS (SELECT id FROM comment WHERE document_id IN ({_DOCS1}) "
                "UNION SELECT x.id FROM comment x JOIN c ON x.reply_to = c.id) SELECT id FROM c)"),
    "audit": "\"tenantId\" = 1",
    "invoice": "org_id = 1",
    "currency": "TRUE",
    "app_user": f"id IN ({_USERS1})",
    "country": (f"code IN (SELECT country_code FROM app_user WHERE id IN ({_USERS1}) "
                f"UNION SELECT country_code FROM view WHERE link_id IN ({_LINKS1}))"),
}
OWNED = ["org_settings", "team", "document", "document_data", "dataroom", "agreement", "link", "view", "folder",
         "comment", "audit", "invoice"]
DELETED = [t for t in OWNED if t != "org_settings"]  # the tenant row stays, and so does its one-to-one row
TABLES = sorted(set(EXPECTED_ONE) | {"session", "changelog"})


def create(dsn: str, *, data: bool = True) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute((HERE / "docs.sql").read_text())
        if data:
            conn.execute((HERE / "docs_data.sql").read_text())


def expected(table: str, *, negate: bool = False) -> RowSelection:
    """Organisation 1's rows of `table` (or, negated, every other row) as a selection for checksums."""
    where = EXPECTED_ONE.get(table, "FALSE")
    if negate:
        where = f"NOT coalesce(({where}), false)"
    return _select(table, where)


def whole(table: str) -> RowSelection:
    return _select(table, "TRUE")


def _select(table: str, where: str) -> RowSelection:
    with_cols = sql.SQL("SELECT * FROM {} WHERE ").format(sql.Identifier("public", table)) + sql.SQL(where)
    return RowSelection("public", table, ("*",), with_cols)
