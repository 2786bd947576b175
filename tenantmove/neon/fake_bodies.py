"""The JSON bodies the local Neon server answers with, in the shapes of openapi-v2.json's components."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from starlette.responses import JSONResponse

from tenantmove.neon.fake_state import FakeOperation, FakeProject


def iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "request_id": str(uuid.uuid4())}, status, headers)


def project_body(p: FakeProject) -> dict[str, Any]:
    now = iso()
    return {
        "id": p.id, "platform_id": "aws", "region_id": p.region_id, "name": p.name, "provisioner": "k8s-neonvm",
        "default_endpoint_settings": {"autoscaling_limit_min_cu": p.min_cu, "autoscaling_limit_max_cu": p.max_cu,
                                      "suspend_timeout_seconds": 0},
        "pg_version": p.pg_version, "proxy_host": f"{p.region_id}.aws.neon.tech",
        "branch_logical_size_limit": 0, "branch_logical_size_limit_bytes": 0, "store_passwords": True,
        "cpu_used_sec": 0, "creation_source": "console", "history_retention_seconds": 86400,
        "created_at": p.created_at, "updated_at": now, "owner_id": "owner-1",
        "consumption_period_start": p.created_at, "consumption_period_end": now, "active_time_seconds": 0,
        "compute_time_seconds": 0, "written_data_bytes": 0, "data_transfer_bytes": 0,
        "data_storage_bytes_hour": 0,
    }


def list_item(p: FakeProject) -> dict[str, Any]:
    return {"id": p.id, "platform_id": "aws", "region_id": p.region_id, "name": p.name,
            "provisioner": "k8s-neonvm", "pg_version": p.pg_version, "proxy_host": f"{p.region_id}.aws.neon.tech",
            "branch_logical_size_limit": 0, "branch_logical_size_limit_bytes": 0, "store_passwords": True,
            "active_time": 0, "cpu_used_sec": 0, "creation_source": "console", "created_at": p.created_at,
            "updated_at": iso(), "owner_id": "owner-1"}


def op_body(p: FakeProject, op: FakeOperation) -> dict[str, Any]:
    now = time.time()
    status = op.status(now)
    body: dict[str, Any] = {
        "id": op.id, "project_id": p.id, "branch_id": p.branch_id, "action": op.action, "status": status,
        "failures_count": 1 if op.fail and status in ("failed", "error", "finished") else 0,
        "created_at": iso(op.created), "updated_at": iso(min(now, op.created + op.runs)),
        "total_duration_ms": int(min(now - op.created, op.runs) * 1000)}
    if op.action in ("start_compute", "apply_config"):
        body["endpoint_id"] = p.endpoint_id
    if status in ("failed", "error"):
        body["error"] = "compute failed to start" if status == "error" else "transient storage failure"
    if status == "failed":
        body["retry_at"] = iso(op.created + op.runs)
    return body


def connection_uri(p: FakeProject, host: str, port: int, with_password: bool = True) -> str:
    secret = f":{quote(p.password, safe='')}" if with_password else ""
    # Neon's URIs say sslmode=require; this fake's Postgres is a loopback server without TLS, so its
    # URIs say so explicitly (a DSN's own sslmode is kept over DATABASE_SSLMODE).
    return (f"postgresql://{quote(p.local_role, safe='')}{secret}@{host}:{port}/"
            f"{quote(p.local_database, safe='')}?sslmode=disable")


def branch_body(p: FakeProject) -> dict[str, Any]:
    return {"id": p.branch_id, "project_id": p.id, "name": "main", "current_state": "ready",
            "state_changed_at": p.created_at, "creation_source": "console", "created_at": p.created_at,
            "updated_at": iso(), "default": True, "primary": True, "protected": False, "cpu_used_sec": 0,
            "active_time_seconds": 0, "compute_time_seconds": 0, "written_data_bytes": 0, "data_transfer_bytes": 0}


def created_body(p: FakeProject, ops: Sequence[FakeOperation], uri: str) -> dict[str, Any]:
    """POST /projects' 201 body: the project with its role, database, branch, endpoint and first operations."""
    now = iso()
    return {
        "project": project_body(p),
        "connection_uris": [{"connection_uri": uri, "connection_parameters": {
            "database": p.database, "password": p.password, "role": p.role, "host": f"{p.endpoint_id}.local",
            "pooler_host": f"{p.endpoint_id}-pooler.local"}}],
        "roles": [{"branch_id": p.branch_id, "name": p.role, "password": p.password, "protected": False,
                   "created_at": now, "updated_at": now}],
        "databases": [{"id": 1, "branch_id": p.branch_id, "name": p.database, "owner_name": p.role,
                       "created_at": now, "updated_at": now}],
        "operations": [op_body(p, op) for op in ops],
        "branch": branch_body(p),
        "endpoints": [{"host": f"{p.endpoint_id}.local", "id": p.endpoint_id, "project_id": p.id,
                       "branch_id": p.branch_id, "region_id": p.region_id, "autoscaling_limit_min_cu": p.min_cu,
                       "autoscaling_limit_max_cu": p.max_cu, "type": "read_write", "current_state": "init",
                       "pending_state": "active", "pooler_enabled": False, "pooler_mode": "transaction",
                       "disabled": False, "passwordless_access": False, "creation_source": "console",
                       "created_at": now, "updated_at": now, "settings": {},
                       "proxy_host": f"{p.region_id}.aws.neon.tech", "suspend_timeout_seconds": 0,
                       "provisioner": "k8s-neonvm"}],
    }
