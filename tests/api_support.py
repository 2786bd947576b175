"""HTTP API test support: tokens, the app over a world, and every response checked against the OpenAPI document."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jsonschema
from fastapi import FastAPI

from api.app import create_app
from api.auth import Principal, Tokens

SUPER, APPROVER = "super-token-4f1c9a0e7b", "approval-service-token-77d2"
ADMIN_A, ADMIN_B = "admin-basel-token-9c3e1f", "admin-obrien-token-2b8d4a"
TENANT_A, TENANT_B = "kammerorchester-basel", "o'brien-ensemble"
TOKENS = {SUPER: Principal(role="superadmin", name="ada"), APPROVER: Principal(role="approval_service"),
          ADMIN_A: Principal(role="orchestra_admin", tenant=TENANT_A),
          ADMIN_B: Principal(role="orchestra_admin", tenant=TENANT_B)}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_app(world: Any, client: Any) -> FastAPI:
    settings = world.settings.model_copy(update={"advance_notice_days": 0})
    return create_app(settings, client, Tokens(TOKENS))


class OpenApiCheck:
    """Validates each response against the document the app serves: declared status, content type, schema."""

    def __init__(self, doc: dict[str, Any], secrets: list[str]) -> None:
        self.doc, self.secrets, self.seen = doc, secrets, set()
        self.paths = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path) for path in doc["paths"]]

    async def __call__(self, response: httpx.Response) -> None:
        await response.aread()
        request = response.request
        assert "x-request-id" in response.headers
        for secret in self.secrets:  # no token, no DSN, in any response
            assert secret not in response.text, f"{request.url.path} leaked a secret"
        path = request.url.path
        if not path.startswith("/api/"):
            return
        template = next(t for pattern, t in self.paths if pattern.match(request.url.raw_path.decode().split("?")[0]))
        operation = self.doc["paths"][template][request.method.lower()]
        declared = operation["responses"].get(str(response.status_code))
        assert declared, f"{request.method} {template} answered {response.status_code}, not in the document"
        self.seen.add((request.method, template, response.status_code))
        media = response.headers["content-type"].split(";")[0]
        assert media in declared["content"], f"{template}: {media} not declared"
        schema = declared["content"][media].get("schema")
        if media == "application/json" and schema:
            jsonschema.validate(response.json(), {**schema, "components": self.doc["components"]})


@asynccontextmanager
async def api_client(app: FastAPI, secrets: list[str], base_url: str = "http://api", transport: Any = None):
    check = OpenApiCheck(app.openapi(), secrets)
    transport = transport or httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base_url, event_hooks={"response": [check]},
                                 timeout=60) as http:
        http.check = check  # type: ignore[attr-defined]
        yield http
