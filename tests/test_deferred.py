"""The target's plain indexes and foreign keys wait for its rows: dropped and recorded, then put back exactly
as they were; unique indexes and primary keys stay throughout; a retry at any point ends the same way, and
a load that broke a foreign key fails naming it."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from stagesub.schema import deploy_reference_schema
from tenantmove import db
from tenantmove.deferred import SCHEMA, defer_for_load, finish_load, put_back_as_loaded
from tenantmove.errors import EngineError

from .conftest import create_database

SHAPE = """
SELECT 'index ' || indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'constraint ' || conname, pg_get_constraintdef(oid) || CASE WHEN convalidated THEN '' ELSE ' (unchecked)' END
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
"""


def _shape(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute(SHAPE).fetchall())


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


async def test_indexes_and_foreign_keys_wait_and_come_back_exactly(target):
    before = _shape(target)
    async with db.connection(target) as conn:
        waiting = await defer_for_load(conn, "public", _tables(target))
    during = _shape(target)
    names = {f"{'index' if w.kind == 'index' else 'constraint'} {w.name}" for w in waiting}
    assert names and names == set(before) - set(during)
    # what stays: primary keys, unique indexes and constraints other than foreign keys
    assert all("FOREIGN KEY" not in definition for definition in during.values())
    assert all(" UNIQUE " in d or "PRIMARY KEY" in d or "_pkey" in d or not name.startswith("index")
               for name, d in during.items())
    assert {"index AuditLog_tenantId_createdAt_idx", "constraint AuditLog_userId_fkey"} <= names
    assert "index AuditLog_pkey" in during and "index User_email_key" in during
    put_back = await finish_load(target, connections=3)
    assert sorted(put_back) == sorted(w.name for w in waiting)
    assert _shape(target) == before  # every foreign key validated again, as it was
    assert not _schema_exists(target)


async def test_a_retry_after_any_step_ends_with_the_same_shape(target):
    before = _shape(target)
    async with db.connection(target) as conn:
        waiting = await defer_for_load(conn, "public", _tables(target))
        # a second defer (the activity retried) drops nothing more and forgets nothing
        assert sorted(await defer_for_load(conn, "public", _tables(target)), key=str) == sorted(waiting, key=str)
    index = next(w for w in waiting if w.kind == "index")
    key = next(w for w in waiting if w.kind == "foreign key")
    # a finish interrupted after one index was built and one foreign key added, not yet validated
    with psycopg.connect(target) as raw:
        raw.execute(index.definition)
        raw.execute(f'ALTER TABLE "{key.table}" ADD CONSTRAINT "{key.name}" {key.definition} NOT VALID')
    put_back = await finish_load(target, connections=2)
    assert len(put_back) == len(waiting) - 2
    assert _shape(target) == before
    assert await finish_load(target, connections=2) == []  # nothing left, nothing recorded


async def test_a_load_that_breaks_a_foreign_key_fails_naming_it_and_keeps_the_record(pg_target):
    dsn = create_database(pg_target, "deferred")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE parent (id int PRIMARY KEY)")
        conn.execute("CREATE TABLE child (id int PRIMARY KEY, parent_id int CONSTRAINT child_parent_fk "
                     "REFERENCES parent (id), note text)")
        conn.execute("CREATE INDEX child_note_idx ON child (note)")
    async with db.connection(dsn) as conn:
        assert {w.name for w in await defer_for_load(conn, "public", ["parent", "child"])} == \
            {"child_parent_fk", "child_note_idx"}
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO parent VALUES (1)")
        conn.execute("INSERT INTO child VALUES (1, 1, 'a'), (2, 99, 'b')")  # 99: no such parent
    with pytest.raises(EngineError, match="child_parent_fk"):
        await finish_load(dsn, connections=2)
    assert _schema_exists(dsn)
    with psycopg.connect(dsn) as conn:  # the row mended, the next attempt finishes
        conn.execute("DELETE FROM child WHERE parent_id = 99")
    assert await finish_load(dsn, connections=2) == []  # both are back already: the key only needed checking
    assert not _schema_exists(dsn)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT convalidated FROM pg_constraint WHERE conname = 'child_parent_fk'"
                            ).fetchone() == (True,)


async def test_a_foreign_key_that_was_not_valid_comes_back_not_valid(pg_target):
    dsn = create_database(pg_target, "deferred")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE parent (id int PRIMARY KEY)")
        conn.execute("CREATE TABLE child (id int PRIMARY KEY, parent_id int)")
        conn.execute("ALTER TABLE child ADD CONSTRAINT child_parent_fk FOREIGN KEY (parent_id) "
                     "REFERENCES parent (id) NOT VALID")
    before = _shape(dsn)
    async with db.connection(dsn) as conn:
        await defer_for_load(conn, "public", ["parent", "child"])
    assert await finish_load(dsn, connections=2) == ["child_parent_fk"]
    assert _shape(dsn) == before


async def test_a_target_without_plain_indexes_or_foreign_keys_keeps_no_record(pg_target):
    dsn = create_database(pg_target, "deferred")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, code text UNIQUE, note text)")
    async with db.connection(dsn) as conn:
        assert await defer_for_load(conn, "public", ["t"]) == []
    assert not _schema_exists(dsn)
    assert await finish_load(dsn, connections=2) == []


async def test_a_partitioned_table_keeps_its_indexes_and_keys(pg_target):
    """A partition's index and foreign key belong to its parent's (they cannot be dropped alone), and the
    parent's foreign key cannot come back NOT VALID: partitioned tables load with theirs in place."""
    dsn = create_database(pg_target, "deferred")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE parent (id int PRIMARY KEY)")
        conn.execute("CREATE TABLE event (id int, parent_id int REFERENCES parent (id), at date NOT NULL, "
                     "PRIMARY KEY (id, at)) PARTITION BY RANGE (at)")
        conn.execute("CREATE TABLE event_2024 PARTITION OF event FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')")
        conn.execute("CREATE INDEX event_parent_idx ON event (parent_id)")
        conn.execute("CREATE TABLE plain (id int PRIMARY KEY, parent_id int REFERENCES parent (id))")
    before = _shape(dsn)
    async with db.connection(dsn) as conn:
        waiting = await defer_for_load(conn, "public", ["parent", "event", "event_2024", "plain"])
    assert [w.table for w in waiting] == ["plain"]
    assert await finish_load(dsn, connections=2) == ["plain_parent_id_fkey"]
    assert _shape(dsn) == before


async def test_foreign_keys_of_the_same_name_on_two_tables_come_back_each_as_it_was(pg_target):
    """A constraint's name is unique only on its table: a retry where one of two same-named keys is back and
    the other is not must add the missing one and leave the other, not take one for the other."""
    dsn = create_database(pg_target, "deferred")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE parent (id int PRIMARY KEY)")
        for child in ("a_child", "b_child"):
            conn.execute(f"CREATE TABLE {child} (id int PRIMARY KEY, parent_id int, "
                         "CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id))")
    keys = "SELECT conrelid::regclass::text, pg_get_constraintdef(oid), convalidated FROM pg_constraint " \
           "WHERE conname = 'fk_parent' ORDER BY 1"
    with psycopg.connect(dsn) as conn:
        before = conn.execute(keys).fetchall()
    async with db.connection(dsn) as conn:
        waiting = await defer_for_load(conn, "public", ["parent", "a_child", "b_child"])
    assert sorted(w.table for w in waiting) == ["a_child", "b_child"]
    a_key = next(w for w in waiting if w.table == "a_child")
    with psycopg.connect(dsn) as conn:  # an interrupted finish: a_child's key is back, not yet validated
        conn.execute(f"ALTER TABLE a_child ADD CONSTRAINT fk_parent {a_key.definition} NOT VALID")
    assert await finish_load(dsn, connections=2) == ["fk_parent"]  # b_child's, added now
    with psycopg.connect(dsn) as conn:
        assert conn.execute(keys).fetchall() == before  # both back, on their own tables, validated
    assert len(before) == 2 and all(row[2] for row in before)


def _parent_child(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE parent (id int PRIMARY KEY, note text)")
        conn.execute("CREATE INDEX parent_note_idx ON parent (note)")
        conn.execute("CREATE TABLE child (id int PRIMARY KEY, parent_id int CONSTRAINT child_parent_fk "
                     "REFERENCES parent (id), note text)")
        conn.execute("CREATE INDEX child_note_idx ON child (note)")
        conn.execute("CREATE TABLE other (id int PRIMARY KEY, note text)")
        conn.execute("CREATE INDEX other_note_idx ON other (note)")


REFERENCES = {("child", "child_parent_fk"): "parent"}


async def test_items_come_back_as_their_tables_load(pg_target):
    """A table's index once it is loaded; a foreign key only once the table it references is loaded too."""
    dsn = create_database(pg_target, "deferred")
    _parent_child(dsn)
    before = _shape(dsn)
    async with db.connection(dsn) as conn:
        waiting = await defer_for_load(conn, "public", ["parent", "child", "other"])
    back: list[str] = []
    arrived = asyncio.Event()

    def on_item(name: str) -> None:
        back.append(name)
        arrived.set()

    async def until(count: int) -> None:
        while len(back) < count:
            arrived.clear()
            await asyncio.wait_for(arrived.wait(), 30)

    async with put_back_as_loaded(dsn, waiting, loading=["parent", "child", "other"], references=REFERENCES,
                                  connections=2, on_item=on_item) as loaded:
        await asyncio.sleep(0.2)
        assert back == []  # nothing loaded, nothing back
        with psycopg.connect(dsn) as conn:
            conn.execute("INSERT INTO child VALUES (1, 7, 'c')")  # its parent arrives later
        loaded("child")
        await until(1)
        await asyncio.sleep(0.2)
        assert back == ["child_note_idx"]  # the key waits for parent
        with psycopg.connect(dsn) as conn:
            conn.execute("INSERT INTO parent VALUES (7, 'p')")
        loaded("parent")
        await until(3)
        assert sorted(back) == ["child_note_idx", "child_parent_fk", "parent_note_idx"]
    assert "other_note_idx" not in back  # "other" never loaded: left for finish_load
    assert await finish_load(dsn, connections=2) == ["other_note_idx"]
    assert _shape(dsn) == before
    assert not _schema_exists(dsn)


async def test_a_key_that_fails_to_come_back_fails_the_block_naming_it(pg_target):
    dsn = create_database(pg_target, "deferred")
    _parent_child(dsn)
    async with db.connection(dsn) as conn:
        waiting = await defer_for_load(conn, "public", ["parent", "child"])
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO parent VALUES (1, 'p')")
        conn.execute("INSERT INTO child VALUES (1, 1, 'a'), (2, 99, 'b')")  # 99: no such parent
    with pytest.raises(EngineError, match="child_parent_fk"):
        async with put_back_as_loaded(dsn, waiting, loading=["parent", "child"], references=REFERENCES,
                                      connections=2) as loaded:
            loaded("parent")
            loaded("child")
    assert _schema_exists(dsn)  # the record stays for the next attempt
