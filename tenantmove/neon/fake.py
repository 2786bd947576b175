"""A local Neon API v2 server (Starlette + uvicorn) backing each project with a real role and database."""

from __future__ import annotations

import asyncio
import json
import re
import secrets as random_secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tenantmove.db import connect
from tenantmove.errors import EnvironmentProblem
from tenantmove.providers.postgres import scram_verifier

_WORDS = ("quiet", "river", "bold", "frost", "amber", "cedar", "misty", "lake", "young", "field")


@dataclass
class FaultPlan:
    """Knobs a test turns: each counter is spent by the next requests matching `target` ("METHOD /path"
    prefix, e.g. "POST /projects"; None = any request)."""

    target: str | None = None
    rate_limited: int = 0          # answer 429 with Retry-After
    retry_after: str = "0"
    unavailable: int = 0           # answer 503
    server_errors: int = 0         # answer 500 (before doing anything)
    locked: int = 0                # answer 423
    drop_connections: int = 0      # drop the connection before doing anything
    drop_after_post: int = 0       # do a POST /projects, then drop the connection (the reply is lost)
    slow_replies: int = 0          # wait slow_reply_seconds, then do the request: the client has timed out
    slow_reply_seconds: float = 1.0
    failed_operations: int = 0     # the next N projects' operations go `failed`, then Neon's retry finishes them
    error_operations: int = 0      # the next N projects' operations end in `error`
    slow_operations: float = 0.0   # seconds added to every new operation
    uri_without_password: bool = False

    def take(self, knob: str, key: str) -> bool:
        if self.target is not None and not key.startswith(self.target):
            return False
        left = getattr(self, knob)
        if left > 0:
            setattr(self, knob, left - 1)
            return True
        return False


_ID_SEGMENT = re.compile(r"(?<=/projects/)[^/]+|(?<=/branches/)[^/]+|(?<=/roles/)[^/]+|(?<=/operations/)[^/]+")


@dataclass
class EachCallOnce(FaultPlan):
    """One fault kind (a FaultPlan knob) at every distinct call, once: the first request of each call
    ("GET /projects/{id}/operations", ...) gets it, the retry goes through; `hit` lists the calls faulted.
    Operation knobs ("failed_operations", "error_operations") apply to the first project's operations."""

    kind: str = "unavailable"
    hit: list[str] = field(default_factory=list)

    def take(self, knob: str, key: str) -> bool:
        if knob != self.kind:
            return False
        call = _ID_SEGMENT.sub("{id}", key)
        if call in self.hit:
            return False
        self.hit.append(call)
        return True


@dataclass
class FakeOperation:
    id: str
    action: str
    created: float
    runs: float          # seconds from created to finished
    fail: str | None = None  # "failed" (recovers at `runs`) or "error" (never does)

    def status(self, now: float) -> str:
        age = now - self.created
        if self.fail == "error":
            return "running" if age < self.runs / 2 else "error"
        if age >= self.runs:
            return "finished"
        if self.fail == "failed" and age >= self.runs / 2:
            return "failed"
        return "scheduling" if age < self.runs / 4 else "running"


@dataclass
class FakeProject:
    id: str
    name: str
    region_id: str
    pg_version: int
    min_cu: float
    max_cu: float
    database: str
    role: str
    local_database: str
    local_role: str
    password: str
    branch_id: str
    endpoint_id: str
    created_at: str
    operations: list[FakeOperation] = field(default_factory=list)


def _iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "request_id": str(uuid.uuid4())}, status, headers)


class _Drop(Exception):
    """Raised after the response head is sent: uvicorn then closes the connection mid-reply."""


def make_app(admin_dsn: str, api_key: str, *, faults: FaultPlan, operation_delay: float = 0.05,
             projects: dict[str, FakeProject] | None = None, served: list[dict[str, Any]] | None = None) -> Starlette:
    """The Neon API's paths used by NeonClient, under /api/v2; every other path answers 404."""
    state: dict[str, FakeProject] = projects if projects is not None else {}
    log: list[dict[str, Any]] = served if served is not None else []
    server = conninfo_to_dict(admin_dsn)
    host, port = str(server.get("host") or "127.0.0.1"), int(server.get("port") or 5432)
    lock = asyncio.Lock()

    def reply(request: Request, body: dict[str, Any], status: int = 200) -> JSONResponse:
        return JSONResponse(body, status)

    def project_body(p: FakeProject) -> dict[str, Any]:
        now = _iso()
        return {
            "id": p.id, "platform_id": "aws", "region_id": p.region_id, "name": p.name, "provisioner": "k8s-neonvm",
            "default_endpoint_settings": {"autoscaling_limit_min_cu": p.min_cu, "autoscaling_limit_max_cu": p.max_cu,
                                          "suspend_timeout_seconds": 0},
            "pg_version": p.pg_version, "proxy_host": f"{p.region_id}.aws.neon.tech",
            "branch_logical_size_limit": 0, "branch_logical_size_limit_bytes": 0, "store_passwords": True,
            "cpu_used_sec": 0, "creation_source": "console", "history_retention_seconds": 86400,
            "created_at": p.created_at, "updated_at": now, "owner_id": "owner-1",
            "consumption_period_start": p.created_at, "consumption_period_end": now, "active_time_seconds": 0,
            "compute_time_seconds": 0, "written_data_bytes": 0, "data_transfer_bytes": 0,
            "data_storage_bytes_hour": 0,
        }

    def list_item(p: FakeProject) -> dict[str, Any]:
        return {"id": p.id, "platform_id": "aws", "region_id": p.region_id, "name": p.name,
                "provisioner": "k8s-neonvm", "pg_version": p.pg_version, "proxy_host": f"{p.region_id}.aws.neon.tech",
                "branch_logical_size_limit": 0, "branch_logical_size_limit_bytes": 0, "store_passwords": True,
                "active_time": 0, "cpu_used_sec": 0, "creation_source": "console", "created_at": p.created_at,
                "updated_at": _iso(), "owner_id": "owner-1"}

    def op_body(p: FakeProject, op: FakeOperation) -> dict[str, Any]:
        now = time.time()
        status = op.status(now)
        body: dict[str, Any] = {
            "id": op.id, "project_id": p.id, "branch_id": p.branch_id, "action": op.action, "status": status,
            "failures_count": 1 if op.fail and status in ("failed", "error", "finished") else 0,
            "created_at": _iso(op.created), "updated_at": _iso(min(now, op.created + op.runs)),
            "total_duration_ms": int(min(now - op.created, op.runs) * 1000)}
        if op.action in ("start_compute", "apply_config"):
            body["endpoint_id"] = p.endpoint_id
        if status in ("failed", "error"):
            body["error"] = "compute failed to start" if status == "error" else "transient storage failure"
        if status == "failed":
            body["retry_at"] = _iso(op.created + op.runs)
        return body

    def uri(p: FakeProject, with_password: bool = True) -> str:
        secret = f":{quote(p.password, safe='')}" if with_password else ""
        # Neon's URIs say sslmode=require; this fake's Postgres is a loopback server without TLS, so its
        # URIs say so explicitly (a DSN's own sslmode is kept over DATABASE_SSLMODE).
        return (f"postgresql://{quote(p.local_role, safe='')}{secret}@{host}:{port}/"
                f"{quote(p.local_database, safe='')}?sslmode=disable")

    def branch_body(p: FakeProject) -> dict[str, Any]:
        return {"id": p.branch_id, "project_id": p.id, "name": "main", "current_state": "ready",
                "state_changed_at": p.created_at, "creation_source": "console", "created_at": p.created_at,
                "updated_at": _iso(), "default": True, "primary": True, "protected": False, "cpu_used_sec": 0,
                "active_time_seconds": 0, "compute_time_seconds": 0, "written_data_bytes": 0, "data_transfer_bytes": 0}

    def new_ops(p: FakeProject, actions: tuple[str, ...]) -> list[FakeOperation]:
        fail = "error" if faults.take("error_operations", "op") else "failed" if faults.take(
            "failed_operations", "op") else None
        ops = [FakeOperation(str(uuid.uuid4()), action, time.time(), operation_delay + faults.slow_operations, fail)
               for action in actions]
        p.operations.extend(ops)
        return ops

    def project_or_404(request: Request) -> FakeProject | Response:
        p = state.get(request.path_params["project_id"])
        if p is None:
            return _error(404, "not_found", "project not found")
        return p

    async def create_project(request: Request) -> Response:
        body = (await request.json()).get("project") or {}
        settings = body.get("default_endpoint_settings") or {}
        branch = body.get("branch") or {}
        pg_version = int(body.get("pg_version", 17))
        if not 14 <= pg_version <= 18:
            return _error(422, "invalid_request", f"unsupported pg_version {pg_version}")
        pid = f"{random_secrets.choice(_WORDS)}-{random_secrets.choice(_WORDS)}-{random_secrets.randbelow(10**8):08d}"
        database = branch.get("database_name") or "neondb"
        role = branch.get("role_name") or f"{database}_owner"
        local = "np_" + pid.replace("-", "_")
        p = FakeProject(pid, body.get("name") or pid, body.get("region_id") or "aws-us-east-2", pg_version,
                        float(settings.get("autoscaling_limit_min_cu", 0.25)),
                        float(settings.get("autoscaling_limit_max_cu", 0.25)), database, role,
                        f"{local}_{database}"[:63], f"{local}_{role}"[:63], random_secrets.token_urlsafe(18),
                        f"br-{pid}", f"ep-{pid}", _iso())
        async with lock:
            conn = await connect(admin_dsn, autocommit=True, application_name="fake-neon")
            try:
                # Neon's project roles may create roles (neon_superuser gives CREATEROLE), as a client making
                # a least-privileged role for its application does.
                await conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
                    sql.Identifier(p.local_role), sql.Literal(scram_verifier(p.password))))
                await conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(p.local_database), sql.Identifier(p.local_role)))
            finally:
                await conn.close()
            state[pid] = p
        ops = new_ops(p, ("create_timeline", "start_compute"))
        now = _iso()
        out = {
            "project": project_body(p),
            "connection_uris": [{"connection_uri": uri(p), "connection_parameters": {
                "database": p.database, "password": p.password, "role": p.role, "host": f"{p.endpoint_id}.local",
                "pooler_host": f"{p.endpoint_id}-pooler.local"}}],
            "roles": [{"branch_id": p.branch_id, "name": p.role, "password": p.password, "protected": False,
                       "created_at": now, "updated_at": now}],
            "databases": [{"id": 1, "branch_id": p.branch_id, "name": p.database, "owner_name": p.role,
                           "created_at": now, "updated_at": now}],
            "operations": [op_body(p, op) for op in ops],
            "branch": branch_body(p),
            "endpoints": [{"host": f"{p.endpoint_id}.local", "id": p.endpoint_id, "project_id": p.id,
                           "branch_id": p.branch_id, "region_id": p.region_id, "autoscaling_limit_min_cu": p.min_cu,
                           "autoscaling_limit_max_cu": p.max_cu, "type": "read_write", "current_state": "init",
                           "pending_state": "active", "pooler_enabled": False, "pooler_mode": "transaction",
                           "disabled": False, "passwordless_access": False, "creation_source": "console",
                           "created_at": now, "updated_at": now, "settings": {},
                           "proxy_host": f"{p.region_id}.aws.neon.tech", "suspend_timeout_seconds": 0,
                           "provisioner": "k8s-neonvm"}],
        }
        return reply(request, out, 201)

    async def list_projects(request: Request) -> Response:
        search = request.query_params.get("search", "")
        try:
            limit = int(request.query_params.get("limit", "10"))
        except ValueError:
            return _error(422, "invalid_request", "limit must be an integer")
        if not 1 <= limit <= 400:
            return _error(422, "invalid_request", "limit must be between 1 and 400")
        cursor = request.query_params.get("cursor")
        items = [p for p in state.values() if search in p.name or search in p.id]
        if cursor:
            ids = [p.id for p in items]
            items = items[ids.index(cursor) + 1:] if cursor in ids else []
        page = items[:limit]
        out: dict[str, Any] = {"projects": [list_item(p) for p in page], "unavailable_project_ids": [],
                               "applications": {}, "integrations": {}}
        if page or cursor:  # Pagination.cursor has minLength 1
            out["pagination"] = {"cursor": page[-1].id if page else cursor}
        return reply(request, out)

    async def get_project(request: Request) -> Response:
        p = project_or_404(request)
        return p if isinstance(p, Response) else reply(request, {"project": project_body(p)})

    async def delete_project(request: Request) -> Response:
        p = project_or_404(request)
        if isinstance(p, Response):
            return p
        async with lock:
            conn = await connect(admin_dsn, autocommit=True, application_name="fake-neon")
            try:
                await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(p.local_database)))
                # A deleted Neon project takes its roles along; here they are cluster-wide: the roles the
                # project's role made (it administers them, PostgreSQL 16+) go first, then the role itself.
                cur = await conn.execute(
                    "SELECT r.rolname FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles r ON r.oid = m.roleid"
                    " JOIN pg_catalog.pg_roles o ON o.oid = m.member WHERE o.rolname = %s AND m.admin_option",
                    (p.local_role,))
                for (made,) in await cur.fetchall():
                    await conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(made)))
                await conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(p.local_role)))
            finally:
                await conn.close()
            state.pop(p.id, None)
        return reply(request, {"project": project_body(p)})

    async def list_operations(request: Request) -> Response:
        p = project_or_404(request)
        if isinstance(p, Response):
            return p
        limit = int(request.query_params.get("limit", "10"))
        cursor = request.query_params.get("cursor")
        ops = p.operations
        if cursor:
            ids = [op.id for op in ops]
            ops = ops[ids.index(cursor) + 1:] if cursor in ids else []
        page = ops[:limit]
        out: dict[str, Any] = {"operations": [op_body(p, op) for op in page]}
        if page or cursor:
            out["pagination"] = {"cursor": page[-1].id if page else cursor}
        return reply(request, out)

    async def get_operation(request: Request) -> Response:
        p = project_or_404(request)
        if isinstance(p, Response):
            return p
        op = next((o for o in p.operations if o.id == request.path_params["operation_id"]), None)
        if op is None:
            return _error(404, "not_found", "operation not found")
        return reply(request, {"operation": op_body(p, op)})

    async def connection_uri(request: Request) -> Response:
        p = project_or_404(request)
        if isinstance(p, Response):
            return p
        q = request.query_params
        if "database_name" not in q or "role_name" not in q:
            return _error(422, "invalid_request", "database_name and role_name are required")
        if (q["database_name"], q["role_name"]) != (p.database, p.role):
            return _error(404, "not_found", "database or role not found")
        return reply(request, {"uri": uri(p, not faults.uri_without_password)})

    async def branches(request: Request) -> Response:
        p = project_or_404(request)
        if isinstance(p, Response):
            return p
        return reply(request, {"branches": [branch_body(p)], "annotations": {}, "pagination": {}})

    def role_of(request: Request) -> FakeProject | Response:
        p = project_or_404(request)
        if isinstance(p, Response):
            return p
        if request.path_params["branch_id"] != p.branch_id or request.path_params["role_name"] != p.role:
            return _error(404, "not_found", "role not found")
        return p

    async def reveal_password(request: Request) -> Response:
        p = role_of(request)
        return p if isinstance(p, Response) else reply(request, {"password": p.password})

    async def reset_password(request: Request) -> Response:
        p = role_of(request)
        if isinstance(p, Response):
            return p
        p.password = random_secrets.token_urlsafe(18)
        conn = await connect(admin_dsn, autocommit=True, application_name="fake-neon")
        try:
            await conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(p.local_role), sql.Literal(scram_verifier(p.password))))
        finally:
            await conn.close()
        ops = new_ops(p, ("apply_config",))
        now = _iso()
        return reply(request, {"role": {"branch_id": p.branch_id, "name": p.role, "password": p.password,
                                        "protected": False, "created_at": p.created_at, "updated_at": now},
                               "operations": [op_body(p, op) for op in ops]})

    base = "/api/v2"
    routes = [
        Route(base + "/projects", create_project, methods=["POST"]),
        Route(base + "/projects", list_projects, methods=["GET"]),
        Route(base + "/projects/{project_id}", get_project, methods=["GET"]),
        Route(base + "/projects/{project_id}", delete_project, methods=["DELETE"]),
        Route(base + "/projects/{project_id}/operations", list_operations, methods=["GET"]),
        Route(base + "/projects/{project_id}/operations/{operation_id}", get_operation, methods=["GET"]),
        Route(base + "/projects/{project_id}/connection_uri", connection_uri, methods=["GET"]),
        Route(base + "/projects/{project_id}/branches", branches, methods=["GET"]),
        Route(base + "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reveal_password",
              reveal_password, methods=["GET"]),
        Route(base + "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reset_password",
              reset_password, methods=["POST"]),
    ]
    inner = Starlette(routes=routes)
    expected = f"Bearer {api_key}"

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        path = scope["path"]
        key = f"{scope['method']} {path[len(base):] if path.startswith(base) else path}"
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        response: Response | None = None
        if headers.get("authorization") != expected:
            response = _error(401, "unauthorized", "authentication required")
        elif not path.startswith(base + "/") or not any(r.matches(scope)[0].value == 2 for r in routes):
            response = _error(404, "not_found", f"no route for {key}")
        elif faults.take("drop_connections", key):
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"1000"), (b"content-type", b"application/json")]})
            raise _Drop()
        elif faults.take("slow_replies", key):
            # The work is still done after the client gave up, as a real server does: a create that timed
            # out may well have made its project.
            await asyncio.sleep(faults.slow_reply_seconds)
            await inner(scope, receive, recorder(scope, send))
            return
        elif faults.take("rate_limited", key):
            response = _error(429, "too_many_requests", "too many requests", {"Retry-After": faults.retry_after})
        elif faults.take("unavailable", key):
            response = _error(503, "service_unavailable", "service unavailable")
        elif faults.take("server_errors", key):
            response = _error(500, "internal_error", "internal server error")
        elif faults.take("locked", key):
            response = _error(423, "locked", "project already has running operations")
        elif key == "POST /projects" and faults.take("drop_after_post", key):
            async def swallow(message: Any) -> None:
                pass

            await inner(scope, receive, recorder(scope, swallow))  # the project is made; its reply never arrives
            await send({"type": "http.response.start", "status": 201,
                        "headers": [(b"content-length", b"1000"), (b"content-type", b"application/json")]})
            raise _Drop()
        if response is not None:
            await response(scope, receive, recorder(scope, send))
            return
        await inner(scope, receive, recorder(scope, send))

    def recorder(scope: Any, send: Any) -> Any:
        """Every reply, as served, for the spec test: method, route template (None before routing), body."""
        status, chunks = 0, []

        async def record(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    route = getattr(scope.get("route"), "path", None)
                    log.append({"method": scope["method"], "path": route.removeprefix(base) if route else None,
                                "status": status, "body": json.loads(b"".join(chunks) or b"null")})
            await send(message)

        return record

    return app  # type: ignore[return-value]


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

