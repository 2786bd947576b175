"""Who may do what: bearer token to principal, role checks, and one tenant's migrations for its orchestra admin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.service import RPCError, RPCStatusCode

from api.auth import Principal, Role, Tokens
from workflows.client import read_status
from workflows.steps import TENANT_ID

bearer = HTTPBearer(auto_error=False, description="a token from API_TOKENS")
MIGRATION_TYPES = ("MigrateTenant", "RollbackTenant")


class ApiError(Exception):
    """Answered as a Problem body with this status; the message is for people and holds no secret."""

    def __init__(self, status: int, detail: str, *, id: str | None = None, state: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.id, self.state, self.headers = status, detail, id, state, headers


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    async def principal(request: Request,
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
        tokens: Tokens = request.app.state.tokens
        if credentials is None:
            raise ApiError(401, "missing bearer token (Authorization: Bearer <token>)",
                           headers={"WWW-Authenticate": "Bearer"})
        found = tokens.lookup(credentials.credentials)
        if found is None:
            raise ApiError(401, "unknown bearer token", headers={"WWW-Authenticate": "Bearer"})
        request.state.principal = found
        if found.role not in roles:
            raise ApiError(403, f"a {found.role} may not do this (needs {' or '.join(roles)})")
        return found

    return principal


@dataclass
class Target:
    id: str
    tenant: str
    workflow_type: str
    described: WorkflowExecutionDescription


async def find(client: Client, workflow_id: str, principal: Principal,
               types: tuple[str, ...] = MIGRATION_TYPES) -> Target:
    """The migration (or rollback) run with this id, if the caller may see it. Another tenant's run answers
    exactly as a missing one does: an orchestra admin learns nothing about other tenants."""
    missing = ApiError(404, f"no migration {workflow_id!r}")
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise missing from None
        raise
    if described.workflow_type not in types:
        raise missing
    tenant = described.typed_search_attributes.get(TENANT_ID)
    if tenant is None:  # a rollback is started without search attributes: its status names the tenant
        tenant = (await read_status(client, workflow_id)).tenant_id
    if principal.role == "orchestra_admin" and tenant != principal.tenant:
        raise missing
    return Target(workflow_id, tenant, described.workflow_type, described)
