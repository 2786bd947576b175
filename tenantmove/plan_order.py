"""Order for a plan: cycle-free row-selection links, and a parents-first load order that breaks FK cycles."""

from __future__ import annotations

from tenantmove.catalog import ForeignKey
from tenantmove.plan_model import Plan, Role, TablePlan


def _dependencies(plan_tables: dict[str, TablePlan]) -> dict[str, list[ForeignKey]]:
    """For each table, the links its row selection reads other tables' selections through."""
    deps: dict[str, list[ForeignKey]] = {}
    for name, tp in plan_tables.items():
        if tp.role is Role.OWNED:
            edges = tp.owner_edges + tp.parent_side_edges
        elif tp.role in (Role.KEPT, Role.REFERENCED):
            edges = list(tp.ref_edges)
        else:
            edges = []
        deps[name] = [fk for fk in edges if fk.table != fk.ref_table]
    return deps


def _other_end(name: str, fk: ForeignKey) -> str:
    return fk.ref_table if fk.table == name else fk.table


def _find_cycle(deps: dict[str, list[ForeignKey]]) -> list[tuple[str, ForeignKey]] | None:
    """A cycle as (table, link out of it) pairs, or None. Depth-first, in name order for stable reports."""
    state: dict[str, int] = {}
    path: list[tuple[str, ForeignKey]] = []

    def visit(name: str) -> list[tuple[str, ForeignKey]] | None:
        state[name] = 1
        for fk in deps.get(name, []):
            other = _other_end(name, fk)
            if state.get(other) == 1:
                path.append((name, fk))
                start = next(i for i, (table, _) in enumerate(path) if table == other)
                return path[start:]
            if other not in state:
                path.append((name, fk))
                found = visit(other)
                if found:
                    return found
                path.pop()
        state[name] = 2
        return None

    for name in sorted(deps):
        if name not in state:
            cycle = visit(name)
            if cycle:
                return cycle
    return None


def drop_cycle_edges(plan: Plan) -> None:
    """Row selection reads parents' selections, so its links must form no cycle. Where tables point at each
    other (A -> B -> A), one link per cycle is not followed, a nullable one by preference, and reported."""
    while True:
        deps = _dependencies(plan.tables)
        cycle = _find_cycle(deps)
        if not cycle:
            return
        name, fk = min(cycle, key=lambda item: (item[1].not_null, item[1].name))
        tp = plan.tables[name]
        for edges in (tp.owner_edges, tp.parent_side_edges, tp.ref_edges):
            if fk in edges:
                edges.remove(fk)
        tp.unfollowed_edges.append(fk)
        tables = " -> ".join(n for n, _ in cycle)
        plan.warnings.append(f"{name}: link {fk.describe()} is not followed for row selection: it closes the "
                             f"cycle {tables} -> {cycle[0][0]}")


def load_order(plan: Plan) -> list[str]:
    """Parents before children among copied tables. A cycle of foreign keys is broken at a nullable link
    when there is one (the loader defers that constraint); self-references need no order (one COPY)."""
    copied = {name for name, tp in plan.tables.items() if tp.copied}
    parents: dict[str, set[str]] = {name: set() for name in copied}
    fk_of: dict[tuple[str, str], list[ForeignKey]] = {}
    for name in copied:
        for fk in plan.catalog.table(name).foreign_keys:
            if fk.ref_table in copied and fk.ref_table != name:
                parents[name].add(fk.ref_table)
                fk_of.setdefault((name, fk.ref_table), []).append(fk)
    order: list[str] = []
    remaining = set(copied)
    while remaining:
        ready = sorted(n for n in remaining if not (parents[n] & remaining))
        if not ready:
            name, parent = _cycle_break(remaining, parents, fk_of)
            parents[name].discard(parent)
            plan.cycle_links.extend(fk_of[(name, parent)])
            links = ", ".join(fk.describe() for fk in fk_of[(name, parent)])
            plan.warnings.append(f"{name}: foreign-key cycle; loaded before its parent {parent} ({links}): that "
                                 "constraint is dropped on the target for the load and validated when added back")
            continue
        first = ready[0] if plan.tenant_table not in ready else plan.tenant_table
        order.append(first)
        remaining.discard(first)
    return order


def _cycle_break(remaining: set[str], parents: dict[str, set[str]],
                 fk_of: dict[tuple[str, str], list[ForeignKey]]) -> tuple[str, str]:
    def reaches(start: str, goal: str) -> bool:
        seen, stack = {start}, [start]
        while stack:
            for nxt in parents[stack.pop()] & remaining:
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    # Only a link inside a cycle (its parent leads back to the child) may be broken; tables merely waiting
    # behind a cycle are not part of it.
    candidates = sorted((name, parent) for name in remaining for parent in parents[name] & remaining
                        if reaches(parent, name))
    nullable = [c for c in candidates if all(not fk.not_null for fk in fk_of[c])]
    return (nullable or candidates)[0]


def load_parents(plan: Plan) -> dict[str, list[str]]:
    """For each copied table, the copied tables that must be loaded before it: its foreign keys' parents,
    without self-references and without the cycle links the load suspends. Tables with no path between them
    may load at the same time, on different connections or workers."""
    suspended = {(fk.table, fk.name) for fk in plan.cycle_links}
    copied = set(plan.load_order)
    parents: dict[str, list[str]] = {}
    for name in plan.load_order:
        wanted = {fk.ref_table for fk in plan.catalog.table(name).foreign_keys
                  if fk.ref_table in copied and fk.ref_table != name and (name, fk.name) not in suspended}
        parents[name] = [p for p in plan.load_order if p in wanted]
    return parents


def key_references(plan: Plan) -> dict[tuple[str, str], str]:
    """The table each foreign key of the schema references, by (table, key name): a key's name is unique only
    on its own table."""
    return {(fk.table, fk.name): fk.ref_table for t in plan.catalog.tables.values() for fk in t.foreign_keys}
