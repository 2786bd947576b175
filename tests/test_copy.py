"""copy_rows between real clusters: exact rows, idempotent reruns, repair, text fallback, PG18 to PG15."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from tenantmove.checksum import table_checksum
from tenantmove.copy import CopyResult, choose_format, copy_rows, table_columns
from tenantmove.db import connection
from tenantmove.errors import EngineError, PlanError
from tenantmove.rows import RowSelection

DDL = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE tenant (id text PRIMARY KEY, name text NOT NULL);
CREATE TABLE item (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenant (id),
    parent_id bigint REFERENCES item (id),
    title {title_type}, body text, doc jsonb, at timestamptz, amount numeric(20, 6), blob bytea,
    tags text[], feel mood, score double precision
);
CREATE TABLE membership (
    tenant_id text NOT NULL REFERENCES tenant (id), user_id {user_type} NOT NULL, role text, since date,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE TABLE event_log (tenant_id text NOT NULL, payload text);
CREATE TABLE mood_history (id int PRIMARY KEY, tenant_id text NOT NULL, moods mood[]);
"""

SEED = """
INSERT INTO tenant VALUES ('a', 'Acme'), ('b', 'Beta');
INSERT INTO item (id, tenant_id, title, body, doc, at, amount, blob, tags, feel, score) OVERRIDING SYSTEM VALUE
SELECT g, CASE WHEN g % 3 = 0 THEN 'b' ELSE 'a' END, 'title ' || g, repeat('x', g % 50),
       jsonb_build_object('n', g, 'half', g / 2.0), timestamptz '2024-01-01 00:00:00+00' + g * interval '61 s',
       g / 7.0, decode(lpad(to_hex(g), 8, '0'), 'hex'), ARRAY['t' || g, NULL, 'q"' || g],
       (ARRAY['sad', 'ok', 'happy'])[1 + g % 3]::mood, g / 3.0
FROM generate_series(1, 3000) AS g;
UPDATE item SET parent_id = id - 3 WHERE id > 3;
INSERT INTO membership SELECT CASE WHEN g <= 200 THEN 'a' ELSE 'b' END, g, 'role ' || g % 4,
       date '2020-01-01' + g FROM generate_series(1, 260) AS g;
INSERT INTO event_log SELECT CASE WHEN g % 5 = 0 THEN 'b' ELSE 'a' END, 'payload ' || g % 7
FROM generate_series(1, 120) AS g;
INSERT INTO mood_history VALUES (1, 'a', '{sad,happy}'), (2, 'a', NULL), (3, 'a', '{}'), (4, 'b', '{ok}');
"""

# Awkward values: quotes, backslashes, control characters, unicode, '' vs NULL, a 1 MB text, infinities.
SPECIAL = [
    (10002, "a", None, "🦄 ünïcödé 中文", "z" * (1 << 20), None, None, None, b"", [], None, None),
    (10001, "a", 10002, "quote ' \" backslash \\ newline \n tab \t cr \r end", "",
     '{"é": "\\u00e9", "nested": {"a": [null, true, 1.5e10]}}', "2024-02-29 23:59:59.999999+05:30",
     "-99999999999999.999999", b"\x00\\\n\xff", ["", None, "a,b", "{}", "\\N"], "happy", float("inf")),
    (10003, "a", None, None, None, "null", "infinity", "NaN", None, None, "sad", -0.0),
]

TABLES = {
    "tenant": (("id", "name"), ("id",), "id"),
    "item": (("id", "tenant_id", "parent_id", "title", "body", "doc", "at", "amount", "blob", "tags", "feel",
              "score"), ("id",), "tenant_id"),
    "membership": (("tenant_id", "user_id", "role", "since"), ("tenant_id", "user_id"), "tenant_id"),
    "event_log": (("tenant_id", "payload"), (), "tenant_id"),
    "mood_history": (("id", "tenant_id", "moods"), ("id",), "tenant_id"),
}
ORDER = ["tenant", "item", "membership", "event_log", "mood_history"]


def selection(table: str, tenant: str = "a", columns: sql.Composable | None = None) -> RowSelection:
    cols, key, tenant_col = TABLES[table]
    select = columns or sql.SQL(", ").join(sql.Identifier(c) for c in cols)
    query = sql.SQL("SELECT {} FROM {} WHERE {} = %(tenant)s").format(
        select, sql.Identifier("public", table), sql.Identifier(tenant_col))
    return RowSelection("public", table, cols, query, {"tenant": tenant}, key)


def create_schema(dsn: str, *, title_type: str = "text", user_type: str = "int", pad: bool = False,
                  seed: bool = False) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        if pad:
            # Shift the OIDs of the types created next, as on a real target with its own history.
            conn.execute("CREATE TYPE pad AS (x int); CREATE TYPE pad2 AS ENUM ('x')")
        conn.execute(sql.SQL(DDL.format(title_type=title_type, user_type=user_type)))
        if seed:
            conn.execute(sql.SQL(SEED))
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO item (id, tenant_id, parent_id, title, body, doc, at, amount, blob, tags, feel,"
                    " score) OVERRIDING SYSTEM VALUE VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    SPECIAL)
    return dsn


@pytest.fixture
def source(pg_shared, new_database) -> str:
    return create_schema(new_database(pg_shared), seed=True)


@pytest.fixture
def target(pg_target, new_database) -> str:
    return create_schema(new_database(pg_target), pad=True)


async def copy_tenant(source: str, target: str, tenant: str = "a") -> dict[str, CopyResult]:
    results = {}
    async with connection(source) as src, connection(target) as dst:
        for table in ORDER:
            results[table] = await copy_rows(src, dst, selection(table, tenant))
    return results


async def assert_target_equals_source(source: str, target: str, tenant: str = "a") -> None:
    async with connection(source) as src, connection(target) as dst:
        for table in ORDER:
            expected = await table_checksum(src, selection(table, tenant))
            found = await table_checksum(dst, selection(table, tenant))
            assert expected.rows > 0
            assert expected.matches(found), table


async def whole(dsn: str, table: str) -> tuple[int, str]:
    async with connection(dsn) as conn:
        cols, key, _ = TABLES[table]
        checksum = await table_checksum(conn, RowSelection.all_rows("public", table, cols, key))
    return checksum.rows, checksum.digest


async def test_copy_moves_exactly_the_selected_rows_and_reruns_skip(source: str, target: str) -> None:
    before = {table: await whole(source, table) for table in ORDER}
    progress: list[tuple[int, int]] = []
    async with connection(source) as src, connection(target) as dst:
        results = {}
        for table in ORDER:
            report = (lambda rows, nbytes: progress.append((rows, nbytes))) if table == "item" else None
            results[table] = await copy_rows(src, dst, selection(table), on_progress=report,
                                             chunk_bytes=16 * 1024)
            # The whole target table (nothing else) equals the source selection.
            cols, key, _ = TABLES[table]
            expected = await table_checksum(src, selection(table))
            found = await table_checksum(dst, RowSelection.all_rows("public", table, cols, key))
            assert expected.matches(found), table
            assert results[table].rows == expected.rows
    assert {r.method for r in results.values()} == {"load"}
    assert results["item"].format == "binary"   # the enum column too: enums travel as labels
    assert results["mood_history"].format == "text"   # an enum array carries the enum's OID
    assert results["item"].rows == 2003 and results["item"].bytes > 1 << 20
    assert {table: await whole(source, table) for table in ORDER} == before   # source untouched
    # Progress: regular, increasing, ending on the exact totals.
    assert len(progress) > 10
    assert all(a[0] <= b[0] and a[1] < b[1] for a, b in zip(progress, progress[1:], strict=False))
    assert progress[-1] == (results["item"].rows, results["item"].bytes)

    after_first = {table: await whole(target, table) for table in ORDER}
    again = await copy_tenant(source, target)
    assert all(r.skipped and r.method == "skip" and r.bytes == 0 for r in again.values())
    assert again["item"].rows == 2003
    assert {table: await whole(target, table) for table in ORDER} == after_first


async def test_partially_loaded_target_is_repaired(source: str, target: str) -> None:
    await copy_tenant(source, target)
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("DELETE FROM item WHERE id > 2000 AND id < 3000 AND parent_id IS NOT NULL"
                     " AND id NOT IN (SELECT parent_id FROM item WHERE parent_id IS NOT NULL AND id < 2000)")
        conn.execute("UPDATE item SET body = NULL WHERE id = 10001")   # '' became NULL
        conn.execute("UPDATE item SET doc = '{\"n\": 0}' WHERE id = 1")
        conn.execute("INSERT INTO item (id, tenant_id, title) OVERRIDING SYSTEM VALUE VALUES (99999, 'a', 'stale')")
        # A row outside the selection (another tenant) must survive the repair.
        conn.execute("INSERT INTO tenant VALUES ('z', 'Zed')")
        conn.execute("INSERT INTO item (id, tenant_id, title) OVERRIDING SYSTEM VALUE VALUES (77777, 'z', 'keep')")
        conn.execute("DELETE FROM membership WHERE user_id % 2 = 0")
        conn.execute("UPDATE membership SET role = 'admin' WHERE user_id = 7")
        conn.execute("DELETE FROM event_log WHERE ctid IN (SELECT ctid FROM event_log LIMIT 30)")
        conn.execute("INSERT INTO event_log SELECT * FROM event_log LIMIT 5")   # duplicates
        conn.execute("INSERT INTO event_log VALUES ('z', 'other tenant')")
    results = await copy_tenant(source, target)
    assert results["tenant"].skipped
    assert (results["item"].method, results["membership"].method) == ("merge", "merge")
    assert results["event_log"].method == "replace"
    await assert_target_equals_source(source, target)
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT title FROM item WHERE id = 77777").fetchone() == ("keep",)
        assert conn.execute("SELECT count(*) FROM event_log WHERE tenant_id = 'z'").fetchone() == (1,)
    again = await copy_tenant(source, target)
    assert all(r.skipped for r in again.values())


async def test_failed_copy_leaves_an_empty_target_empty(source: str, target: str) -> None:
    async with connection(source) as src, connection(target) as dst:
        await copy_rows(src, dst, selection("tenant"))
        cols = TABLES["item"][0]
        failing = sql.SQL(", ").join(
            sql.SQL("CASE WHEN id = 2900 THEN (1 / 0)::text ELSE title END") if c == "title" else sql.Identifier(c)
            for c in cols)
        with pytest.raises(EngineError, match="division by zero"):
            await copy_rows(src, dst, selection("item", columns=failing), chunk_bytes=4096)
        assert (await whole(target, "item"))[0] == 0
        assert (await copy_rows(src, dst, selection("item"))).rows == 2003


async def test_text_format_when_a_column_type_differs(source: str, pg_target, new_database) -> None:
    target = create_schema(new_database(pg_target), title_type="varchar(300)", user_type="bigint")
    results = await copy_tenant(source, target)
    assert results["tenant"].format == "binary"
    assert (results["item"].format, results["membership"].format) == ("text", "text")
    await assert_target_equals_source(source, target)
    assert all(r.skipped for r in (await copy_tenant(source, target)).values())


async def test_enum_array_goes_as_text(source: str, target: str) -> None:
    # Binary arrays carry the element type OID, which differs between databases for user types; recent
    # minors ignore the mismatch for non-built-in OIDs, older ones fail with "wrong element type".
    async with connection(source) as src, connection(target) as dst:
        assert await choose_format(src, dst, selection("item"), "public", "item") == "binary"
        assert await choose_format(src, dst, selection("mood_history"), "public", "mood_history") == "text"
        await copy_rows(src, dst, selection("tenant"))
        result = await copy_rows(src, dst, selection("mood_history"))
        assert (result.format, result.rows) == ("text", 3)
        assert (await table_checksum(src, selection("mood_history"))).matches(
            await table_checksum(dst, selection("mood_history")))


async def test_copy_from_postgres_18_to_15(source: str, pg15, new_database) -> None:
    target = create_schema(new_database(pg15), pad=True)
    results = await copy_tenant(source, target)
    assert results["item"].format == "binary"
    await assert_target_equals_source(source, target)


async def test_copy_into_a_differently_named_table(source: str, target: str) -> None:
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE log_copy (payload text, tenant_id text)")
    async with connection(source) as src, connection(target) as dst:
        first = await copy_rows(src, dst, selection("event_log"), target_table="log_copy")
        second = await copy_rows(src, dst, selection("event_log"), target_table="log_copy")
        expected = await table_checksum(src, selection("event_log"))
        found = await table_checksum(dst, RowSelection.all_rows("public", "log_copy", ("tenant_id", "payload")))
    assert (first.method, second.method) == ("load", "skip")
    assert expected.matches(found)


async def test_missing_target_column_is_a_plan_error(source: str, target: str) -> None:
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("ALTER TABLE membership DROP COLUMN since")
    async with connection(source) as src, connection(target) as dst:
        await copy_rows(src, dst, selection("tenant"))
        with pytest.raises(PlanError, match="expected columns since in target public.membership"):
            await copy_rows(src, dst, selection("membership"))


async def test_table_columns(source: str) -> None:
    async with connection(source) as conn:
        columns = await table_columns(conn, "public", "item")
        assert await table_columns(conn, "public", "nope") == []
    assert columns[:4] == [("id", "bigint"), ("tenant_id", "text"), ("parent_id", "bigint"), ("title", "text")]
    assert ("amount", "numeric(20,6)") in columns and ("feel", "mood") in columns and ("tags", "text[]") in columns
