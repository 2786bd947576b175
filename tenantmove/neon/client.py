"""An httpx client for the Neon API v2 calls a dedicated database needs, with Neon's retry rules built in."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from tenantmove.db import mask_dsn
from tenantmove.errors import (
    NeonAuthFailed,
    NeonError,
    NeonNotFound,
    NeonOperationFailed,
    NeonOperationPending,
    NeonRequestRejected,
    NeonUnavailable,
)
from tenantmove.logs import get_logger
from tenantmove.neon.models import (
    BranchesResponse,
    ConnectionURIResponse,
    CreatedProject,
    GeneralError,
    Operation,
    OperationsResponse,
    OperationStatus,
    Project,
    ProjectCreateRequest,
    ProjectListItem,
    ProjectResponse,
    ProjectsResponse,
    RoleOperations,
    RolePasswordResponse,
)

M = TypeVar("M", bound=BaseModel)

# GeneralError's description: GET/HEAD/OPTIONS are safe to retry after a lost reply, POST/PATCH/DELETE/PUT
# are not; a 503 and a 423 ("temporarily locked ... another operation in progress") are always safe.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DONE = frozenset({OperationStatus.FINISHED, OperationStatus.SKIPPED})
_BROKEN = frozenset({OperationStatus.ERROR, OperationStatus.CANCELLED})
_PAGE = 100


class NeonClient:
    """Neon API v2 over an injected httpx.AsyncClient. The API key goes only into the Authorization header;
    no exception message or log line carries it, nor a connection URI."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, api_key: str, *, max_retries: int = 6,
                 backoff: float = 0.5, max_backoff: float = 8.0, lock_wait: float = 60.0,
                 poll_interval: float = 0.5, max_retry_after: float = 60.0,
                 org_id: str | None = None) -> None:
        if not api_key:
            raise NeonAuthFailed("expected a neon api key (NEON_API_KEY), found none", status=None)
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.lock_wait = lock_wait
        self.poll_interval = poll_interval
        self.max_retry_after = max_retry_after
        self.org_id = org_id
        self.log = get_logger(component="neon")

    def __repr__(self) -> str:
        return f"NeonClient(base_url={self.base_url!r}, api_key='****')"

    def _scrub(self, text: str) -> str:
        return mask_dsn(text.replace(self._key, "****"))

    # ---- transport --------------------------------------------------------------------------------------
    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_retry_after)
            except ValueError:
                when = email.utils.parsedate_to_datetime(retry_after)
                return min(max(when.timestamp() - time.time(), 0.0), self.max_retry_after)
        return float(min(self.backoff * 2 ** attempt, self.max_backoff))

    async def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                       json: Any = None, ok: tuple[int, ...] = (200,)) -> httpx.Response:
        safe = method in _SAFE_METHODS
        headers = {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}
        attempt, locked_since = 0, None
        while True:
            response: httpx.Response | None = None
            try:
                response = await self.http.request(method, self.base_url + path, params=params, json=json,
                                                   headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # The request never left: retrying cannot apply it twice, whatever the method.
                failure = NeonUnavailable(f"neon api unreachable on {method} {path}: {type(exc).__name__}")
            except httpx.TransportError as exc:
                # Sent, reply lost: Neon may have applied it. Only a safe method may go again blind; the
                # caller of a POST looks for its effect instead (find the project by name).
                failure = NeonUnavailable(f"neon api reply lost on {method} {path}: {type(exc).__name__}")
                if not safe:
                    raise failure from None
            else:
                status = response.status_code
                if status in ok:
                    return response
                if status == 423:
                    locked_since = locked_since or time.monotonic()
                    if time.monotonic() - locked_since < self.lock_wait:
                        self.log.info("neon resource locked, waiting", method=method, path=path)
                        await asyncio.sleep(self._delay(min(attempt, 3), response))
                        continue
                if status not in (423, 429) and status < 500:
                    raise self._typed(method, path, response)
                if status >= 500 and status != 503 and not safe:
                    raise self._unavailable(method, path, response)  # a 500 to a POST may have created it
                failure = self._unavailable(method, path, response)
            if attempt >= self.max_retries:
                raise failure
            delay = self._delay(attempt, response)
            self.log.warning("neon call retried", method=method, path=path, attempt=attempt + 1,
                             status=response.status_code if response is not None else None, delay=delay)
            attempt += 1
            await asyncio.sleep(delay)

    def _error_body(self, response: httpx.Response) -> GeneralError:
        try:
            return GeneralError.model_validate_json(response.content)
        except ValidationError:
            return GeneralError(code="", message=response.text[:200])

    def _unavailable(self, method: str, path: str, response: httpx.Response) -> NeonUnavailable:
        body = self._error_body(response)
        return NeonUnavailable(self._scrub(f"neon api answered {response.status_code} to {method} {path}: "
                                           f"{body.code} {body.message}".strip()), status=response.status_code)

    def _typed(self, method: str, path: str, response: httpx.Response) -> NeonError:
        status = response.status_code
        body = self._error_body(response)
        cls: type[NeonError] = (NeonAuthFailed if status in (401, 403) else NeonNotFound if status == 404
                                else NeonRequestRejected)
        message = self._scrub(body.message)
        return cls(f"neon api refused {method} {path}: {status} {body.code or '-'}: {message}",
                   status=status, code=body.code, neon_message=message, request_id=body.request_id)

    async def _get(self, path: str, model: type[M], params: Mapping[str, Any] | None = None) -> M:
        response = await self._request("GET", path, params=params)
        return self._parse(response, model)

    def _parse(self, response: httpx.Response, model: type[M]) -> M:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            # The error lists field locations only; input values (a password) stay out of the message.
            where = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
            raise NeonRequestRejected(f"expected a neon {model.__name__} body, found one not matching it at "
                                      f"{where}", status=response.status_code) from None

    # ---- projects ---------------------------------------------------------------------------------------
    async def create_project(self, request: ProjectCreateRequest) -> CreatedProject:
        """POST /projects: not retried after a lost reply (see _request); the caller finds it by name."""
        body = request.model_dump(mode="json", exclude_none=True)
        if self.org_id and "org_id" not in body["project"]:
            body["project"]["org_id"] = self.org_id
        response = await self._request("POST", "/projects", json=body, ok=(200, 201))
        return self._parse(response, CreatedProject)

    async def find_projects(self, name: str) -> list[ProjectListItem]:
        """Every project named exactly `name`: search is a partial match, so the exact match is ours."""
        found: list[ProjectListItem] = []
        params: dict[str, Any] = {"search": name, "limit": _PAGE}
        if self.org_id:
            params["org_id"] = self.org_id
        while True:
            page = await self._get("/projects", ProjectsResponse, params)
            found.extend(p for p in page.projects if p.name == name)
            for project_id in page.unavailable_project_ids:
                project = await self.get_project(project_id)
                if project is not None and project.name == name:
                    found.append(ProjectListItem(id=project.id, name=project.name, region_id=project.region_id,
                                                 pg_version=project.pg_version, created_at=project.created_at))
            if len(page.projects) < _PAGE or page.pagination is None or not page.pagination.cursor:
                break
            params = {**params, "cursor": page.pagination.cursor}
        return found

    async def get_project(self, project_id: str) -> Project | None:
        try:
            return (await self._get(f"/projects/{project_id}", ProjectResponse)).project
        except NeonNotFound:
            return None

    async def delete_project(self, project_id: str) -> bool:
        """True when deleted now, False when it was already gone (404)."""
        try:
            await self._request("DELETE", f"/projects/{project_id}")
        except NeonNotFound:
            return False
        return True

    # ---- operations -------------------------------------------------------------------------------------
    async def list_operations(self, project_id: str) -> list[Operation]:
        out: list[Operation] = []
        params: dict[str, Any] = {"limit": _PAGE}
        while True:
            page = await self._get(f"/projects/{project_id}/operations", OperationsResponse, params)
            out.extend(page.operations)
            if len(page.operations) < _PAGE or page.pagination is None or not page.pagination.cursor:
                return out
            params = {**params, "cursor": page.pagination.cursor}

    async def wait_operations(self, project_id: str, timeout: float = 300) -> list[Operation]:
        """Poll until every operation of the project is finished (or skipped). error/cancelled is
        NeonOperationFailed at once; `failed` is polled on (Neon retries it: failures_count, retry_at) and is
        NeonOperationFailed when still failed at the deadline; still running then is NeonOperationPending."""
        deadline = time.monotonic() + timeout
        while True:
            operations = await self.list_operations(project_id)
            broken = [op for op in operations if op.status in _BROKEN]
            if broken:
                raise self._op_failed(project_id, broken)
            pending = [op for op in operations if op.status not in _DONE]
            if not pending:
                return operations
            if time.monotonic() >= deadline:
                failed = [op for op in pending if op.status is OperationStatus.FAILED]
                if failed:
                    raise self._op_failed(project_id, failed)
                raise NeonOperationPending(
                    f"expected the operations of neon project {project_id} to finish within {timeout:g}s, found "
                    + ", ".join(f"{op.action} {op.status.value}" for op in pending))
            await asyncio.sleep(self.poll_interval)

    def _op_failed(self, project_id: str, ops: list[Operation]) -> NeonOperationFailed:
        detail = "; ".join(f"{op.action} ({op.id}) {op.status.value}: {self._scrub(op.error or '')}" for op in ops)
        return NeonOperationFailed(f"expected the operations of neon project {project_id} to finish, found {detail}",
                                   code=ops[0].status.value, neon_message=self._scrub(ops[0].error or ""))

    # ---- credentials ------------------------------------------------------------------------------------
    async def connection_uri(self, project_id: str, database: str, role: str, *, pooled: bool = False) -> str:
        params = {"database_name": database, "role_name": role, "pooled": str(pooled).lower()}
        return (await self._get(f"/projects/{project_id}/connection_uri", ConnectionURIResponse, params)).uri

    async def default_branch_id(self, project_id: str) -> str:
        branches = (await self._get(f"/projects/{project_id}/branches", BranchesResponse)).branches
        for branch in branches:
            if branch.default:
                return branch.id
        raise NeonNotFound(f"expected a default branch in neon project {project_id}, found "
                           f"{[b.name for b in branches]}", status=404)

    async def reveal_password(self, project_id: str, branch_id: str, role: str) -> str:
        path = f"/projects/{project_id}/branches/{branch_id}/roles/{role}/reveal_password"
        return (await self._get(path, RolePasswordResponse)).password

    async def reset_password(self, project_id: str, branch_id: str, role: str, timeout: float = 300) -> str:
        """POST reset_password, then wait for its operations (the new password works once they finish)."""
        path = f"/projects/{project_id}/branches/{branch_id}/roles/{role}/reset_password"
        reply = self._parse(await self._request("POST", path), RoleOperations)
        if reply.role.password is None:
            raise NeonRequestRejected(f"expected a new password for role {role!r}, found none")
        await self.wait_operations(project_id, timeout)
        return reply.role.password
