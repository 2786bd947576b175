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
    │   └── ArchiveError             archive missing, unreadable, or not matching its manifest
    └── TransientError               the same call may succeed later
        └── DatabaseUnavailable      connection refused or dropped

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


class TransientError(EngineError):
    retryable = True


class DatabaseUnavailable(TransientError):
    pass
