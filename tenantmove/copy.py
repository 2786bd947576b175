"""Stream a table's selected rows from one connection to another by COPY, binary when the types agree."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import AsyncConnection, sql

from tenantmove.checksum import read_snapshot, table_checksum
from tenantmove.copy_out import CopyOut
from tenantmove.errors import (
    DatabaseUnavailable,
    EngineError,
    IntegrityProblem,
    PlanError,
    TransientError,
)
from tenantmove.rows import RowSelection

CopyFormat = Literal["binary", "text"]
CopyMethod = Literal["load", "merge", "replace", "skip"]
ProgressCallback = Callable[[int, int], None]

# COPY TO sends one CopyData message per row; writing each on its own costs one libpq call and one await per
# row, so CopyOut gathers rows up to this many bytes before each write (and each progress report).
DEFAULT_CHUNK_BYTES = 256 * 1024

# Types with OIDs below FirstGenbkiObjectId (10000) are assigned in the catalog sources and are the same on
# every server version; binary arrays and composites embed element OIDs, which must therefore be one of these.
_FIRST_UNSTABLE_OID = 10000

_COLUMN_TYPES = """\
WITH RECURSIVE cols AS (
    SELECT a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type_name, a.atttypid
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = %(schema)s AND c.relname = %(table)s AND a.attnum > 0 AND NOT a.attisdropped
), base AS (
    SELECT attnum, atttypid AS typid FROM cols
    UNION ALL
    SELECT b.attnum, t.typbasetype FROM base b JOIN pg_catalog.pg_type t ON t.oid = b.typid
    WHERE t.typtype = 'd'
)
SELECT c.attname, c.type_name, (t.oid < %(first_unstable)s OR t.typtype = 'e') AS portable
FROM cols c
JOIN base b ON b.attnum = c.attnum
JOIN pg_catalog.pg_type t ON t.oid = b.typid
WHERE t.typtype <> 'd'
ORDER BY c.attnum"""


@dataclass(frozen=True)
class ColumnType:
    """A column's declared type; `portable` when its binary COPY form holds no server-specific OID."""

    name: str
    type: str
    portable: bool


@dataclass(frozen=True)
class CopyResult:
    """What one copy_rows call did: rows and COPY-stream bytes moved (0 bytes when skipped)."""

    table: str
    rows: int
    bytes: int
    format: CopyFormat
    seconds: float
    skipped: bool = False
    method: CopyMethod = "load"


def engine_error(exc: psycopg.Error, *, table: str, action: str) -> EngineError:
    """Map a driver error to the engine's tree: lost connections and conflicts retry, bad data does not."""
    message = f"{action} of table {table} failed: {str(exc).strip()}"
    state = exc.sqlstate or ""
    if isinstance(exc, psycopg.OperationalError):
        if not state or state.startswith(("08", "57P")):
            return DatabaseUnavailable(message, table=table)
        return TransientError(message, table=table)
    if isinstance(exc, psycopg.IntegrityError):
        return IntegrityProblem(message, table=table)
    if isinstance(exc, psycopg.DataError | psycopg.ProgrammingError):
        return PlanError(message, table=table)
    return EngineError(message, table=table)


async def column_types(conn: AsyncConnection, schema: str, table: str) -> list[ColumnType]:
    """Every live column of schema.table in attnum order, with format_type and binary portability."""
    params = {"schema": schema, "table": table, "first_unstable": _FIRST_UNSTABLE_OID}
    async with conn.cursor() as cur:
        await cur.execute(sql.SQL(_COLUMN_TYPES), params)
        rows = await cur.fetchall()
    return [ColumnType(name, type_name, bool(portable)) for name, type_name, portable in rows]


async def table_columns(conn: AsyncConnection, schema: str, table: str) -> list[tuple[str, str]]:
    """(name, format_type) of every live column of schema.table, in table order; empty if no such table."""
    return [(col.name, col.type) for col in await column_types(conn, schema, table)]


def _pick(columns: list[ColumnType], wanted: tuple[str, ...], where: str, table: str) -> list[ColumnType]:
    by_name = {col.name: col for col in columns}
    if not by_name:
        raise PlanError(f"expected table {where}, found no such table", table=table)
    missing = [name for name in wanted if name not in by_name]
    if missing:
        raise PlanError(f"expected columns {', '.join(missing)} in {where}, found {', '.join(by_name)}",
                        table=table)
    return [by_name[name] for name in wanted]


async def choose_format(src: AsyncConnection, dst: AsyncConnection, selection: RowSelection,
                        target_schema: str, target_table: str) -> CopyFormat:
    """binary when every selected column has the same type on both sides and a portable binary form."""
    source = _pick(await column_types(src, selection.schema, selection.table), selection.columns,
                   f"source {selection.schema}.{selection.table}", selection.table)
    target = _pick(await column_types(dst, target_schema, target_table), selection.columns,
                   f"target {target_schema}.{target_table}", selection.table)
    same = all(s.type == t.type and s.portable and t.portable for s, t in zip(source, target, strict=True))
    return "binary" if same else "text"


async def pipe(src: AsyncConnection, dst: AsyncConnection, selection: RowSelection, target: sql.Composable,
                fmt: CopyFormat, on_progress: ProgressCallback | None = None,
                chunk_bytes: int = DEFAULT_CHUNK_BYTES, max_rows_per_second: float = 0) -> tuple[int, int]:
    """COPY the selection out of src into `target` on dst, chunk by chunk; returns (rows, bytes)."""
    options = sql.SQL("(FORMAT binary)" if fmt == "binary" else "(FORMAT text)")
    copy_out = sql.SQL("COPY ({}) TO STDOUT {}").format(selection.query, options)
    copy_in = sql.SQL("COPY {} ({}) FROM STDIN {}").format(target, selection.column_list, options)
    # Progress rows count CopyData messages: PostgreSQL sends one per row (copyto.c, CopySendEndOfRow), plus a
    # trailer in binary format. That is free to count and honest as an estimate; the final count comes from
    # the COPY command tags and is checked on both sides. CopyOut reads the rows libpq holds many at a time.
    nbytes = 0
    started = time.monotonic()
    async with dst.cursor() as in_cur:
        async with in_cur.copy(copy_in) as writer:
            async with CopyOut(src, copy_out, selection.params, chunk_bytes=chunk_bytes) as reader:
                async for chunk in reader:
                    await writer.write(chunk)
                    nbytes += len(chunk)
                    if on_progress is not None and reader.rows is None:  # the last chunk: reported below
                        on_progress(reader.messages, nbytes)
                    if max_rows_per_second > 0:
                        await _keep_pace(started, reader.messages, max_rows_per_second)
        sent, received = reader.rows, in_cur.rowcount
    if sent != received:
        raise IntegrityProblem(f"expected the target to accept the {sent} rows read from the source, "
                               f"found {received}", table=selection.table)
    if on_progress is not None:
        on_progress(received, nbytes)
    return received, nbytes


async def _keep_pace(started: float, rows: int, max_rows_per_second: float) -> None:
    """Sleep until `rows` is no faster than the limit: COPY_MAX_ROWS_PER_SECOND spares a busy shared database."""
    ahead = rows / max_rows_per_second - (time.monotonic() - started)
    if ahead > 0:
        await asyncio.sleep(ahead)


async def _has_rows(conn: AsyncConnection, target: sql.Composable) -> bool:
    async with conn.cursor() as cur:
        await cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(target))
        row = await cur.fetchone()
    return bool(row and row[0])


def _cols(prefix: str, names: tuple[str, ...]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(prefix, name) for name in names)


async def _merge(src: AsyncConnection, dst: AsyncConnection, selection: RowSelection, scope: RowSelection,
                 target: sql.Composable, fmt: CopyFormat, on_progress: ProgressCallback | None,
                 chunk_bytes: int, max_rows_per_second: float = 0) -> tuple[int, int]:
    """Stage the source rows in a temp table, drop scope rows the source lacks, upsert the rest on the key."""
    stage = sql.Identifier(f"tenantmove_stage_{uuid.uuid4().hex[:12]}")
    await dst.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA")
                      .format(stage, selection.column_list, target))
    rows, nbytes = await pipe(src, dst, selection, stage, fmt, on_progress, chunk_bytes, max_rows_per_second)
    key = selection.key
    # Delete before upserting: a stale row may hold a value of another unique column a source row needs.
    await dst.execute(sql.SQL(
        "DELETE FROM {target} AS t WHERE ({t_key}) IN (SELECT {s_key} FROM ({scope}) AS s ({names}))"
        " AND NOT EXISTS (SELECT FROM {stage} AS g WHERE ({g_key}) = ({t_key}))"
    ).format(target=target, t_key=_cols("t", key), s_key=_cols("s", key), scope=scope.query,
             names=scope.column_list, stage=stage, g_key=_cols("g", key)), dict(scope.params) or None)
    await upsert_from(dst, target, stage, selection)
    await dst.execute(sql.SQL("DROP TABLE {}").format(stage))
    return rows, nbytes


async def upsert_from(dst: AsyncConnection, target: sql.Composable, stage: sql.Composable,
                      selection: RowSelection) -> None:
    """Insert the staged rows into target, updating rows with the same key whose content differs."""
    key = selection.key
    others = tuple(name for name in selection.columns if name not in key)
    action: sql.Composable = sql.SQL("DO NOTHING")
    if others:
        # Compare as record text (what the checksum sees) so types without "=" (json, point) work, and
        # unchanged rows are not rewritten.
        sets = sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(n), sql.Identifier("excluded", n))
                                  for n in others)
        action = sql.SQL("DO UPDATE SET {} WHERE ROW({})::text IS DISTINCT FROM ROW({})::text").format(
            sets, _cols("t", others), _cols("excluded", others))
    # OVERRIDING SYSTEM VALUE: source ids must be kept in GENERATED ALWAYS identity columns.
    await dst.execute(sql.SQL(
        "INSERT INTO {target} AS t ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM {stage}"
        " ON CONFLICT ({key}) {action}"
    ).format(target=target, cols=selection.column_list, stage=stage,
             key=sql.SQL(", ").join(sql.Identifier(n) for n in key), action=action))


async def _delete_scope(dst: AsyncConnection, scope: RowSelection, target: sql.Composable) -> None:
    """Without a key a row is known only by its content: delete target rows whose text matches a scope row."""
    await dst.execute(sql.SQL(
        "DELETE FROM {target} AS t WHERE ROW({t_cols})::text IN"
        " (SELECT ROW({s_cols})::text FROM ({scope}) AS s ({names}))"
    ).format(target=target, t_cols=_cols("t", scope.columns), s_cols=_cols("s", scope.columns),
             scope=scope.query, names=scope.column_list), dict(scope.params) or None)


async def copy_rows(src: AsyncConnection, dst: AsyncConnection, selection: RowSelection, *,
                    target_table: str | None = None, target_schema: str | None = None,
                    target_scope: RowSelection | None = None, on_progress: ProgressCallback | None = None,
                    chunk_bytes: int = DEFAULT_CHUNK_BYTES, max_rows_per_second: float = 0) -> CopyResult:
    """Copy the rows `selection` returns on src into the same table (or target_schema.target_table) on dst.

    Idempotent: an empty target is loaded in one transaction; a target whose `target_scope` rows already
    checksum equal to the source is skipped; otherwise the scope is repaired (merge on `selection.key`, or
    delete and reload without a key), in one transaction. `target_scope` defaults to the selection itself run
    on dst, or to the whole target table when the target is named differently. The target table is locked
    against writers (SHARE ROW EXCLUSIVE) for the whole call, so an overlapping retry waits and then skips.
    """
    started = time.monotonic()
    schema, table = target_schema or selection.schema, target_table or selection.table
    target = sql.Identifier(schema, table)
    if target_scope is None:
        same = (schema, table) == (selection.schema, selection.table)
        target_scope = selection if same else RowSelection.all_rows(schema, table, selection.columns,
                                                                     selection.key)
    method: CopyMethod = "load"
    try:
        async with read_snapshot(src), dst.transaction():
            await dst.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(target))
            fmt = await choose_format(src, dst, selection, schema, table)
            if await _has_rows(dst, target):
                source_sum = await table_checksum(src, selection)
                target_sum = await table_checksum(dst, target_scope)
                if source_sum.matches(target_sum):
                    return CopyResult(selection.table, source_sum.rows, 0, fmt, time.monotonic() - started,
                                      skipped=True, method="skip")
                # Merge whenever the table holds rows, even if the scope sees none of them: the scope of a table
                # copied for its referrers (a kept User) is read through tables a resumed import has not
                # loaded yet, so it can miss rows an earlier attempt committed, and a plain load would then
                # hit their keys.
                if selection.key:
                    method = "merge"
                elif target_sum.rows:
                    method = "replace"
            if method == "merge":
                rows, nbytes = await _merge(src, dst, selection, target_scope, target, fmt, on_progress,
                                            chunk_bytes, max_rows_per_second)
            else:
                if method == "replace":
                    await _delete_scope(dst, target_scope, target)
                rows, nbytes = await pipe(src, dst, selection, target, fmt, on_progress, chunk_bytes,
                                           max_rows_per_second)
    except psycopg.Error as exc:
        raise engine_error(exc, table=selection.table, action="copy") from exc
    return CopyResult(selection.table, rows, nbytes, fmt, time.monotonic() - started, method=method)
