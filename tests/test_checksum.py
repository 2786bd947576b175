"""Content checksums: equal for equal rows in any order or server, different for any changed value."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from tenantmove.checksum import checksums, table_checksum
from tenantmove.db import connection
from tenantmove.rows import RowSelection

DDL = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE thing (
    id int PRIMARY KEY, tenant_id text NOT NULL, label text, note text, doc jsonb, at timestamptz,
    amount numeric(30, 8), ratio double precision, blob bytea, tags text[], feel mood, span interval
);
"""

# Values chosen so that each column's text form depends on a session setting or on quoting rules.
ROWS = """
INSERT INTO thing VALUES
 (1, 'a', 'plain', NULL, '{"k": [1, 2.50, "é"]}', '2024-02-29 23:59:59.123456+05:30', 12345678.12345678,
  0.1, '\\x00ff', '{"x,y", NULL, "q\\"uote"}', 'happy', '1 day 02:03:04'),
 (2, 'a', E'tab\\there\\nnewline \\\\ back "dq" ''sq''', '', 'null', '1970-01-01 00:00:00+00', -0.5,
  1e-300, '', '{}', NULL, '-1 mon'),
 (3, 'a', '🦄 ünïcödé', 'NULL', '[]', NULL, 0, 'NaN', NULL, NULL, 'sad', NULL),
 (4, 'b', 'other tenant', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
"""

COLUMNS = ("id", "tenant_id", "label", "note", "doc", "at", "amount", "ratio", "blob", "tags", "feel", "span")


def selection(tenant: str, table: str = "thing") -> RowSelection:
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS)
    query = sql.SQL("SELECT {} FROM {} WHERE tenant_id = %(tenant)s").format(
        cols, sql.Identifier("public", table))
    return RowSelection("public", table, COLUMNS, query, {"tenant": tenant}, key=("id",))


def setup_db(dsn: str, timezone: str = "UTC") -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL(DDL))
        conn.execute(sql.SQL(ROWS))
        # A server-side default that differs from the session settings must not change the digest.
        dbname = conn.info.dbname
        conn.execute(sql.SQL("ALTER DATABASE {} SET timezone = {}").format(sql.Identifier(dbname), timezone))
        conn.execute(sql.SQL("ALTER DATABASE {} SET extra_float_digits = 0").format(sql.Identifier(dbname)))


@pytest.fixture
def db(pg_shared, new_database) -> str:
    dsn = new_database(pg_shared)
    setup_db(dsn)
    return dsn


async def test_equal_rows_in_any_order_give_equal_checksums(db: str) -> None:
    async with connection(db, autocommit=True) as conn:
        await conn.execute("CREATE TABLE thing_copy (LIKE thing INCLUDING ALL)")
        await conn.execute("INSERT INTO thing_copy SELECT * FROM thing ORDER BY id DESC")
        original = await table_checksum(conn, selection("a"))
        reordered = await table_checksum(conn, selection("a", "thing_copy"))
        again = await table_checksum(conn, selection("a"))
        other = await table_checksum(conn, selection("b"))
    assert original.rows == 3
    assert len(original.digest) == 32
    assert original.matches(reordered)
    assert original == again
    assert not original.matches(other)


@pytest.mark.parametrize("statement", [
    "UPDATE thing SET label = 'plain ' WHERE id = 1",                      # one value changes
    "UPDATE thing SET note = '' WHERE id = 1",                             # NULL becomes ''
    "UPDATE thing SET note = NULL WHERE id = 2",                           # '' becomes NULL
    "UPDATE thing SET note = NULL WHERE id = 3",                           # 'NULL' becomes NULL
    "UPDATE thing SET amount = 12345678.12345679 WHERE id = 1",            # last numeric digit
    "UPDATE thing SET at = at + interval '1 microsecond' WHERE id = 1",    # one microsecond
    "UPDATE thing SET blob = '\\x00fe' WHERE id = 1",                      # one bit of bytea
    "UPDATE thing SET tags = '{\"x\",\"y\", NULL, \"q\\\"uote\"}' WHERE id = 1",  # array split differently
    "UPDATE thing SET label = note, note = label WHERE id = 2",            # two values swapped
    "INSERT INTO thing SELECT 5, tenant_id, label, note, doc, at, amount, ratio, blob, tags, feel, span"
    " FROM thing WHERE id = 2",                                            # a duplicated row (new id)
    "DELETE FROM thing WHERE id = 3",                                      # a missing row
])
async def test_any_difference_changes_the_checksum(db: str, statement: str) -> None:
    async with connection(db, autocommit=True) as conn:
        before = await table_checksum(conn, selection("a"))
        await conn.execute(sql.SQL(statement))
        after = await table_checksum(conn, selection("a"))
    assert not before.matches(after)


async def test_exact_duplicate_row_without_key_changes_the_checksum(db: str) -> None:
    cols = ("tenant_id", "label")
    sel = RowSelection("public", "thing", cols, sql.SQL("SELECT tenant_id, label FROM thing WHERE id <> 4"))
    async with connection(db, autocommit=True) as conn:
        before = await table_checksum(conn, sel)
        await conn.execute("INSERT INTO thing (id, tenant_id, label) VALUES (9, 'a', 'plain')")
        after = await table_checksum(conn, sel)
    assert (before.rows, after.rows) == (3, 4)
    assert before.digest != after.digest


async def test_record_quoting_separates_values(db: str) -> None:
    cols = ("label", "note")
    sel = RowSelection("public", "thing", cols, sql.SQL("SELECT label, note FROM thing WHERE id = 4"))
    async with connection(db, autocommit=True) as conn:
        await conn.execute("UPDATE thing SET label = 'x,y', note = NULL WHERE id = 4")
        joined = await table_checksum(conn, sel)
        await conn.execute("UPDATE thing SET label = 'x', note = 'y' WHERE id = 4")
        split = await table_checksum(conn, sel)
    assert joined.digest != split.digest


async def test_empty_selection(db: str) -> None:
    async with connection(db, autocommit=True) as conn:
        empty = await table_checksum(conn, selection("nobody"))
    assert (empty.rows, empty.digest) == (0, "0" * 32)


async def test_same_rows_on_postgres_15_and_18_give_the_same_checksum(pg_shared, pg15, new_database) -> None:
    dsn18, dsn15 = new_database(pg_shared), new_database(pg15)
    setup_db(dsn18, timezone="Asia/Kolkata")
    setup_db(dsn15, timezone="America/New_York")
    async with connection(dsn18) as conn18, connection(dsn15) as conn15:
        assert conn18.info.server_version >= 180000 and conn15.info.server_version < 160000
        sums18 = await checksums(conn18, [selection("a")])
        sums15 = await checksums(conn15, [selection("a")])
    assert sums18 == sums15
    assert sums18["thing"].rows == 3


async def test_checksums_use_one_snapshot_and_leave_no_transaction_open(db: str) -> None:
    async with connection(db) as conn:  # not autocommit: the helper must open and close its own snapshot
        await conn.execute("CREATE TABLE other AS SELECT * FROM thing")
        await conn.commit()
        other = RowSelection.all_rows("public", "other", COLUMNS, ("id",))
        sums = await checksums(conn, [selection("a"), other])
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with pytest.raises(ValueError, match="appears twice"):
            await checksums(conn, [selection("a"), selection("b")])
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert (sums["thing"].rows, sums["other"].rows) == (3, 4)
