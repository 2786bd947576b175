"""Randomized soak: N migrations, each with one seeded random fault, while the tenant and a neighbour write.

    python bench/soak.py --runs 20 --seed 1 [--minutes 30]

Each run (on a fresh copy of a seeded shared database, a real Temporal dev server, a worker process) picks a
mode and a fault: an activity failing after its side effect at a random step, the worker killed (SIGKILL)
mid-import, the import's backend terminated, the local Neon server answering 5xx at each call (target neon),
or none. It checks: acknowledged writes or tenant rows missing wherever the tenant now lives (must be 0),
rows of other tenants changed (must be 0), outcome completed, rolled back, or failed after the cutover.
Exit status 1 when any run lost a row, changed another tenant's row, or ended otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.client import Client, WorkflowHandle  # noqa: E402

from activities.models import Approval, MigrateTenantInput, MigrationOptions, MigrationStatus, State  # noqa: E402
from bench.measure import create_database  # noqa: E402
from bench.migration import FINISHED, dev_server  # noqa: E402
from stagesub.checks import changed_tables, rows_lost, tenant_sums, touched  # noqa: E402
from stagesub.schema import deploy_reference_schema  # noqa: E402
from stagesub.seed import DEFAULT_ORCHESTRAS, seed  # noqa: E402
from stagesub.writer import TenantWriter, missing_writes  # noqa: E402
from tenantmove import db  # noqa: E402
from tenantmove.neon.fake import EachCallOnce, FakeNeon  # noqa: E402
from tenantmove.pgserver import LocalPostgres  # noqa: E402
from workflows.client import start_migration  # noqa: E402
from workflows.migrate import MigrateTenant  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TENANT, NEIGHBOUR, QUIET = "sibelius-sinfonia", "kammerorchester-basel", "o'brien-ensemble"
FAULTS = ("activity", "kill_worker", "terminate_backend", "neon_5xx", "none")
# Steps whose failure after the side effect the saga must undo (or, after an online cutover, leave standing).
ACTIVITIES = {"offline": ["set_maintenance:on", "export_archive", "create_database", "deploy_schema", "import_tenant",
                          "verify_import", "switch_to_dedicated", "post_migration_checks", "cleanup_shared"],
              "online": ["create_database", "deploy_schema", "start_capture", "import_tenant", "replay_changes",
                         "set_maintenance:on", "verify_import", "switch_to_dedicated", "set_maintenance:off",
                         "stop_capture", "export_archive", "cleanup_shared"]}
NEON_KEY = "napi_soak_5e4d3c2b1a09secret"


@dataclass
class Outcome:
    run: int
    mode: str
    fault: str
    injected: bool
    state: str
    lost: int
    others_changed: int
    seconds: float
    note: str = ""


class Soak:
    def __init__(self, client: Client, shared: LocalPostgres, dedicated: LocalPostgres, template: str, work: Path):
        self.client, self.shared, self.dedicated, self.template, self.work = client, shared, dedicated, template, work

    def _worker(self, shared_db: str, queue: str, prefix: str, extra: dict[str, str]) -> subprocess.Popen[bytes]:
        env = {**os.environ, "SHARED_DATABASE_URL": shared_db, "POSTGRES_ADMIN_URL": self.dedicated.dsn(),
               "STATE_DIR": str(self.work / "state"), "TEMPORAL_ADDRESS": self.client.service_client.config.target_host,
               "TASK_QUEUE": queue, "DEDICATED_NAME_PREFIX": prefix, "LOG_FORMAT": "json", "ADVANCE_NOTICE_DAYS": "0",
               **extra}
        return subprocess.Popen([sys.executable, str(ROOT / "bench" / "soak_worker.py")], env=env, cwd=ROOT,
                                stdout=(self.work / "workers.log").open("ab"), stderr=subprocess.STDOUT)

    async def run(self, n: int, rng: random.Random, timeout: float) -> Outcome:
        mode: Literal["online", "offline"] = rng.choice(["online", "offline"])
        fault = rng.choice(FAULTS)
        started = time.monotonic()
        tag = uuid.uuid4().hex[:8]
        shared_db = create_database(self.shared.dsn(), f"soak_{tag}", self.template)
        before = create_database(self.shared.dsn(), f"before_{tag}", self.template)  # the same rows, kept
        queue, extra, note = f"soak-{tag}", {}, ""
        target: Literal["postgres", "neon"] = "postgres"
        fake: FakeNeon | None = None
        if fault == "activity":
            note = rng.choice(ACTIVITIES[mode])
            extra["SOAK_FAIL_ACTIVITY"] = note
        elif fault in ("kill_worker", "terminate_backend"):
            extra["COPY_MAX_ROWS_PER_SECOND"] = "2000"  # a window mid-import to act in
        elif fault == "neon_5xx":
            fake = FakeNeon(self.dedicated.dsn(), NEON_KEY, faults=EachCallOnce(kind="unavailable")).start()
            target, extra["NEON_API_KEY"], extra["NEON_API_URL"] = "neon", NEON_KEY, fake.url
        workers = [self._worker(shared_db, queue, f"s{tag[:4]}_", extra)]
        stop = asyncio.Event()
        writers = [TenantWriter(shared_db, TENANT, seed=n, rate=50), TenantWriter(shared_db, NEIGHBOUR, seed=n + 1, rate=50)]
        writing = [asyncio.create_task(w.run(stop)) for w in writers]
        injected = fault == "none"
        try:
            input = MigrateTenantInput(tenant_id=TENANT, reason="soak", target=target, options=MigrationOptions(
                mode=mode, advance_notice_days=0, heartbeat_timeout_seconds=3))
            handle = await start_migration(self.client, input, task_queue=queue, workflow_id=f"soak-{tag}")
            await _until(handle, lambda s: s.state is State.AWAITING_APPROVAL, 60)
            await handle.execute_update(MigrateTenant.approve_migration, Approval(approver="soak", comment="go"))
            if fault in ("kill_worker", "terminate_backend"):
                await _until(handle, lambda s: s.step == "import" or s.state in FINISHED, 60)
                await asyncio.sleep(rng.uniform(0.1, 0.8))
                if fault == "kill_worker":
                    workers[0].send_signal(signal.SIGKILL)
                    workers[0].wait(10)
                    injected = True
                    workers.append(self._worker(shared_db, queue, f"s{tag[:4]}_", extra))
                else:
                    injected = await _terminate_copies(self.shared.dsn(), shared_db)
            status = await _until(handle, lambda s: s.state in FINISHED, timeout)
            if fault == "activity":
                injected = any("injected fault" in line for line in status.log) or \
                    "injected fault" in (status.last_error or "")
            elif fault == "neon_5xx" and fake is not None:
                injected = bool(fake.faults.hit)  # type: ignore[attr-defined]
            await asyncio.sleep(0.3)  # a few writes where the tenant now lives
        finally:
            stop.set()
            await asyncio.gather(*writing, return_exceptions=True)
            for w in workers:
                if w.poll() is None:
                    w.terminate()
                    w.wait(15)
            if fake is not None:
                fake.stop()
        async with db.connection(shared_db) as conn:
            cur = await conn.execute('SELECT "databaseUrl" FROM "Tenant" WHERE id = %s', (TENANT,))
            row = await cur.fetchone()
        home = (row[0] if row and row[0] else None) or shared_db
        ids = touched(w.log for w in writers)
        lost = len(await missing_writes(home, writers[0].log)) + \
            rows_lost(await tenant_sums(before, TENANT, ids), await tenant_sums(home, TENANT, ids))
        others = len(await missing_writes(shared_db, writers[1].log))
        for other in (NEIGHBOUR, QUIET):
            others += len(changed_tables(await tenant_sums(before, other, ids), await tenant_sums(shared_db, other, ids)))
        state = status.state.value
        if state == "failed" and "after the cutover" in " ".join(status.log[-3:]):
            state = "failed after the cutover"
        return Outcome(n, mode, fault + (f" ({note})" if note else ""), injected, state, lost, others,
                       time.monotonic() - started, "" if state == "completed" else (status.last_error or "")[:160])


async def _until(handle: WorkflowHandle, predicate, timeout: float) -> MigrationStatus:  # type: ignore[type-arg, no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        status: MigrationStatus = await handle.query(MigrateTenant.query_status)
        if predicate(status):
            return status
        if time.monotonic() > deadline:
            raise RuntimeError(f"run stuck: state {status.state.value} step {status.step}; last log {status.log[-3:]}")
        await asyncio.sleep(0.1)


async def _terminate_copies(admin: str, shared_db: str) -> bool:
    """Terminate the migration's own backends reading the tenant's rows (COPY): a connection lost mid-import."""
    name = shared_db.rsplit("dbname=", 1)[-1].split()[0] if "dbname=" in shared_db else shared_db.rsplit("/", 1)[-1]
    for _ in range(30):
        async with db.connection(admin, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                "pg_backend_pid() AND application_name = 'stagesub-migrate' AND query ILIKE 'COPY%%'", (name,))
            row = await cur.fetchone()
        if row and row[0]:
            return True
        await asyncio.sleep(0.1)
    return False


def table(outcomes: list[Outcome]) -> str:
    lines = ["| run | mode | fault | injected | outcome | rows lost | others' rows changed | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {o.run} | {o.mode} | {o.fault} | {'yes' if o.injected else 'no'} | {o.state} | {o.lost} | "
              f"{o.others_changed} | {o.seconds:.1f} |" for o in outcomes]
    count = {s: sum(1 for o in outcomes if o.state == s) for s in ("completed", "rolled_back", "failed after the cutover")}
    lines += ["", "| runs | faults injected | completed | rolled back | failed after the cutover | rows lost | "
              "rows of other tenants changed |", "|---|---|---|---|---|---|---|",
              f"| {len(outcomes)} | {sum(o.injected and o.fault != 'none' for o in outcomes)} | {count['completed']} | "
              f"{count['rolled_back']} | {count['failed after the cutover']} | {sum(o.lost for o in outcomes)} | "
              f"{sum(o.others_changed for o in outcomes)} |"]
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=60, help="start no new run after this long")
    parser.add_argument("--run-timeout", type=float, default=180, help="seconds one migration may take")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"expected --runs >= 1, found {args.runs}")
    rng, outcomes = random.Random(args.seed), []
    deadline = time.monotonic() + args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="stagesub-soak-") as tmp:
        work = Path(tmp)
        shared, dedicated = LocalPostgres(work / "pg-shared").start(), LocalPostgres(work / "pg-dedicated").start()
        try:
            template = create_database(shared.dsn(), "soak_template")
            deploy_reference_schema(template)
            seed(template, DEFAULT_ORCHESTRAS, now=datetime.now(UTC) - timedelta(hours=1))
            async with dev_server() as client:
                soak = Soak(client, shared, dedicated, "soak_template", work)
                for n in range(1, args.runs + 1):
                    if time.monotonic() > deadline:
                        print(f"time is up after {n - 1} runs", flush=True)
                        break
                    outcome = await soak.run(n, rng, args.run_timeout)
                    outcomes.append(outcome)
                    print(f"run {n}: {outcome.mode} {outcome.fault}: {outcome.state}, lost {outcome.lost}, "
                          f"others changed {outcome.others_changed} ({outcome.seconds:.1f} s) {outcome.note}", flush=True)
        finally:
            shared.destroy()
            dedicated.destroy()
    print()
    print(table(outcomes))
    bad = [o for o in outcomes if o.lost or o.others_changed or
           o.state not in ("completed", "rolled_back", "failed after the cutover")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
