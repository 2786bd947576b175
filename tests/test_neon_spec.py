"""Every response the local Neon server serves in a scripted session validates against openapi-v2.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from tenantmove.errors import EngineError
from tenantmove.neon.client import NeonClient
from tenantmove.neon.fake import FakeNeon
from tenantmove.providers.neon import NeonProvider
from tenantmove.secrets import FileSecretStore

SPEC_PATH = Path("/work/shared/neon/openapi-v2.json")
API_KEY = "napi_spec_session_0123456789abcdef"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC_PATH.exists():
        pytest.skip(f"the Neon spec is not at {SPEC_PATH}")
    return json.loads(SPEC_PATH.read_text())


def _pointer(spec: dict[str, Any], method: str, path: str, status: int) -> str:
    """JSON pointer to the schema the spec declares for that reply (the status, else `default`)."""
    responses = spec["paths"][path][method.lower()]["responses"]
    key = str(status) if str(status) in responses else "default"
    pointer = "/paths/" + path.replace("~", "~0").replace("/", "~1") + f"/{method.lower()}/responses/{key}"
    response = responses[key]
    if "$ref" in response:
        pointer = response["$ref"].removeprefix("#")
    return "#" + pointer + "/content/application~1json/schema"


def _validate(spec: dict[str, Any], pointer: str, body: Any) -> None:
    # Draft 4, as OpenAPI 3.0 schemas are: the root is the spec itself, so every #/components/... $ref
    # resolves; a $ref at the root points the validator at the response's schema.
    jsonschema.Draft4Validator({**spec, "$ref": pointer}).validate(body)


async def test_every_served_response_matches_the_spec(spec, pg_target, tmp_path) -> None:
    fake = FakeNeon(pg_target.dsn(), API_KEY, operation_delay=0.05).start()
    try:
        async with httpx.AsyncClient(timeout=60) as http:  # patient: the fake makes real databases
            client = NeonClient(http, fake.url, API_KEY, backoff=0.01, poll_interval=0.02)
            provider = NeonProvider(client, FileSecretStore(tmp_path), operation_timeout=60)
            db = await provider.create("spec-orchestra")
            pid = db.provider_id
            await provider.find("spec-orchestra")
            ops = await client.list_operations(pid)
            await client._request("GET", f"/projects/{pid}/operations/{ops[0].id}")
            branch = await client.default_branch_id(pid)
            await client.reveal_password(pid, branch, "stagesub_owner")
            await client.reset_password(pid, branch, "stagesub_owner", timeout=10)
            await client.connection_uri(pid, "stagesub", "stagesub_owner")
            fake.faults.rate_limited, fake.faults.unavailable, fake.faults.locked = 1, 1, 1
            await client.get_project(pid)
            for call in (client.connection_uri(pid, "nodb", "norole"), client.reveal_password(pid, branch, "x"),
                         client._request("POST", "/projects", json={"project": {"pg_version": 99}}),
                         client._request("GET", "/projects/x/endpoints"),
                         NeonClient(http, fake.url, "napi_wrong", backoff=0.01).find_projects("x")):
                with pytest.raises(EngineError):
                    await call
            await provider.delete(pid)
            await client.get_project(pid)
    finally:
        fake.stop()
    assert len(fake.served) >= 20
    statuses = {s["status"] for s in fake.served}
    assert {200, 201, 401, 404, 422, 423, 429, 503} <= statuses
    checked = 0
    for served in fake.served:
        path = served["path"]
        if not path:  # answered before routing (auth, faults, unknown path): a GeneralError
            pointer = "#/components/schemas/GeneralError"
        else:
            pointer = _pointer(spec, served["method"], path, served["status"])
        _validate(spec, pointer, served["body"])
        checked += 1
    assert checked == len(fake.served)


def test_the_validator_rejects_a_wrong_body(spec) -> None:
    with pytest.raises(jsonschema.ValidationError):
        _validate(spec, _pointer(spec, "GET", "/projects/{project_id}", 200), {"project": {"id": "x"}})
