"""Read tables, columns, keys, foreign keys and owned sequences of one schema from the Postgres catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tenantmove.errors import ConfigError


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool
    identity: str = ""  # 'a' always, 'd' by default, '' none
    generated: str = ""  # 's' stored generated column: never written by COPY
    default: str | None = None


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    not_null: bool  # every referencing column is NOT NULL
    unique: bool  # the referencing columns form a unique key of `table`: a one-to-one link
    deferrable: bool = False
    ref_schema: str = ""

    def describe(self) -> str:
        cols = ", ".join(self.columns)
        refs = ", ".join(self.ref_columns)
        return f"{self.table}({cols}) -> {self.ref_table}({refs})"


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    unique_keys: tuple[tuple[str, ...], ...]
    foreign_keys: tuple[ForeignKey, ...]
    sequences: tuple[tuple[str, str], ...] = ()  # (column, qualified sequence name)
    row_estimate: int = 0
    total_bytes: int = 0

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def writable_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if not c.generated)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def row_key(self) -> tuple[str, ...]:
        """The primary key, else the first unique key whose columns are all NOT NULL, else ()."""
        if self.primary_key:
            return self.primary_key
        for key in self.unique_keys:
            if all((col := self.column(name)) is not None and col.not_null for name in key):
                return key
        return ()

    def is_unique(self, columns: tuple[str, ...]) -> bool:
        keys = [self.primary_key, *self.unique_keys]
        return any(key and set(key) <= set(columns) for key in keys)


@dataclass(frozen=True)
class Catalog:
    schema: str
    tables: dict[str, Table] = field(default_factory=dict)
    server_version: int = 0

    def table(self, name: str) -> Table:
        try:
            return self.tables[name]
        except KeyError:
            known = ", ".join(sorted(self.tables)) or "none"
            raise ConfigError(f"table {name!r} not found in schema {self.schema!r} (tables: {known})",
                              table=name) from None

    def referrers(self, name: str) -> list[ForeignKey]:
        """Foreign keys, in any table of the schema, that point at `name`."""
        return [fk for t in self.tables.values() for fk in t.foreign_keys if fk.ref_table == name]


_TABLES = """
SELECT c.oid, c.relname AS name, greatest(c.reltuples, 0)::bigint AS row_estimate,
       pg_total_relation_size(c.oid) AS total_bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname
"""

_COLUMNS = """
SELECT a.attrelid AS oid, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null, a.attidentity::text AS identity, a.attgenerated::text AS generated,
       pg_get_expr(d.adbin, d.adrelid) AS "default"
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

# Unique keys come from unique indexes as well as constraints: Prisma declares @unique as CREATE UNIQUE INDEX.
_KEYS = """
SELECT i.indrelid AS oid, i.indisprimary AS is_primary,
       array_agg(a.attname ORDER BY k.ord) AS columns
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE n.nspname = %(schema)s AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
GROUP BY i.indexrelid, i.indrelid, i.indisprimary
ORDER BY i.indrelid, i.indisprimary DESC, i.indexrelid
"""

_FOREIGN_KEYS = """
SELECT con.conrelid AS oid, con.conname AS name, rn.nspname AS ref_schema, rc.relname AS ref_table,
       con.condeferrable AS deferrable,
       array_agg(a.attname ORDER BY k.ord) AS columns,
       array_agg(ra.attname ORDER BY k.ord) AS ref_columns,
       bool_and(a.attnotnull) AS not_null
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class rc ON rc.oid = con.confrelid JOIN pg_namespace rn ON rn.oid = rc.relnamespace
CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(attnum, refnum, ord)
JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
JOIN pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attnum = k.refnum
WHERE n.nspname = %(schema)s AND con.contype = 'f'
GROUP BY con.oid, con.conrelid, con.conname, rn.nspname, rc.relname, con.condeferrable
ORDER BY con.conrelid, con.conname
"""

# Sequences a column owns: serial columns (deptype 'a') and identity columns (deptype 'i').
_SEQUENCES = """
SELECT d.refobjid AS oid, a.attname AS column_name,
       quote_ident(sn.nspname) || '.' || quote_ident(s.relname) AS sequence_name
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
JOIN pg_class c ON c.oid = d.refobjid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.deptype IN ('a', 'i') AND n.nspname = %(schema)s
ORDER BY 1, 2
"""


async def read_catalog(conn: psycopg.AsyncConnection, schema: str = "public") -> Catalog:
    params = {"schema": schema}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_TABLES, params)
        table_rows = await cur.fetchall()
        await cur.execute(_COLUMNS, params)
        column_rows = await cur.fetchall()
        await cur.execute(_KEYS, params)
        key_rows = await cur.fetchall()
        await cur.execute(_FOREIGN_KEYS, params)
        fk_rows = await cur.fetchall()
        await cur.execute(_SEQUENCES, params)
        seq_rows = await cur.fetchall()
    return _assemble(schema, table_rows, column_rows, key_rows, fk_rows, seq_rows,
                     conn.info.server_version)


Row = dict[str, Any]


def _assemble(schema: str, table_rows: list[Row], column_rows: list[Row], key_rows: list[Row],
              fk_rows: list[Row], seq_rows: list[Row], server_version: int) -> Catalog:
    names = {row["oid"]: row["name"] for row in table_rows}
    columns: dict[int, list[Column]] = {oid: [] for oid in names}
    for row in column_rows:
        if row["oid"] in columns:
            columns[row["oid"]].append(Column(row["name"], row["type"], row["not_null"], row["identity"] or "",
                                              row["generated"] or "", row["default"]))
    primary: dict[int, tuple[str, ...]] = {}
    uniques: dict[int, list[tuple[str, ...]]] = {oid: [] for oid in names}
    for row in key_rows:
        if row["oid"] not in names:
            continue
        cols = tuple(row["columns"])
        if row["is_primary"]:
            primary[row["oid"]] = cols
        elif cols not in uniques[row["oid"]]:
            uniques[row["oid"]].append(cols)
    sequences: dict[int, list[tuple[str, str]]] = {oid: [] for oid in names}
    for row in seq_rows:
        if row["oid"] in sequences:
            sequences[row["oid"]].append((row["column_name"], row["sequence_name"]))
    fks: dict[int, list[ForeignKey]] = {oid: [] for oid in names}
    for row in fk_rows:
        oid = row["oid"]
        if oid not in names:
            continue
        cols = tuple(row["columns"])
        keys = [primary.get(oid, ()), *uniques[oid]]
        unique = any(key and set(key) <= set(cols) for key in keys)
        fks[oid].append(ForeignKey(row["name"], names[oid], cols, row["ref_table"], tuple(row["ref_columns"]),
                                   bool(row["not_null"]), unique, bool(row["deferrable"]), row["ref_schema"]))
    tables = {
        names[oid]: Table(
            name=names[oid], columns=tuple(columns[oid]), primary_key=primary.get(oid, ()),
            unique_keys=tuple(uniques[oid]),
            # A foreign key into another schema is outside what we plan; it stays a plain column.
            foreign_keys=tuple(fk for fk in fks[oid] if fk.ref_schema == schema),
            sequences=tuple(sequences[oid]),
            row_estimate=int(row["row_estimate"]), total_bytes=int(row["total_bytes"]),
        )
        for row in table_rows
        for oid in [row["oid"]]
    }
    return Catalog(schema, tables, server_version)
