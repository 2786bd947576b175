"""Fill a shared StageSub database with deterministic orchestras (small, institution, large) in set-based SQL."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from stagesub import seed_sql
from tenantmove.db import connect_sync
from tenantmove.errors import ConfigError, PlanError, TenantStateError

SIZES = ("small", "institution", "large")
DEFAULT_LARGE_ROWS = 1_000_000


@dataclass(frozen=True)
class OrchestraSpec:
    """One tenant to create. `total_rows` only applies to "large" (default 1,000,000 rows in all);
    `running_jobs` BackgroundJobs are left in status running, for the migration pre-check to find."""

    tenant_id: str
    name: str
    size: str
    total_rows: int | None = None
    running_jobs: int = 0


DEFAULT_ORCHESTRAS: tuple[OrchestraSpec, ...] = (
    OrchestraSpec("kammerorchester-basel", "Kammerorchester Basel – Dvořák 🎻", "small"),
    OrchestraSpec("sibelius-sinfonia", "Sibelius-Akatemia Sinfonia 交響楽団", "institution"),
    OrchestraSpec("o'brien-ensemble", 'O\'Brien "Ensemble" \\ Dublin', "small"),
)


@dataclass(frozen=True)
class _Volumes:
    """Rows to generate per table; every foreign key is derived from these counts by arithmetic."""

    nus: int  # users
    nse: int  # sessions
    nmu: int  # musicians
    nin: int  # instruments
    npo: int  # positions
    nrl: int  # ranking lists
    nrk: int  # rankings per list
    npr: int  # projects
    nact: int  # active projects (the first nact project numbers)
    nnp: int  # needs per project
    nnf: int  # project need files
    npf: int  # project files
    nrq: int  # requests per need
    ncl: int  # communication logs
    net: int  # email templates
    nau: int  # audit logs
    njb: int  # background jobs
    nbk: int  # backups

    def planned(self) -> dict[str, int]:
        requests = self.npr * self.nnp * self.nrq
        return {
            "Tenant": 1, "User": self.nus, "Session": self.nse, "Musician": self.nmu, "Instrument": self.nin,
            "Position": self.npo, "MusicianQualification": 2 * self.nmu, "RankingList": self.nrl,
            "Ranking": self.nrl * self.nrk, "Project": self.npr, "ProjectNeed": self.npr * self.nnp,
            "ProjectNeedFile": self.nnf, "ProjectFile": self.npf, "Request": requests, "RequestToken": requests,
            "CommunicationLog": self.ncl, "EmailTemplate": self.net, "AuditLog": self.nau,
            "BackgroundJob": self.njb, "Backup": self.nbk,
        }


_SMALL = _Volumes(nus=3, nse=5, nmu=40, nin=8, npo=12, nrl=4, nrk=8, npr=6, nact=3, nnp=3, nnf=6, npf=4, nrq=3,
                  ncl=80, net=4, nau=150, njb=4, nbk=5)
# 60 active projects x 4 needs x 5 requests = 1,200 requests sent in the last 28 days.
_INSTITUTION = _Volumes(nus=12, nse=20, nmu=320, nin=24, npo=48, nrl=30, nrk=20, npr=100, nact=60, nnp=4,
                        nnf=120, npf=150, nrq=5, ncl=4000, net=12, nau=8000, njb=40, nbk=30)
_LARGE_BASE = _Volumes(nus=40, nse=80, nmu=2000, nin=27, npo=60, nrl=60, nrk=30, npr=500, nact=80, nnp=5,
                       nnf=1000, npf=800, nrq=6, ncl=0, net=20, nau=0, njb=60, nbk=60)


def volumes(spec: OrchestraSpec) -> _Volumes:
    if spec.size == "small":
        return _SMALL
    if spec.size == "institution":
        return _INSTITUTION
    if spec.size != "large":
        raise ConfigError(f"orchestra size must be one of {', '.join(SIZES)}, found {spec.size!r}",
                          tenant=spec.tenant_id)
    total = spec.total_rows or DEFAULT_LARGE_ROWS
    # Whatever the fixed part leaves goes to the two log tables, as in production: 60% audit, 40% messages.
    rest = max(total - sum(_LARGE_BASE.planned().values()), 2000)
    audit = rest * 3 // 5
    return _Volumes(**{**asdict(_LARGE_BASE), "nau": audit, "ncl": rest - audit})


def _params(spec: OrchestraSpec, vol: _Volumes, seed: int, now: datetime) -> dict[str, Any]:
    plan = {"small": "standard", "institution": "enterprise", "large": "professional"}[spec.size]
    return {"t": spec.tenant_id, "name": spec.name, "plan": plan, "s": seed, "now": now,
            "nrun": min(spec.running_jobs, vol.njb), **asdict(vol), **seed_sql.WORDS}


def _check(conn: psycopg.Connection[Any], orchestras: list[OrchestraSpec]) -> None:
    ids = [spec.tenant_id for spec in orchestras]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"expected distinct tenant ids, found {ids}")
    row = conn.execute(sql.SQL("SELECT to_regclass({}) IS NOT NULL").format('"Tenant"')).fetchone()
    if not (row and row[0]):
        raise PlanError("expected the stagesub schema (deploy_reference_schema), found no \"Tenant\" table")
    query = sql.SQL("SELECT id FROM {} WHERE id = ANY(%s) ORDER BY id").format(sql.Identifier("Tenant"))
    found = [row[0] for row in conn.execute(query, (ids,))]
    if found:
        raise TenantStateError(f"expected new tenants, found {found} already in the database; "
                               "seed into a fresh database or choose other tenant ids", tenant=found[0])


def seed(dsn: str, orchestras: list[OrchestraSpec] | tuple[OrchestraSpec, ...], *, seed: int = 42,
         now: datetime | None = None) -> dict[str, dict[str, int]]:
    """Create the orchestras in one transaction and return {tenant id: {table: rows inserted}}.

    Rows are a pure function of (orchestras, seed, now): ids, names and every pseudo-random choice come from
    md5(seed:tenant:table:n). `now` anchors the relative timestamps ("sent in the last month", "seen five
    minutes ago"); it defaults to the current time, so pass it to reproduce a database byte for byte.
    """
    return _seed(dsn, list(orchestras), seed, now)


def _seed(dsn: str, specs: list[OrchestraSpec], seed_value: int, now: datetime | None
          ) -> dict[str, dict[str, int]]:
    anchor = now or datetime.now(UTC)
    if anchor.tzinfo is None:
        raise ConfigError(f"expected an aware datetime for now, found {anchor.isoformat()}")
    plans = [(spec, volumes(spec)) for spec in specs]
    result: dict[str, dict[str, int]] = {}
    with connect_sync(dsn) as conn:
        _check(conn, specs)
        for statement in seed_sql.HELPERS:
            conn.execute(statement)
        conn.execute(seed_sql.GLOBAL_BACKUPS, {"now": anchor})
        for spec, vol in plans:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS seed_params"))
            params = _params(spec, vol, seed_value, anchor)
            conn.execute(seed_sql.PARAMS_TABLE, params)
            counts: dict[str, int] = {}
            for table, statement in seed_sql.STATEMENTS:
                counts[table] = conn.execute(statement).rowcount
            result[spec.tenant_id] = counts
        conn.commit()
        # Planner statistics as a long-lived shared database would have them, so that engine queries against
        # freshly seeded data are planned like production ones.
        conn.autocommit = True
        for table, _ in seed_sql.STATEMENTS:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    return result


def seed_for_bench(dsn: str, large_rows: int, *, tenant_id: str = "bench-large", neighbours: bool = True,
                   seed: int = 42, now: datetime | None = None) -> dict[str, dict[str, int]]:
    """One large tenant with at least large_rows rows, plus (by default) DEFAULT_ORCHESTRAS around it."""
    specs = [OrchestraSpec(tenant_id, "Bench Large Philharmonic", "large", total_rows=large_rows)]
    if neighbours:
        specs.extend(DEFAULT_ORCHESTRAS)
    return _seed(dsn, specs, seed, now)


def planned_rows(spec: OrchestraSpec) -> dict[str, int]:
    """The rows seed() will insert for spec, per table, without touching a database."""
    return volumes(spec).planned()


__all__ = [
    "DEFAULT_LARGE_ROWS", "DEFAULT_ORCHESTRAS", "SIZES", "OrchestraSpec", "planned_rows", "seed",
    "seed_for_bench", "volumes",
]
