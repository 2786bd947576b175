"""The dedicated-database provider interface: create, find and delete one tenant's database by reference."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class DedicatedDatabase:
    """Where a tenant's dedicated database is, without its password.

    This travels through workflow history, so it holds names only; the DSN with the password is kept in the
    secret store under `secret_ref` and read inside activities with `DatabaseProvider.dsn`.
    """

    kind: str
    provider_id: str
    database: str
    role: str
    host: str
    port: int
    secret_ref: str
    # The application's own login, with only the rights it needs on the tables (no DDL): the DSN written
    # into the tenant row. None where the provider has one role for both (then `secret_ref` serves both).
    app_role: str | None = None
    app_secret_ref: str | None = None


class DatabaseProvider(ABC):
    """One kind of dedicated database (a role and database on a Postgres server, a Neon project ...)."""

    kind: str

    @abstractmethod
    async def create(self, tenant: str) -> DedicatedDatabase:
        """Create the tenant's database, or find the one an earlier attempt created (same names), and make
        sure its DSN is in the secret store (a missing secret is replaced by resetting the password)."""

    @abstractmethod
    async def find(self, tenant: str) -> DedicatedDatabase | None:
        """The tenant's database when it exists, else None. Creates nothing."""

    @abstractmethod
    async def delete(self, provider_id: str) -> bool:
        """Remove the database, its role and its secret; True when something was removed, False when it was
        already gone (never an error for that)."""

    @abstractmethod
    def dsn(self, db: DedicatedDatabase) -> str:
        """The DSN with password, from the secret store (SecretMissing when it is not there): the owner's
        credentials, which deploy the schema and load the rows."""

    def app_dsn(self, db: DedicatedDatabase) -> str:
        """The DSN the application gets (the tenant row's URL): its least-privileged role when the provider
        made one, else the owner's."""
        return self.dsn(db)
