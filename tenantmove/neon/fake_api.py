"""The local Neon server's route handlers, one method each, over its project records and a real Postgres."""

from __future__ import annotations

import asyncio
import secrets as random_secrets
import time
import uuid
from typing import Any, TypeVar

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tenantmove.db import connection
from tenantmove.neon.fake_bodies import (
    branch_body,
    connection_uri,
    created_body,
    error,
    iso,
    list_item,
    op_body,
    project_body,
)
from tenantmove.neon.fake_state import FakeOperation, FakeProject, FaultPlan
from tenantmove.providers.postgres import scram_verifier

_WORDS = ("quiet", "river", "bold", "frost", "amber", "cedar", "misty", "lake", "young", "field")

_Item = TypeVar("_Item", FakeProject, FakeOperation)


def _page(items: list[_Item], cursor: str | None, limit: int) -> tuple[list[_Item], dict[str, Any] | None]:
    """The `limit` items after `cursor`, and the pagination to answer with (None: leave it out)."""
    if cursor:
        ids = [item.id for item in items]
        items = items[ids.index(cursor) + 1:] if cursor in ids else []
    page = items[:limit]
    if page or cursor:  # Pagination.cursor has minLength 1
        return page, {"cursor": page[-1].id if page else cursor}
    return page, None


class FakeNeonApi:
    """The Neon API's paths used by NeonClient, as routes under a base path; `projects` is shared with
    the caller, which reads it to see what a test made."""

    def __init__(self, admin_dsn: str, faults: FaultPlan, operation_delay: float,
                 projects: dict[str, FakeProject]) -> None:
        self.admin_dsn = admin_dsn
        self.faults = faults
        self.operation_delay = operation_delay
        self.projects = projects
        server = conninfo_to_dict(admin_dsn)
        self.host, self.port = str(server.get("host") or "127.0.0.1"), int(server.get("port") or 5432)
        self.lock = asyncio.Lock()

    def routes(self, base: str) -> list[Route]:
        roles = base + "/projects/{project_id}/branches/{branch_id}/roles/{role_name}"
        return [
            Route(base + "/projects", self.create_project, methods=["POST"]),
            Route(base + "/projects", self.list_projects, methods=["GET"]),
            Route(base + "/projects/{project_id}", self.get_project, methods=["GET"]),
            Route(base + "/projects/{project_id}", self.delete_project, methods=["DELETE"]),
            Route(base + "/projects/{project_id}/operations", self.list_operations, methods=["GET"]),
            Route(base + "/projects/{project_id}/operations/{operation_id}", self.get_operation, methods=["GET"]),
            Route(base + "/projects/{project_id}/connection_uri", self.connection_uri, methods=["GET"]),
            Route(base + "/projects/{project_id}/branches", self.branches, methods=["GET"]),
            Route(roles + "/reveal_password", self.reveal_password, methods=["GET"]),
            Route(roles + "/reset_password", self.reset_password, methods=["POST"]),
        ]

    def _new_ops(self, p: FakeProject, actions: tuple[str, ...]) -> list[FakeOperation]:
        faults = self.faults
        fail = "error" if faults.take("error_operations", "op") else "failed" if faults.take(
            "failed_operations", "op") else None
        runs = self.operation_delay + faults.slow_operations
        ops = [FakeOperation(str(uuid.uuid4()), action, time.time(), runs, fail) for action in actions]
        p.operations.extend(ops)
        return ops

    def _project_or_404(self, request: Request) -> FakeProject | Response:
        p = self.projects.get(request.path_params["project_id"])
        if p is None:
            return error(404, "not_found", "project not found")
        return p

    def _role_of(self, request: Request) -> FakeProject | Response:
        p = self._project_or_404(request)
        if isinstance(p, Response):
            return p
        if request.path_params["branch_id"] != p.branch_id or request.path_params["role_name"] != p.role:
            return error(404, "not_found", "role not found")
        return p

    async def create_project(self, request: Request) -> Response:
        body = (await request.json()).get("project") or {}
        settings = body.get("default_endpoint_settings") or {}
        branch = body.get("branch") or {}
        pg_version = int(body.get("pg_version", 17))
        if not 14 <= pg_version <= 18:
            return error(422, "invalid_request", f"unsupported pg_version {pg_version}")
        pid = f"{random_secrets.choice(_WORDS)}-{random_secrets.choice(_WORDS)}-{random_secrets.randbelow(10**8):08d}"
        database = branch.get("database_name") or "neondb"
        role = branch.get("role_name") or f"{database}_owner"
        local = "np_" + pid.replace("-", "_")
        p = FakeProject(pid, body.get("name") or pid, body.get("region_id") or "aws-us-east-2", pg_version,
                        float(settings.get("autoscaling_limit_min_cu", 0.25)),
                        float(settings.get("autoscaling_limit_max_cu", 0.25)), database, role,
                        f"{local}_{database}"[:63], f"{local}_{role}"[:63], random_secrets.token_urlsafe(18),
                        f"br-{pid}", f"ep-{pid}", iso())
        async with self.lock:
            async with connection(self.admin_dsn, autocommit=True, application_name="fake-neon") as conn:
                # Neon's project roles may create roles (neon_superuser gives CREATEROLE), as a client making
                # a least-privileged role for its application does.
                await conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
                    sql.Identifier(p.local_role), sql.Literal(scram_verifier(p.password))))
                await conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(p.local_database), sql.Identifier(p.local_role)))
            self.projects[pid] = p
        ops = self._new_ops(p, ("create_timeline", "start_compute"))
        return JSONResponse(created_body(p, ops, connection_uri(p, self.host, self.port)), 201)

    async def list_projects(self, request: Request) -> Response:
        search = request.query_params.get("search", "")
        try:
            limit = int(request.query_params.get("limit", "10"))
        except ValueError:
            return error(422, "invalid_request", "limit must be an integer")
        if not 1 <= limit <= 400:
            return error(422, "invalid_request", "limit must be between 1 and 400")
        items = [p for p in self.projects.values() if search in p.name or search in p.id]
        page, pagination = _page(items, request.query_params.get("cursor"), limit)
        out: dict[str, Any] = {"projects": [list_item(p) for p in page], "unavailable_project_ids": [],
                               "applications": {}, "integrations": {}}
        if pagination is not None:
            out["pagination"] = pagination
        return JSONResponse(out)

    async def get_project(self, request: Request) -> Response:
        p = self._project_or_404(request)
        return p if isinstance(p, Response) else JSONResponse({"project": project_body(p)})

    async def delete_project(self, request: Request) -> Response:
        p = self._project_or_404(request)
        if isinstance(p, Response):
            return p
        async with self.lock:
            async with connection(self.admin_dsn, autocommit=True, application_name="fake-neon") as conn:
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
            self.projects.pop(p.id, None)
        return JSONResponse({"project": project_body(p)})

    async def list_operations(self, request: Request) -> Response:
        p = self._project_or_404(request)
        if isinstance(p, Response):
            return p
        limit = int(request.query_params.get("limit", "10"))
        page, pagination = _page(p.operations, request.query_params.get("cursor"), limit)
        out: dict[str, Any] = {"operations": [op_body(p, op) for op in page]}
        if pagination is not None:
            out["pagination"] = pagination
        return JSONResponse(out)

    async def get_operation(self, request: Request) -> Response:
        p = self._project_or_404(request)
        if isinstance(p, Response):
            return p
        op = next((o for o in p.operations if o.id == request.path_params["operation_id"]), None)
        if op is None:
            return error(404, "not_found", "operation not found")
        return JSONResponse({"operation": op_body(p, op)})

    async def connection_uri(self, request: Request) -> Response:
        p = self._project_or_404(request)
        if isinstance(p, Response):
            return p
        q = request.query_params
        if "database_name" not in q or "role_name" not in q:
            return error(422, "invalid_request", "database_name and role_name are required")
        if (q["database_name"], q["role_name"]) != (p.database, p.role):
            return error(404, "not_found", "database or role not found")
        uri = connection_uri(p, self.host, self.port, not self.faults.uri_without_password)
        return JSONResponse({"uri": uri})

    async def branches(self, request: Request) -> Response:
        p = self._project_or_404(request)
        if isinstance(p, Response):
            return p
        return JSONResponse({"branches": [branch_body(p)], "annotations": {}, "pagination": {}})

    async def reveal_password(self, request: Request) -> Response:
        p = self._role_of(request)
        return p if isinstance(p, Response) else JSONResponse({"password": p.password})

    async def reset_password(self, request: Request) -> Response:
        p = self._role_of(request)
        if isinstance(p, Response):
            return p
        p.password = random_secrets.token_urlsafe(18)
        async with connection(self.admin_dsn, autocommit=True, application_name="fake-neon") as conn:
            await conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(p.local_role), sql.Literal(scram_verifier(p.password))))
        ops = self._new_ops(p, ("apply_config",))
        now = iso()
        return JSONResponse({"role": {"branch_id": p.branch_id, "name": p.role, "password": p.password,
                                      "protected": False, "created_at": p.created_at, "updated_at": now},
                             "operations": [op_body(p, op) for op in ops]})
