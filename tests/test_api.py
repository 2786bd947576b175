"""The HTTP API on the time-skipping server: request, idempotency, validation, roles, decisions, live events."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from .api_support import (
    ADMIN_A,
    ADMIN_B,
    APPROVER,
    SUPER,
    TENANT_A,
    TENANT_B,
    TOKENS,
    api_client,
    auth,
    make_app,
)

A_ID, B_ID = f"migrate-{TENANT_A}", f"migrate-{TENANT_B}"
TODAY = datetime.now(UTC).date()
FRAME = f"{TODAY}/{TODAY + timedelta(days=14)}"


@pytest.fixture
async def api(temporal_env, world):
    client = temporal_env.client
    app = make_app(world, client)
    secrets = [*TOKENS, "postgresql://", "password="]
    try:
        async with world.worker(client), api_client(app, secrets) as http:
            yield http
    finally:
        for wid in (A_ID, B_ID, f"rollback-{TENANT_A}"):  # the session's server outlives this test
            try:
                await client.get_workflow_handle(wid).terminate("test over")
            except RPCError:
                pass


async def _request(http, token=ADMIN_A, **body):
    return await http.post("/api/tenant/request-migration", headers=auth(token),
                           json={"reason": "we grew past the shared tier", "preferredTimeframe": FRAME, **body})


def _events(text: str) -> list[tuple[str, dict]]:
    out = []
    for frame in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if not line.startswith(":"))
        if "event" in fields:
            out.append((fields["event"], json.loads(fields["data"])))
    return out


async def test_a_request_starts_one_migration_and_a_second_returns_it(api, world):
    first = await _request(api)
    assert first.status_code == 202, first.text
    assert first.json()["id"] == A_ID and first.json()["events_url"] == f"/api/migrations/{A_ID}/events"
    again = await _request(api, reason="asking twice")
    assert again.status_code == 409 and again.json()["id"] == A_ID, again.text
    status = (await api.get(f"/api/migrations/{A_ID}", headers=auth(ADMIN_A))).json()
    assert status["tenant_id"] == TENANT_A
    own = await api.get("/api/tenant/migration", headers=auth(ADMIN_A))
    assert own.status_code == 200 and own.json()["tenant_id"] == TENANT_A
    # The structlog line of each request: its id, the caller's role, never the token.
    lines = [json.loads(line) for line in world.log.getvalue().splitlines() if '"request"' in line]
    assert {line["request_id"] for line in lines} >= {first.headers["x-request-id"], again.headers["x-request-id"]}
    assert {(line["status"], line["role"]) for line in lines} >= {(202, "orchestra_admin"), (409, "orchestra_admin")}
    assert not any(token in world.log.getvalue() for token in TOKENS)


BAD_REQUESTS = [
    ({"reason": None}, "reason"),
    ({"reason": "   "}, "reason must not be blank"),
    ({"preferredTimeframe": "next weekend"}, "ISO 8601 interval"),
    ({"preferredTimeframe": "2026-12-24T22:00/2026-12-27T06:00:00+01:00"}, "has no time zone"),
    ({"preferredTimeframe": f"{TODAY + timedelta(days=3)}/{TODAY + timedelta(days=1)}"}, "before it starts"),
    ({"preferredTimeframe": "2020-01-01/2020-01-02"}, "is over"),
    ({"target": "oracle"}, "target"),
    ({"tenantId": TENANT_B}, "tenantId: Extra inputs are not permitted"),
]


async def test_bad_requests_get_a_clear_422_and_start_nothing(api, temporal_env):
    for body, message in BAD_REQUESTS:
        answer = await _request(api, **body)
        assert answer.status_code == 422 and message in answer.json()["detail"], answer.text
        assert answer.json()["request_id"] == answer.headers["x-request-id"]
    try:  # an earlier test's run may exist, closed; none runs now
        described = await temporal_env.client.get_workflow_handle(A_ID).describe()
        assert described.status != WorkflowExecutionStatus.RUNNING
    except RPCError:
        pass


async def test_tokens_and_roles(api):
    assert (await api.get("/api/migrations")).status_code == 401
    bad = await api.get("/api/migrations", headers=auth("not-a-token-at-all"))
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    assert (await _request(api, token=SUPER)).status_code == 403  # a request comes from the orchestra's admin
    assert (await api.get("/api/migrations", headers=auth(ADMIN_A))).status_code == 403
    assert (await api.get("/api/whoami", headers=auth(ADMIN_B))).json() == {
        "role": "orchestra_admin", "tenant": TENANT_B, "name": ""}


async def test_an_orchestra_admin_cannot_see_or_touch_another_tenant(api, temporal_env):
    assert (await _request(api)).status_code == 202  # tenant A's migration, waiting for approval
    as_b = auth(ADMIN_B)
    for path in (f"/api/migrations/{A_ID}", f"/api/migrations/{A_ID}/events"):
        answer = await api.get(path, headers=as_b)
        assert answer.status_code == 404 and answer.json()["detail"] == f"no migration {A_ID!r}", path
    for verb, body in (("approve", {}), ("reject", {"reason": "mine now"}), ("rollback", None),
                       ("schedule", {"scheduledAt": "2030-01-01T00:00:00+00:00"})):
        answer = await api.post(f"/api/migrations/{A_ID}/{verb}", headers=as_b, json=body)
        assert answer.status_code == 403, verb
    assert (await api.get("/api/migrations", headers=as_b)).status_code == 403
    assert (await api.get("/api/tenant/migration", headers=as_b)).status_code == 404
    # B's own request moves B's tenant only; A's run is untouched.
    assert (await _request(api, token=ADMIN_B)).json()["id"] == B_ID
    status = (await api.get(f"/api/migrations/{A_ID}", headers=auth(SUPER))).json()
    assert status["state"] in ("requested", "awaiting_approval") and status["approved_by"] is None


async def test_approve_through_the_update_then_follow_to_the_end_and_roll_back(api):
    assert (await _request(api)).status_code == 202
    as_service = auth(APPROVER)
    past = await api.post(f"/api/migrations/{A_ID}/approve", headers=as_service,
                          json={"scheduledAt": "2020-01-01T00:00:00+00:00"})
    assert past.status_code == 409 and "in the past" in past.json()["detail"], past.text
    naive = await api.post(f"/api/migrations/{A_ID}/approve", headers=as_service, json={"scheduledAt": "2030-01-01T00:00"})
    assert naive.status_code == 422 and "scheduledAt" in naive.json()["detail"]
    status = (await api.get(f"/api/migrations/{A_ID}", headers=as_service)).json()
    assert status["approved_by"] is None and status["ignored_signals"] == []  # refused before history
    approved = await api.post(f"/api/migrations/{A_ID}/approve", headers=as_service, json={"comment": "go"})
    assert approved.status_code == 200 and approved.json()["approved_by"] == "approval_service", approved.text
    twice = await api.post(f"/api/migrations/{A_ID}/reject", headers=auth(SUPER), json={"reason": "too late"})
    assert twice.status_code == 409 and "already recorded" in twice.json()["detail"]

    stream = await api.get(f"/api/migrations/{A_ID}/events?interval=0.1", headers=auth(ADMIN_A))
    assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
    events = _events(stream.text)
    assert [kind for kind, _ in events][-1] == "end" and all(kind == "progress" for kind, _ in events[:-1])
    percents = [data["percent"] for _, data in events]
    assert percents == sorted(percents) and percents[-1] == 100
    final = events[-1][1]
    assert final["state"] == "completed" and final["execution"] == "completed"
    assert {s["name"]: s["state"] for s in final["steps"]}["import"] == "done"
    assert final["tables"]["Musician"]["done"] and final["tables"]["Musician"]["rows_done"] > 0

    started = await api.post(f"/api/migrations/{A_ID}/rollback", headers=auth(SUPER))
    assert started.status_code == 202 and started.json()["id"] == f"rollback-{TENANT_A}", started.text
    again = await api.post(f"/api/migrations/{A_ID}/rollback", headers=auth(SUPER))
    # still running, or (on a quick machine) already done: either way not a second rollback
    assert again.status_code == 409 and "already r" in again.json()["detail"], again.text
    events = _events((await api.get(started.json()["events_url"], headers=auth(ADMIN_A))).text)
    assert events[-1][1]["state"] == "rolled_back" and events[-1][1]["kind"] == "RollbackTenant"
    assert [s["name"] for s in events[-1][1]["steps"] if s["state"] == "done"] == [
        "maintenance_on", "restore", "switch", "maintenance_off", "drop_database", "notify"]
    done = await api.post(f"/api/migrations/{A_ID}/rollback", headers=auth(SUPER))
    assert done.status_code == 409 and "already rolled back" in done.json()["detail"], done.text


async def test_reject_and_schedule(api):
    assert (await _request(api)).status_code == 202
    assert (await api.post(f"/api/migrations/{A_ID}/reject", headers=auth(SUPER), json={})).status_code == 422
    # Far ahead: the time-skipping server's clock runs ahead of the wall clock by every timer it skipped
    # for earlier tests of the session.
    moved = await api.post(f"/api/migrations/{A_ID}/schedule", headers=auth(SUPER),
                           json={"scheduledAt": "2090-01-01T00:00:00+00:00"})
    assert moved.status_code == 200 and moved.json()["scheduled_at"].startswith("2090-01-01"), moved.text
    past = await api.post(f"/api/migrations/{A_ID}/schedule", headers=auth(SUPER),
                          json={"scheduledAt": "2020-01-01T00:00:00+00:00"})
    assert past.status_code == 409 and "in the past" in past.json()["detail"], past.text
    rejected = await api.post(f"/api/migrations/{A_ID}/reject", headers=auth(SUPER), json={"reason": "not now"})
    assert rejected.status_code == 200 and rejected.json()["rejected_by"] == "ada"
    events = _events((await api.get(f"/api/migrations/{A_ID}/events", headers=auth(SUPER))).text)
    assert events[-1][1]["state"] == "rejected"
    assert (await api.post(f"/api/migrations/{A_ID}/rollback", headers=auth(SUPER))).status_code == 409


async def test_the_openapi_document_covers_every_route(api):
    doc = (await api.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    routes = {(method, path) for path, item in doc["paths"].items() for method in item}
    assert routes == {
        ("post", "/api/tenant/request-migration"), ("get", "/api/tenant/migration"), ("get", "/api/migrations"),
        ("get", "/api/migrations/{id}"), ("get", "/api/migrations/{id}/events"),
        ("post", "/api/migrations/{id}/approve"), ("post", "/api/migrations/{id}/reject"),
        ("post", "/api/migrations/{id}/schedule"), ("post", "/api/migrations/{id}/rollback"), ("get", "/api/whoami")}
    assert all(op.get("security") == [{"HTTPBearer": []}] for item in doc["paths"].values() for op in item.values())
    body = doc["components"]["schemas"]["MigrationRequest"]
    assert set(body["required"]) == {"reason", "preferredTimeframe"}
    page = await api.get("/")
    assert page.status_code == 200 and "Waiting for approval" in page.text


def test_api_tokens_setting_is_read_strictly_and_never_shown(monkeypatch):
    from api.auth import TokenConfigError, Tokens
    from tenantmove.settings import Settings

    secret = "s3cret-token-abcdef123"
    monkeypatch.setenv("API_TOKENS", json.dumps({secret: "orchestra_admin:basel", "another-long-token-xyz": {
        "role": "superadmin", "name": "ada"}}))
    settings = Settings()
    assert secret not in repr(settings) and secret not in str(settings.model_dump())
    tokens = Tokens.parse(settings.api_tokens.get_secret_value())
    assert tokens.lookup(secret).tenant == "basel" and tokens.lookup("another-long-token-xyz").name == "ada"
    assert tokens.lookup("s3cret-token-abcdef12") is None
    for text, message in [("{", "not JSON"), ("[]", "JSON object"), ('{"short": "superadmin"}', "16 characters"),
                          (json.dumps({secret: "root"}), "entry 1 (role:"),
                          (json.dumps({secret: "orchestra_admin"}), "names exactly one tenant"),
                          (json.dumps({secret: "superadmin:basel"}), "names exactly one tenant")]:
        with pytest.raises(TokenConfigError, match=re.escape(message)) as caught:
            Tokens.parse(text)
        assert secret not in str(caught.value)
