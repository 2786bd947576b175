"""worker.py for the soak: the same worker, with one activity failing once after its side effect
(SOAK_FAIL_ACTIVITY=name, or set_maintenance:on / set_maintenance:off), and for the kill tests a short sticky
queue timeout (SOAK_STICKY_QUEUE_SECONDS)."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

import worker as worker_module  # noqa: E402
from activities.context import LogContext  # noqa: E402
from bench.faults import activity_name, failing, once  # noqa: E402
from tenantmove.logs import configure  # noqa: E402
from tenantmove.settings import Settings  # noqa: E402


async def main() -> None:
    settings = Settings()
    configure(settings.log_format)
    name, _, which = os.environ.get("SOAK_FAIL_ACTIVITY", "").partition(":")
    async with httpx.AsyncClient(timeout=10) as http:
        deps = await worker_module.build_deps(settings, http)
        client = await worker_module.connect(settings)
        acts = worker_module.activities_for(deps)
        if name:
            when = once((lambda i: getattr(i, "on", None) == (which == "on")) if which else (lambda _: True))
            acts = [failing(a, when=when) if activity_name(a) == name else a for a in acts]
        # After a SIGKILL the workflow's next task waits on the dead worker's sticky queue for this long (SDK
        # default 10 s) before any worker gets it: a test harness setting, so that a kill costs seconds.
        sticky = float(os.environ.get("SOAK_STICKY_QUEUE_SECONDS") or 10)
        await Worker(client, task_queue=settings.task_queue, workflows=worker_module.WORKFLOWS, activities=acts,
                     interceptors=[LogContext()], sticky_queue_schedule_to_start_timeout=timedelta(seconds=sticky)).run()


if __name__ == "__main__":
    asyncio.run(main())
