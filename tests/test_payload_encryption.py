"""PAYLOAD_ENCRYPTION_KEY: history holds only AES-GCM payloads; the codec and its server decode them; wrong keys fail."""

from __future__ import annotations

import json

import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client, WorkflowFailureError

from console.codec_server import codec_app, settings_app
from tenantmove.crypto import KeyRing, new_key
from tenantmove.errors import ConfigError, DecryptionFailed
from tenantmove.settings import Settings
from workflows.client import start_migration
from workflows.codec import ENCODING, EncryptionCodec, data_converter
from workflows.migrate import MigrateTenant

from .world import approve, failing, real_activity

TENANT = "sibelius-sinfonia"
KEY, OTHER = new_key(), new_key()
ORIGIN = "http://localhost:8233"


def payloads_in(message: Message, search_attribute: bool = False) -> list[tuple[Payload, bool]]:
    """Every Payload anywhere in a protobuf message, flagged when it is a search attribute's (never encoded:
    the server indexes it)."""
    if isinstance(message, Payload):
        return [(message, search_attribute)]
    found = []
    for field, value in message.ListFields():
        inside = search_attribute or field.name == "indexed_fields"
        if field.message_type is None:
            continue
        if isinstance(value, Message):
            values = [value]
        elif hasattr(value, "values"):  # a map field
            values = list(value.values())
        else:  # a repeated field
            values = list(value)
        for item in values:
            if isinstance(item, Message):
                found += payloads_in(item, inside)
    return found


def with_converter(client: Client, settings: Settings) -> Client:
    """The same connection (and the test server's time-skipping interceptor), with our data converter."""
    config = client.config()
    config["data_converter"] = data_converter(settings)
    return Client(**config)


@pytest.fixture
async def encrypted_run(temporal_env, world):
    """A migration that fails after post-migration checks and is undone, run by a worker that encrypts."""
    settings = Settings(payload_encryption_key=KEY)
    client = with_converter(temporal_env.client, settings)
    fault = failing(real_activity(world.deps, "post_migration_checks"))
    async with world.worker(client, {"post_migration_checks": fault}):
        handle = await start_migration(client, world.input(TENANT), task_queue=world.queue,
                                       workflow_id=f"migrate-{TENANT}-{world.queue}")
        await approve(handle, approver="approver-in-clear@stagesub")
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        status = await handle.query(MigrateTenant.query_status)
    return client, handle, info.value, status


async def test_history_holds_only_encrypted_payloads_which_the_codec_server_decodes(temporal_env, encrypted_run):
    client, handle, failure, status = encrypted_run
    # The client with the codec reads everything back: the failure's message and the status.
    assert failure.cause.cause.type == "InjectedFault" and "injected fault" in failure.cause.cause.message
    assert status.state.value == "rolled_back" and any("injected fault" in line for line in status.log)

    # A client without the codec sees the history as stored.
    plain = temporal_env.client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
    history = await plain.fetch_history()
    # The SDK core writes its patch markers (workflow.patched) itself, with the patch id in clear: a
    # version name of ours, not data, so those markers are left out.
    found = [p for event in history.events if event.marker_recorded_event_attributes.marker_name != "core_patch"
             for p in payloads_in(event)]
    assert len(found) > 30
    for payload, search_attribute in found:
        assert search_attribute or payload.metadata["encoding"] == ENCODING, payload.metadata
    raw = b"".join(event.SerializeToString() for event in history.events)
    for clear in (b"grew past the shared tier", b"approver-in-clear", b"injected fault", b"Musician",
                  b"post_migration_checks failed", b"sibelius-sinfonia to a dedicated"):
        assert clear not in raw, clear
    described = await plain.describe()
    assert b"grew past" not in described.raw_description.SerializeToString()

    # The codec server, as the UI calls it: CORS preflight, then /decode with the JSON Payloads.
    encrypted = [p for p, search_attribute in found if not search_attribute]
    body = json_format.MessageToJson(Payloads(payloads=encrypted))
    app = codec_app(EncryptionCodec(KeyRing.parse(KEY, "k")), origins=[ORIGIN], token="t0ken")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://codec") as http:
        preflight = await http.options("/decode", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace,authorization"})
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == ORIGIN
        refused = await http.post("/decode", content=body, headers={"Origin": "http://evil.example"})
        assert refused.status_code == 401
        reply = await http.post("/decode", content=body, headers={"Authorization": "Bearer t0ken",
                                                                  "X-Namespace": "default", "Origin": ORIGIN})
        assert reply.status_code == 200 and reply.headers["access-control-allow-origin"] == ORIGIN
        decoded = json_format.Parse(reply.text, Payloads()).payloads
        assert len(decoded) == len(encrypted)
        texts = b"\n".join(p.data for p in decoded)
        for clear in (b"grew past the shared tier", b"approver-in-clear", b"injected fault after post_migration_checks"):
            assert clear in texts, clear
        assert all(p.metadata["encoding"] != ENCODING for p in decoded)
        # /encode is the inverse (the UI uses it to send signals and queries).
        again = await http.post("/encode", content=reply.text, headers={"Authorization": "Bearer t0ken"})
        assert {p.metadata["encoding"] for p in json_format.Parse(again.text, Payloads()).payloads} == {ENCODING}
        malformed = await http.post("/decode", content=b"{nope", headers={"Authorization": "Bearer t0ken"})
        assert malformed.status_code == 400 and "expected a JSON Payloads" in malformed.json()["error"]

    # A codec server with another key says which key the payloads need, and shows nothing.
    wrong = settings_app(Settings(payload_encryption_key=OTHER, codec_server_origins=ORIGIN))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrong), base_url="http://codec") as http:
        reply = await http.post("/decode", content=body)
        assert reply.status_code == 400
        error = reply.json()["error"]
        assert KeyRing.parse(KEY, "k").primary in error and "expected one of the configured key ids" in error
        assert "grew past" not in reply.text


async def test_a_client_with_the_wrong_key_fails_clearly(temporal_env, encrypted_run):
    _, handle, _, _ = encrypted_run
    wrong = with_converter(temporal_env.client, Settings(payload_encryption_key=OTHER))
    with pytest.raises(DecryptionFailed, match="key id .* expected one of the configured key ids"):
        await wrong.get_workflow_handle(handle.id).result()
    # Rotation: with the old key listed second, the same client reads what the old key wrote.
    rotated = with_converter(temporal_env.client, Settings(payload_encryption_key=f"{OTHER},{KEY}"))
    with pytest.raises(WorkflowFailureError, match="Workflow execution failed"):
        await rotated.get_workflow_handle(handle.id).result()


async def test_codec_round_trip_passes_plain_payloads_and_refuses_tampering():
    codec = EncryptionCodec(KeyRing.parse(KEY, "k"))
    plain = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps({"tenant": "x"}).encode())
    [sealed] = await codec.encode([plain])
    assert sealed.metadata["encoding"] == ENCODING and b"tenant" not in sealed.data
    assert await codec.decode([sealed, plain]) == [plain, plain]  # unencrypted history stays readable
    damaged = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(DecryptionFailed, match="failed authentication"):
        await codec.decode([damaged])
    with pytest.raises(ConfigError, match="PAYLOAD_ENCRYPTION_KEY"):
        settings_app(Settings())
