"""The API's routes: request a migration, list and inspect them, decide, schedule, follow live, roll back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.models import Approval, MigrateTenantInput, MigrationStatus, Rejection, State
from api.access import ApiError, Target, find, require
from api.auth import Principal
from api.progress import events
from api.schemas import (
    ApproveRequest,
    MigrationList,
    MigrationRequest,
    Problem,
    RejectRequest,
    ScheduleRequest,
    Started,
)
from console.commands import begin_rollback, options_from
from console.listing import list_migrations
from tenantmove.settings import Settings
from workflows.client import RequestRefused, decide, migration_id, read_status, start_migration
from workflows.steps import MIGRATION_STATE

router = APIRouter(prefix="/api")
ADMIN = require("orchestra_admin")
SUPERADMIN = require("superadmin")
DECIDERS = require("superadmin", "approval_service")
ANYONE = require("superadmin", "approval_service", "orchestra_admin")


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem} for code in (401, 403, 503, *codes)}


def _client(request: Request) -> Client:
    client: Client = request.app.state.client
    return client


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _started(request: Request, workflow_id: str, tenant: str, state: str) -> Started:
    return Started(id=workflow_id, tenant=tenant, state=state,
                   status_url=str(request.url_for("migration_status", id=workflow_id).path),
                   events_url=str(request.url_for("migration_events", id=workflow_id).path))


async def _running(client: Client, workflow_id: str) -> str | None:
    """The MigrationState of the running migration with this id, or None when none is running."""
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if described.status != WorkflowExecutionStatus.RUNNING:
        return None
    return described.typed_search_attributes.get(MIGRATION_STATE) or "requested"


@router.post("/tenant/request-migration", status_code=202, response_model=Started, responses=_errors(409, 422),
             summary="Request a migration of the caller's own tenant (orchestra admin)")
async def request_migration(body: MigrationRequest, request: Request,
                            principal: Annotated[Principal, Depends(ADMIN)]) -> Started:
    client, settings = _client(request), _settings(request)
    tenant = principal.tenant or ""
    workflow_id = migration_id(tenant)
    # Idempotent: a repeated request answers with the migration already under way instead of a second one.
    if state := await _running(client, workflow_id):
        raise ApiError(409, f"a migration of tenant {tenant!r} is already under way", id=workflow_id, state=state)
    input = MigrateTenantInput(tenant_id=tenant, reason=body.reason, preferred_timeframe=body.preferred_timeframe,
                               target=body.target, options=options_from(settings))
    try:
        await start_migration(client, input, task_queue=settings.task_queue, workflow_id=workflow_id)
    except RequestRefused as exc:
        if state := await _running(client, workflow_id):  # lost a race with an identical request
            raise ApiError(409, f"a migration of tenant {tenant!r} is already under way", id=workflow_id,
                           state=state) from None
        raise ApiError(422, str(exc)) from None
    return _started(request, workflow_id, tenant, State.REQUESTED.value)


@router.get("/tenant/migration", response_model=MigrationStatus, responses=_errors(404),
            summary="The caller's own tenant's latest migration (orchestra admin)")
async def own_migration(request: Request, principal: Annotated[Principal, Depends(ADMIN)]) -> MigrationStatus:
    target = await find(_client(request), migration_id(principal.tenant or ""), principal)
    return await read_status(_client(request), target.id)


@router.get("/migrations", response_model=MigrationList, responses=_errors(),
            summary="Migrations from Temporal visibility, newest first, each with its status and figures")
async def list_all(request: Request, _: Annotated[Principal, Depends(SUPERADMIN)],
                   state: State | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> MigrationList:
    return MigrationList(migrations=await list_migrations(_client(request), state, limit))


@router.get("/migrations/{id}", response_model=MigrationStatus, responses=_errors(404),
            summary="A migration's (or rollback's) status: state, step, progress, tables, timings, log")
async def migration_status(id: str, request: Request,
                           principal: Annotated[Principal, Depends(ANYONE)]) -> MigrationStatus:
    target = await find(_client(request), id, principal)
    return await read_status(_client(request), target.id)


@router.get("/migrations/{id}/events", responses={
    200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
          "description": "Server-Sent Events: `progress` (a Progress object as JSON) on every change, then `end`"},
    **_errors(404)}, summary="Live progress until the workflow ends (Server-Sent Events)")
async def migration_events(id: str, request: Request,
                           principal: Annotated[Principal, Depends(ANYONE)],
                           interval: Annotated[float, Query(ge=0.1, le=10)] = 0.5) -> StreamingResponse:
    target = await find(_client(request), id, principal)
    return StreamingResponse(events(_client(request), target.id, interval), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _update(target: Target, call: Callable[[], Awaitable[MigrationStatus]]) -> MigrationStatus:
    if target.workflow_type != "MigrateTenant":
        raise ApiError(409, f"{target.id} is a {target.workflow_type}, which takes no decision")
    try:
        return await call()
    except WorkflowUpdateFailedError as exc:
        message = str(getattr(exc.cause, "message", None) or exc.cause or exc)
        if "expected but not found" in message:  # this workflow version has no such Update
            raise ApiError(501, f"the running workflow cannot do this: {message}", id=target.id) from None
        raise ApiError(409, f"refused by the workflow: {message}", id=target.id) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:  # the run closed between the look-up and the Update
            raise ApiError(409, f"{target.id} has ended", id=target.id) from None
        raise


@router.post("/migrations/{id}/approve", response_model=MigrationStatus, responses=_errors(404, 409, 422),
             summary="Approve a waiting migration (superadmin or approval service), optionally with a start time")
async def approve(id: str, body: ApproveRequest, request: Request,
                  principal: Annotated[Principal, Depends(DECIDERS)]) -> MigrationStatus:
    target = await find(_client(request), id, principal)
    return await _update(target, lambda: decide(_client(request), target.id, Approval(
        approver=principal.who, comment=body.comment, scheduled_at=body.scheduled_at)))


@router.post("/migrations/{id}/reject", response_model=MigrationStatus, responses=_errors(404, 409, 422),
             summary="Reject a waiting migration (superadmin or approval service); nothing was changed")
async def reject(id: str, body: RejectRequest, request: Request,
                 principal: Annotated[Principal, Depends(DECIDERS)]) -> MigrationStatus:
    target = await find(_client(request), id, principal)
    return await _update(target, lambda: decide(_client(request), target.id,
                                                Rejection(approver=principal.who, reason=body.reason)))


@router.post("/migrations/{id}/schedule", response_model=MigrationStatus, responses=_errors(404, 409, 422, 501),
             summary="Set or move the start time (superadmin or approval service), through the `reschedule` Update")
async def schedule(id: str, body: ScheduleRequest, request: Request,
                   principal: Annotated[Principal, Depends(DECIDERS)]) -> MigrationStatus:
    target = await find(_client(request), id, principal)
    handle = _client(request).get_workflow_handle(target.id)
    return await _update(target, lambda: handle.execute_update(
        "reschedule", {"scheduled_at": body.scheduled_at.isoformat(), "by": principal.who},
        result_type=MigrationStatus))


@router.post("/migrations/{id}/rollback", status_code=202, response_model=Started, responses=_errors(404, 409),
             summary="Undo a completed migration (superadmin): starts RollbackTenant")
async def rollback(id: str, request: Request, principal: Annotated[Principal, Depends(SUPERADMIN)]) -> Started:
    client = _client(request)
    target = await find(client, id, principal, types=("MigrateTenant",))
    try:
        handle = await begin_rollback(client, target.id, _settings(request).task_queue)
    except RequestRefused as exc:
        raise ApiError(409, str(exc), id=target.id) from None
    return _started(request, handle.id, target.tenant, State.RUNNING.value)


@router.get("/whoami", response_model=Principal, responses=_errors(), summary="The caller's role and tenant")
async def whoami(principal: Annotated[Principal, Depends(ANYONE)]) -> Principal:
    return principal
