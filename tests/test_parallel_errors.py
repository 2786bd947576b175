"""A table failing inside the parallel import surfaces as its own typed engine error, not as an ExceptionGroup
that the activity boundary would take for an unknown, retryable error."""

from __future__ import annotations

import psycopg
import pytest

from stagesub.schema import deploy_reference_schema
from tenantmove import db
from tenantmove.errors import IntegrityProblem
from tenantmove.parallel import copy_tenant_parallel
from tenantmove.plan import PlanRules, plan_schema

from .conftest import copy_database, create_database

TENANT = "sibelius-sinfonia"


async def test_a_permanent_error_in_one_table_is_raised_as_itself(pg_shared, pg_target, stagesub_template):
    shared = copy_database(pg_shared, stagesub_template, "perr")
    target = create_database(pg_target, "perr_t")
    deploy_reference_schema(target)
    with psycopg.connect(target, autocommit=True) as conn:  # every Musician row breaks it: bad data, not luck
        conn.execute('ALTER TABLE "Musician" ADD CONSTRAINT no_musicians CHECK (false) NOT VALID')
    async with db.connection(shared) as conn:
        plan = await plan_schema(conn, "public", PlanRules())
    with pytest.raises(IntegrityProblem, match="Musician") as raised:
        await copy_tenant_parallel(shared, target, plan, TENANT, connections=3)
    assert not raised.value.retryable
