"""The target's plain indexes wait for its rows: dropped and recorded, then built back exactly as they were;
unique indexes and the primary key stay throughout; a retry at any point ends with the same indexes."""

from __future__ import annotations

import psycopg
import pytest

from stagesub.schema import deploy_reference_schema
from tenantmove import db
from tenantmove.deferred_indexes import SCHEMA, build_deferred_indexes, defer_indexes
from tenantmove.errors import EngineError

from .conftest import create_database

INDEXES = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname"


def _indexes(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute(INDEXES).fetchall())


def _schema_exists(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (SCHEMA,)).fetchone() is not None


def _tables(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]


@pytest.fixture
def target(pg_target) -> str:
    dsn = create_database(pg_target, "deferred")
    deploy_reference_schema(dsn)
    return dsn


async def test_plain_indexes_wait_and_come_back_exactly(target):
    before = _indexes(target)
    async with db.connection(target) as conn:
        waiting = await defer_indexes(conn, "public", _tables(target))
    during = _indexes(target)
    assert waiting and set(waiting) == set(before) - set(during)
    # what stays: every primary key and unique index; what waits: only plain ones
    assert all(" UNIQUE " in before[name] or name.endswith("_pkey") for name in during)
    assert all(" UNIQUE " not in before[name] for name in waiting)
    assert "AuditLog_tenantId_createdAt_idx" in waiting and "AuditLog_pkey" in during
    built = await build_deferred_indexes(target, connections=3)
    assert sorted(built) == sorted(waiting)
    assert _indexes(target) == before
    assert not _schema_exists(target)


async def test_a_retry_after_any_step_ends_with_the_same_indexes(target):
    before = _indexes(target)
    async with db.connection(target) as conn:
        waiting = await defer_indexes(conn, "public", _tables(target))
        # a second defer (the activity retried) drops nothing more and forgets nothing
        assert await defer_indexes(conn, "public", _tables(target)) == sorted(waiting)
        # a build interrupted after one index: that one exists, the record still lists it
        with psycopg.connect(target) as raw:
            definition = raw.execute(f'SELECT definition FROM {SCHEMA}.indexes ORDER BY index_name LIMIT 1'
                                     ).fetchone()[0]
            raw.execute(definition)
            raw.commit()
    built = await build_deferred_indexes(target, connections=2)
    assert len(built) == len(waiting) - 1
    assert _indexes(target) == before
    assert await build_deferred_indexes(target, connections=2) == []  # nothing left, nothing recorded


async def test_a_target_without_plain_indexes_keeps_no_record(pg_target):
    dsn = create_database(pg_target, "deferred")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, code text UNIQUE, note text)")
    async with db.connection(dsn) as conn:
        assert await defer_indexes(conn, "public", ["t"]) == []
    assert not _schema_exists(dsn)
    assert await build_deferred_indexes(dsn, connections=2) == []


async def test_an_index_that_cannot_be_built_fails_the_step_and_stays_recorded(pg_target):
    """An index the server cannot build (here its recorded definition names a column that is not there) fails
    the step with an engine error naming it, and the record stays for the next attempt."""
    dsn = create_database(pg_target, "deferred")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, note text)")
        conn.execute("CREATE INDEX t_note_idx ON t (note)")
    async with db.connection(dsn) as conn:
        assert await defer_indexes(conn, "public", ["t"]) == ["t_note_idx"]
    with psycopg.connect(dsn) as conn:
        conn.execute(f"UPDATE {SCHEMA}.indexes SET definition = replace(definition, 'note', 'missing_column')")
    with pytest.raises(EngineError, match="t_note_idx"):
        await build_deferred_indexes(dsn, connections=2)
    assert _schema_exists(dsn)
