"""Hand-written predicates for one StageSub orchestra's rows, independent of the engine's selection SQL."""

from __future__ import annotations

from psycopg import sql

from tenantmove.rows import RowSelection

T = "%(tenant)s"
_PROJECT = f'SELECT id FROM "Project" WHERE "tenantId" = {T}'
_NEED = f'SELECT id FROM "ProjectNeed" WHERE "projectId" IN ({_PROJECT})'
_MUSICIAN = f'SELECT id FROM "Musician" WHERE "tenantId" = {T}'
_REQUEST = f'SELECT id FROM "Request" WHERE "projectNeedId" IN ({_NEED})'
OWNED: dict[str, str] = {
    "Musician": f'"tenantId" = {T}',
    "Instrument": f'"tenantId" = {T}',
    "Position": f'"tenantId" = {T}',
    "MusicianQualification": f'"musicianId" IN ({_MUSICIAN})',
    "RankingList": f'"tenantId" = {T}',
    "Ranking": f'"rankingListId" IN (SELECT id FROM "RankingList" WHERE "tenantId" = {T})',
    "Project": f'"tenantId" = {T}',
    "ProjectNeed": f'"projectId" IN ({_PROJECT})',
    "ProjectNeedFile": f'"projectNeedId" IN ({_NEED})',
    "ProjectFile": f'"projectId" IN ({_PROJECT})',
    "Request": f'"projectNeedId" IN ({_NEED})',
    "CommunicationLog": f'"tenantId" = {T}',
    "RequestToken": f'"requestId" IN ({_REQUEST})',
    "EmailTemplate": f'"tenantId" = {T}',
    "AuditLog": f'"tenantId" = {T}',
    "BackgroundJob": f'"tenantId" = {T}',
    "Backup": f'"tenantId" = {T}',
}
# Copied but never deleted: the tenant row, and the users the moved rows reference.
COPIED_ONLY: dict[str, str] = {
    "Tenant": f"id = {T}",
    "User": f'id IN (SELECT "userId" FROM "AuditLog" WHERE "tenantId" = {T})',
}
ALL_TABLES = sorted([*OWNED, *COPIED_ONLY, "Session", "_prisma_migrations"])


def rows_of(table: str, tenant: str, *, negate: bool = False) -> RowSelection:
    where = OWNED.get(table) or COPIED_ONLY.get(table) or "FALSE"
    if negate:
        where = f"NOT coalesce(({where}), false)"
    query = sql.SQL("SELECT * FROM {} WHERE ").format(sql.Identifier("public", table)) + sql.SQL(where)
    return RowSelection("public", table, ("*",), query, {"tenant": tenant})


def whole(table: str) -> RowSelection:
    return RowSelection.all_rows("public", table, ("*",)).__class__(
        "public", table, ("*",), sql.SQL("SELECT * FROM {}").format(sql.Identifier("public", table)))
