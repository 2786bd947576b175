"""Move organisation 1 of the docs schema: exactly its rows move, nothing else changes, cleanup is exact."""

from __future__ import annotations

import pytest
from psycopg import sql

from tenantmove import db
from tenantmove.checksum import table_checksum
from tenantmove.cleanup import delete_tenant_rows
from tenantmove.errors import IntegrityProblem
from tenantmove.explain import explain_row, explain_table
from tenantmove.mover import compare_tenant, copy_tenant, verify_tenant
from tenantmove.plan import plan_schema
from tenantmove.survey import survey_tenant, survey_tenant_parallel

from . import docs_schema
from .conftest import create_database


async def _sums(dsn: str, selections) -> dict[str, tuple[int, str]]:
    async with db.connection(dsn) as conn:
        out = {}
        for sel in selections:
            s = await table_checksum(conn, sel)
            out[sel.table] = (s.rows, s.digest)
        await conn.rollback()
        return out


@pytest.fixture
def docs_pair(pg_shared, pg_target):
    shared = create_database(pg_shared, "docs_shared")
    target = create_database(pg_target, "docs_target")
    docs_schema.create(shared)
    docs_schema.create(target, data=False)
    return shared, target


async def _plan(dsn):
    async with db.connection(dsn) as conn:
        return await plan_schema(conn, "public", docs_schema.RULES)


async def test_move_copies_exactly_the_tenants_rows(docs_pair):
    shared, target = docs_pair
    plan = await _plan(shared)
    async with db.connection(shared) as src, db.connection(target) as dst:
        results = await copy_tenant(src, dst, plan, "1")
        await verify_tenant(src, dst, plan, "1")
    assert {r.table for r in results} == set(plan.load_order)
    # The target holds exactly the hand-computed rows of organisation 1, table by table, and nothing else.
    expected = await _sums(shared, [docs_schema.expected(t) for t in docs_schema.TABLES])
    on_target = await _sums(target, [docs_schema.whole(t) for t in docs_schema.TABLES])
    for table in docs_schema.TABLES:
        assert on_target[table] == expected[table], table
    assert expected["link"][0] > 20 and expected["comment"][0] == 30 and expected["document_data"][0] == 20


async def test_second_copy_is_skipped_and_adds_no_row(docs_pair):
    shared, target = docs_pair
    plan = await _plan(shared)
    async with db.connection(shared) as src, db.connection(target) as dst:
        await copy_tenant(src, dst, plan, "1")
        before = await compare_tenant(src, dst, plan, "1")
        again = await copy_tenant(src, dst, plan, "1")
        after = await compare_tenant(src, dst, plan, "1")
    assert all(r.skipped for r in again if r.rows)
    assert before == after


async def test_sequences_on_the_target_move_past_the_moved_ids(docs_pair):
    shared, target = docs_pair
    plan = await _plan(shared)
    async with db.connection(shared) as src, db.connection(target) as dst:
        await copy_tenant(src, dst, plan, "1")
        cur = await dst.execute("SELECT max(id) FROM folder")
        top = (await cur.fetchone())[0]
        cur = await dst.execute("INSERT INTO folder (org_id, name) VALUES (1, 'new') RETURNING id")
        assert (await cur.fetchone())[0] > top
        cur = await dst.execute("INSERT INTO document (team_org, team_no, title) VALUES (1, 1, 'n') RETURNING id")
        assert (await cur.fetchone())[0] > 58
        await dst.rollback()


async def test_a_changed_value_on_the_target_is_detected(docs_pair):
    shared, target = docs_pair
    plan = await _plan(shared)
    async with db.connection(shared) as src, db.connection(target) as dst:
        await copy_tenant(src, dst, plan, "1")
        await dst.execute("UPDATE view SET viewed_at = viewed_at + interval '1 microsecond' WHERE id = "
                          "(SELECT min(id) FROM view)")
        await dst.commit()
        with pytest.raises(Exception, match="checksums differ: view") as info:
            await verify_tenant(src, dst, plan, "1")
    assert info.value.tables == ["view"]


async def test_survey_counts_orphans_and_never_moves_them(docs_pair):
    shared, _ = docs_pair
    plan = await _plan(shared)
    async with db.connection(shared) as conn:
        survey = await survey_tenant(conn, plan, "1")
    assert survey.tables["link"].orphans == 2  # 'orphan-link' and the link to room-9, which has no org
    assert survey.tables["dataroom"].orphans == 1
    assert survey.tables["comment"].orphans == 1
    assert survey.tables["audit"].orphans == 1  # tenantId NULL
    assert survey.tables["document_data"].orphans == 2
    assert survey.tables["view"].orphans == sum(1 for g in range(1, 401) if (g % 93) + 1 in (91, 93))
    assert not survey.conflicts
    expected = await _sums(shared, [docs_schema.expected(t) for t in docs_schema.TABLES])
    for table in docs_schema.TABLES:
        assert survey.tables[table].rows == expected[table][0], table


async def test_a_row_claimed_by_two_tenants_is_an_integrity_error_naming_it(docs_pair):
    shared, _ = docs_pair
    async with db.connection(shared, autocommit=True) as conn:
        # document 3 belongs to organisation 1 (team_org = 3 % 3 + 1), room-2 to organisation 2
        await conn.execute("INSERT INTO link (document_id, dataroom_id, slug) VALUES (3, 'room-2', 'two-owners')")
        plan = await _plan(shared)
        survey = await survey_tenant(conn, plan, "1")
    assert survey.tables["link"].conflicts == 1
    assert "dataroom_id='room-2' document_id=3" in survey.tables["link"].conflict_sample[0]
    with pytest.raises(IntegrityProblem, match="room-2"):
        survey.raise_on_problems()


async def test_a_reference_into_another_tenant_is_an_integrity_error(docs_pair):
    shared, _ = docs_pair
    async with db.connection(shared, autocommit=True) as conn:
        plan = await _plan(shared)
        assert not (await survey_tenant(conn, plan, "1")).problems
        # a view of organisation 1's team-only link, seen by organisation 2's guest
        await conn.execute("INSERT INTO view (link_id, viewer_id, viewed_at) SELECT l.id, u.id, "
                           "'2024-05-05 05:05:05+00' FROM link l, app_user u "
                           "WHERE l.slug = 'team-only-link' AND u.email = 'guest@two'")
        survey = await survey_tenant(conn, plan, "1")
    # the view is the origin; the guest it would drag along points into organisation 2 in turn
    assert sorted(ref.link for ref in survey.cross_references) == [
        "app_user(invited_by) -> app_user(id)", "app_user(org_id) -> organisation(id)",
        "view(viewer_id) -> app_user(id)"]
    with pytest.raises(IntegrityProblem, match=r"view\(viewer_id\) -> app_user\(id\): 1 copied row"):
        survey.raise_on_problems()


async def test_cleanup_deletes_exactly_the_tenants_owned_rows(docs_pair):
    shared, _ = docs_pair
    plan = await _plan(shared)
    # Other tenants' rows (and orphans) of owned tables; kept, referenced and global tables are compared whole.
    others_before = await _sums(shared, [docs_schema.expected(t, negate=True) for t in docs_schema.OWNED])
    kept_before = await _sums(shared, [docs_schema.whole(t) for t in ("app_user", "session", "country", "currency",
                                                                      "organisation", "changelog", "org_settings")])
    async with db.connection(shared) as conn:
        deleted = await delete_tenant_rows(conn, plan, "1")
    expected_rows = await _sums(shared, [docs_schema.expected(t) for t in docs_schema.DELETED])
    assert all(rows == 0 for rows, _ in expected_rows.values())
    assert deleted["view"] > 0 and deleted["document_data"] == 20 and "org_settings" not in deleted
    others_after = await _sums(shared, [docs_schema.expected(t, negate=True) for t in docs_schema.OWNED])
    assert others_after == others_before
    assert await _sums(shared, [docs_schema.whole(t) for t in kept_before]) == kept_before


async def test_cleanup_refuses_when_a_row_outside_still_references_the_tenant(docs_pair):
    shared, _ = docs_pair
    async with db.connection(shared, autocommit=True) as conn:
        await conn.execute("ALTER TABLE app_user ADD COLUMN home_folder integer REFERENCES folder (id) "
                           "ON DELETE SET NULL")
        await conn.execute("UPDATE app_user SET home_folder = (SELECT min(id) FROM folder WHERE org_id = 1) "
                           "WHERE email = 'guest@two'")
    plan = await _plan(shared)
    before = await _sums(shared, [docs_schema.whole(t) for t in docs_schema.TABLES])
    async with db.connection(shared) as conn:
        with pytest.raises(IntegrityProblem, match="home_folder"):
            await delete_tenant_rows(conn, plan, "1")
    assert await _sums(shared, [docs_schema.whole(t) for t in docs_schema.TABLES]) == before


async def test_explain_says_why_a_row_belongs_or_not(docs_pair):
    shared, _ = docs_pair
    plan = await _plan(shared)
    text = "\n".join(explain_table(plan, "link"))
    assert "ANY of these" in text and "dataroom" in text and "deleted from shared" in text
    async with db.connection(shared) as conn:
        cur = await conn.execute(sql.SQL("SELECT id FROM link WHERE slug = %s"), ["team-only-link"])
        team_only = str((await cur.fetchone())[0])
        cur = await conn.execute(sql.SQL("SELECT id FROM link WHERE slug = %s"), ["orphan-link"])
        orphan = str((await cur.fetchone())[0])
        yes = await explain_row(conn, plan, "link", [team_only], "1")
        no = await explain_row(conn, plan, "link", [orphan], "1")
        other = await explain_row(conn, plan, "link", [team_only], "2")
        missing = await explain_row(conn, plan, "link", ["999999"], "1")
    assert yes.copied and [ok for _, ok in yes.rules] == [True, False, False, False]
    assert not no.copied and not no.owned_by_any_tenant
    assert "orphan" in "\n".join(no.lines("link", [orphan], "1"))
    assert not other.copied and other.owned_by_other_tenant
    assert not missing.found


@pytest.mark.parametrize("connections", [1, 3])
async def test_the_survey_over_several_connections_finds_what_one_connection_finds(docs_pair, connections):
    shared, _ = docs_pair
    async with db.connection(shared, autocommit=True) as conn:
        await conn.execute("INSERT INTO link (document_id, dataroom_id, slug) VALUES (3, 'room-2', 'two-owners')")
        await conn.execute("INSERT INTO view (link_id, viewer_id, viewed_at) SELECT l.id, u.id, "
                           "'2024-05-05 05:05:05+00' FROM link l, app_user u "
                           "WHERE l.slug = 'team-only-link' AND u.email = 'guest@two'")
        plan = await _plan(shared)
        alone = await survey_tenant(conn, plan, "1")
    spread = await survey_tenant_parallel(shared, plan, "1", connections=connections)
    assert alone.problems and alone.tables["link"].conflicts == 1 and alone.tables["view"].orphans > 0
    assert spread == alone
