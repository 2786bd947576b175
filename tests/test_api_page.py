"""The superadmin page in headless Chromium against a real uvicorn server and the real dev server's visibility."""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import date
from pathlib import Path

import pytest
import uvicorn
from temporalio.service import RPCError

from api.app import create_app
from api.auth import Principal, Tokens
from stagesub.seed import OrchestraSpec, seed

from .api_support import SUPER, TOKENS, api_client, auth
from .world import SEED_NOW

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).parent / "artifacts"
# An orchestra of its own: other tests on the session's dev server list the default ones by tenant.
TENANT = "page-test-philharmonic"
ADMIN = "admin-page-test-token-5e0a"
WID = f"migrate-{TENANT}"


async def _pending(http) -> list[dict]:
    for _ in range(100):  # visibility is eventually consistent
        rows = (await http.get("/api/migrations", params={"state": "awaiting_approval"}, headers=auth(SUPER))).json()
        mine = [r for r in rows["migrations"] if r["workflow_id"] == WID]
        if mine:
            return mine
        await asyncio.sleep(0.1)
    raise AssertionError("the request never showed up in visibility")


async def test_approve_on_the_page_and_watch_it_finish(dev_env, world):
    client = dev_env.client
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    seed(world.shared, [OrchestraSpec(TENANT, "Page Test Philharmonic", "small")], now=SEED_NOW)
    app = create_app(world.settings.model_copy(update={"advance_notice_days": 0}), client,
                     Tokens({**TOKENS, ADMIN: Principal(role="orchestra_admin", tenant=TENANT)}))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           lifespan="off", timeout_graceful_shutdown=2))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with world.worker(client), api_client(app, [*TOKENS, ADMIN, "postgresql://"], base_url=base,
                                                   transport=None) as http:
            while not server.started:
                await asyncio.sleep(0.05)
            today = date.today()
            asked = await http.post("/api/tenant/request-migration", headers=auth(ADMIN), json={
                "reason": "300 musicians now", "preferredTimeframe": f"{today}/{today.replace(year=today.year + 1)}"})
            assert asked.status_code == 202, asked.text
            [row] = await _pending(http)
            assert row["tenant"] == TENANT and row["reason"] == "300 musicians now"
            assert row["preferred_timeframe"].startswith(f"{today}T00:00:00+00:00/")
            assert row["status"]["stats"]["figures"]["musicians"] > 0 and row["status"]["stats"]["rows"] > 0
            assert (await http.get("/api/migrations", headers=auth(ADMIN))).status_code == 403

            if not os.path.exists(CHROMIUM):
                pytest.skip(f"{CHROMIUM} is absent (.ci/run installs Debian's chromium); the API part passed")
            await _click_through(base)
            status = (await http.get(f"/api/migrations/{WID}", headers=auth(SUPER))).json()
            assert status["state"] == "completed" and status["approved_by"] == "ada"
    finally:
        server.should_exit = True
        await serving
        try:
            await client.get_workflow_handle(WID).terminate("test over")
        except RPCError:
            pass


async def _click_through(base: str) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1200, "height": 1400})
            await page.goto(f"{base}/#token={SUPER}")
            assert "token" not in page.url  # taken out of the address bar at once
            await page.locator(f'tr[data-pending="{WID}"] button.approve').click(timeout=30_000)
            card = page.locator(f'[data-run="{WID}"]')
            await card.locator('.overall[data-percent="100"]').wait_for(timeout=120_000)
            assert "completed" in await card.locator(".state").inner_text()
            assert await card.locator(".grid .bar.done").count() > 10  # the steps' and the tables' bars
            await page.locator(f'tr[data-finished="{WID}"] .state').filter(has_text="completed").wait_for(timeout=30_000)
            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "superadmin-page.png"
            await page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
            assert await page.locator("#message").inner_text() == ""
        finally:
            await browser.close()
