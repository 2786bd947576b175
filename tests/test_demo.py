"""The README's main command: the demo on a fresh state directory, with the real Temporal dev server."""

from __future__ import annotations

from activities.models import State
from console.demo import run_demo
from tenantmove.pgserver import LocalPostgres
from tenantmove.settings import Settings


async def test_demo_migrates_an_orchestra_end_to_end(tmp_path):
    settings = Settings(state_dir=tmp_path, shared_database_url=None, postgres_admin_url=None, log_format="json")
    lines: list[str] = []
    try:
        report = await run_demo(settings, out=lines.append)
        again = await run_demo(settings, out=lines.append, target="neon")  # the next orchestra, through Neon
    finally:
        for name in ("pg-shared", "pg-dedicated"):
            LocalPostgres(tmp_path / name).destroy()
    assert report.state is State.COMPLETED and again.state is State.COMPLETED
    assert report.tenant_id != again.tenant_id
    assert report.database.kind == "postgres" and again.database.kind == "neon"
    assert "local Neon API at http://127.0.0.1:" in "\n".join(lines)
    text = "\n".join(lines)
    assert "Temporal UI: http://127.0.0.1:" in text and "cleanup done" in text and "100%" in text
    assert report.tables["Musician"] > 0 and report.cleanup_done


async def test_demo_serve_leaves_a_second_orchestra_waiting_on_the_page(tmp_path):
    """`demo --serve`: the page and API stay up with the next orchestra's request, which an approval moves."""
    import asyncio
    import re

    import httpx

    from api.demo import serve_after_demo

    settings = Settings(state_dir=tmp_path, shared_database_url=None, postgres_admin_url=None, log_format="json")
    lines: list[str] = []
    outcome: dict[str, object] = {}

    async def click_through(client, settings, shared_dsn, out) -> None:  # noqa: ANN001
        serving = asyncio.create_task(serve_after_demo(client, settings, shared_dsn, out))
        try:
            for _ in range(300):
                page = next((line for line in lines if line.startswith("superadmin page:")), None)
                if page or serving.done():
                    break
                await asyncio.sleep(0.1)
            assert page, lines[-5:]
            base, token = re.match(r"superadmin page: (http://[^/]+)/#token=(\S+)", page).groups()
            auth = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                assert "<html" in (await http.get("/")).text.lower()
                for _ in range(100):  # visibility catches up with the request within moments
                    pending = (await http.get("/api/migrations?state=awaiting_approval", headers=auth)).json()
                    if pending["migrations"]:
                        break
                    await asyncio.sleep(0.1)
                [waiting] = pending["migrations"]
                decided = await http.post(f"/api/migrations/{waiting['workflow_id']}/approve", headers=auth, json={})
                assert decided.status_code == 200, decided.text
                for _ in range(600):
                    status = (await http.get(f"/api/migrations/{waiting['workflow_id']}", headers=auth)).json()
                    if status["state"] in ("completed", "failed", "rolled_back"):
                        break
                    await asyncio.sleep(0.1)
                outcome.update(status=status, tenant=waiting["tenant"])
        finally:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)

    try:
        first = await run_demo(settings, out=lines.append, after=click_through)
    finally:
        for name in ("pg-shared", "pg-dedicated"):
            LocalPostgres(tmp_path / name).destroy()
    assert first.state is State.COMPLETED
    assert outcome["status"]["state"] == "completed", outcome
    assert any("requested a migration through the API: 202" in line for line in lines), lines[-6:]
