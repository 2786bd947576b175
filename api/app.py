"""The ASGI app: routes, errors as Problem bodies (never a secret), request context, the superadmin page."""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException
from temporalio.client import Client
from temporalio.service import RPCError

from api.access import ApiError
from api.auth import Tokens
from api.context import RequestContext
from api.routes import router
from api.schemas import Problem
from tenantmove.db import mask_dsn
from tenantmove.logs import get_logger
from tenantmove.settings import Settings


def _problem(request: Request, status: int, detail: str, headers: dict[str, str] | None = None,
             **extra: Any) -> JSONResponse:
    body = Problem(detail=mask_dsn(detail), request_id=getattr(request.state, "request_id", None), **extra)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if part not in ("body", "query", "path")) or "body"


def create_app(settings: Settings, client: Client, tokens: Tokens | None = None) -> FastAPI:
    app = FastAPI(title="stagesub-migrate", version="1", description=(
        "Request, approve and follow tenant migrations to dedicated databases. Every call needs a bearer "
        "token from API_TOKENS; its role decides what it may do."))
    app.state.settings, app.state.client = settings, client
    app.state.tokens = tokens or Tokens.parse(settings.api_tokens.get_secret_value())
    app.include_router(router)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _problem(request, exc.status, exc.detail, exc.headers, id=exc.id, state=exc.state)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Field and message only: the rejected input is not echoed back.
        detail = "; ".join(f"{_field(tuple(e['loc']))}: {e['msg']}" for e in exc.errors())
        return _problem(request, 422, f"invalid request: {detail}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _problem(request, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RPCError)
    async def temporal_error(request: Request, exc: RPCError) -> JSONResponse:
        # Temporal unreachable, or no worker answered a query in time: the caller may retry.
        get_logger().warning("temporal call failed", error=exc.message, code=exc.status.name)
        return _problem(request, 503, f"Temporal did not answer ({exc.status.name.lower()}): {exc.message}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        get_logger().error("request failed", error=exc, error_type=type(exc).__name__)
        return _problem(request, 500, "internal error; the server log has the details under this request id")

    page = resources.files("api").joinpath("page.html").read_text()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def superadmin_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": "default-src 'self'; "
                                           "script-src 'unsafe-inline'; style-src 'unsafe-inline'"})

    app.add_middleware(RequestContext)
    return app
