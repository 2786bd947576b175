"""Classify every table for one tenant table: role, ownership links, paths, load and delete order.

The rules (issue 9 refines the foundation's):
- tenant:     the tenant table; the tenant's own row is copied, never deleted.
- owned:      rows reach the tenant through a tenant column (any foreign key to the tenant's key, or a column
              named TENANT_COLUMN) or through foreign keys to owned rows, over any number of hops; a row
              belongs when ANY of its non-null references leads to the tenant. Copied, then deleted.
              Also owned "from the parent side": a table with no path of its own that an owned row points at
              through a UNIQUE (one-to-one) foreign key; a row belongs when every row referencing it is the
              tenant's.
- kept:       KEEP_TABLES, and tables that reach the tenant only through them: they stay in shared; only the
              rows moved rows reference are copied.
- referenced: any other table that moved rows point at: only the referenced rows are copied, transitively.
- global:     GLOBAL_TABLES: copied whole.
- unrelated:  nothing of the tenant's and nothing referenced: left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import psycopg

from tenantmove.catalog import Catalog, ForeignKey, read_catalog
from tenantmove.errors import ConfigError, PlanError
from tenantmove.plan_model import COPIED_ROLES, Plan, PlanRules, Role, TablePlan
from tenantmove.plan_order import drop_cycle_edges, load_order

__all__ = ["COPIED_ROLES", "Plan", "PlanRules", "Role", "TablePlan", "build_plan", "plan_schema"]


def build_plan(catalog: Catalog, rules: PlanRules) -> Plan:
    tenant = catalog.table(rules.tenant_table)
    if len(tenant.primary_key) != 1:
        raise PlanError(f"tenant table {tenant.name!r} needs a one-column primary key, found "
                        f"{list(tenant.primary_key) or 'none'}", table=tenant.name)
    _check_names(catalog, rules)
    tenant_key = tenant.primary_key[0]
    keep, glob = set(rules.keep_tables), set(rules.global_tables)
    tables: dict[str, TablePlan] = {}
    tables[tenant.name] = TablePlan(tenant.name, Role.TENANT, "the tenant table: the tenant's own row")

    direct = {name: _tenant_columns(catalog, name, rules, tenant_key) for name in catalog.tables}
    owned = _reach(catalog, direct, exclude=keep | glob | {tenant.name}, through={tenant.name})
    for name in glob:
        tables[name] = TablePlan(name, Role.GLOBAL, "listed in GLOBAL_TABLES: copied whole")
    kept = _reach(catalog, direct, exclude=glob | owned | {tenant.name}, through=keep, seeds=keep)
    for name in owned | kept:
        role = Role.OWNED if name in owned else Role.KEPT
        parents = (owned if role is Role.OWNED else owned | kept) | {tenant.name}
        links = [fk for fk in catalog.table(name).foreign_keys
                 if fk.ref_table in parents and not _is_tenant_link(fk, tenant.name, tenant_key)]
        reason = ("has a tenant column or foreign keys leading to the tenant" if role is Role.OWNED
                  else "listed in KEEP_TABLES" if name in keep
                  else "reaches the tenant only through KEEP_TABLES: stays shared")
        tables[name] = TablePlan(name, role, reason, tenant_columns=direct[name], owner_edges=links)
    _add_parent_side(catalog, tables, tenant.name)
    _add_referenced(catalog, tables)
    for name in catalog.tables:
        tables.setdefault(name, TablePlan(name, Role.UNRELATED, "no path to the tenant and not referenced"))
    plan = Plan(catalog, tenant.name, tenant_key, tables, [])
    drop_cycle_edges(plan)
    plan.load_order = load_order(plan)
    for table_plan in tables.values():
        table_plan.paths = _describe_paths(plan, table_plan.name)
    plan.warnings.extend(_warnings(plan))
    plan.tables = {name: tables[name] for name in sorted(tables, key=_order_key(plan))}
    return plan


def _check_names(catalog: Catalog, rules: PlanRules) -> None:
    for setting, names in (("KEEP_TABLES", rules.keep_tables), ("GLOBAL_TABLES", rules.global_tables)):
        missing = [n for n in names if n not in catalog.tables]
        if missing:
            raise ConfigError(f"{setting} names tables not in schema {catalog.schema!r}: {', '.join(missing)}")
    both = set(rules.keep_tables) & set(rules.global_tables)
    if both:
        raise ConfigError(f"tables both in KEEP_TABLES and GLOBAL_TABLES: {', '.join(sorted(both))}")
    if rules.tenant_table in set(rules.keep_tables) | set(rules.global_tables):
        raise ConfigError(f"the tenant table {rules.tenant_table!r} cannot be kept or global")


def _is_tenant_link(fk: ForeignKey, tenant_table: str, tenant_key: str) -> bool:
    return fk.ref_table == tenant_table and fk.ref_columns == (tenant_key,)


def _tenant_columns(catalog: Catalog, name: str, rules: PlanRules, tenant_key: str) -> list[str]:
    """Columns that hold the tenant id: any foreign key to the tenant's key, whatever its name, and the
    TENANT_COLUMN name for tables that keep the id without a foreign key."""
    if name == rules.tenant_table:
        return []
    table = catalog.table(name)
    cols = [fk.columns[0] for fk in table.foreign_keys if _is_tenant_link(fk, rules.tenant_table, tenant_key)]
    if rules.tenant_column in table.column_names and rules.tenant_column not in cols:
        cols.append(rules.tenant_column)
    return cols


def _reach(catalog: Catalog, direct: dict[str, list[str]], *, exclude: set[str], through: set[str],
           seeds: Iterable[str] = ()) -> set[str]:
    """Tables linked to the tenant: seeds, tables with a tenant column, and (to a fixpoint) tables with a
    foreign key into what was found, never entering `exclude`."""
    found = {name for name in seeds}
    found |= {name for name, cols in direct.items() if cols and name not in exclude}
    changed = True
    while changed:
        changed = False
        for name, table in catalog.tables.items():
            if name in found or name in exclude:
                continue
            if any(fk.ref_table in found | through for fk in table.foreign_keys if fk.ref_table != name):
                found.add(name)
                changed = True
    return found


def _add_parent_side(catalog: Catalog, tables: dict[str, TablePlan], tenant_table: str) -> None:
    """Tables with no path of their own that owned rows point at one-to-one become owned from the parent
    side; repeated to a fixpoint so that a chain of one-to-one rows moves together."""
    changed = True
    while changed:
        changed = False
        owners = {n for n, p in tables.items() if p.role in (Role.OWNED, Role.TENANT)}
        for name in catalog.tables:
            if name in tables:
                continue
            edges = [fk for fk in catalog.referrers(name) if fk.unique and fk.table in owners and fk.table != name]
            if edges:
                referrers = ", ".join(sorted({fk.table for fk in edges}))
                # The tenant row is never deleted, so what it points at one-to-one must stay as well.
                stays = any(fk.table == tenant_table or tables[fk.table].stays_shared for fk in edges)
                tables[name] = TablePlan(
                    name, Role.OWNED, f"owned from the parent side: {referrers} point here one-to-one"
                    + ("; stays in shared with the tenant row" if stays else ""),
                    parent_side_edges=edges, stays_shared=stays,
                )
                changed = True


def _add_referenced(catalog: Catalog, tables: dict[str, TablePlan]) -> None:
    """Rows that copied rows point at must exist on the target: mark their tables and record the links."""
    changed = True
    while changed:
        changed = False
        for name in list(catalog.tables):
            if name in tables and tables[name].role in (Role.OWNED, Role.TENANT, Role.GLOBAL):
                continue
            edges = [fk for fk in catalog.referrers(name) if fk.table in tables and tables[fk.table].copied]
            if not edges:
                continue
            if name not in tables:
                tables[name] = TablePlan(name, Role.REFERENCED, "not the tenant's: only rows moved rows "
                                         "reference are copied")
                changed = True
            plan = tables[name]
            new = [fk for fk in edges if fk not in plan.ref_edges]
            if new:
                plan.ref_edges.extend(new)
                changed = True


def _describe_paths(plan: Plan, name: str, limit: int = 6) -> list[str]:
    tp = plan.tables[name]
    if tp.role is Role.TENANT:
        return [f"{name}.{plan.tenant_key} = tenant id"]
    if tp.role is Role.GLOBAL:
        return ["all rows"]
    if tp.role is Role.REFERENCED or (tp.role is Role.KEPT and tp.ref_edges and not tp.owner_edges
                                       and not tp.tenant_columns):
        return [f"referenced by {fk.table}.{'/'.join(fk.columns)}" for fk in tp.ref_edges][:limit]
    paths: list[str] = []

    def walk(table: str, prefix: str, seen: frozenset[str]) -> None:
        here = plan.tables[table]
        for col in here.tenant_columns:
            link = "" if _has_fk(plan, table, col) else " (no foreign key)"
            paths.append(f"{prefix}{table}.{col}{link} -> {plan.tenant_table}")
        for fk in here.owner_edges:
            if fk.ref_table == table:
                continue
            step = f"{prefix}{table}.{'/'.join(fk.columns)}{'' if fk.not_null else ' (nullable)'} -> "
            if fk.ref_table == plan.tenant_table:
                paths.append(step + plan.tenant_table)
            elif fk.ref_table not in seen:
                walk(fk.ref_table, step, seen | {fk.ref_table})
        for fk in here.parent_side_edges:
            step = f"{prefix}{table} <- {fk.table}.{'/'.join(fk.columns)} (one-to-one) -> "
            if fk.table == plan.tenant_table:
                paths.append(step + plan.tenant_table)
            elif fk.table not in seen:
                walk(fk.table, step, seen | {fk.table})
        for fk in here.self_edges:
            paths.append(f"{prefix}{table}.{'/'.join(fk.columns)} -> {table} (self-reference, followed "
                         "recursively)")

    walk(name, "", frozenset({name}))
    paths.sort(key=lambda p: (p.count("->"), "(nullable)" in p, p))  # shortest, then NOT NULL, first
    if tp.role is Role.KEPT and tp.ref_edges:
        paths += [f"copied where referenced by {fk.table}.{'/'.join(fk.columns)}" for fk in tp.ref_edges]
    return paths[:limit] + ([f"... {len(paths) - limit} more"] if len(paths) > limit else [])


def _has_fk(plan: Plan, table: str, column: str) -> bool:
    return any(column in fk.columns for fk in plan.catalog.table(table).foreign_keys)


def _warnings(plan: Plan) -> list[str]:
    out = []
    for name in plan.load_order:
        if not plan.catalog.table(name).row_key:
            out.append(f"{name}: no primary key or NOT NULL unique key: reloads delete and copy the table again")
    return out


def _order_key(plan: Plan) -> Callable[[str], tuple[int, str]]:
    position = {name: i for i, name in enumerate(plan.load_order)}
    return lambda name: (position.get(name, len(position)), name)


async def plan_schema(conn: psycopg.AsyncConnection, schema: str, rules: PlanRules) -> Plan:
    """Read the catalog of `schema` over `conn` and plan it."""
    return build_plan(await read_catalog(conn, schema), rules)
