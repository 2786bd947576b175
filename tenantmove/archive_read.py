"""Reading export archives back: the manifest, every table file checked against it, one table loaded."""

from __future__ import annotations

import asyncio
import hashlib
import zlib
from pathlib import Path
from typing import BinaryIO

import psycopg
from psycopg import AsyncConnection, sql

from tenantmove.archive import BLOCK, MANIFEST, ArchiveEntry, Manifest
from tenantmove.archive_crypt import FrameReader
from tenantmove.copy import engine_error
from tenantmove.crypto import KeyRing
from tenantmove.errors import ArchiveError


def read_manifest(path: Path | str) -> Manifest:
    """The manifest of the archive directory `path` (or of the manifest file itself)."""
    path = Path(path)
    file = path if path.is_file() else path / MANIFEST
    try:
        return Manifest.model_validate_json(file.read_bytes())
    except FileNotFoundError as exc:
        raise ArchiveError(f"expected a finished archive at {path}, found no {MANIFEST}") from exc
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise ArchiveError(f"expected a valid {MANIFEST} at {path}, found: {exc}") from exc


def _table_path(archive: Path, entry: ArchiveEntry) -> Path:
    if Path(entry.file).name != entry.file or entry.file in ("", ".", ".."):
        raise ArchiveError(f"expected a plain file name for table {entry.table}, found {entry.file!r}",
                           table=entry.table)
    return archive / entry.file


class _GzipReader:
    """Reads one table file: uncompressed blocks out, while hashing the stored bytes (runs in a thread)."""

    def __init__(self, path: Path, entry: ArchiveEntry, keys: KeyRing | None = None) -> None:
        self.table = table = entry.table
        try:
            self.raw: BinaryIO = open(path, "rb")
        except FileNotFoundError as exc:
            raise ArchiveError(f"expected file {path.name} for table {table}, found none",
                               table=table) from exc
        self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.file_sha, self.file_bytes = hashlib.sha256(), 0
        self.frames: FrameReader | None = None
        if entry.encryption_key_id is not None:
            try:
                self.frames = FrameReader(self._stored, keys, f"{path.parent.name}/{path.name}", table, path.name)
            except BaseException:
                self.raw.close()
                raise

    def _stored(self, size: int) -> bytes:
        data = self.raw.read(size)
        self.file_sha.update(data)
        self.file_bytes += len(data)
        return data

    def read(self) -> bytes:
        """Next block of uncompressed COPY text, b'' at the end; ArchiveError when truncated or corrupt."""
        try:
            while True:
                pending = self.inflate.unconsumed_tail
                if not pending:
                    if self.inflate.eof:
                        self._check_end()
                        return b""
                    pending = self.frames.read() if self.frames else self._stored(BLOCK)
                    if not pending:
                        raise ArchiveError(f"file {self.raw.name} of table {self.table} is truncated",
                                           table=self.table)
                # max_length bounds memory for highly compressed data (a 1 GB run of one byte).
                out = self.inflate.decompress(pending, BLOCK)
                if out:
                    return out
        except zlib.error as exc:
            raise ArchiveError(f"file {self.raw.name} of table {self.table} is corrupt: {exc}",
                               table=self.table) from exc

    def _check_end(self) -> None:
        rest = self.frames.rest() if self.frames else self._stored(-1)
        if self.inflate.unused_data or rest:
            raise ArchiveError(f"file {self.raw.name} of table {self.table} has data after its gzip stream",
                               table=self.table)

    def close(self) -> None:
        self.raw.close()


def _check(entry: ArchiveEntry, what: str, expected: object, found: object) -> None:
    if expected != found:
        raise ArchiveError(f"table {entry.table} in archive: expected {what} {expected}, found {found}",
                           table=entry.table)


def _scan(archive: Path, entry: ArchiveEntry, keys: KeyRing | None) -> None:
    reader = _GzipReader(_table_path(archive, entry), entry, keys)
    sha, size, rows = hashlib.sha256(), 0, 0
    try:
        while block := reader.read():
            sha.update(block)
            size += len(block)
            rows += block.count(b"\n")
    finally:
        reader.close()
    _check(entry, "file sha256", entry.file_sha256, reader.file_sha.hexdigest())
    _check(entry, "file size", entry.file_bytes, reader.file_bytes)
    _check(entry, "uncompressed sha256", entry.sha256, sha.hexdigest())
    _check(entry, "uncompressed size", entry.bytes, size)
    _check(entry, "rows", entry.rows, rows)


async def verify_archive(path: Path | str, keys: KeyRing | None = None) -> Manifest:
    """Re-read every table file and check sizes, digests and row counts against the manifest (encrypted
    files: every frame authenticated under `keys`)."""
    manifest = read_manifest(path)
    archive = Path(path) if Path(path).is_dir() else Path(path).parent
    for entry in manifest.tables:
        await asyncio.to_thread(_scan, archive, entry, keys)
    return manifest


async def load_table(conn: AsyncConnection, archive_path: Path | str, entry: ArchiveEntry, *,
                     target_schema: str | None = None, keys: KeyRing | None = None) -> int:
    """Stream one table file into COPY ... FROM STDIN in one transaction; returns the rows loaded.

    The stream is checked against the manifest before the COPY ends, so a damaged file loads nothing.
    """
    archive = Path(archive_path) if Path(archive_path).is_dir() else Path(archive_path).parent
    target = sql.Identifier(target_schema or entry.table_schema, entry.table)
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in entry.columns)
    reader = _GzipReader(_table_path(archive, entry), entry, keys)
    sha, size = hashlib.sha256(), 0
    try:
        async with conn.transaction(), conn.cursor() as cur:
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT text)").format(target, columns)
            async with cur.copy(statement) as copy:
                while block := await asyncio.to_thread(reader.read):
                    sha.update(block)
                    size += len(block)
                    await copy.write(block)
                _check(entry, "uncompressed sha256", entry.sha256, sha.hexdigest())
                _check(entry, "uncompressed size", entry.bytes, size)
            _check(entry, "rows", entry.rows, cur.rowcount)
    except psycopg.Error as exc:
        raise engine_error(exc, table=entry.table, action="archive load") from exc
    finally:
        reader.close()
    return entry.rows
