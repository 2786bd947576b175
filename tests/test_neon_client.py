"""NeonClient and NeonProvider against the local Neon server: idempotent create, faults, typed errors, no key leaks."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from tenantmove.errors import (
    NeonAuthFailed,
    NeonDuplicateProjects,
    NeonNotFound,
    NeonOperationFailed,
    NeonRequestRejected,
)
from tenantmove.logs import configure
from tenantmove.neon.client import NeonClient
from tenantmove.neon.fake import FakeNeon, FaultPlan
from tenantmove.providers.neon import NeonProvider, project_name
from tenantmove.secrets import FileSecretStore

API_KEY = "napi_test_9f8e7d6c5b4a3210secretkey"
TENANT = "sibelius-sinfonia"


@dataclass
class Rig:
    fake: FakeNeon
    client: NeonClient
    provider: NeonProvider
    log: io.StringIO
    http: httpx.AsyncClient


@pytest.fixture
def fake(pg_target) -> Iterator[FakeNeon]:
    server = FakeNeon(pg_target.dsn(), API_KEY, operation_delay=0.1).start()
    yield server
    server.stop()


@pytest.fixture
async def rig(fake, tmp_path) -> AsyncIterator[Rig]:
    log = io.StringIO()
    configure("json", stream=log)
    # Patient timeouts: the fake creates and drops real databases, which on a busy machine can take seconds
    # (a DROP DATABASE waits for a checkpoint); the fault tests (test_faults_neon.py) time out on purpose.
    async with httpx.AsyncClient(timeout=60) as http:
        client = NeonClient(http, fake.url, API_KEY, backoff=0.01, max_backoff=0.1, poll_interval=0.02, lock_wait=5)
        provider = NeonProvider(client, FileSecretStore(tmp_path / "secrets"), operation_timeout=60)
        yield Rig(fake, client, provider, log, http)
        for project_id in list(fake.projects):  # nothing left behind on the shared test server
            await client.delete_project(project_id)


def _whoami(dsn: str) -> tuple[str, str]:
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        row = conn.execute("SELECT current_user, current_database()").fetchone()
    assert row is not None
    return row[0], row[1]


def _no_secret(rig: Rig, *texts: str) -> None:
    for text in (rig.log.getvalue(), *texts):
        assert API_KEY not in text
        for project in rig.fake.projects.values():
            assert project.password not in text


async def test_create_find_delete(rig: Rig) -> None:
    db = await rig.provider.create(TENANT)
    assert db.kind == "neon" and db.provider_id in rig.fake.projects
    project = rig.fake.projects[db.provider_id]
    assert project.name == "stagesub-sibelius-sinfonia" and project.region_id == "aws-eu-north-1"
    assert (project.pg_version, project.min_cu, project.max_cu) == (15, 0.5, 2.0)
    assert (project.database, project.role) == ("stagesub", "stagesub_owner")
    assert _whoami(rig.provider.dsn(db)) == (db.role, db.database)
    assert await rig.provider.find(TENANT) == db
    assert await rig.provider.create(TENANT) == db  # a rerun reuses it
    assert rig.fake.created_count == 1
    assert await rig.provider.delete(db.provider_id) is True
    assert rig.fake.projects == {} and not rig.provider.secrets.exists(db.secret_ref)
    with pytest.raises(psycopg.OperationalError):
        _whoami(project.password and f"postgresql://{db.role}:{project.password}@{db.host}:{db.port}/{db.database}")
    assert await rig.provider.delete(db.provider_id) is False
    assert await rig.provider.find(TENANT) is None
    _no_secret(rig)


def test_project_names_keep_lookalike_tenants_apart() -> None:
    assert project_name("sibelius-sinfonia") == "stagesub-sibelius-sinfonia"
    assert project_name("O'Brien") != project_name("o-brien") == "stagesub-o-brien"
    assert project_name("O'Brien").startswith("stagesub-o-brien-")


async def test_crash_after_post_finds_the_project(rig: Rig) -> None:
    """The first attempt's POST went through but its process died before storing anything."""
    lost = await rig.client.create_project(rig.provider.create_request(TENANT))
    db = await rig.provider.create(TENANT)
    assert db.provider_id == lost.project.id and rig.fake.created_count == 1 and len(rig.fake.projects) == 1
    assert _whoami(rig.provider.dsn(db)) == (db.role, db.database)  # credentials fetched again


async def test_password_not_in_uri_is_revealed(rig: Rig) -> None:
    await rig.client.create_project(rig.provider.create_request(TENANT))
    rig.fake.faults.uri_without_password = True
    db = await rig.provider.create(TENANT)
    assert _whoami(rig.provider.dsn(db)) == (db.role, db.database)


FAULTS = {
    "429 twice": FaultPlan(rate_limited=2),
    "429 on the POST": FaultPlan(target="POST /projects", rate_limited=1),
    "503 twice": FaultPlan(unavailable=2),
    "500 on GETs": FaultPlan(target="GET", server_errors=3),
    "500 on the POST": FaultPlan(target="POST /projects", server_errors=1),
    "dropped connections": FaultPlan(target="GET", drop_connections=2),
    "dropped POST before": FaultPlan(target="POST /projects", drop_connections=1),
    "reply lost after the POST": FaultPlan(drop_after_post=1),
    "423 locked": FaultPlan(target="GET /projects/", locked=2),
    "slow operations": FaultPlan(slow_operations=0.6),
    "failed operation retried by neon": FaultPlan(failed_operations=1),
}


@pytest.mark.parametrize("plan", FAULTS.values(), ids=FAULTS.keys())
async def test_fault_survived_with_exactly_one_project(rig: Rig, plan: FaultPlan) -> None:
    for knob, value in vars(plan).items():
        setattr(rig.fake.faults, knob, value)
    db = await rig.provider.create(TENANT)
    assert len(rig.fake.projects) == 1 and rig.fake.created_count == 1
    assert _whoami(rig.provider.dsn(db)) == (db.role, db.database)
    spent = {k: v for k, v in vars(rig.fake.faults).items() if isinstance(v, int) and not isinstance(v, bool) and v}
    assert spent == {}, f"fault not exercised: {spent}"
    _no_secret(rig)


async def test_retry_after_is_honoured(rig: Rig) -> None:
    rig.fake.faults.rate_limited, rig.fake.faults.retry_after = 1, "1"
    started = time.monotonic()
    assert await rig.client.find_projects("nothing") == []
    assert time.monotonic() - started >= 1.0


async def test_operation_error_is_typed_and_the_project_can_be_deleted(rig: Rig) -> None:
    rig.fake.faults.error_operations = 1
    with pytest.raises(NeonOperationFailed) as caught:
        await rig.provider.create(TENANT)
    assert caught.value.code == "error" and "compute failed to start" in str(caught.value)
    found = await rig.provider.find(TENANT)  # what the saga's compensation does
    assert found is not None and await rig.provider.delete(found.provider_id)
    assert rig.fake.projects == {}
    _no_secret(rig, str(caught.value))


async def test_two_projects_with_the_name_is_an_error_naming_both(rig: Rig) -> None:
    a = await rig.client.create_project(rig.provider.create_request(TENANT))
    b = await rig.client.create_project(rig.provider.create_request(TENANT))
    with pytest.raises(NeonDuplicateProjects) as caught:
        await rig.provider.create(TENANT)
    assert a.project.id in str(caught.value) and b.project.id in str(caught.value)
    assert sorted(caught.value.project_ids) == sorted([a.project.id, b.project.id])
    assert len(rig.fake.projects) == 2


async def test_typed_errors_carry_neons_code(rig: Rig) -> None:
    bad = NeonClient(rig.http, rig.fake.url, "napi_wrong", backoff=0.01)
    with pytest.raises(NeonAuthFailed) as auth:
        await bad.find_projects("x")
    assert (auth.value.status, auth.value.code) == (401, "unauthorized") and not auth.value.retryable
    with pytest.raises(NeonNotFound) as missing:
        await rig.client.connection_uri("no-such-project", "stagesub", "stagesub_owner")
    assert (missing.value.status, missing.value.code, missing.value.neon_message) == (404, "not_found",
                                                                                      "project not found")
    with pytest.raises(NeonRequestRejected) as rejected:
        await rig.client._request("POST", "/projects", json={"project": {"pg_version": 13}}, ok=(201,))
    assert (rejected.value.status, rejected.value.code) == (422, "invalid_request")
    assert await rig.client.get_project("no-such-project") is None
    assert await rig.client.delete_project("no-such-project") is False
    for exc in (auth.value, missing.value, rejected.value):
        _no_secret(rig, str(exc), repr(exc))
    assert "napi_wrong" not in str(auth.value) and API_KEY not in repr(rig.client)
