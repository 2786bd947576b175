"""Benchmark of a large tenant's move (issue 6): COPY limit, per-row seed, engine import, verify, migration.

    python bench/run.py [--rows 1000000] [--quick] [--connections 4] [--mode online|offline] [--out PATH]

Builds, in a temporary directory, two fresh Postgres clusters ("shared" and "dedicated"), the StageSub schema
with one large tenant among the demo orchestras, and measures in the same run: a hand-written sequential binary
COPY pipe of the tenant's rows (the limit), one INSERT per row (the seed), the engine's import and verify, and
whole migrations on a real Temporal dev server with a worker process (its peak RSS) and a steady application
writer (the write freeze it saw, and whether every acknowledged write reached the dedicated database). Every
measurement loads into a new database. Prints the table and writes it to bench/RESULTS.md (or --out).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import measure  # noqa: E402
from bench.measure import Measurement  # noqa: E402
from bench.migration import MigrationRun, dev_server, migration_options, run_migration  # noqa: E402
from bench.report import Report  # noqa: E402
from stagesub.schema import deploy_reference_schema  # noqa: E402
from stagesub.seed import seed_for_bench  # noqa: E402
from tenantmove.pgserver import LocalPostgres  # noqa: E402

TENANT = "bench-large"
SEED_SLICE = 50_000
DEFAULT_ROWS, QUICK_ROWS = 1_000_000, 100_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, help="rows of the large tenant (default 1,000,000; --quick 100,000)")
    parser.add_argument("--quick", action="store_true",
                        help="skip the 1M-row tenant: default --rows 100,000, memory compared at rows/5 and rows, "
                             "seed slice 10,000")
    parser.add_argument("--small-rows", type=int,
                        help="the second migration size for the memory comparison (default 100,000, or rows/5 "
                             "with --quick)")
    parser.add_argument("--seed-slice", type=int,
                        help=f"rows the per-row INSERT baseline inserts when the tenant is larger (default "
                             f"{SEED_SLICE:,}; 10,000 with --quick)")
    parser.add_argument("--connections", type=int, default=4, help="connections of the parallel engine")
    parser.add_argument("--mode", choices=["online", "offline"], default="online", help="migration mode")
    parser.add_argument("--writer-interval", type=float, default=0.02, help="seconds between the writer's writes")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds a migration may take")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md")
    args = parser.parse_args(argv)
    args.rows = args.rows or (QUICK_ROWS if args.quick else DEFAULT_ROWS)
    if args.small_rows is None:
        args.small_rows = args.rows // 5 if args.quick else min(100_000, args.rows // 10)
    args.seed_slice = args.seed_slice or (10_000 if args.quick else SEED_SLICE)
    if args.rows < 1000 or not 0 < args.small_rows < args.rows:
        parser.error(f"expected --rows >= 1000 and 0 < --small-rows < --rows, found {args.rows}, {args.small_rows}")
    return args


def _seed_source(shared: LocalPostgres, rows: int) -> str:
    """A shared database template holding the large tenant of `rows` rows and the demo orchestras. Seeded an
    hour in the past, so that the seed's "active" sessions do not stop the pre-check."""
    dsn = measure.create_database(shared.dsn(), f"src_{rows}")
    deploy_reference_schema(dsn)
    seed_for_bench(dsn, rows, tenant_id=TENANT, now=datetime.now(UTC) - timedelta(hours=1))
    measure.vacuum(dsn)
    return dsn


async def bench_copy(args: argparse.Namespace, src: str, shared: LocalPostgres, dedicated: LocalPostgres,
                     schema_tpl: str) -> list[Measurement]:
    """limit, seed, engine import and verify of the large tenant, each into a fresh target."""
    plan = await measure.tenant_plan(src)
    admin = dedicated.dsn()
    # Untimed: a new cluster creates its WAL segment files as the first large load writes them (later loads
    # recycle them), and the first reader warms the caches; without this pass the limit, measured first,
    # would pay for both alone.
    target = measure.fresh_target(admin, schema_tpl, "warmup")
    await asyncio.to_thread(measure.copy_pipe_limit, src, target, plan, TENANT)
    measure.drop_database(admin, target)
    target = measure.fresh_target(admin, schema_tpl, "limit")
    measure.settle_servers(shared.dsn(), admin)
    limit = await asyncio.to_thread(measure.copy_pipe_limit, src, target, plan, TENANT)
    measure.drop_database(admin, target)
    _progress(limit)
    sliced = args.rows > args.seed_slice
    target = measure.fresh_target(admin, schema_tpl, "seed")
    measure.settle_servers(shared.dsn(), admin)
    seed = await asyncio.to_thread(measure.insert_per_row, src, target, plan, TENANT,
                                   args.seed_slice if sliced else None)
    if sliced:
        seed = Measurement(seed.name, seed.rows, seed.seconds, note=f"{seed.note}; on a {seed.rows:,}-row "
                           f"slice of the {limit.rows:,} rows (the whole tenant would take too long)")
    measure.drop_database(admin, target)
    _progress(seed)
    target = measure.fresh_target(admin, schema_tpl, "engine")
    measure.settle_servers(shared.dsn(), admin)
    engine = await measure.engine_import(src, target, plan, TENANT, args.connections)
    _progress(engine)
    verify = await measure.engine_verify(src, target, plan, TENANT, args.connections)
    _progress(verify)
    if engine.rows == 0:  # an engine result this script cannot count: the verified rows are the same rows
        engine = Measurement(engine.name, verify.rows, engine.seconds, note=engine.note)
    measure.drop_database(admin, target)
    return [limit, seed, engine, verify]


async def bench_migrations(args: argparse.Namespace, sources: dict[int, str], shared: LocalPostgres,
                           dedicated: LocalPostgres, work: Path) -> dict[int, MigrationRun]:
    runs: dict[int, MigrationRun] = {}
    options = migration_options(args.mode, args.connections)
    async with dev_server() as client:
        for rows in sorted(sources):
            shared_db = measure.create_database(shared.dsn(), f"mig_{rows}", measure.database_name(sources[rows]))
            measure.settle_servers(shared.dsn(), dedicated.dsn())
            run = await run_migration(client, shared_dsn=shared_db, admin_dsn=dedicated.dsn(), tenant=TENANT,
                                      work_dir=work / f"migration-{rows}", options=options,
                                      timeout=args.timeout, writer_interval=args.writer_interval)
            runs[rows] = run
            print(f"  migration of {rows:,} rows: {run.seconds:.1f} s, worker peak RSS "
                  f"{run.worker_peak_rss / 2**20:.0f} MB, writer's longest freeze {run.writer.longest_gap:.2f} s",
                  flush=True)
    return runs


def _progress(m: Measurement) -> None:
    print(f"  {m.name}: {m.rows:,} rows in {m.seconds:.2f} s ({m.rate:,.0f} rows/s)", flush=True)


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="stagesub-bench-") as tmp:
        work = Path(tmp)
        shared = LocalPostgres(work / "pg-shared").start()
        dedicated = LocalPostgres(work / "pg-dedicated").start()
        try:
            print(f"seeding the shared database: {args.rows:,} and {args.small_rows:,} rows", flush=True)
            sources = {rows: await asyncio.to_thread(_seed_source, shared, rows)
                       for rows in (args.small_rows, args.rows)}
            schema_tpl = measure.create_database(dedicated.dsn(), "schema_tpl")
            deploy_reference_schema(schema_tpl)
            print("copy measurements", flush=True)
            copies = await bench_copy(args, sources[args.rows], shared, dedicated, "schema_tpl")
            print("migrations (real dev server, worker process, steady writer)", flush=True)
            runs = await bench_migrations(args, sources, shared, dedicated, work)
            version = shared.version()
        finally:
            shared.destroy()
            dedicated.destroy()
    command = " ".join(["python bench/run.py", *(argv if argv is not None else sys.argv[1:])])
    report = Report(command=command, rows=args.rows, small_rows=args.small_rows, copies=copies, migrations=runs,
                    cores=os.cpu_count() or 0, postgres=version, load=load, python=platform.python_version(),
                    mode=args.mode, total_seconds=time.perf_counter() - started)
    text = report.markdown()
    print()
    print(text)
    args.out.write_text(text)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
