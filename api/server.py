"""Serve the API with uvicorn: `starter.py serve`, and the demo's `--serve`."""

from __future__ import annotations

import uvicorn
from temporalio.client import Client

from api.app import create_app
from api.auth import Tokens
from tenantmove.logs import get_logger
from tenantmove.settings import Settings


def host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


async def serve(settings: Settings, client: Client, tokens: Tokens | None = None,
                address: str | None = None) -> None:
    """Until cancelled (Ctrl-C). uvicorn's own access log is off: the app logs one structlog line per request."""
    app = create_app(settings, client, tokens)
    if not len(app.state.tokens):
        get_logger().warning("API_TOKENS is empty: every API call will be refused (401)")
    host, port = host_port(address or settings.api_address)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, access_log=False, log_level="warning",
                                           lifespan="off"))
    get_logger(url=f"http://{host}:{port}/").info("API and superadmin page listening")
    await server.serve()
