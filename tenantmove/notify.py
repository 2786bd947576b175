"""Notifications about a tenant's migration (approval asked, scheduled, done, failed): log, webhook, fan-out."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from tenantmove.errors import NotificationFailed
from tenantmove.logs import get_logger


@dataclass(frozen=True)
class Notification:
    tenant: str
    kind: str
    message: str
    details: dict[str, object]


class Notifier(Protocol):
    async def notify(self, note: Notification) -> None: ...


def mask_url(url: str) -> str:
    """Scheme, host and port only: webhook URLs carry their secret in the path or query (Slack, Teams)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/****" if parts.scheme else "****"


class LogNotifier:
    """One structlog line per notification (DSN passwords masked by the log pipeline)."""

    def __init__(self) -> None:
        self.log = get_logger(component="notify")

    async def notify(self, note: Notification) -> None:
        self.log.info("notification", tenant=note.tenant, kind=note.kind, message=note.message,
                      details=json.dumps(note.details, default=str, sort_keys=True))


class WebhookNotifier:
    """POSTs the notification as JSON. One attempt per call: retries belong to the caller (an activity's
    retry policy), which can see how long it has been trying."""

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self.client = client
        self.url = url

    async def notify(self, note: Notification) -> None:
        body = json.loads(json.dumps(asdict(note), default=str))  # datetimes and paths become strings
        where = mask_url(self.url)
        try:
            response = await self.client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            # The exception's text may quote the URL with its secret; the cause is dropped for that reason.
            detail = str(exc).replace(self.url, where)
            raise NotificationFailed(f"webhook {where}: expected a response, found {type(exc).__name__}"
                                     + (f" ({detail})" if detail else ""), tenant=note.tenant,
                                     step="notify") from None
        if not 200 <= response.status_code < 300:
            raise NotificationFailed(f"webhook {where}: expected a 2xx status, found {response.status_code}",
                                     tenant=note.tenant, step="notify")


class FanoutNotifier:
    """Sends to every notifier, all of them even when one fails; then raises the first failure."""

    def __init__(self, *notifiers: Notifier) -> None:
        self.notifiers = notifiers

    async def notify(self, note: Notification) -> None:
        results = await asyncio.gather(*(n.notify(note) for n in self.notifiers), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            if len(failures) == 1:
                raise failures[0]
            raise NotificationFailed("; ".join(str(f) for f in failures), tenant=note.tenant, step="notify")
