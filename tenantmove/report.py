"""Render a plan and its survey for people (a table) and for machines (JSON-ready dicts)."""

from __future__ import annotations

from typing import Any

from tenantmove.plan import Plan
from tenantmove.survey import Survey


def plan_document(plan: Plan, survey: Survey) -> dict[str, Any]:
    tables = []
    for name, tp in plan.tables.items():
        counted = survey.tables.get(name)
        tables.append({
            "table": name, "role": tp.role.value, "reason": tp.reason, "copied": tp.copied,
            "deleted_at_cleanup": tp.deleted, "load_position": plan.load_order.index(name) if tp.copied else None,
            "tenant_columns": tp.tenant_columns, "paths": tp.paths,
            "rows": counted.rows if counted else 0, "bytes": counted.bytes if counted else 0,
            "orphans": counted.orphans if counted else 0,
            "orphan_sample": list(counted.orphan_sample) if counted else [],
            "conflicts": counted.conflicts if counted else 0,
            "not_followed": [fk.describe() for fk in tp.unfollowed_edges],
        })
    return {
        "tenant": survey.tenant, "schema": plan.schema, "tenant_table": plan.tenant_table,
        "load_order": plan.load_order, "delete_order": plan.delete_order,
        "rows_copied": sum(t["rows"] for t in tables), "bytes_copied": sum(t["bytes"] for t in tables),
        "tables": tables, "warnings": plan.warnings, "problems": survey.problems,
    }


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def render_plan(doc: dict[str, Any]) -> str:
    head = ("table", "role", "rows", "size", "orphans", "path to the tenant")
    rows = [(t["table"], t["role"] + ("" if t["deleted_at_cleanup"] or not t["copied"] else " (stays)"),
             f"{t['rows']:,}", _size(t["bytes"]), str(t["orphans"] or ""), (t["paths"] or [""])[0])
            for t in doc["tables"]]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
    lines = [f"Plan for tenant {doc['tenant']!r} ({doc['schema']}.{doc['tenant_table']}): "
             f"{doc['rows_copied']:,} rows, {_size(doc['bytes_copied'])} to copy", ""]
    for r in [head, *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)) + "  " + r[-1])
    lines += ["", "load order: " + " -> ".join(doc["load_order"])]
    lines += [f"warning: {w}" for w in doc["warnings"]]
    lines += [f"PROBLEM: {p}" for p in doc["problems"]]
    return "\n".join(lines)
