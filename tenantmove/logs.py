"""structlog set-up: readable in a terminal, JSON otherwise, every credential masked on every line."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from tenantmove.db import mask_dsn

_SECRET_KEYS = {"password", "api_key", "apikey", "token", "secret", "authorization"}


def mask_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask DSN passwords in every string value and blank values whose key names a secret."""
    for key, value in list(event.items()):
        if key.lower() in _SECRET_KEYS and value:
            event[key] = "****"
        elif isinstance(value, str):
            event[key] = mask_dsn(value)
        elif isinstance(value, BaseException):
            event[key] = mask_dsn(repr(value))
    return event


def configure(log_format: str = "auto", level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """log_format: auto (console when the stream is a terminal, JSON otherwise), console, or json.
    The stream defaults to stderr; tests pass their own to scan every line for secrets."""
    out = stream or sys.stderr
    use_console = out.isatty() if log_format == "auto" else log_format == "console"
    renderer: Any = structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: Any) -> Any:
    return structlog.get_logger().bind(**bound)
