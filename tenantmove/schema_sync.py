"""Give the dedicated database the shared one's schema (its Prisma migrations, else pg_dump) and diff the two."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from tenantmove.db import connection, mask_dsn
from tenantmove.errors import PlanError
from tenantmove.pgserver import embedded_bin_dir
from tenantmove.prisma import apply_migrations, find_migrations, recorded_migrations


async def deploy_schema(shared_dsn: str, target_dsn: str, migrations_dir: Path, *, schema: str = "public"
                        ) -> list[str]:
    """Apply to the target exactly the migrations the shared database records (finished, not rolled back),
    after checking each against migrations_dir by checksum; without a _prisma_migrations table, copy the
    schema with pg_dump --schema-only. Returns what was applied now: migration names, or ["pg_dump:<schema>"];
    [] when the target already had it all."""
    recorded = await asyncio.to_thread(recorded_migrations, shared_dsn)
    if not recorded:
        return await _deploy_by_dump(shared_dsn, target_dsn, schema)
    files = {m.name: m for m in find_migrations(migrations_dir)}
    chosen = []
    for name, checksum in recorded:
        migration = files.get(name)
        if migration is None:
            raise PlanError(f"migration {name} is recorded in the shared database, expected it in "
                            f"{migrations_dir}, found no such folder")
        if not migration.matches(checksum):
            raise PlanError(f"migration {name}: the shared database recorded checksum {checksum}, the file in "
                            f"{migrations_dir} has checksum {migration.checksum}")
        # The target records the shared database's own checksum, so both bookkeeping tables read the same
        # even where Prisma accepted a line-ending variant.
        chosen.append(dataclasses.replace(migration, checksum=checksum))
    shared_names = {name for name, _ in recorded}
    ahead = [name for name, _ in await asyncio.to_thread(recorded_migrations, target_dsn)
             if name not in shared_names]
    if ahead:
        raise PlanError(f"expected the target's migrations to be a subset of the shared database's, found "
                        f"{', '.join(ahead)} only on the target")
    chosen.sort(key=lambda m: m.name)  # Prisma's apply order: folder names
    return await asyncio.to_thread(apply_migrations, target_dsn, chosen)


# ---- pg_dump fallback -----------------------------------------------------------------------------------
def _client_args(dsn: str) -> tuple[str, dict[str, str]]:
    """A conninfo without the password for the command line (which `ps` shows to every local user), and an
    environment holding the password instead."""
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = password
    return make_conninfo(**params), env


async def _run(exe: str, args: list[str], dsn: str, stdin: bytes | None = None) -> bytes:
    conninfo, env = _client_args(dsn)
    path = embedded_bin_dir() / exe
    proc = await asyncio.create_subprocess_exec(
        str(path), *args, "-d", conninfo, env=env, stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(stdin)
    if proc.returncode != 0:
        raise PlanError(f"{exe} against {mask_dsn(dsn)} exited with {proc.returncode}, expected 0: "
                        f"{mask_dsn(err.decode('utf-8', 'replace')).strip()}")
    return out


def _adapt_dump(dump: str, target_version: int) -> str:
    """pg_dump output made to load into an existing database of any supported version: the schema may exist
    already (public always does), and only the target's owner may comment on it."""
    lines = []
    for line in dump.splitlines():
        if line.startswith("CREATE SCHEMA ") and line.endswith(";"):
            line = "CREATE SCHEMA IF NOT EXISTS " + line[len("CREATE SCHEMA "):]
        elif line.startswith("COMMENT ON SCHEMA "):
            continue
        elif line.startswith("SET transaction_timeout") and target_version < 170000:
            continue  # written by pg_dump 17+, unknown to older servers
        lines.append(line)
    return "\n".join(lines) + "\n"


async def _tables(conn: psycopg.AsyncConnection, schema: str) -> list[str]:
    cur = await conn.execute(
        "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1", (schema,))
    return [row[0] for row in await cur.fetchall()]


async def _deploy_by_dump(shared_dsn: str, target_dsn: str, schema: str) -> list[str]:
    async with connection(shared_dsn) as src, connection(target_dsn) as dst:
        wanted, present = await _tables(src, schema), await _tables(dst, schema)
        if present:
            diff = await diff_schemas(src, dst, schema, wanted)
            if set(present) == set(wanted) and not diff:
                return []
            raise PlanError(f"expected schema {schema!r} on the target empty or equal to the shared one, found "
                            f"{len(present)} table(s) and differences: {'; '.join(diff) or 'other tables'}")
        version = dst.info.server_version
    # pg_dump reads --schema as a pattern; inside double quotes every character is literal (psql's rules).
    pattern = '"' + schema.replace('"', '""') + '"'
    dump = await _run("pg_dump", ["--schema-only", "--no-owner", "--no-privileges", f"--schema={pattern}"],
                      shared_dsn)
    script = _adapt_dump(dump.decode("utf-8"), version)
    await _run("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", "-"], target_dsn,
               stdin=script.encode("utf-8"))
    return [f"pg_dump:{schema}"]


# ---- schema diff ----------------------------------------------------------------------------------------
_COLUMNS = """
SELECT c.relname AS tbl, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS "default",
       a.attidentity::text AS identity, a.attgenerated::text AS generated
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s) AND c.relkind IN ('r', 'p')
  AND a.attnum > 0 AND NOT a.attisdropped"""

_CONSTRAINTS = """
SELECT c.relname AS tbl, con.contype::text AS kind, pg_get_constraintdef(con.oid) AS definition,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.ord) AS columns,
       rc.relname AS ref_table, rn.nspname AS ref_schema,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord) AS ref_columns,
       con.confupdtype::text AS on_update, con.confdeltype::text AS on_delete,
       con.condeferrable AS deferrable, con.condeferred AS deferred
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class rc ON rc.oid = con.confrelid LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s) AND con.contype IN ('p', 'u', 'f', 'c')"""

# Index names and the schema are normalised away: Prisma and pg_dump name indexes alike, but a hand-made
# target may not, and only the definition matters to queries.
_INDEXES = """
SELECT c.relname AS tbl,
       replace(replace(pg_get_indexdef(i.indexrelid), ' INDEX ' || quote_ident(ic.relname) || ' ON ', ' INDEX ON '),
               quote_ident(n.nspname) || '.', '') AS definition
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid
                  AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))"""

_ENUMS = """
SELECT format_type(t.oid, NULL) AS name, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
WHERE t.oid IN (SELECT et.oid FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                JOIN pg_type at ON at.oid = a.atttypid
                JOIN pg_type et ON et.oid = at.oid OR et.oid = at.typelem
                WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s) AND a.attnum > 0
                  AND NOT a.attisdropped AND et.typtype = 'e')
GROUP BY t.oid"""

_ACTIONS = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}


def _describe_constraint(row: dict[str, Any], schema: str) -> tuple[str, str]:
    cols = ", ".join(row["columns"])
    if row["kind"] == "p":
        return "primary key", f"({cols})"
    if row["kind"] == "u":
        return "unique key", f"({cols})"
    if row["kind"] == "c":
        return "check", row["definition"]
    ref = row["ref_table"] if row["ref_schema"] == schema else f"{row['ref_schema']}.{row['ref_table']}"
    text = (f"({cols}) -> {ref}({', '.join(row['ref_columns'])}) on delete {_ACTIONS[row['on_delete']]} "
            f"on update {_ACTIONS[row['on_update']]}")
    if row["deferrable"]:
        text += " deferrable" + (" initially deferred" if row["deferred"] else "")
    return "foreign key", text


async def _facts(conn: psycopg.AsyncConnection, schema: str, tables: list[str]) -> dict[str, Any]:
    params = {"schema": schema, "tables": list(tables)}
    facts: dict[str, Any] = {"tables": set(), "columns": {}, "constraints": Counter(), "enums": {}}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_COLUMNS, params)
        for row in await cur.fetchall():
            facts["tables"].add(row["tbl"])
            facts["columns"][(row["tbl"], row["name"])] = row
        await cur.execute(_CONSTRAINTS, params)
        for row in await cur.fetchall():
            kind, text = _describe_constraint(row, schema)
            facts["constraints"][(row["tbl"], kind, text)] += 1
        await cur.execute(_INDEXES, params)
        for row in await cur.fetchall():
            facts["constraints"][(row["tbl"], "index", row["definition"])] += 1
        await cur.execute(_ENUMS, params)
        for row in await cur.fetchall():
            facts["enums"][row["name"]] = list(row["labels"])
    return facts


def _column_diffs(table: str, name: str, a: dict[str, Any], b: dict[str, Any], labels: tuple[str, str]
                  ) -> list[str]:
    out = []
    aspects = (("type", a["type"], b["type"]),
               ("nullability", "NOT NULL" if a["not_null"] else "NULL", "NOT NULL" if b["not_null"] else "NULL"),
               ("default", a["default"] or "none", b["default"] or "none"),
               ("identity", _IDENTITY[a["identity"]], _IDENTITY[b["identity"]]),
               ("generated", a["generated"] or "no", b["generated"] or "no"))
    for aspect, left, right in aspects:
        if left != right:
            out.append(f"{table}.{name}: {aspect} {left} on {labels[0]}, {right} on {labels[1]}")
    return out


_IDENTITY = {"": "none", "a": "always", "d": "by default"}


async def diff_schemas(src: psycopg.AsyncConnection, dst: psycopg.AsyncConnection, schema: str,
                       tables: list[str], *, labels: tuple[str, str] = ("shared", "target")) -> list[str]:
    """Every difference, for `tables` of `schema`, in columns (type, nullability, default), primary and
    unique keys, foreign keys (columns, target, actions), checks, indexes and the enums the columns use; one
    readable line each, [] when the two agree."""
    left, right = await _facts(src, schema, tables), await _facts(dst, schema, tables)
    out = []
    for table in sorted(tables):
        here, there = table in left["tables"], table in right["tables"]
        if not (here and there):
            out.append(f"{table}: {_missing('table', here, there, labels)}")
            continue
        names = sorted({n for t, n in left["columns"] if t == table} | {n for t, n in right["columns"] if t == table})
        for name in names:
            a, b = left["columns"].get((table, name)), right["columns"].get((table, name))
            if a is None or b is None:
                out.append(f"{table}.{name}: {_missing('column', a is not None, b is not None, labels)}")
            else:
                out += _column_diffs(table, name, a, b, labels)
        keys = sorted({k for k in left["constraints"] if k[0] == table} | {k for k in right["constraints"]
                                                                            if k[0] == table})
        for key in keys:
            m, n = left["constraints"][key], right["constraints"][key]
            if m != n:
                out.append(f"{table}: {key[1]} {key[2]} {_times(m)} on {labels[0]}, {_times(n)} on {labels[1]}")
    for enum in sorted(set(left["enums"]) | set(right["enums"])):
        a_labels, b_labels = left["enums"].get(enum), right["enums"].get(enum)
        if a_labels != b_labels:
            out.append(f"enum {enum}: labels {_labels(a_labels)} on {labels[0]}, {_labels(b_labels)} on {labels[1]}")
    return out


def _times(count: int) -> str:
    return "missing" if count == 0 else "present" if count == 1 else f"present {count} times"


def _labels(values: list[str] | None) -> str:
    return "missing" if values is None else "[" + ", ".join(values) + "]"


def _missing(what: str, here: bool, there: bool, labels: tuple[str, str]) -> str:
    where = [label for label, present in zip(labels, (here, there), strict=True) if not present]
    return f"{what} missing on {' and '.join(where)}"
