"""The planning commands: what moving a tenant would do (plan, explain) and preparing the shared database."""

from __future__ import annotations

import argparse
import json

from stagesub.local import prepare_embedded, shared_dsn
from stagesub.seed import OrchestraSpec, seed
from tenantmove import db
from tenantmove.explain import explain_row, explain_table, parse_row_key
from tenantmove.plan import plan_schema
from tenantmove.report import plan_document, render_plan
from tenantmove.settings import Settings
from tenantmove.survey import survey_tenant
from tenantmove.tenants import require_tenant


async def plan_command(settings: Settings, args: argparse.Namespace) -> str:
    dsn = prepare_embedded(settings)
    async with db.connection(dsn) as conn:
        plan = await plan_schema(conn, settings.db_schema, settings.plan_rules())
        await require_tenant(conn, plan, args.tenant)
        if args.explain:
            lines = explain_table(plan, args.explain)
            if args.row:
                key = parse_row_key(plan, args.explain, args.row)
                verdict = await explain_row(conn, plan, args.explain, key, args.tenant)
                lines += ["", *verdict.lines(args.explain, key, args.tenant)]
            return "\n".join(lines)
        doc = plan_document(plan, await survey_tenant(conn, plan, args.tenant))
    return json.dumps(doc, indent=2, ensure_ascii=False) if args.json else render_plan(doc)


async def recommend_command(settings: Settings, args: argparse.Namespace) -> str:
    from tenantmove.recommend import recommend
    from tenantmove.tenant_state import TenantRegistry

    dsn = prepare_embedded(settings)
    async with db.connection(dsn) as conn:
        plan = await plan_schema(conn, settings.db_schema, settings.plan_rules())
        registry = TenantRegistry(settings.db_schema, settings.tenant_table, plan.tenant_key, settings.tenant_columns())
        found = await recommend(conn, registry, settings.stats_queries, settings.recommend_thresholds,
                                include_all=args.all)
    if args.json:
        return json.dumps([{"tenant": r.tenant, "figures": r.figures, "crossed": r.crossed} for r in found], indent=2)
    if not found:
        return "no tenant crosses a threshold: " + ", ".join(f"{k} > {v:,}" for k, v in
                                                             settings.recommend_thresholds.items())
    return "\n".join(f"{r.tenant:<32} {', '.join(r.crossed) or '-':<48} "
                     + ", ".join(f"{k} {v:,}" for k, v in r.figures.items()) for r in found)


def seed_command(settings: Settings, args: argparse.Namespace) -> str:
    dsn = prepare_embedded(settings) if not args.tenant else shared_dsn(settings)
    if not args.tenant:
        return f"shared database ready: {db.mask_dsn(dsn)}"
    counts = seed(dsn, [OrchestraSpec(args.tenant, args.name or args.tenant, args.size, args.rows)])
    return json.dumps(counts, indent=2)
