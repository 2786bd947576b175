"""The plan's data: each table's role, ownership links and paths, and the whole plan with its load order."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from tenantmove.catalog import Catalog, ForeignKey


class Role(StrEnum):
    TENANT = "tenant"
    OWNED = "owned"
    KEPT = "kept"
    REFERENCED = "referenced"
    GLOBAL = "global"
    UNRELATED = "unrelated"


COPIED_ROLES = {Role.TENANT, Role.OWNED, Role.KEPT, Role.REFERENCED, Role.GLOBAL}


@dataclass
class TablePlan:
    name: str
    role: Role
    reason: str
    # How a row is the tenant's: columns holding the tenant id, foreign keys to owned parents (owner_edges),
    # and for parent-side ownership the one-to-one foreign keys that point at this table (parent_side_edges).
    tenant_columns: list[str] = field(default_factory=list)
    owner_edges: list[ForeignKey] = field(default_factory=list)
    parent_side_edges: list[ForeignKey] = field(default_factory=list)
    # Foreign keys of copied tables pointing here: the rows they reference are copied (kept/referenced).
    ref_edges: list[ForeignKey] = field(default_factory=list)
    # Links inside a multi-table cycle that row selection does not follow (reported, never silent).
    unfollowed_edges: list[ForeignKey] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    @property
    def copied(self) -> bool:
        return self.role in COPIED_ROLES

    # Owned rows that stay in shared after the move too: one-to-one rows of the tenant row, which stays.
    stays_shared: bool = False

    @property
    def deleted(self) -> bool:
        return self.role is Role.OWNED and not self.stays_shared

    @property
    def self_edges(self) -> list[ForeignKey]:
        edges = [fk for fk in self.owner_edges + self.ref_edges if fk.ref_table == fk.table == self.name]
        return list(dict.fromkeys(edges))


@dataclass
class Plan:
    catalog: Catalog
    tenant_table: str
    tenant_key: str
    tables: dict[str, TablePlan]
    load_order: list[str]
    warnings: list[str] = field(default_factory=list)
    # Links whose child loads before its parent (a cycle broken there): dropped on the target for the load
    # and added back, validated, after it.
    cycle_links: list[ForeignKey] = field(default_factory=list)

    @property
    def schema(self) -> str:
        return self.catalog.schema

    @property
    def delete_order(self) -> list[str]:
        return [name for name in reversed(self.load_order) if self.tables[name].deleted]

    @property
    def copied_tables(self) -> list[str]:
        return list(self.load_order)

    def by_role(self, role: Role) -> list[str]:
        return [name for name, plan in self.tables.items() if plan.role is role]


@dataclass(frozen=True)
class PlanRules:
    tenant_table: str = "Tenant"
    tenant_column: str = "tenantId"
    keep_tables: tuple[str, ...] = ("User",)
    global_tables: tuple[str, ...] = ()
