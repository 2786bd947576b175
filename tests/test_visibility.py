"""On the real dev server: pending approvals come from visibility (search attributes), watch follows a run."""

from __future__ import annotations

import asyncio
import json

import starter

from .world import wait_for


async def _run(argv, world, client) -> str:
    settings = world.settings.model_copy(update={"advance_notice_days": 0})
    return await starter.run(starter.parser().parse_args(argv), settings, client)


async def test_pending_lists_waiting_migrations_and_watch_follows_one(dev_env, world, capsys):
    client = dev_env.client
    tenants = ["kammerorchester-basel", "o'brien-ensemble"]
    async with world.worker(client):
        for tenant in tenants:
            await _run(["migrate", "--tenant", tenant], world, client)
        for tenant in tenants:
            await wait_for(client.get_workflow_handle(f"migrate-{tenant}"), lambda s: s.state.value == "awaiting_approval")
        for _ in range(50):  # visibility is eventually consistent
            rows = json.loads(await _run(["pending", "--json"], world, client))
            if len(rows) == 2:
                break
            await asyncio.sleep(0.1)
        assert sorted(r["tenant"] for r in rows) == sorted(tenants)
        assert all(r["figures"]["musicians"] > 0 for r in rows)
        await _run(["approve", "--tenant", tenants[0], "--approver", "ops"], world, client)
        capsys.readouterr()
        assert await _run(["watch", "--tenant", tenants[0], "--interval", "0.1"], world, client) == \
            f"{tenants[0]}: completed"
        assert "cleanup done" in capsys.readouterr().out
        rows = json.loads(await _run(["pending", "--json"], world, client))
        for _ in range(50):
            if [r["tenant"] for r in rows] == [tenants[1]]:
                break
            await asyncio.sleep(0.1)
            rows = json.loads(await _run(["pending", "--json"], world, client))
        assert [r["tenant"] for r in rows] == [tenants[1]]
        await client.get_workflow_handle(f"migrate-{tenants[1]}").terminate("test over")
