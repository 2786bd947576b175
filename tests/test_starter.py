"""The command line: plan, explain, bad tenant ids; and the compose file users start Temporal with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import starter
from stagesub.schema import deploy_reference_schema
from stagesub.seed import OrchestraSpec, seed
from tenantmove.settings import Settings

from .conftest import create_database

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def seeded(pg_shared):
    dsn = create_database(pg_shared, "cli")
    deploy_reference_schema(dsn)
    seed(dsn, [OrchestraSpec("tiny", "Tiny", "small"), OrchestraSpec("o'q", "Quote", "small")])
    return dsn


@pytest.fixture
def env(seeded, monkeypatch, tmp_path):
    monkeypatch.setenv("SHARED_DATABASE_URL", seeded)
    monkeypatch.setenv("STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LOG_FORMAT", "json")
    return seeded


def test_plan_json_lists_every_table_with_rows(env, capsys):
    assert starter.main(["plan", "--tenant", "o'q", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    tables = {t["table"]: t for t in doc["tables"]}
    assert tables["Request"]["role"] == "owned" and tables["Request"]["rows"] > 0
    assert any("ProjectNeed" in p for p in tables["Request"]["paths"])
    assert tables["User"]["role"] == "kept" and not tables["User"]["deleted_at_cleanup"]
    assert doc["load_order"].index("Project") < doc["load_order"].index("ProjectNeed") < doc["load_order"].index(
        "Request")
    assert doc["problems"] == []


def test_plan_text_and_explain(env, capsys):
    assert starter.main(["plan", "--tenant", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "Plan for tenant 'tiny'" in out and "CommunicationLog" in out and "load order: Tenant" in out
    assert starter.main(["plan", "--tenant", "tiny", "--explain", "Request", "--row", "tiny-req-000001"]) == 0
    out = capsys.readouterr().out
    assert "Request: owned" in out and "ProjectNeed" in out


def test_unknown_tenant_is_a_clear_error(env, capsys):
    assert starter.main(["plan", "--tenant", "nope'; DROP TABLE \"Tenant\"; --"]) == 2
    err = capsys.readouterr().err
    assert "no tenant with Tenant.id = " in err
    assert starter.main(["plan", "--tenant", "tiny", "--json"]) == 0  # and nothing was dropped


def test_compose_file_runs_temporal_with_its_ui():
    compose = yaml.safe_load((ROOT / "docker-compose.temporal.yml").read_text())
    services = compose["services"]
    assert {"temporal", "temporal-ui", "temporal-db"} <= set(services)
    assert "7233:7233" in services["temporal"]["ports"]
    assert "8233:8080" in services["temporal-ui"]["ports"]
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    # The worker: built here, pointed at the compose Temporal, every variable one the settings object reads.
    worker = services["worker"]
    assert worker["build"] == "." and (ROOT / "Dockerfile").exists()
    env = worker["environment"]
    known = {name.upper() for name in Settings.model_fields}
    assert set(env) <= known, set(env) - known
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233" and env["TASK_QUEUE"] == Settings().task_queue
    assert "9464:9464" in worker["ports"] and env["METRICS_ADDRESS"].endswith(":9464")
    assert "worker-state" in compose["volumes"]


def test_docker_compose_accepts_the_file():
    import shutil
    import subprocess

    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker CLI here has no compose plugin")
    done = subprocess.run([docker, "compose", "-f", str(ROOT / "docker-compose.temporal.yml"), "config", "--quiet"],
                          capture_output=True, text=True, env={"SHARED_DATABASE_URL": "postgresql://x@db/x",
                                                               "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr


async def test_worker_serves_sdk_metrics_for_prometheus(dev_env):
    import socket

    import httpx

    import worker
    from tenantmove.settings import Settings as S

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = dev_env.client.service_client.config.target_host
    settings = S(temporal_address=target, metrics_address=f"127.0.0.1:{port}")
    client = await worker.connect(settings)
    await client.count_workflows()  # any call: the client's request metrics appear
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    assert "temporal_request" in text


def test_recommend_lists_tenants_past_the_triggers(env, capsys, seeded):
    from stagesub.seed import OrchestraSpec, seed

    seed(seeded, [OrchestraSpec("big-band", "Big Band", "institution")])
    assert starter.main(["recommend", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [r["tenant"] for r in found] == ["big-band"]
    assert found[0]["figures"]["musicians"] >= 300 and any("musicians" in c for c in found[0]["crossed"])
    assert starter.main(["recommend", "--all", "--json"]) == 0
    assert {r["tenant"] for r in json.loads(capsys.readouterr().out)} == {"big-band", "tiny", "o'q"}
