"""Export archives on disk: round trip into fresh databases, private modes, and tampering caught by verify."""

from __future__ import annotations

import asyncio
import gzip
import json
import stat
import threading
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tenantmove.archive import ArchiveWriter, Manifest, _thread_done
from tenantmove.archive_read import load_table, read_manifest, verify_archive
from tenantmove.checksum import table_checksum
from tenantmove.db import connection
from tenantmove.errors import ArchiveError
from tenantmove.rows import RowSelection

DDL = """
CREATE TYPE stage AS ENUM ('draft', 'live');
CREATE TABLE project (
    id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id text NOT NULL,
    parent_id int REFERENCES project (id), name text, meta jsonb, due timestamptz, budget numeric,
    logo bytea, labels text[], state stage
);
CREATE TABLE assignment (
    project_id int NOT NULL REFERENCES project (id), person text NOT NULL, hours numeric(6, 2),
    PRIMARY KEY (project_id, person)
);
"""

SEED = """
INSERT INTO project (id, tenant_id, parent_id, name, meta, due, budget, logo, labels, state)
OVERRIDING SYSTEM VALUE
SELECT g, CASE WHEN g % 4 = 0 THEN 'b' ELSE 'a' END, NULL, 'project ' || g, jsonb_build_object('g', g),
       timestamptz '2030-06-01 12:00+02' - g * interval '1 day', g * 1.25, decode(repeat('00ff', g % 5), 'hex'),
       ARRAY['l' || g], (ARRAY['draft', 'live'])[1 + g % 2]::stage
FROM generate_series(1, 400) AS g;
UPDATE project SET parent_id = id - 4 WHERE id > 4;
INSERT INTO assignment SELECT p.id, 'person ' || n, n * 1.5 FROM project p, generate_series(1, 3) AS n;
"""

SPECIAL = [
    (1001, "a", 1, "tab\there \"dq\" 'sq' back\\slash\nnewline é 🦄", '{"k": "\\\\ \\"q\\""}',
     "-infinity", "NaN", b"\x00\n\\", ["", None, "NULL", "a b"], None),
    (1002, "a", 1001, "", None, None, None, None, [], "live"),
    (1003, "a", None, "x" * (1 << 20), "null", None, 0, b"", None, None),
    (1004, "a", None, None, None, None, None, None, None, None),
]

PROJECT = ("id", "tenant_id", "parent_id", "name", "meta", "due", "budget", "logo", "labels", "state")
ASSIGNMENT = ("project_id", "person", "hours")


def selections(tenant: str = "a") -> list[RowSelection]:
    project = sql.SQL("SELECT {} FROM public.project WHERE tenant_id = %(tenant)s").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in PROJECT))
    assignment = sql.SQL(
        "SELECT a.project_id, a.person, a.hours FROM public.assignment a"
        " JOIN public.project p ON p.id = a.project_id WHERE p.tenant_id = %(tenant)s")
    return [
        RowSelection("public", "project", PROJECT, project, {"tenant": tenant}, ("id",)),
        RowSelection("public", "assignment", ASSIGNMENT, assignment, {"tenant": tenant}, ("project_id", "person")),
    ]


def create_schema(dsn: str, *, seed: bool = False) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL(DDL))
        if seed:
            conn.execute(sql.SQL(SEED))
            conn.cursor().executemany(
                "INSERT INTO project (id, tenant_id, parent_id, name, meta, due, budget, logo, labels, state)"
                " OVERRIDING SYSTEM VALUE VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", SPECIAL)
    return dsn


@pytest.fixture
def source(pg_shared, new_database) -> str:
    return create_schema(new_database(pg_shared), seed=True)


async def write_archive(source: str, root: Path, archive_id: str = "acme-1") -> Manifest:
    writer = ArchiveWriter(root, archive_id, "a")
    async with connection(source) as conn:
        for selection in selections():
            await writer.add_table(conn, selection)
    return writer.finish()


async def load_and_compare(source: str, target: str, archive: Path, manifest: Manifest) -> None:
    async with connection(target) as conn:
        for entry in manifest.tables:
            assert await load_table(conn, archive, entry) == entry.rows
        for selection in selections():
            whole = RowSelection.all_rows("public", selection.table, selection.columns, selection.key)
            loaded = await table_checksum(conn, whole)
            assert loaded.matches(manifest.entry(selection.table).checksum), selection.table
    async with connection(source) as conn:
        for selection in selections():
            assert (await table_checksum(conn, selection)).matches(manifest.entry(selection.table).checksum)


async def test_round_trip_verify_and_load(source: str, tmp_path: Path, pg_target, new_database) -> None:
    manifest = await write_archive(source, tmp_path / "archives")
    archive = tmp_path / "archives" / "acme-1"
    assert [e.file for e in manifest.tables] == ["001_project.copy.gz", "002_assignment.copy.gz"]
    project = manifest.entry("project")
    assert project.rows == 304 and project.checksum.rows == 304 and project.bytes > 1 << 20
    assert project.file_bytes < project.bytes / 20   # the 1 MB value compresses
    assert project.column_types[-1] == "stage" and manifest.server_version.startswith("18")
    assert manifest.entry("assignment").key == ("project_id", "person")
    # Private modes, manifest last and nothing else left behind.
    assert stat.S_IMODE(archive.stat().st_mode) == 0o700
    assert sorted(p.name for p in archive.iterdir()) == ["001_project.copy.gz", "002_assignment.copy.gz",
                                                          "manifest.json"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in archive.iterdir())
    # The manifest is plain JSON and round-trips to the same object.
    assert json.loads((archive / "manifest.json").read_text())["tenant"] == "a"
    assert read_manifest(archive) == manifest == await verify_archive(archive)
    # The file holds COPY text that a person (or psql) can read.
    with gzip.open(archive / "002_assignment.copy.gz", "rt") as text:
        assert text.readline().count("\t") == 2

    target = create_schema(new_database(pg_target))
    await load_and_compare(source, target, archive, manifest)


async def test_archive_loads_into_postgres_15(source: str, tmp_path: Path, pg15, new_database) -> None:
    manifest = await write_archive(source, tmp_path)
    await load_and_compare(source, create_schema(new_database(pg15)), tmp_path / "acme-1", manifest)


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 9])


def append_garbage(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\x00")


def recompress_one_row_less(path: Path) -> None:
    # A well-formed gzip file with a row missing: only the digests and counts can tell.
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    path.write_bytes(gzip.compress(b"".join(lines[1:])))


@pytest.mark.parametrize("damage", [flip_byte, truncate, append_garbage, recompress_one_row_less, Path.unlink])
async def test_damaged_file_fails_verify_and_loads_nothing(source: str, tmp_path: Path, damage, pg_target,
                                                           new_database) -> None:
    manifest = await write_archive(source, tmp_path)
    archive = tmp_path / "acme-1"
    damage(archive / "002_assignment.copy.gz")
    with pytest.raises(ArchiveError, match="assignment") as caught:
        await verify_archive(archive)
    assert caught.value.table == "assignment"

    target = create_schema(new_database(pg_target))
    async with connection(target) as conn:
        await load_table(conn, archive, manifest.entry("project"))
        with pytest.raises(ArchiveError, match="assignment"):
            await load_table(conn, archive, manifest.entry("assignment"))
        cur = await conn.execute("SELECT count(*) FROM assignment")
        assert await cur.fetchone() == (0,)


async def test_edited_manifest_fails_verify(source: str, tmp_path: Path) -> None:
    await write_archive(source, tmp_path)
    manifest_file = tmp_path / "acme-1" / "manifest.json"
    data = json.loads(manifest_file.read_text())
    data["tables"][0]["rows"] += 1
    manifest_file.write_text(json.dumps(data))
    with pytest.raises(ArchiveError, match="table project in archive: expected rows 305, found 304"):
        await verify_archive(tmp_path / "acme-1")
    data["tables"][0]["file"] = "../../etc/passwd"
    manifest_file.write_text(json.dumps(data))
    with pytest.raises(ArchiveError, match="plain file name"):
        await verify_archive(tmp_path / "acme-1")
    manifest_file.write_text("{not json")
    with pytest.raises(ArchiveError, match="valid manifest.json"):
        read_manifest(tmp_path / "acme-1")


async def test_unfinished_archive_has_no_manifest_and_is_restarted(source: str, tmp_path: Path) -> None:
    writer = ArchiveWriter(tmp_path, "acme-2", "a")
    async with connection(source) as conn:
        await writer.add_table(conn, selections()[0])
        with pytest.raises(ArchiveError, match="already in archive"):
            await writer.add_table(conn, selections()[0])
    with pytest.raises(ArchiveError, match="found no manifest.json"):
        read_manifest(tmp_path / "acme-2")
    # A retry starts over in the same directory; a finished archive is never overwritten.
    manifest = await write_archive(source, tmp_path, "acme-2")
    assert len(list((tmp_path / "acme-2").iterdir())) == 3
    assert (await verify_archive(tmp_path / "acme-2")) == manifest
    with pytest.raises(ArchiveError, match="found a finished one"):
        ArchiveWriter(tmp_path, "acme-2", "a")
    with pytest.raises(ArchiveError, match="archive id"):
        ArchiveWriter(tmp_path, "../escape", "a")


async def test_a_cancelled_export_waits_for_its_writer_thread_before_closing_the_file():
    """The full-disk race: a table whose own write failed was cancelled (a sibling failed too) while waiting
    for its writer thread, skipped closing its file and held the descriptor; the disk stayed busy."""
    release = threading.Event()
    pending = asyncio.ensure_future(asyncio.to_thread(release.wait, 10))
    waiter = asyncio.create_task(_thread_done(pending))
    await asyncio.sleep(0.05)
    waiter.cancel()  # as the TaskGroup does when a sibling table fails
    await asyncio.sleep(0.05)
    assert not waiter.done()  # still waiting for the thread, whatever the cancellation says
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await waiter  # the cancellation is raised once the thread is done
    assert pending.done() and not pending.cancelled()
