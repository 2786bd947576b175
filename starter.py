"""Command line: seed the shared database, plan a tenant's move, explain a table or a row."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from stagesub.local import prepare_embedded, shared_dsn
from stagesub.seed import SIZES, OrchestraSpec, seed
from tenantmove import db
from tenantmove.errors import EngineError
from tenantmove.explain import explain_row, explain_table, parse_row_key
from tenantmove.logs import configure
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
                verdict = await explain_row(conn, plan, args.explain, parse_row_key(plan, args.explain, args.row),
                                            args.tenant)
                lines += ["", *verdict.lines(args.explain, parse_row_key(plan, args.explain, args.row), args.tenant)]
            return "\n".join(lines)
        doc = plan_document(plan, await survey_tenant(conn, plan, args.tenant))
    return json.dumps(doc, indent=2, ensure_ascii=False) if args.json else render_plan(doc)


def seed_command(settings: Settings, args: argparse.Namespace) -> str:
    dsn = prepare_embedded(settings) if not args.tenant else shared_dsn(settings)
    if not args.tenant:
        return f"shared database ready: {db.mask_dsn(dsn)}"
    counts = seed(dsn, [OrchestraSpec(args.tenant, args.name or args.tenant, args.size, args.rows)])
    return json.dumps(counts, indent=2)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="starter.py", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="print what moving one tenant would copy and delete")
    plan.add_argument("--tenant", required=True)
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    plan.add_argument("--explain", metavar="TABLE", help="why this table's rows belong to the tenant")
    plan.add_argument("--row", metavar="PK", help="with --explain: why this row belongs (or not)")
    s = sub.add_parser("seed", help="prepare the shared database; with --tenant, add one orchestra")
    s.add_argument("--tenant")
    s.add_argument("--name")
    s.add_argument("--size", choices=SIZES, default="small")
    s.add_argument("--rows", type=int, help="rows in all for --size large (default 1,000,000)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings()
    configure(settings.log_format)
    try:
        out = asyncio.run(plan_command(settings, args)) if args.command == "plan" else seed_command(settings, args)
    except EngineError as exc:
        print(f"error: {db.mask_dsn(exc.message)}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
