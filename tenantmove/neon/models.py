"""Pydantic models of the Neon API v2 bodies this client uses, written from openapi-v2.json's components."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Request(BaseModel):
    """A request body: unset optional fields are left out (exclude_none), as the spec's defaults then apply."""

    model_config = ConfigDict(extra="forbid")


class Response(BaseModel):
    """A response body: fields the spec adds later, or this client does not use, are ignored."""

    model_config = ConfigDict(extra="ignore")


# ---- requests -----------------------------------------------------------------------------------------
class DefaultEndpointSettings(Request):
    autoscaling_limit_min_cu: float | None = Field(default=None, ge=0.25)  # ComputeUnit
    autoscaling_limit_max_cu: float | None = Field(default=None, ge=0.25)
    suspend_timeout_seconds: int | None = Field(default=None, ge=-1, le=604800)


class ProjectBranchCreate(Request):
    name: str | None = Field(default=None, max_length=256)
    role_name: str | None = None
    database_name: str | None = None


class ProjectCreate(Request):
    name: str | None = Field(default=None, min_length=1, max_length=256)
    region_id: str | None = None
    pg_version: int | None = Field(default=None, ge=14, le=18)  # PgVersion
    provisioner: str | None = None  # k8s-pod | k8s-neonvm (autoscaling needs neonvm)
    default_endpoint_settings: DefaultEndpointSettings | None = None
    branch: ProjectBranchCreate | None = None
    store_passwords: bool | None = None
    history_retention_seconds: int | None = Field(default=None, ge=0, le=2592000)
    org_id: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,60}$")


class ProjectCreateRequest(Request):
    project: ProjectCreate


# ---- responses ----------------------------------------------------------------------------------------
class OperationStatus(StrEnum):
    SCHEDULING = "scheduling"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    ERROR = "error"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


class Operation(Response):
    id: str
    project_id: str
    branch_id: str | None = None
    endpoint_id: str | None = None
    action: str  # OperationAction: 28 values, kept a string so a new one is no parse error
    status: OperationStatus
    error: str | None = None
    failures_count: int
    retry_at: str | None = None
    created_at: str
    updated_at: str
    total_duration_ms: int


class Project(Response):
    id: str
    name: str
    region_id: str
    pg_version: int
    proxy_host: str
    provisioner: str
    store_passwords: bool
    created_at: str
    org_id: str | None = None


class ProjectListItem(Response):
    id: str
    name: str
    region_id: str
    pg_version: int
    created_at: str
    org_id: str | None = None


class ConnectionParameters(Response):
    database: str
    password: str
    role: str
    host: str
    pooler_host: str


class ConnectionDetails(Response):
    connection_uri: str
    connection_parameters: ConnectionParameters

    def __repr__(self) -> str:  # the URI holds the password
        return f"ConnectionDetails(role={self.connection_parameters.role!r}, " \
               f"database={self.connection_parameters.database!r})"

    __str__ = __repr__


class Role(Response):
    branch_id: str
    name: str
    protected: bool | None = None
    created_at: str
    updated_at: str
    password: str | None = Field(default=None, repr=False)


class Database(Response):
    id: int
    branch_id: str
    name: str
    owner_name: str


class Branch(Response):
    id: str
    project_id: str
    name: str
    default: bool
    current_state: str


class Endpoint(Response):
    id: str
    host: str
    branch_id: str
    type: str
    current_state: str
    autoscaling_limit_min_cu: float
    autoscaling_limit_max_cu: float


class CreatedProject(Response):
    """201 of createProject: ProjectResponse + ConnectionURIs + Roles + Databases + Operations + Branch + Endpoints."""

    project: Project
    connection_uris: list[ConnectionDetails] = Field(repr=False)
    roles: list[Role]
    databases: list[Database]
    operations: list[Operation]
    branch: Branch
    endpoints: list[Endpoint]


class ProjectResponse(Response):
    project: Project


class Pagination(Response):
    cursor: str


class ProjectsResponse(Response):
    """listProjects: ProjectsResponse + PaginationResponse + applications/integrations maps (ignored)."""

    projects: list[ProjectListItem]
    unavailable_project_ids: list[str] = Field(default_factory=list)
    pagination: Pagination | None = None


class OperationsResponse(Response):
    """listProjectOperations: OperationsResponse + PaginationResponse."""

    operations: list[Operation]
    pagination: Pagination | None = None


class OperationResponse(Response):
    operation: Operation


class ConnectionURIResponse(Response):
    uri: str = Field(repr=False)


class RolePasswordResponse(Response):
    password: str = Field(repr=False)


class RoleOperations(Response):
    """resetProjectBranchRolePassword: RoleResponse + OperationsResponse."""

    role: Role
    operations: list[Operation]


class BranchesResponse(Response):
    branches: list[Branch]


class GeneralError(Response):
    """Every operation's `default` response. code is an ErrorCode string, default ''."""

    code: str = ""
    message: str = ""
    request_id: str | None = None
