"""Per-request context: a request id on every response and one structlog line per request, no credentials."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantmove.logs import get_logger

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestContext:
    """Pure ASGI (not BaseHTTPMiddleware) so a Server-Sent Events stream passes through unbuffered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        # A caller's id is kept when it is harmless (it ties the caller's logs to ours); otherwise a new one.
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        started = time.monotonic()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                principal = state.get("principal")
                get_logger().info("request", method=scope["method"], path=scope["path"], status=status["code"],
                                  ms=round(1000 * (time.monotonic() - started), 1),
                                  caller=principal.who if principal else None,
                                  role=principal.role if principal else None)
