"""Archives encrypted at rest: round trip under a key ring, and every kind of tampering or wrong key refused."""

from __future__ import annotations

import gzip
import json
import shutil
import stat
import struct
from pathlib import Path

import pytest

from tenantmove import archive_crypt
from tenantmove.archive import ArchiveWriter, Manifest
from tenantmove.archive_read import load_table, verify_archive
from tenantmove.checksum import table_checksum
from tenantmove.crypto import KeyRing, new_key
from tenantmove.db import connection
from tenantmove.errors import ArchiveError, ConfigError
from tenantmove.rows import RowSelection

from .test_archive import create_schema, selections

KEY_A, KEY_B = new_key(), new_key()


@pytest.fixture
def source(pg_shared, new_database) -> str:
    return create_schema(new_database(pg_shared), seed=True)


@pytest.fixture(autouse=True)
def small_frames(monkeypatch):
    # Many frames per file, so reordering and dropping frames can be tried on the seeded tables.
    monkeypatch.setattr(archive_crypt, "FRAME", 4096)


async def write(source: str, root: Path, archive_id: str = "acme-1", keys: str = KEY_A) -> Manifest:
    writer = ArchiveWriter(root, archive_id, "a", keys=KeyRing.parse(keys, "ARCHIVE_ENCRYPTION_KEY"))
    async with connection(source) as conn:
        for selection in selections():
            await writer.add_table(conn, selection)
    return writer.finish()


def frames(path: Path) -> tuple[bytes, list[bytes]]:
    data = path.read_bytes()
    header, rest, out = data[:28], data[28:], []
    while rest:
        length = struct.unpack(">I", rest[:4])[0]
        out.append(rest[:5 + length])
        rest = rest[5 + length:]
    return header, out


async def test_encrypted_round_trip_and_rotation(source, tmp_path, pg_target, new_database):
    manifest = await write(source, tmp_path)
    archive = tmp_path / "acme-1"
    ring = KeyRing.parse(KEY_A, "k")
    assert {e.encryption_key_id for e in manifest.tables} == {ring.primary}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in archive.iterdir())
    for entry in manifest.tables:
        stored = (archive / entry.file).read_bytes()
        assert stored.startswith(archive_crypt.MAGIC)
        with pytest.raises(gzip.BadGzipFile):
            gzip.decompress(stored)
    assert len(frames(archive / "001_project.copy.gz")[1]) > 2
    assert b"project 1" not in (archive / "001_project.copy.gz").read_bytes()
    # After a rotation the new key encrypts and the old one, still listed, reads the old archives.
    rotated = KeyRing.parse(f"{KEY_B},{KEY_A}", "k")
    assert await verify_archive(archive, rotated) == manifest
    target = create_schema(new_database(pg_target))
    async with connection(target) as conn:
        for entry in manifest.tables:
            assert await load_table(conn, archive, entry, keys=rotated) == entry.rows
        for selection in selections():
            whole = RowSelection.all_rows("public", selection.table, selection.columns, selection.key)
            assert (await table_checksum(conn, whole)).matches(manifest.entry(selection.table).checksum)


async def test_wrong_or_missing_key_is_refused_clearly(source, tmp_path):
    await write(source, tmp_path)
    with pytest.raises(ArchiveError, match="encrypted with key id .* expected one of the configured key ids"):
        await verify_archive(tmp_path / "acme-1", KeyRing.parse(KEY_B, "k"))
    with pytest.raises(ArchiveError, match="set ARCHIVE_ENCRYPTION_KEY"):
        await verify_archive(tmp_path / "acme-1")
    with pytest.raises(ConfigError, match="ARCHIVE_ENCRYPTION_KEY: expected a 32-byte"):
        KeyRing.parse("c2hvcnQ=", "ARCHIVE_ENCRYPTION_KEY")
    with pytest.raises(ConfigError, match="not base64"):
        KeyRing.parse("not base64!", "ARCHIVE_ENCRYPTION_KEY")


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def swap_frames(path: Path) -> None:
    header, parts = frames(path)
    parts[0], parts[1] = parts[1], parts[0]
    path.write_bytes(header + b"".join(parts))


def drop_final_frame(path: Path) -> None:
    header, parts = frames(path)
    path.write_bytes(header + b"".join(parts[:-1]))


def drop_a_middle_frame(path: Path) -> None:
    header, parts = frames(path)
    path.write_bytes(header + b"".join(parts[:1] + parts[2:]))


def append_a_frame(path: Path) -> None:
    header, parts = frames(path)
    path.write_bytes(header + b"".join(parts + parts[-1:]))


@pytest.mark.parametrize("damage", [flip, swap_frames, drop_final_frame, drop_a_middle_frame, append_a_frame])
async def test_tampering_is_detected_before_any_row_loads(source, tmp_path, pg_target, new_database, damage):
    manifest = await write(source, tmp_path)
    archive, ring = tmp_path / "acme-1", KeyRing.parse(KEY_A, "k")
    damage(archive / "001_project.copy.gz")
    with pytest.raises(ArchiveError, match="project"):
        await verify_archive(archive, ring)
    target = create_schema(new_database(pg_target))
    async with connection(target) as conn:
        with pytest.raises(ArchiveError, match="project"):
            await load_table(conn, archive, manifest.entry("project"), keys=ring)
        cur = await conn.execute("SELECT count(*) FROM project")
        assert await cur.fetchone() == (0,)


async def test_a_file_from_another_archive_is_refused_even_with_a_matching_manifest(source, tmp_path):
    """The attacker who can write files and the manifest, but not the key, cannot swap in other rows."""
    await write(source, tmp_path, "acme-1")
    await write(source, tmp_path, "acme-2")
    shutil.copy(tmp_path / "acme-1" / "001_project.copy.gz", tmp_path / "acme-2" / "001_project.copy.gz")
    with pytest.raises(ArchiveError, match="project .*cannot be decrypted"):
        await verify_archive(tmp_path / "acme-2", KeyRing.parse(KEY_A, "k"))
    # An edited manifest claiming the file is plain gzip gets a corrupt-file error, never rows.
    manifest_file = tmp_path / "acme-1" / "manifest.json"
    data = json.loads(manifest_file.read_text())
    data["tables"][0]["encryption_key_id"] = None
    manifest_file.write_text(json.dumps(data))
    with pytest.raises(ArchiveError, match="project"):
        await verify_archive(tmp_path / "acme-1")
