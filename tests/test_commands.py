"""starter.py's migration commands against a worker: migrate, status, approve, reject, rollback, bad input."""

from __future__ import annotations

import json

import pytest

import starter
from workflows.client import RequestRefused

from .world import wait_for


async def _run(argv, world, client) -> str:
    # No advance notice: the test server did not skip the notice timer for a handle looked up by id (it does
    # for the handle start_workflow returns); the timer itself is covered in test_workflow.py.
    settings = world.settings.model_copy(update={"advance_notice_days": 0})
    return await starter.run(starter.parser().parse_args(argv), settings, client)


async def test_migrate_approve_status_and_rollback(temporal_env, world):
    client = temporal_env.client
    tenant = "kammerorchester-basel"
    async with world.worker(client):
        out = await _run(["migrate", "--tenant", tenant, "--reason", "growth"], world, client)
        assert "waiting for approval" in out
        # The test server answers result() only for a handle that names the run.
        run_id = (await client.get_workflow_handle(f"migrate-{tenant}").describe()).run_id
        handle = client.get_workflow_handle(f"migrate-{tenant}", run_id=run_id)
        await wait_for(handle, lambda s: s.state.value == "awaiting_approval")
        text = await _run(["status", "--tenant", tenant], world, client)
        assert "awaiting_approval" in text and "Musician" in text
        assert "approved by ops" in await _run(["approve", "--tenant", tenant, "--approver", "ops"], world, client)
        await handle.result()
        doc = json.loads(await _run(["status", "--tenant", tenant, "--json"], world, client))
        assert doc["state"] == "completed" and doc["progress"] == 100
        rolled = json.loads(await _run(["rollback", "--tenant", tenant], world, client))
        assert rolled["state"] == "rolled_back"


async def test_reject_and_bad_input(temporal_env, world):
    client = temporal_env.client
    tenant = "o'brien-ensemble"
    with pytest.raises(RequestRefused, match="no time zone"):
        await _run(["migrate", "--tenant", tenant, "--at", "2030-01-01T10:00:00"], world, client)
    with pytest.raises(RequestRefused, match="cannot read"):
        await _run(["migrate", "--tenant", tenant, "--at", "next tuesday"], world, client)
    async with world.worker(client):
        await _run(["migrate", "--tenant", tenant], world, client)
        run_id = (await client.get_workflow_handle(f"migrate-{tenant}").describe()).run_id
        handle = client.get_workflow_handle(f"migrate-{tenant}", run_id=run_id)
        await wait_for(handle, lambda s: s.state.value == "awaiting_approval")
        with pytest.raises(RequestRefused, match="already running"):
            await _run(["migrate", "--tenant", tenant], world, client)
        assert "rejected by cfo" in await _run(["reject", "--tenant", tenant, "--approver", "cfo", "--reason",
                                                "not now"], world, client)
        report = await handle.result()
    assert report["state"] == "rejected"  # a handle looked up by id returns plain JSON
