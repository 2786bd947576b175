"""Time discovery and planning on wide schemas (issue 9's target: 60 tables, 120 foreign keys under 2 s).

    python bench/plan_scale.py [--tables 60 --fks 120]

Prints catalog read, classification, SQL generation for every table, and one EXPLAIN per table (the server
parsing and planning each selection), for the given size and for 2x and 4x of it, so growth is visible.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.wide_schema import wide_schema_sql  # noqa: E402
from tenantmove import db  # noqa: E402
from tenantmove.catalog import read_catalog  # noqa: E402
from tenantmove.pgserver import LocalPostgres  # noqa: E402
from tenantmove.plan import PlanRules, build_plan  # noqa: E402
from tenantmove.selection import SelectionBuilder  # noqa: E402


async def measure(dsn: str, tables: int, fks: int) -> dict[str, float]:
    async with db.connection(dsn, autocommit=True) as conn:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        await conn.execute(wide_schema_sql(tables, fks))
        t0 = time.perf_counter()
        catalog = await read_catalog(conn)
        t1 = time.perf_counter()
        plan = build_plan(catalog, PlanRules(tenant_table="tenant", keep_tables=()))
        t2 = time.perf_counter()
        builder = SelectionBuilder(plan)
        texts = [builder.rows(name).query.as_string(conn) for name in plan.load_order]
        t3 = time.perf_counter()
        for text in texts:
            await conn.execute(b"EXPLAIN " + text.encode(), {"tenant": "a"})
        t4 = time.perf_counter()
    return {"catalog": t1 - t0, "plan": t2 - t1, "sql": t3 - t2, "explain": t4 - t3,
            "largest_sql": max(len(t) for t in texts)}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tables", type=int, default=60)
    parser.add_argument("--fks", type=int, default=120)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = LocalPostgres(Path(tmp) / "pg").start()
        try:
            print(f"{'tables':>7} {'fks':>5} {'catalog s':>10} {'plan s':>8} {'sql s':>7} {'explain s':>10} "
                  f"{'total s':>8} {'vs 2 s':>7} {'largest SQL':>12}")
            for factor in (1, 2, 4):
                n, f = args.tables * factor, args.fks * factor
                r = await measure(server.dsn(), n, f)
                total = r["catalog"] + r["plan"] + r["sql"] + r["explain"]
                print(f"{n:>7} {f:>5} {r['catalog']:>10.3f} {r['plan']:>8.3f} {r['sql']:>7.3f} "
                      f"{r['explain']:>10.3f} {total:>8.3f} {total / 2:>6.2f}x {int(r['largest_sql']):>12,}")
        finally:
            server.destroy()


if __name__ == "__main__":
    asyncio.run(main())
