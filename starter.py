"""Command line: demo, migrate, approve, reject, status, rollback, plan, seed, serve."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from console import commands
from console.planning import plan_command, recommend_command, seed_command
from tenantmove.db import mask_dsn
from tenantmove.errors import EngineError
from tenantmove.logs import configure
from tenantmove.settings import Settings
from workflows import codec
from workflows.client import RequestRefused


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="starter.py", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="everything local: migrate one orchestra end to end")
    demo.add_argument("--keep", action="store_true", help="leave the Temporal UI up afterwards")
    demo.add_argument("--target", choices=["postgres", "neon"], default="postgres", help="dedicated database kind")
    demo.add_argument("--serve", action="store_true", help="then serve the API and page, a second orchestra waiting")
    sub.add_parser("serve", help="the HTTP API and the superadmin page (API_ADDRESS, API_TOKENS)")
    m = sub.add_parser("migrate", help="request a migration (it then waits for approval)")
    m.add_argument("--tenant", required=True)
    m.add_argument("--at", help="ISO 8601 time with zone; default: as soon as ADVANCE_NOTICE_DAYS allows")
    m.add_argument("--target", choices=["postgres", "neon"], default="postgres")
    m.add_argument("--reason")
    m.add_argument("--timeframe", help="preferred time frame, free text")
    for name in ("approve", "reject"):
        d = sub.add_parser(name, help=f"{name} a waiting migration")
        d.add_argument("--tenant", required=True)
        d.add_argument("--approver", required=True)
        d.add_argument("--comment" if name == "approve" else "--reason", required=name == "reject")
        if name == "approve":
            d.add_argument("--at", help="schedule: ISO 8601 time with zone")
    s = sub.add_parser("status", help="a migration's state, step, progress and per-table rows")
    s.add_argument("--tenant")
    s.add_argument("--id", help="workflow id (default migrate-<tenant>)")
    s.add_argument("--json", action="store_true")
    pend = sub.add_parser("pending", help="migrations waiting for approval, with the tenants' figures")
    pend.add_argument("--json", action="store_true")
    w = sub.add_parser("watch", help="follow a migration until it ends")
    w.add_argument("--tenant")
    w.add_argument("--id", help="workflow id (default migrate-<tenant>)")
    w.add_argument("--interval", type=float, default=1.0)
    r = sub.add_parser("rollback", help="undo a completed migration")
    r.add_argument("--tenant", required=True)
    plan = sub.add_parser("plan", help="print what moving one tenant would copy and delete")
    plan.add_argument("--tenant", required=True)
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    plan.add_argument("--explain", metavar="TABLE", help="why this table's rows belong to the tenant")
    plan.add_argument("--row", metavar="PK", help="with --explain: why this row belongs (or not)")
    rec = sub.add_parser("recommend", help="tenants past the automatic triggers for a dedicated database")
    rec.add_argument("--json", action="store_true")
    rec.add_argument("--all", action="store_true", help="list every shared tenant with its figures")
    seed = sub.add_parser("seed", help="prepare the shared database; with --tenant, add one orchestra")
    seed.add_argument("--tenant")
    seed.add_argument("--name")
    seed.add_argument("--size", choices=["small", "institution", "large"], default="small")
    seed.add_argument("--rows", type=int, help="rows in all for --size large (default 1,000,000)")
    codec_server = sub.add_parser("codec-server", help="decode encrypted payloads for the Temporal UI and CLI")
    codec_server.add_argument("--host", default="127.0.0.1")
    codec_server.add_argument("--port", type=int, default=8081)
    sub.add_parser("schedule-retention", help="create or update the daily archive purge (a Temporal Schedule)")
    return p


async def run(args: argparse.Namespace, settings: Settings, client: Client | None = None) -> str:
    if args.command == "plan":
        return await plan_command(settings, args)
    if args.command == "seed":
        return seed_command(settings, args)
    if args.command == "recommend":
        return await recommend_command(settings, args)
    if args.command == "demo":
        from api.demo import serve_after_demo
        from console.demo import run_demo

        report = await run_demo(settings, keep=args.keep, target=args.target,
                                after=serve_after_demo if args.serve else None)
        return f"demo finished: {report.state.value}"
    if args.command == "codec-server":
        from console.codec_server import serve as serve_codec

        return await serve_codec(settings, args.host, args.port)
    client = client or await codec.connect(settings)
    if args.command == "serve":
        from api.server import serve

        await serve(settings, client)
        return "stopped"
    if args.command == "schedule-retention":
        from workflows.schedules import ensure_retention_schedule

        return await ensure_retention_schedule(client, settings)
    command: Callable[..., Awaitable[str]] = getattr(commands, args.command)
    if args.command in ("migrate", "rollback"):
        return await command(client, settings, args)
    return await command(client, args)


def main(argv: list[str] | None = None, client: Client | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings()
    configure(settings.log_format)
    try:
        print(asyncio.run(run(args, settings, client)))
    except (EngineError, RequestRefused, WorkflowUpdateFailedError, RPCError) as exc:
        message = getattr(exc, "message", None) or str(exc.cause if isinstance(exc, WorkflowUpdateFailedError) else exc)
        print(f"error: {mask_dsn(str(message))}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
