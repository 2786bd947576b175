"""Where StageSub's Prisma migrations live and how to deploy them into an empty database."""

from __future__ import annotations

from pathlib import Path

from tenantmove.prisma import apply_migrations, find_migrations

# The repository's prisma/ folder sits next to this package, as in the StageSub application repository.
MIGRATIONS_DIR: Path = Path(__file__).resolve().parent.parent / "prisma" / "migrations"


def reference_migrations_dir() -> Path:
    return MIGRATIONS_DIR


def deploy_reference_schema(dsn: str) -> list[str]:
    """Apply StageSub's migrations to dsn like `prisma migrate deploy`; return the names applied now."""
    return apply_migrations(dsn, find_migrations(MIGRATIONS_DIR))
