"""Export archives: a gzip COPY text file per table and a manifest, written, verified and loaded streaming."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gzip
import hashlib
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import psycopg
from psycopg import AsyncConnection, sql
from pydantic import BaseModel, ConfigDict

from tenantmove.archive_crypt import FrameWriter
from tenantmove.checksum import TableChecksum, read_snapshot, table_checksum
from tenantmove.copy import column_types, engine_error
from tenantmove.copy_out import CopyOut
from tenantmove.crypto import KeyRing
from tenantmove.errors import ArchiveError
from tenantmove.rows import RowSelection

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
# Level 1 compresses COPY text about 4x at well over 100 MB/s per core; higher levels gain little on row
# data and would make the export CPU-bound.
COMPRESS_LEVEL = 1
# Work is handed to a thread in blocks of this size: zlib and hashlib release the GIL on large buffers, so
# compression overlaps the next network read and the event loop stays free for heartbeats.
BLOCK = 1 << 20
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


class ArchiveEntry(BaseModel):
    """One table in the archive: its file and what the file must contain."""

    model_config = ConfigDict(frozen=True)

    position: int
    table_schema: str
    table: str
    file: str
    columns: tuple[str, ...]
    column_types: tuple[str, ...]
    key: tuple[str, ...]
    rows: int
    bytes: int          # uncompressed COPY text
    sha256: str         # of the uncompressed COPY text
    file_bytes: int
    file_sha256: str    # of the .gz file as stored
    checksum: TableChecksum
    # Set when the file is the gzip stream sealed in AES-GCM frames (archive_crypt.py) under this key.
    encryption_key_id: str | None = None


class Manifest(BaseModel):
    """The archive's table of contents; its presence marks the archive complete."""

    model_config = ConfigDict(frozen=True)

    format_version: int = FORMAT_VERSION
    archive_id: str
    tenant: str
    created_at: datetime
    server_version: str
    db_schema: str
    tables: tuple[ArchiveEntry, ...]

    def entry(self, table: str) -> ArchiveEntry:
        for entry in self.tables:
            if entry.table == table:
                return entry
        raise ArchiveError(f"expected table {table} in archive {self.archive_id}, found none", table=table)


def _open_private(path: Path) -> BinaryIO:
    # O_EXCL: never write into a file someone else prepared; 0600 whatever the umask adds.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _HashingFile:
    """The raw file under the gzip stream: counts and hashes the bytes that reach the disk."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.sha, self.size = raw, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


_DISK_PROBLEMS = {errno.ENOSPC: "no space left", errno.EDQUOT: "disk quota exceeded", errno.EFBIG: "file too large",
                  errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
                  errno.EROFS: "read-only file system"}


def disk_error(exc: OSError, where: Path, action: str) -> ArchiveError:
    """An archive directory that is full or not writable, as a permanent ArchiveError naming the directory:
    retrying does not free a disk, and an operator needs to know which one."""
    reason = _DISK_PROBLEMS.get(exc.errno or 0, exc.strerror or type(exc).__name__)
    return ArchiveError(f"cannot {action} in archive directory {where}: {reason} (errno {exc.errno}); free space "
                        f"or fix its permissions (ARCHIVE_DIR), then run the migration again")


def valid_archive_id(name: str) -> bool:
    return bool(_SAFE_ID.match(name))


async def _thread_done(pending: asyncio.Future[None]) -> None:
    """Wait until a thread's work on a sink is over, even if this task is cancelled meanwhile (a sibling table
    failed): closing the file under the thread, or skipping the close, leaked its descriptor, and a full
    disk's tmpfs then stayed busy. A cancellation that came during the wait is raised after it."""
    cancelled: asyncio.CancelledError | None = None
    while not pending.done():
        try:
            await asyncio.wait([pending])
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is not None:
        raise cancelled


class _TableFile:
    """Synchronous sink for one table's COPY text: hashes, counts rows, compresses, encrypts when given keys
    (runs in a thread). Encryption comes after compression: ciphertext does not compress."""

    def __init__(self, path: Path, level: int, keys: KeyRing | None = None) -> None:
        self.file = _HashingFile(_open_private(path))
        self.frames = FrameWriter(self.file, keys, f"{path.parent.name}/{path.name}") if keys else None
        self.gzip = gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=self.frames or self.file,
                                  mtime=0)
        self.sha, self.size, self.rows = hashlib.sha256(), 0, 0

    def write(self, block: bytes | bytearray) -> None:
        self.sha.update(block)
        self.size += len(block)
        # COPY text escapes newlines inside values as \n, so each raw newline ends exactly one row.
        self.rows += block.count(b"\n")
        self.gzip.write(block)

    def close(self) -> None:
        self.gzip.close()
        if self.frames is not None:
            self.frames.finish()
        self.file.flush()
        os.fsync(self.file.raw.fileno())
        self.file.raw.close()

    def abort(self) -> None:
        try:
            self.gzip.close()
        finally:
            self.file.raw.close()


class ArchiveWriter:
    """Writes <root>/<archive_id>/: table files first, manifest last (atomically) by finish().

    A directory left by an interrupted attempt (table files, no manifest) is emptied and reused; one with a
    manifest is a finished archive and is never overwritten.
    """

    def __init__(self, root: Path | str, archive_id: str, tenant: str, *,
                 level: int = COMPRESS_LEVEL, keys: KeyRing | None = None) -> None:
        if not _SAFE_ID.match(archive_id):
            raise ArchiveError(f"expected an archive id of letters, digits, '.', '_' or '-', "
                               f"found {archive_id!r}")
        self.path = Path(root) / archive_id
        self.archive_id, self.tenant, self.level, self.keys = archive_id, tenant, level, keys
        self.created_at = datetime.now(UTC)
        self._entries: list[ArchiveEntry] = []
        self._started: set[tuple[str, str]] = set()
        self._server_version = ""
        self._finished = False
        try:
            Path(root).mkdir(parents=True, exist_ok=True, mode=0o700)
            if (self.path / MANIFEST).exists():
                raise ArchiveError(f"expected no archive at {self.path}, found a finished one")
            self.path.mkdir(mode=0o700, exist_ok=True)
            os.chmod(self.path, 0o700)
            for stale in self.path.iterdir():
                if stale.name.endswith((".copy.gz", ".tmp")):
                    stale.unlink()
        except OSError as exc:
            raise disk_error(exc, Path(root), "create the archive") from exc

    async def add_table(self, conn: AsyncConnection, selection: RowSelection, position: int | None = None
                        ) -> ArchiveEntry:
        """Stream the selection's rows (COPY text) into the next file (or the one at `position`, when several
        connections add tables at once); checksum from the same snapshot."""
        if self._finished:
            raise ArchiveError(f"archive {self.archive_id} is finished; cannot add table {selection.table}")
        if (selection.schema, selection.table) in self._started:
            raise ArchiveError(f"table {selection.table} is already in archive {self.archive_id}",
                               table=selection.table)
        self._started.add((selection.schema, selection.table))
        position = position or len(self._started)
        name = f"{position:03d}_{_UNSAFE_CHARS.sub('_', selection.table)}.copy.gz"
        path = self.path / name
        self._server_version = self._server_version or conn.info.parameter_status("server_version") or ""
        try:
            async with read_snapshot(conn):
                found = await column_types(conn, selection.schema, selection.table)
                types = {col.name: col.type for col in found}
                checksum = await table_checksum(conn, selection)
                sink, rows = await self._stream(conn, selection, path)
        except psycopg.Error as exc:
            path.unlink(missing_ok=True)
            raise engine_error(exc, table=selection.table, action="export") from exc
        except OSError as exc:  # the archive's disk, not the database: full, read-only, no permission
            # Only this table's file: sibling tables may still be writing theirs (discard() after they stop).
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            raise disk_error(exc, self.path.parent, f"write table {selection.table}") from exc
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if rows != sink.rows or rows != checksum.rows:
            path.unlink(missing_ok=True)
            raise ArchiveError(f"expected {checksum.rows} rows of {selection.table} in the export, found "
                               f"{rows} from COPY and {sink.rows} lines", table=selection.table)
        entry = ArchiveEntry(
            position=position, table_schema=selection.schema, table=selection.table, file=name,
            columns=selection.columns, column_types=tuple(types.get(c, "") for c in selection.columns),
            key=selection.key, rows=rows, bytes=sink.size, sha256=sink.sha.hexdigest(),
            file_bytes=sink.file.size, file_sha256=sink.file.sha.hexdigest(), checksum=checksum,
            encryption_key_id=self.keys.primary if self.keys else None,
        )
        self._entries.append(entry)
        return entry

    async def _stream(self, conn: AsyncConnection, selection: RowSelection, path: Path
                      ) -> tuple[_TableFile, int]:
        sink = _TableFile(path, self.level, self.keys)
        # The thread's work on the sink, awaited through shield(): a cancelled wait must not cancel the future,
        # whose being done is the only sign that the thread has let go of the file.
        pending: asyncio.Future[None] | None = None
        try:
            statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT text)").format(selection.query)
            async with CopyOut(conn, statement, selection.params, chunk_bytes=BLOCK) as copy:
                async for chunk in copy:
                    if pending is not None:
                        await asyncio.shield(pending)
                    # CopyOut hands over each chunk and starts a new one: the thread may keep it, uncopied.
                    pending = asyncio.ensure_future(asyncio.to_thread(sink.write, chunk))
            rows = copy.rows or 0
            if pending is not None:
                await asyncio.shield(pending)
            pending = asyncio.ensure_future(asyncio.to_thread(sink.close))
            await asyncio.shield(pending)
        except BaseException:
            try:
                if pending is not None:
                    await _thread_done(pending)
            finally:
                sink.abort()
            raise
        return sink, rows

    def discard(self) -> None:
        """Remove this unfinished archive's files: on a full disk they only keep it full, and without a
        manifest nothing would ever read them. Call it once nothing is adding tables any more."""
        with contextlib.suppress(OSError):
            for stale in self.path.iterdir():
                if stale.name.endswith((".copy.gz", ".tmp")):
                    stale.unlink()
            self.path.rmdir()

    def finish(self) -> Manifest:
        """Write manifest.json via a temp file and rename: an archive without it is incomplete."""
        if self._finished:
            raise ArchiveError(f"archive {self.archive_id} is already finished")
        schemas = sorted({entry.table_schema for entry in self._entries})
        manifest = Manifest(archive_id=self.archive_id, tenant=self.tenant, created_at=self.created_at,
                            server_version=self._server_version, db_schema=",".join(schemas),
                            tables=tuple(sorted(self._entries, key=lambda e: e.position)))
        tmp = self.path / f"{MANIFEST}.tmp"
        try:
            tmp.unlink(missing_ok=True)
            with _open_private(tmp) as out:
                out.write(manifest.model_dump_json(indent=2).encode())
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path / MANIFEST)
            _fsync_dir(self.path)
        except OSError as exc:
            self.discard()
            raise disk_error(exc, self.path.parent, "write the manifest") from exc
        self._finished = True
        return manifest
