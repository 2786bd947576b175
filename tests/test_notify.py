"""Notifiers: a webhook against a real local HTTP server, failures, the log line, fan-out."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from structlog.testing import capture_logs

from tenantmove.errors import NotificationFailed
from tenantmove.notify import FanoutNotifier, LogNotifier, Notification, WebhookNotifier
from tenantmove.pgserver import free_port

NOTE = Notification("o'brien-ensemble", "migration.done", "moved to its dedicated database",
                    {"rows": 1234, "at": datetime(2026, 11, 2, tzinfo=UTC), "tables": ["Musician"]})


class _Recorder(BaseHTTPRequestHandler):
    received: list[tuple[str, dict]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append((self.path, body))
        self.send_response(500 if "fail" in self.path else 204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list]]:
    _Recorder.received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Recorder.received
    httpd.shutdown()
    httpd.server_close()


async def test_webhook_posts_json(server):
    base, received = server
    async with httpx.AsyncClient() as client:
        await WebhookNotifier(client, f"{base}/hooks/T0K3N-secret").notify(NOTE)
    assert received == [("/hooks/T0K3N-secret", {
        "tenant": "o'brien-ensemble", "kind": "migration.done", "message": "moved to its dedicated database",
        "details": {"rows": 1234, "at": "2026-11-02 00:00:00+00:00", "tables": ["Musician"]}})]


async def test_webhook_failures_mask_the_url(server):
    base, received = server
    async with httpx.AsyncClient() as client:
        with pytest.raises(NotificationFailed, match="expected a 2xx status, found 500") as info:
            await WebhookNotifier(client, f"{base}/fail/T0K3N-secret?key=abc").notify(NOTE)
        assert "T0K3N" not in str(info.value) and "abc" not in str(info.value)
        assert info.value.retryable and info.value.tenant == NOTE.tenant
        closed = f"http://127.0.0.1:{free_port()}/hooks/T0K3N-secret"
        with pytest.raises(NotificationFailed, match="expected a response, found ConnectError") as info:
            await WebhookNotifier(client, closed).notify(NOTE)
        assert "T0K3N" not in str(info.value)
    assert len(received) == 1


async def test_log_and_fanout(server):
    base, received = server
    with capture_logs() as logs:
        await LogNotifier().notify(NOTE)
    assert logs[0]["event"] == "notification" and logs[0]["kind"] == "migration.done"
    assert json.loads(logs[0]["details"])["rows"] == 1234
    async with httpx.AsyncClient() as client:
        fanout = FanoutNotifier(WebhookNotifier(client, f"{base}/fail/a"), LogNotifier(),
                                WebhookNotifier(client, f"{base}/ok/b"))
        with pytest.raises(NotificationFailed, match="found 500"):
            await fanout.notify(NOTE)
    assert sorted(path for path, _ in received) == ["/fail/a", "/ok/b"]  # the failure stopped no one
