"""Read a Prisma migrations folder and apply it to a database the way `prisma migrate deploy` does."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from tenantmove.db import connect_sync
from tenantmove.errors import PlanError

MIGRATIONS_TABLE = "_prisma_migrations"

# The DDL of prisma-engines' Postgres flavour, so `prisma migrate status` run later against a database we
# prepared sees its own bookkeeping table.
_CREATE_TABLE = sql.SQL("""
CREATE TABLE IF NOT EXISTS {table} (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
)""")

# The advisory lock key prisma-engines takes around `migrate deploy`: holding the same key keeps us and a
# concurrent Prisma deploy from applying the same migration twice.
_PRISMA_ADVISORY_LOCK = 72707369


@dataclass(frozen=True)
class PrismaMigration:
    """One `<folder>/migration.sql`: `name` is the folder name, `checksum` the sha256 hex of the file bytes."""

    name: str
    sql: str
    checksum: str
    raw: bytes

    @classmethod
    def from_bytes(cls, name: str, raw: bytes) -> PrismaMigration:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PlanError(f"migration {name} is not utf-8: {exc}") from exc
        return cls(name=name, sql=text, checksum=hashlib.sha256(raw).hexdigest(), raw=raw)

    def matches(self, recorded: str) -> bool:
        """Whether a checksum stored in _prisma_migrations belongs to this script, by Prisma's own rules.

        prisma-engines (schema-connector/src/checksum.rs) also accepts the script with CRLF and LF line
        endings swapped, because git rewrites them, and digests printed without zero padding by old
        engines (prisma-engines#1887).
        """
        variants = (self.raw, self.raw.replace(b"\r\n", b"\n"), self.raw.replace(b"\n", b"\r\n"))
        for variant in variants:
            digest = hashlib.sha256(variant).digest()
            if len(recorded) == 64 and digest.hex() == recorded:
                return True
            if recorded and len(recorded) != 64 and "".join(f"{b:x}" for b in digest) == recorded:
                return True
        return False


def find_migrations(directory: Path) -> list[PrismaMigration]:
    """Every `<folder>/migration.sql` under directory, in folder-name order (Prisma's apply order)."""
    if not directory.is_dir():
        raise PlanError(f"expected a prisma migrations directory, found nothing at {directory}")
    migrations = []
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        script = folder / "migration.sql"
        if not script.is_file():
            raise PlanError(f"expected {script} in migration folder {folder.name}, found none")
        migrations.append(PrismaMigration.from_bytes(folder.name, script.read_bytes()))
    return migrations


def _table_exists(conn: psycopg.Connection) -> bool:
    row = conn.execute(sql.SQL("SELECT to_regclass({}) IS NOT NULL").format(MIGRATIONS_TABLE)).fetchone()
    return bool(row and row[0])


def _recorded(conn: psycopg.Connection) -> list[tuple[str, str, bool]]:
    """(name, checksum, finished) of every migration that was not rolled back, oldest first."""
    if not _table_exists(conn):
        return []
    query = sql.SQL(
        "SELECT migration_name, checksum, finished_at IS NOT NULL FROM {} "
        "WHERE rolled_back_at IS NULL ORDER BY started_at, migration_name"
    ).format(sql.Identifier(MIGRATIONS_TABLE))
    return [(str(name), str(checksum), bool(done)) for name, checksum, done in conn.execute(query)]


def recorded_migrations(dsn: str) -> list[tuple[str, str]]:
    """(migration_name, checksum) of the finished, not rolled back migrations; [] without the table."""
    with connect_sync(dsn, autocommit=True) as conn:
        return [(name, checksum) for name, checksum, done in _recorded(conn) if done]


def _pending(migrations: Sequence[PrismaMigration], recorded: list[tuple[str, str, bool]]
             ) -> list[PrismaMigration]:
    by_name: dict[str, list[tuple[str, bool]]] = {}
    for name, checksum, done in recorded:
        by_name.setdefault(name, []).append((checksum, done))
    pending = []
    for migration in migrations:
        rows = by_name.get(migration.name, [])
        if any(not done for _, done in rows):
            # Prisma stops here too (P3009): a half-applied script needs a human, not a retry.
            raise PlanError(f"migration {migration.name} is recorded as started but not finished; "
                            "expected it finished or rolled back")
        for checksum, _ in rows:
            if not migration.matches(checksum):
                raise PlanError(f"migration {migration.name} was applied with checksum {checksum}, "
                                f"but the file now has checksum {migration.checksum}")
        if not rows:
            pending.append(migration)
    return pending


def _apply_one(conn: psycopg.Connection, migration: PrismaMigration) -> None:
    table = sql.Identifier(MIGRATIONS_TABLE)
    row_id = str(uuid.uuid4())
    with conn.transaction():
        conn.execute(
            sql.SQL("INSERT INTO {} (id, checksum, migration_name, started_at) VALUES (%s, %s, %s, now())")
            .format(table),
            (row_id, migration.checksum, migration.name),
        )
        # Without parameters psycopg sends the script with the simple query protocol, which runs every
        # statement of the file, as Prisma's own raw command does.
        conn.execute(migration.raw)
        conn.execute(
            sql.SQL("UPDATE {} SET finished_at = clock_timestamp(), applied_steps_count = 1 WHERE id = %s")
            .format(table),
            (row_id,),
        )


def apply_migrations(dsn: str, migrations: Sequence[PrismaMigration]) -> list[str]:
    """Create _prisma_migrations if needed, apply the migrations not yet recorded, return their names.

    Each migration runs in its own transaction together with its bookkeeping row, so a failing script
    leaves neither half-applied DDL nor a failed record behind.
    """
    applied: list[str] = []
    with connect_sync(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("SELECT pg_advisory_lock({})").format(_PRISMA_ADVISORY_LOCK))
        try:
            conn.execute(_CREATE_TABLE.format(table=sql.Identifier(MIGRATIONS_TABLE)))
            for migration in _pending(migrations, _recorded(conn)):
                try:
                    _apply_one(conn, migration)
                except psycopg.Error as exc:
                    raise PlanError(f"migration {migration.name} failed: {str(exc).strip()}") from exc
                applied.append(migration.name)
        finally:
            conn.execute(sql.SQL("SELECT pg_advisory_unlock({})").format(_PRISMA_ADVISORY_LOCK))
    return applied
