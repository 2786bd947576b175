"""`demo --serve`: after the demo, the API and page stay up with the next orchestra's request waiting."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from temporalio.client import Client

from api.auth import Principal, Tokens
from api.server import serve
from console.demo import free_or, pick_tenant
from tenantmove.settings import Settings


async def serve_after_demo(client: Client, settings: Settings, shared_dsn: str, out: Callable[[str], None]) -> None:
    tenant = pick_tenant(shared_dsn)  # the next orchestra still in the shared database
    admin, superadmin = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    tokens = Tokens({superadmin: Principal(role="superadmin", name="demo-superadmin"),
                     admin: Principal(role="orchestra_admin", tenant=tenant)})
    port = free_or(8000)
    base = f"http://127.0.0.1:{port}"
    # No advance notice, as in the demo: an approval clicked on the page starts the move at once.
    server = asyncio.create_task(serve(settings.model_copy(update={"advance_notice_days": 0}), client, tokens,
                                       f"127.0.0.1:{port}"))
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        for _ in range(100):
            try:
                await http.get("/openapi.json")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        today = datetime.now(UTC).date()
        answer = await http.post("/api/tenant/request-migration", headers={"Authorization": f"Bearer {admin}"},
                                 json={"reason": "demo: the next orchestra outgrew the shared tier",
                                       "preferredTimeframe": f"{today}/{today + timedelta(days=7)}"})
    out(f"the orchestra admin of {tenant!r} requested a migration through the API: {answer.status_code} "
        f"{answer.json().get('id') or answer.json().get('detail')}")
    out(f"superadmin page: {base}/#token={superadmin}  (click Approve and watch it move)")
    out(f"API document: {base}/openapi.json; orchestra admin token for {tenant!r}: {admin}")
    out("press Ctrl-C to stop")
    await server
