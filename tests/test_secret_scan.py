"""No secret anywhere after a migration that completed (Neon) and one that failed (Postgres): history, search
attributes, memos, summaries, queries, logs, exceptions, audit rows and archive manifests are all scanned."""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from google.protobuf.message import Message
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from temporalio.client import WorkflowFailureError, WorkflowHandle

from activities.common import boundary
from activities.models import MigrateTenantInput, MigrationOptions, State
from tenantmove import db
from tenantmove.errors import ProviderError
from tenantmove.logs import get_logger
from tenantmove.neon.client import NeonClient
from tenantmove.neon.fake import FakeNeon
from tenantmove.providers.neon import NeonProvider
from tenantmove.providers.postgres import PostgresProvider
from tenantmove.secrets import SecretStore
from workflows.client import start_migration
from workflows.migrate import MigrateTenant

from .world import _as, approve, make_world, real_activity

API_KEY = f"napi_{secrets.token_hex(16)}"
CREDENTIAL_IN_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^:@/\s\"']+:(?!\*\*\*\*@)[^@\s\"']+@", re.I)
CREDENTIAL_IN_KV = re.compile(r"password\s*=\s*(?!\*\*\*\*)[^\s\"',;]+", re.I)


class RecordingStore:
    """The worker's secret store, remembering every secret written: the generated passwords to look for."""

    def __init__(self, inner: SecretStore) -> None:
        self.inner, self.values = inner, []

    def put(self, ref: str, value: str) -> None:
        self.values.append(value)
        self.inner.put(ref, value)

    def get(self, ref: str) -> str:
        return self.inner.get(ref)

    def delete(self, ref: str) -> None:
        self.inner.delete(ref)

    def exists(self, ref: str) -> bool:
        return self.inner.exists(ref)


def with_password(server_dsn: str, dsn: str) -> tuple[str, str]:
    """A superuser role with a password on that server, and `dsn` reached through it (the test servers trust
    local connections, so the password is never checked, but it is in every DSN the worker holds)."""
    role, password = f"sec_{secrets.token_hex(4)}", secrets.token_hex(20)
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)))
    return make_conninfo(dsn, user=role, password=password), password


def texts(message: Message) -> list[str]:
    """Every string and bytes value anywhere in a protobuf message: payload data and metadata, failure
    messages and stack traces, search attributes, memos, summaries, heartbeat details."""
    out: list[str] = []
    for _, value in message.ListFields():
        items = list(value.values()) if hasattr(value, "values") and not isinstance(value, Message) else \
            (list(value) if isinstance(value, list | tuple) or hasattr(value, "__len__") and
             not isinstance(value, str | bytes | Message) else [value])
        for item in items:
            if isinstance(item, Message):
                out += texts(item)
            elif isinstance(item, bytes):
                out.append(item.decode("utf-8", errors="replace"))
            elif isinstance(item, str):
                out.append(item)
    return out


@pytest.fixture
async def scan_world(pg_shared, pg_target, stagesub_template, tmp_path):
    fake = FakeNeon(pg_target.dsn(), API_KEY, operation_delay=0.05).start()
    records = io.StringIO()
    handler = logging.StreamHandler(records)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        async with httpx.AsyncClient(timeout=60) as http:  # patient: the fake makes real databases
            world = await make_world(pg_shared, pg_target, stagesub_template, tmp_path, http)
            shared, shared_password = with_password(pg_shared.dsn(), world.shared)
            admin, admin_password = with_password(pg_target.dsn(), pg_target.dsn())
            store = RecordingStore(world.deps.secrets)
            world.deps.shared_dsn = shared
            world.deps.settings = world.settings.model_copy(update={"shared_database_url": shared})
            world.deps.secrets = store
            neon = NeonClient(http, fake.url, API_KEY, backoff=0.05, poll_interval=0.05)
            world.deps.providers = {"postgres": PostgresProvider(admin, store, prefix=world.prefix),
                                    "neon": NeonProvider(neon, store)}
            yield world, fake, store, records, [shared_password, admin_password, API_KEY]
            for project_id in list(fake.projects):
                await neon.delete_project(project_id)
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(level)
        fake.stop()


def leaky_post_checks(world):
    """post_migration_checks that, after its real work, fails the way a driver does: with the URL it could
    not use in its message, logged with its traceback, and raised through the activity boundary."""
    real = real_activity(world.deps, "post_migration_checks")

    async def body(input):  # noqa: ANN001, ANN202
        result = await real(input)
        async with db.connection(world.deps.shared_dsn) as conn:
            url = await world.deps.registry.database_url(conn, input.tenant_id)
        try:
            raise ProviderError(f"could not connect to {url}: server closed the connection", tenant=input.tenant_id)
        except ProviderError as exc:
            get_logger(dsn=url).exception("post-migration check failed", error=exc)
            raise
        return result

    return _as(real, boundary(body))


async def collect(handle: WorkflowHandle) -> list[str]:
    found = []
    for event in (await handle.fetch_history()).events:
        found += texts(event)
    found += texts((await handle.describe()).raw_description)
    found.append((await handle.query(MigrateTenant.query_status)).model_dump_json())
    return found


async def test_no_secret_anywhere_after_a_completed_and_a_failed_migration(temporal_env, scan_world):
    world, fake, store, records, known = scan_world
    client = temporal_env.client
    async with world.worker(client):
        done = await start_migration(client, MigrateTenantInput(
            tenant_id="sibelius-sinfonia", reason="completes", target="neon", options=MigrationOptions()),
            task_queue=world.queue, workflow_id=f"migrate-neon-{world.queue}")
        await approve(done)
        report = await done.result()
        assert report.state is State.COMPLETED
        # Queried by the worker that ran it: the test server leaves a closed run's queries on that worker's
        # sticky queue, where a later worker would not see them before the deadline.
        completed_places = await collect(done)
    async with world.worker(client, {"post_migration_checks": leaky_post_checks(world)}):
        # Offline: its archive is written before the failing step, so a second manifest is scanned too.
        failed = await start_migration(client, world.input("kammerorchester-basel", mode="offline"),
                                       task_queue=world.queue,
                                       workflow_id=f"migrate-pg-{world.queue}")
        await approve(failed)
        with pytest.raises(WorkflowFailureError) as info:
            await failed.result()
        assert info.value.cause.cause.type == "ProviderError"
        assert "could not connect to postgresql://" in info.value.cause.cause.message  # masked, not dropped
        failed_places = await collect(failed)

    # Every password the run involved: the DSNs', the generated roles' and Neon's, and the API key.
    passwords = set(known) | {p.password for p in fake.projects.values()}
    for value in store.values:
        parts = urlsplit(value) if "://" in value else None
        passwords.add(parts.password if parts and parts.password else conninfo_to_dict(value)["password"])
    assert len(store.values) >= 2 and all(len(p) >= 16 for p in passwords), passwords

    places: dict[str, list[str]] = {"history+describe+query (completed)": completed_places,
                                    "history+describe+query (failed)": failed_places}
    places["structlog"], places["stdlib logging"] = [world.log.getvalue()], [records.getvalue()]
    places["manifests"] = [p.read_text() for p in world.settings.archive_root.glob("*/manifest.json")]
    assert len(places["manifests"]) == 2
    async with db.connection(world.shared) as conn:
        cur = await conn.execute('SELECT changes::text FROM "AuditLog" WHERE action LIKE %s', ["tenant.database.%"])
        places["audit rows"] = [row[0] for row in await cur.fetchall()]
    assert places["audit rows"] and "could not connect" in records.getvalue() + world.log.getvalue()
    for where, found in places.items():
        text = "\n".join(found)
        for password in passwords:
            assert password not in text, f"a password in {where}"
        assert not CREDENTIAL_IN_URL.search(text), f"{where}: {CREDENTIAL_IN_URL.search(text)}"
        assert not CREDENTIAL_IN_KV.search(text), f"{where}: {CREDENTIAL_IN_KV.search(text)}"
    assert json.dumps(report.model_dump(mode="json")).count("****") == 0  # the report holds no DSN at all
