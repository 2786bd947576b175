"""The engine's error tree: each class decides once whether a retry can help.

    EngineError                      fields: tenant, table, step; .retryable
    ├── PermanentError               retrying gives the same answer
    │   ├── ConfigError              a setting names a table or column that is not there
    │   ├── EnvironmentProblem       a local server or binary could not be started
    │   ├── PlanError                the schema cannot be planned (no tenant table, no key)
    │   ├── TenantNotFound           no tenant row with that id
    │   ├── TenantStateError         tenant not in the state the step needs (already dedicated ...)
    │   ├── IntegrityProblem         rows claimed by two tenants, references across tenants
    │   ├── ChecksumMismatch         source and target rows differ
    │   ├── SchemaMismatch           the dedicated schema differs from the shared one
    │   ├── ArchiveError             archive missing, unreadable, or not matching its manifest
    │   ├── DecryptionFailed         encrypted data under an unknown key, or altered (AES-GCM tag)
    │   ├── SecretMissing            no secret stored under that reference
    │   ├── PrecheckFailed           the tenant is busy or unsafe to move now (.findings)
    │   ├── PostCheckFailed          the dedicated database fails the post-migration smoke tests
    │   ├── ProviderError            the database provider refused a step (objects depend on a role ...)
    │   ├── SnapshotLost             the exported snapshot a parallel copy shares is gone (its holder ended)
    │   ├── TlsRefused               sslmode asks for TLS the server does not offer, or its certificate fails
    │   └── NeonError                Neon's API refused a call (.status, .code, .neon_message, .request_id)
    │       ├── NeonAuthFailed       401/403: the API key is missing, wrong or not allowed
    │       ├── NeonNotFound         404: no such project (or path)
    │       ├── NeonRequestRejected  422 and other 4xx: the request does not fit Neon's rules
    │       ├── NeonOperationFailed  a project operation ended in error/cancelled (or stayed failed)
    │       └── NeonDuplicateProjects  two projects carry the name that should identify one tenant
    └── TransientError               the same call may succeed later
        ├── DatabaseUnavailable      connection refused or dropped
        ├── NotificationFailed       a notifier could not deliver (webhook non-2xx, transport error)
        └── NeonUnavailable          Neon answered 429/5xx, or the connection failed, after the retries
            └── NeonOperationPending  project operations still running when the wait ended

Activities turn PermanentError into ApplicationError(type=<class name>, non_retryable=True); messages are
lower case and say what was expected and what was found.
"""

from __future__ import annotations


class EngineError(Exception):
    retryable: bool = False

    def __init__(self, message: str, *, tenant: str | None = None, table: str | None = None,
                 step: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.tenant = tenant
        self.table = table
        self.step = step

    @property
    def type_name(self) -> str:
        return type(self).__name__


class PermanentError(EngineError):
    retryable = False


class ConfigError(PermanentError):
    pass


class EnvironmentProblem(PermanentError):
    pass


class TlsRefused(PermanentError):
    pass


class PlanError(PermanentError):
    pass


class TenantNotFound(PermanentError):
    pass


class TenantStateError(PermanentError):
    pass


class IntegrityProblem(PermanentError):
    pass


class ChecksumMismatch(PermanentError):
    def __init__(self, message: str, *, tables: list[str] | None = None, **fields: str | None) -> None:
        super().__init__(message, **fields)
        self.tables = tables or []


class ArchiveError(PermanentError):
    pass


class SnapshotLost(PermanentError):
    pass


class DecryptionFailed(PermanentError):
    pass


class TransientError(EngineError):
    retryable = True


class DatabaseUnavailable(TransientError):
    pass


class SecretMissing(PermanentError):
    pass


class PrecheckFailed(PermanentError):
    def __init__(self, message: str, *, findings: list[str] | None = None, **fields: str | None) -> None:
        super().__init__(message, **fields)
        self.findings = findings or []


class PostCheckFailed(PermanentError):
    pass


class NotificationFailed(TransientError):
    pass


class ProviderError(PermanentError):
    pass


class SchemaMismatch(PermanentError):
    """The dedicated database's schema differs from the shared one after deployment."""

    def __init__(self, message: str, *, differences: list[str] | None = None, **fields: str | None) -> None:
        super().__init__(message, **fields)
        self.differences = differences or []


class NeonError(PermanentError):
    """Neon's API refused a call; carries its GeneralError code and message (never the API key)."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "", neon_message: str = "",
                 request_id: str | None = None, **fields: str | None) -> None:
        super().__init__(message, **fields)
        self.status = status
        self.code = code
        self.neon_message = neon_message
        self.request_id = request_id


class NeonAuthFailed(NeonError):
    pass


class NeonNotFound(NeonError):
    pass


class NeonRequestRejected(NeonError):
    pass


class NeonOperationFailed(NeonError):
    pass


class NeonDuplicateProjects(NeonError):
    def __init__(self, message: str, *, project_ids: list[str] | None = None, **fields: str | None) -> None:
        super().__init__(message, **fields)  # type: ignore[arg-type]
        self.project_ids = project_ids or []


class NeonUnavailable(TransientError):
    """Neon answered 429/503/5xx or could not be reached, and the client's own retries ran out."""

    def __init__(self, message: str, *, status: int | None = None, **fields: str | None) -> None:
        super().__init__(message, **fields)
        self.status = status


class NeonOperationPending(NeonUnavailable):
    pass
