"""Providers of dedicated databases behind one interface; a new kind is one new class here."""

from __future__ import annotations

from tenantmove.providers.base import DatabaseProvider, DedicatedDatabase
from tenantmove.providers.postgres import PostgresProvider, database_name

__all__ = ["DatabaseProvider", "DedicatedDatabase", "PostgresProvider", "database_name"]
