"""A worker interceptor binding workflow id, activity and tenant to every log line an activity writes."""

from __future__ import annotations

from typing import Any

import structlog
from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor


class _BindContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        tenant = next((getattr(arg, "tenant_id", None) for arg in input.args if hasattr(arg, "tenant_id")), None)
        # contextvars are per task: lines from the engine, deep inside this activity, carry them too.
        with structlog.contextvars.bound_contextvars(workflow_id=info.workflow_id, activity=info.activity_type,
                                                     attempt=info.attempt, tenant=tenant):
            return await super().execute_activity(input)


class LogContext(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BindContext(next)
