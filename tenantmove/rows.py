"""RowSelection: the one query naming a tenant's rows of one table, shared by copy, checksum, archive, delete."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql


@dataclass(frozen=True)
class RowSelection:
    """Which rows of `schema.table` a step works on.

    `query` is a complete SELECT (it may start with WITH) returning exactly `columns`, in that order, for the
    rows of the table that the step must read; `params` binds its placeholders (normally {"tenant": id}).
    The same object is used on the source and on the target so both sides agree on the rows.
    `key` holds the primary-key (or NOT NULL unique) columns, empty when the table has none.
    """

    schema: str
    table: str
    columns: tuple[str, ...]
    query: sql.Composable
    params: Mapping[str, Any] = field(default_factory=dict)
    key: tuple[str, ...] = ()

    @property
    def qualified(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.table)

    @property
    def column_list(self) -> sql.Composed:
        return sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)

    def whole_table(self) -> RowSelection:
        """The same table, every row: for targets and for global tables."""
        query = sql.SQL("SELECT {} FROM {}").format(self.column_list, self.qualified)
        return RowSelection(self.schema, self.table, self.columns, query, {}, self.key)

    @classmethod
    def all_rows(cls, schema: str, table: str, columns: tuple[str, ...], key: tuple[str, ...] = ()
                 ) -> RowSelection:
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        query = sql.SQL("SELECT {} FROM {}").format(cols, sql.Identifier(schema, table))
        return cls(schema, table, columns, query, {}, key)
