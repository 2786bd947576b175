"""Property-based bad input: malformed tenant ids, schedules, signals and updates each get a typed refusal or
are recorded and ignored, and the shared database is unchanged."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities.models import Approval, MigrateTenantInput, MigrationOptions, Rejection, State
from stagesub.seed import DEFAULT_ORCHESTRAS
from workflows.client import RequestRefused, start_migration
from workflows.migrate import MigrateTenant

from .world import shared_sums, wait_for

EXISTING = {spec.tenant_id for spec in DEFAULT_ORCHESTRAS}
# Few examples against one long-lived world: each one is a workflow run or a round trip to the server.
FEW = settings(max_examples=20, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

SQL_BITS = ["'", '"', "\\", ";", "--", "/*", "*/", "%s", "%(tenant)s", "{}", "$1", "$$", "\x00", "\n",
            "' OR '1'='1", '"; DROP TABLE "Tenant"; --', "🎻", "交響楽団", "ä", "\u202e", " "]
tenant_ids = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(SQL_BITS) | st.text(max_size=5), min_size=1, max_size=8).map("".join),
    st.integers(min_value=190, max_value=400).map(lambda n: "x" * n),  # around the 200-character limit
).filter(lambda t: t not in EXISTING)


async def examples(check: Callable[..., Awaitable[None]], **strategies: st.SearchStrategy) -> None:
    """Run `check` on each example on this event loop (where the worker and client live) while Hypothesis
    drives the examples from a thread: Hypothesis runs no coroutines itself."""
    loop = asyncio.get_running_loop()

    @FEW
    @given(**strategies)
    def each(**example: object) -> None:
        asyncio.run_coroutine_threadsafe(check(**example), loop).result(timeout=120)

    await asyncio.to_thread(each)


def _input(tenant: str, **options: object) -> MigrateTenantInput:
    return MigrateTenantInput(tenant_id=tenant, options=MigrationOptions(**options))  # type: ignore[arg-type]


def _cause(exc: BaseException) -> ApplicationError:
    while not isinstance(exc, ApplicationError):
        assert exc.__cause__ is not None or getattr(exc, "cause", None) is not None, repr(exc)
        exc = getattr(exc, "cause", None) or exc.__cause__  # type: ignore[assignment]
    return exc


async def test_unknown_and_malformed_tenant_ids_are_refused_with_a_type(temporal_env, world):
    client = temporal_env.client
    before = await shared_sums(world.shared)
    refused: dict[str, int] = {}

    async def one(tenant: str) -> None:
        try:
            request = _input(tenant)
        except ValidationError:  # empty or too long: refused before anything starts
            refused["input"] = refused.get("input", 0) + 1
            assert not tenant or len(tenant) > 200
            return
        handle = await start_migration(client, request, task_queue=world.queue,
                                       workflow_id=f"bad-{uuid.uuid4()}")
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        kind = _cause(failed.value).type
        refused[str(kind)] = refused.get(str(kind), 0) + 1
        assert kind == "TenantNotFound", (tenant, kind)
        status = await handle.query(MigrateTenant.query_status)
        assert status.state is State.ROLLED_BACK and status.step == "request"

    async with world.worker(client):
        for tenant in ("\x00", "sibelius-sinfonia\x00", "' OR '1'='1", "x" * 201, ""):  # always, whatever is drawn
            await one(tenant)
        await examples(one, tenant=tenant_ids)
    assert refused.get("TenantNotFound") and refused.get("input")
    assert await shared_sums(world.shared) == before


schedules = st.one_of(
    st.datetimes(max_value=datetime(2200, 1, 1), timezones=st.just(UTC)).filter(
        lambda at: at < datetime.now(UTC) + timedelta(days=6)),  # the past, or inside the 7-day notice
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1)),  # no time zone
)


@FEW
@given(at=schedules)
async def test_schedules_in_the_past_inside_the_notice_or_naive_are_refused_before_starting(at):
    from temporalio.client import Client

    # RequestRefused comes before any call to Temporal: an unconnected client object is enough
    client = object.__new__(Client)
    with pytest.raises(RequestRefused, match="in the past|advance notice|no time zone"):
        await start_migration(client, MigrateTenantInput(tenant_id="sibelius-sinfonia", scheduled_at=at))


@FEW
@given(text=st.text(max_size=30).filter(lambda t: t.strip() and "T" not in t or t == ""))
def test_unparsable_schedules_are_a_validation_error(text):
    with pytest.raises(ValidationError):
        MigrateTenantInput(tenant_id="sibelius-sinfonia", scheduled_at=text)  # type: ignore[arg-type]


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3), max_leaves=6)
past = datetime(2001, 1, 1, tzinfo=UTC).isoformat()
bad_decisions = st.one_of(
    json_values.filter(lambda v: not isinstance(v, dict) or not str(v.get("approver", "")).strip()),
    st.builds(lambda a: {"approver": a}, st.sampled_from(["", " ", "\t\n", "x" * 201])),
    st.builds(lambda a, at: {"approver": a, "scheduled_at": at}, st.text(min_size=1, max_size=10).filter(str.strip),
              st.sampled_from([past, "tomorrow", "2030-13-45T00:00:00Z", "2030-01-01T00:00:00", 12, []])),
    st.builds(lambda a, extra: {"approver": a, extra: 1}, st.just("ops"), st.sampled_from(["drop", "sql", "x"])),
)


async def test_malformed_signals_and_updates_are_ignored_or_refused_and_change_nothing(temporal_env, world):
    """One workflow waiting for approval takes every bad decision; then one valid decision; then late ones."""
    client = temporal_env.client
    before = await shared_sums(world.shared)
    async with world.worker(client):
        handle = await start_migration(client, world.input("sibelius-sinfonia"), task_queue=world.queue,
                                       workflow_id=f"signals-{world.queue}")
        await wait_for(handle, lambda s: s.state is State.AWAITING_APPROVAL)
        sent = {"n": 0}

        async def one(payload: object, name: str) -> None:
            await handle.signal(name, payload)
            sent["n"] += 1
            status = await wait_for(handle, lambda s: len(s.ignored_signals) >= sent["n"])
            assert len(status.ignored_signals) == sent["n"] and status.ignored_signals[-1].startswith(name)
            update = "approve_migration" if name == "approve" else "reject_migration"
            with pytest.raises(WorkflowUpdateFailedError):
                await handle.execute_update(update, payload)
            status = await handle.query(MigrateTenant.query_status)
            assert status.state is State.AWAITING_APPROVAL and status.approved_by is None
            assert status.rejected_by is None

        for payload in (None, {}, [], "approve", {"approver": " "}, {"approver": "ops", "scheduled_at": past}):
            for name in ("approve", "reject"):
                await one(payload, name)
        await examples(one, payload=bad_decisions, name=st.sampled_from(["approve", "reject"]))
        # the first valid decision counts; a second approval and a reject after it are refused or ignored
        await handle.execute_update(MigrateTenant.approve_migration, Approval(approver="ops"))
        for update, arg in ((MigrateTenant.approve_migration, Approval(approver="ops")),
                            (MigrateTenant.reject_migration, Rejection(approver="ops", reason="changed mind"))):
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(update, arg)
            assert "already recorded" in str(refused.value.cause)
        await handle.signal(MigrateTenant.reject, Rejection(approver="ops", reason="too late"))
        status = await wait_for(handle, lambda s: s.ignored_signals[-1].startswith("reject: ignored"))
        assert status.approved_by == "ops" and status.rejected_by is None
        assert "a decision was already recorded" in status.ignored_signals[-1]
        await handle.terminate("the test ends here, before the schedule's timer fires")
        # a finished workflow refuses signals and updates outright (Temporal's NOT_FOUND)
        with pytest.raises(RPCError, match="[Cc]ompleted workflow|already completed|not found"):
            await handle.signal(MigrateTenant.approve, Approval(approver="ops"))
        with pytest.raises((RPCError, WorkflowUpdateFailedError)):
            await handle.execute_update(MigrateTenant.approve_migration, Approval(approver="ops"))
    assert await shared_sums(world.shared) == before
