"""A local Neon API v2 server (Starlette + uvicorn) backing each project with a real role and database."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from tenantmove.errors import EnvironmentProblem
from tenantmove.neon.fake_api import FakeNeonApi
from tenantmove.neon.fake_bodies import error
from tenantmove.neon.fake_state import EachCallOnce, FakeOperation, FakeProject, FaultPlan

# Tests, the demo and the soak bench import the fault knobs and records from here, where they began.
__all__ = ["EachCallOnce", "FakeNeon", "FakeOperation", "FakeProject", "FaultPlan", "make_app"]

_BASE = "/api/v2"


class _Drop(Exception):
    """Raised after the response head is sent: uvicorn then closes the connection mid-reply."""


class _Front:
    """The ASGI app in front of the routes: checks the API key, answers 404 off the routes, injects the
    FaultPlan's faults, and records every reply into `log`."""

    def __init__(self, inner: Starlette, routes: list[Route], api_key: str, faults: FaultPlan,
                 log: list[dict[str, Any]]) -> None:
        self.inner = inner
        self.routes = routes
        self.expected = f"Bearer {api_key}"
        self.faults = faults
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        inner, faults = self.inner, self.faults
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        path = scope["path"]
        key = f"{scope['method']} {path[len(_BASE):] if path.startswith(_BASE) else path}"
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        response: Response | None = None
        if headers.get("authorization") != self.expected:
            response = error(401, "unauthorized", "authentication required")
        elif not path.startswith(_BASE + "/") or not any(r.matches(scope)[0].value == 2 for r in self.routes):
            response = error(404, "not_found", f"no route for {key}")
        elif faults.take("drop_connections", key):
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"1000"), (b"content-type", b"application/json")]})
            raise _Drop()
        elif faults.take("slow_replies", key):
            # The work is still done after the client gave up, as a real server does: a create that timed
            # out may well have made its project.
            await asyncio.sleep(faults.slow_reply_seconds)
            await inner(scope, receive, self.recorder(scope, send))
            return
        elif faults.take("rate_limited", key):
            response = error(429, "too_many_requests", "too many requests", {"Retry-After": faults.retry_after})
        elif faults.take("unavailable", key):
            response = error(503, "service_unavailable", "service unavailable")
        elif faults.take("server_errors", key):
            response = error(500, "internal_error", "internal server error")
        elif faults.take("locked", key):
            response = error(423, "locked", "project already has running operations")
        elif key == "POST /projects" and faults.take("drop_after_post", key):
            async def swallow(message: Message) -> None:
                pass

            # The project is made; its reply never arrives.
            await inner(scope, receive, self.recorder(scope, swallow))
            await send({"type": "http.response.start", "status": 201,
                        "headers": [(b"content-length", b"1000"), (b"content-type", b"application/json")]})
            raise _Drop()
        if response is not None:
            await response(scope, receive, self.recorder(scope, send))
            return
        await inner(scope, receive, self.recorder(scope, send))

    def recorder(self, scope: Scope, send: Send) -> Send:
        """Every reply, as served, for the spec test: method, route template (None before routing), body."""
        status, chunks = 0, []

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    route = getattr(scope.get("route"), "path", None)
                    self.log.append({"method": scope["method"],
                                     "path": route.removeprefix(_BASE) if route else None, "status": status,
                                     "body": json.loads(b"".join(chunks) or b"null")})
            await send(message)

        return record


def make_app(admin_dsn: str, api_key: str, *, faults: FaultPlan, operation_delay: float = 0.05,
             projects: dict[str, FakeProject] | None = None, served: list[dict[str, Any]] | None = None) -> Starlette:
    """The Neon API's paths used by NeonClient, under /api/v2; every other path answers 404."""
    api = FakeNeonApi(admin_dsn, faults, operation_delay, projects if projects is not None else {})
    routes = api.routes(_BASE)
    front = _Front(Starlette(routes=routes), routes, api_key, faults, served if served is not None else [])
    return front  # type: ignore[return-value]


class FakeNeon:
    """make_app served by uvicorn on 127.0.0.1 in a background thread: .url is the API base URL."""

    def __init__(self, admin_dsn: str, api_key: str, *, operation_delay: float = 0.05,
                 faults: FaultPlan | None = None) -> None:
        self.faults = faults or FaultPlan()
        self.projects: dict[str, FakeProject] = {}
        self.served: list[dict[str, Any]] = []
        self.api_key = api_key
        self.admin_dsn = admin_dsn
        self.operation_delay = operation_delay
        self.url = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def created_count(self) -> int:
        return sum(1 for s in self.served if s["method"] == "POST" and s["path"] == "/projects" and s["status"] == 201)

    def start(self) -> FakeNeon:
        import uvicorn

        app = make_app(self.admin_dsn, self.api_key, faults=self.faults, operation_delay=self.operation_delay,
                       projects=self.projects, served=self.served)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="critical", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True,
                                        name="fake-neon")
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise EnvironmentProblem("expected the fake neon server to start within 10s, found it did not")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}/api/v2"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> FakeNeon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

