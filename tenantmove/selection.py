"""Generate the one set-based SELECT per table that names the tenant's rows (and orphans and conflicts).

Each table's membership is a boolean SQL expression over a row alias. Sets that other tables test against
(a parent's owned rows, a referrer's copied rows) are CTEs, each defined once per query, so the SQL grows
linearly with the schema however many paths meet. Self-references become recursive CTEs.
Modes: "tenant" = rows of the tenant given as %(tenant)s; "other" = rows reaching some other tenant;
"any" = rows reaching any tenant at all (the rest of an owned table are orphans).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from psycopg import sql

from tenantmove.catalog import ForeignKey, Table
from tenantmove.plan import Plan, Role
from tenantmove.rows import RowSelection

Mode = Literal["tenant", "other", "any"]
TENANT = sql.Placeholder("tenant")


def _eq(left_alias: str, left_cols: tuple[str, ...], right_alias: str, right_cols: tuple[str, ...]
        ) -> sql.Composable:
    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(left_alias, a), sql.Identifier(right_alias, b))
        for a, b in zip(left_cols, right_cols, strict=True)
    )


def _any(parts: list[sql.Composable]) -> sql.Composable:
    if not parts:
        return sql.SQL("FALSE")
    if len(parts) == 1:
        return parts[0]
    return sql.SQL("(") + sql.SQL(" OR ").join(sql.SQL("({})").format(p) for p in parts) + sql.SQL(")")


def _key_in(alias: str, key: tuple[str, ...], branches: list[sql.Composable]) -> sql.Composable:
    """alias's `key` is among the keys the branches return (none NULL), as two-valued as EXISTS: false, never
    NULL, for a NULL key, so that the test may also be negated."""
    present = [sql.SQL("{} IS NOT NULL").format(sql.Identifier(alias, c)) for c in key]
    test = sql.SQL("({}) IN ({})").format(sql.SQL(", ").join(sql.Identifier(alias, c) for c in key),
                                          sql.SQL(" UNION ALL ").join(branches))
    return sql.SQL("({})").format(sql.SQL(" AND ").join([*present, test]))


@dataclass
class _Query:
    """The CTEs one query needs, in dependency order, and whether any is recursive."""

    ctes: dict[str, sql.Composable] = field(default_factory=dict)
    recursive: bool = False
    aliases: int = 0

    def alias(self) -> str:
        self.aliases += 1
        return f"s{self.aliases}"

    def with_clause(self) -> sql.Composable:
        if not self.ctes:
            return sql.SQL("")
        head = sql.SQL("WITH RECURSIVE " if self.recursive else "WITH ")
        body = sql.SQL(", ").join(sql.SQL("{} AS ({})").format(sql.Identifier(name), cte)
                                  for name, cte in self.ctes.items())
        return head + body + sql.SQL(" ")


class SelectionBuilder:
    """Builds selections for one plan. A builder is cheap; build one per query family."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.schema = plan.schema
        self._index = {name: i for i, name in enumerate(sorted(plan.catalog.tables))}
        self._building: set[str] = set()

    # ---- public -------------------------------------------------------------------------------------
    def rows(self, table: str, columns: tuple[str, ...] | None = None) -> RowSelection:
        """The tenant's rows of `table` that a migration copies (owned, the tenant row, referenced rows)."""
        t = self.plan.catalog.table(table)
        cols = columns or t.writable_columns
        q = _Query()
        alias = q.alias()
        where = self.copy_member(q, table, alias)
        return self._selection(q, t, alias, where, cols)

    def owned_rows(self, table: str, mode: Mode = "tenant", columns: tuple[str, ...] | None = None
                   ) -> RowSelection:
        """Rows of an owned (or kept, or tenant) table that belong to the tenant by ownership rules."""
        t = self.plan.catalog.table(table)
        q = _Query()
        alias = q.alias()
        where = self.member(q, table, alias, mode)
        return self._selection(q, t, alias, where, columns or t.writable_columns)

    def orphan_rows(self, table: str, columns: tuple[str, ...] | None = None) -> RowSelection:
        """Rows of an owned table that reach no tenant at all (every reference NULL or dangling)."""
        t = self.plan.catalog.table(table)
        q = _Query()
        alias = q.alias()
        where = sql.SQL("NOT {}").format(self.member(q, table, alias, "any"))
        return self._selection(q, t, alias, where, columns or t.row_key or t.writable_columns)

    def conflict_rows(self, table: str, columns: tuple[str, ...] | None = None) -> RowSelection:
        """Rows that reach the tenant and also another tenant: an integrity error, never moved."""
        t = self.plan.catalog.table(table)
        q = _Query()
        alias = q.alias()
        where = sql.SQL("{} AND {}").format(self.member(q, table, alias, "tenant"),
                                            self.member(q, table, alias, "other"))
        return self._selection(q, t, alias, where, columns or t.row_key or t.writable_columns)

    def cross_tenant_rows(self, fk: ForeignKey, columns: tuple[str, ...] | None = None) -> RowSelection:
        """Copied rows of fk.table whose fk points at a row of another tenant: the target's foreign key could
        only hold by copying that tenant's row, so these are integrity errors, never copied silently."""
        child = self.plan.catalog.table(fk.table)
        q = _Query()
        alias, parent = q.alias(), q.alias()
        where = sql.SQL("{} AND EXISTS (SELECT 1 FROM {} {} WHERE {} AND {} AND NOT {})").format(
            self.copy_member(q, fk.table, alias), sql.Identifier(self.schema, fk.ref_table), sql.Identifier(parent),
            _eq(parent, fk.ref_columns, alias, fk.columns), self.member(q, fk.ref_table, parent, "other"),
            self.member(q, fk.ref_table, parent, "tenant"))
        return self._selection(q, child, alias, where, columns or child.row_key or child.writable_columns)

    def part_tests(self, table: str, mode: Mode = "tenant") -> tuple[list[str], list[sql.Composable], _Query,
                                                                     str]:
        """Each ownership rule of `table` as its own boolean, for explaining why one row belongs."""
        q = _Query()
        alias = q.alias()
        labels, tests = self._parts(q, table, alias, mode)
        return labels, tests, q, alias

    # ---- membership ---------------------------------------------------------------------------------
    def member(self, q: _Query, table: str, alias: str, mode: Mode) -> sql.Composable:
        """Boolean SQL: row `alias` of `table` belongs to the tenant (per mode) by the ownership rules."""
        tp = self.plan.tables[table]
        if tp.role is Role.TENANT:
            return self._tenant_test(sql.Identifier(alias, self.plan.tenant_key), self._key_type(table), mode)
        if tp.role not in (Role.OWNED, Role.KEPT):
            return sql.SQL("FALSE")
        if tp.role is Role.OWNED and tp.self_edges:
            name = self._owned_cte(q, table, mode)
            return self._in_cte(table, alias, name)
        _, parts = self._parts(q, table, alias, mode)
        return _any(parts)

    def copy_member(self, q: _Query, table: str, alias: str) -> sql.Composable:
        """Boolean SQL: row `alias` of `table` is one the migration copies."""
        tp = self.plan.tables[table]
        if tp.role in (Role.TENANT, Role.OWNED):
            return self.member(q, table, alias, "tenant")
        if tp.role is Role.GLOBAL:
            return sql.SQL("TRUE")
        if tp.role not in (Role.KEPT, Role.REFERENCED):
            return sql.SQL("FALSE")
        if any(fk.table == table for fk in tp.ref_edges):
            return self._in_cte(table, alias, self._copy_cte(q, table))
        return self._referenced(q, table, alias)

    # ---- pieces -------------------------------------------------------------------------------------
    def _parts(self, q: _Query, table: str, alias: str, mode: Mode) -> tuple[list[str], list[sql.Composable]]:
        tp = self.plan.tables[table]
        labels: list[str] = []
        parts: list[sql.Composable] = []
        t = self.plan.catalog.table(table)
        for col in tp.tenant_columns:
            labels.append(f"{table}.{col} holds the tenant id")
            parts.append(self._tenant_test(sql.Identifier(alias, col), self._col_type(t, col), mode))
        for fk in tp.owner_edges:
            if fk.ref_table == table:
                continue
            labels.append(f"{fk.describe()} leads to a row of the tenant")
            parts.append(self._exists_parent(q, fk, alias, mode))
        if tp.parent_side_edges:
            # Parent-side tables have no path of their own (that is what made them parent-side).
            labels.append(" or ".join(f"{fk.describe()} (one-to-one) from a row of the tenant"
                                      for fk in tp.parent_side_edges) + ", and every referrer is the tenant's")
            parts.append(sql.SQL("{} AND {}").format(
                _any([self._exists_referrer(q, fk, alias, mode) for fk in tp.parent_side_edges]),
                self._all_referrers_owned(q, table, alias, mode)))
        return labels, parts

    def _exists_parent(self, q: _Query, fk: ForeignKey, alias: str, mode: Mode) -> sql.Composable:
        parent = fk.ref_table
        if self._is_simple(parent):
            inner = q.alias()
            return sql.SQL("EXISTS (SELECT 1 FROM {} {} WHERE {} AND {})").format(
                sql.Identifier(self.schema, parent), sql.Identifier(inner),
                _eq(inner, fk.ref_columns, alias, fk.columns), self.member(q, parent, inner, mode))
        # A parent with paths of its own becomes a CTE defined once, so SQL stays linear in the schema
        # however many children test against it (Postgres inlines a CTE used once).
        cte, inner = self._owned_cte(q, parent, mode), q.alias()
        return sql.SQL("EXISTS (SELECT 1 FROM {} {} WHERE {})").format(
            sql.Identifier(cte), sql.Identifier(inner), _eq(inner, fk.ref_columns, alias, fk.columns))

    def _is_simple(self, table: str) -> bool:
        """The tenant table, or a table whose only rule is a tenant column: testing it inline is cheap."""
        tp = self.plan.tables[table]
        links = [fk for fk in tp.owner_edges if fk.ref_table != table] + tp.parent_side_edges
        return tp.role is Role.TENANT or (not links and not tp.self_edges)

    def _exists_referrer(self, q: _Query, fk: ForeignKey, alias: str, mode: Mode) -> sql.Composable:
        child = q.alias()
        return sql.SQL("EXISTS (SELECT 1 FROM {} {} WHERE {} AND {})").format(
            sql.Identifier(self.schema, fk.table), sql.Identifier(child),
            _eq(child, fk.columns, alias, fk.ref_columns), self.member(q, fk.table, child, mode))

    def _all_referrers_owned(self, q: _Query, table: str, alias: str, mode: Mode) -> sql.Composable:
        """No row anywhere references this one unless it is the tenant's own (parent-side ownership)."""
        if mode == "other":
            return sql.SQL("TRUE")
        checks = []
        for fk in self.plan.catalog.referrers(table):
            if fk.table == table:
                continue
            child = q.alias()
            owned = self.plan.tables[fk.table].role in (Role.OWNED, Role.TENANT)
            inner = self.member(q, fk.table, child, mode) if owned and fk.table not in self._building \
                else sql.SQL("FALSE")
            checks.append(sql.SQL("NOT EXISTS (SELECT 1 FROM {} {} WHERE {} AND NOT ({}))").format(
                sql.Identifier(self.schema, fk.table), sql.Identifier(child),
                _eq(child, fk.columns, alias, fk.ref_columns), inner))
        return sql.SQL(" AND ").join(checks) if checks else sql.SQL("TRUE")

    def _referenced(self, q: _Query, table: str, alias: str) -> sql.Composable:
        """The row is referenced by a copied row of some referrer. One IN per referenced key, over the UNION ALL
        of every referrer's copied, non-NULL keys: at the top of a WHERE, Postgres makes it a semi-join (one
        pass over each referrer). An OR of correlated EXISTS ran once per candidate row instead, and scanned
        the whole referrer whenever the planner guessed a match would come soon: it cannot know that a user's
        log rows all belong to that user's tenant (2 s of a 5 s import, for 58 users and 580k log rows)."""
        tp = self.plan.tables[table]
        by_key: dict[tuple[str, ...], list[sql.Composable]] = {}
        for fk in tp.ref_edges:
            if fk.table == table:
                continue
            child = q.alias()
            present = [sql.SQL("{} IS NOT NULL").format(sql.Identifier(child, c)) for c in fk.columns]
            by_key.setdefault(fk.ref_columns, []).append(sql.SQL("SELECT {} FROM {} {} WHERE {}").format(
                sql.SQL(", ").join(sql.Identifier(child, c) for c in fk.columns),
                sql.Identifier(self.schema, fk.table), sql.Identifier(child),
                sql.SQL(" AND ").join([*present, self.copy_member(q, fk.table, child)])))
        return _any([_key_in(alias, key, branches) for key, branches in by_key.items()])

    def _tenant_test(self, column: sql.Composable, type_name: str, mode: Mode) -> sql.Composable:
        # The id is cast to the column's own type: one parameter compared with text and uuid columns in the
        # same query would otherwise get inconsistent types deduced, and a cast on the column side would
        # stop index use. type_name comes from format_type() in the catalog, never from user input.
        value = sql.SQL("CAST({} AS {})").format(TENANT, sql.SQL(type_name))
        if mode == "tenant":
            return sql.SQL("{} = {}").format(column, value)
        if mode == "other":
            return sql.SQL("{} <> {}").format(column, value)
        return sql.SQL("{} IS NOT NULL").format(column)

    # ---- CTEs ---------------------------------------------------------------------------------------
    def _cte_columns(self, table: str) -> tuple[str, ...]:
        t = self.plan.catalog.table(table)
        cols = list(t.row_key)
        for fk in t.foreign_keys:
            cols += fk.columns
        for fk in self.plan.catalog.referrers(table):
            cols += fk.ref_columns
        return tuple(dict.fromkeys(cols)) or t.writable_columns

    def _owned_cte(self, q: _Query, table: str, mode: Mode) -> str:
        name = f"own_{self._index[table]}_{mode}"
        if name in q.ctes or table in self._building:
            return name
        self._building.add(table)
        try:
            alias = q.alias()
            _, parts = self._parts(q, table, alias, mode)
            base = self._select_from(table, alias, _any(parts))
            tp = self.plan.tables[table]
            self_edges = [fk for fk in tp.self_edges if tp.role is Role.OWNED]
            if self_edges:
                # A row pointing at an owned row of its own table is owned too (a reply to a comment).
                base = self._recursive(q, table, name, base, self_edges, child_is_new=True)
            q.ctes[name] = base
        finally:
            self._building.discard(table)
        return name

    def _copy_cte(self, q: _Query, table: str) -> str:
        name = f"copy_{self._index[table]}"
        if name in q.ctes or table in self._building:
            return name
        self._building.add(table)
        try:
            alias = q.alias()
            base = self._select_from(table, alias, self._referenced(q, table, alias))
            self_edges = [fk for fk in self.plan.tables[table].ref_edges if fk.table == table]
            # A copied row pointing at another row of its own table pulls that row in too (an inviter).
            q.ctes[name] = self._recursive(q, table, name, base, self_edges, child_is_new=False)
        finally:
            self._building.discard(table)
        return name

    def _recursive(self, q: _Query, table: str, name: str, base: sql.Composable, self_edges: list[ForeignKey], *,
                   child_is_new: bool) -> sql.Composable:
        """base UNION the rows of `table` linked through a self-reference to rows already in CTE `name`: the
        new row is the referencing child (ownership flows down) or the referenced parent (copies flow up)."""
        q.recursive = True
        new, seen = q.alias(), q.alias()
        child, parent = (new, seen) if child_is_new else (seen, new)
        joins = _any([_eq(child, fk.columns, parent, fk.ref_columns) for fk in self_edges])
        step = sql.SQL("SELECT {} FROM {} {} JOIN {} {} ON {}").format(
            self._cols(new, table), sql.Identifier(self.schema, table), sql.Identifier(new),
            sql.Identifier(name), sql.Identifier(seen), joins)
        return sql.SQL("{} UNION {}").format(base, step)

    def _in_cte(self, table: str, alias: str, cte: str) -> sql.Composable:
        cols = self._cte_columns(table)
        key = self.plan.catalog.table(table).row_key or cols
        return sql.SQL("({}) IN (SELECT {} FROM {})").format(
            sql.SQL(", ").join(sql.Identifier(alias, c) for c in key),
            sql.SQL(", ").join(sql.Identifier(c) for c in key), sql.Identifier(cte))

    def _select_from(self, table: str, alias: str, where: sql.Composable) -> sql.Composable:
        return sql.SQL("SELECT {} FROM {} {} WHERE {}").format(
            self._cols(alias, table), sql.Identifier(self.schema, table), sql.Identifier(alias), where)

    def _cols(self, alias: str, table: str) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(alias, c) for c in self._cte_columns(table))

    def _selection(self, q: _Query, t: Table, alias: str, where: sql.Composable, cols: tuple[str, ...]
                   ) -> RowSelection:
        query = sql.SQL("{}SELECT {} FROM {} {} WHERE {}").format(
            q.with_clause(), sql.SQL(", ").join(sql.Identifier(alias, c) for c in cols),
            sql.Identifier(self.schema, t.name), sql.Identifier(alias), where)
        return RowSelection(self.schema, t.name, cols, query, {}, t.row_key)

    def _key_type(self, table: str) -> str:
        return self._col_type(self.plan.catalog.table(table), self.plan.tenant_key)

    @staticmethod
    def _col_type(t: Table, col: str) -> str:
        column = t.column(col)
        return column.type if column else "text"


def tenant_selection(plan: Plan, table: str, tenant: str) -> RowSelection:
    """The rows of `table` a migration of `tenant` copies, bound to that tenant."""
    selection = SelectionBuilder(plan).rows(table)
    return RowSelection(selection.schema, selection.table, selection.columns, selection.query,
                        {"tenant": tenant}, selection.key)
