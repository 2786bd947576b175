"""Codec server for the Temporal UI and CLI: POST /encode and /decode of {"payloads": [...]} with our codec."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence

from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from tenantmove.errors import ConfigError, DecryptionFailed
from tenantmove.logs import get_logger
from tenantmove.settings import Settings
from workflows.codec import EncryptionCodec

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


def codec_app(codec: PayloadCodec, *, origins: Sequence[str], token: str | None = None) -> Starlette:
    """Temporal's codec server protocol: the body and the reply are the JSON form of a Payloads message.
    The UI calls from the browser, hence CORS for its origin; the token, when set, is what the UI sends
    with "pass access token" (or what `temporal --codec-auth` sends)."""
    log = get_logger(component="codec-server")

    def endpoint(transform: Transform, name: str) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            if token is not None:
                given = request.headers.get("authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                    return JSONResponse({"error": "expected 'Authorization: Bearer <CODEC_SERVER_TOKEN>'"},
                                        status_code=401)
            try:
                payloads = json_format.Parse(await request.body(), Payloads())
            except json_format.ParseError as exc:
                return JSONResponse({"error": f"expected a JSON Payloads message: {exc}"}, status_code=400)
            try:
                result = Payloads(payloads=await transform(payloads.payloads))
            except DecryptionFailed as exc:
                # The message names key ids, never keys or payload contents.
                log.warning("payload not decoded", path=name, error=exc.message)
                return JSONResponse({"error": exc.message}, status_code=400)
            return Response(json_format.MessageToJson(result), media_type="application/json")

        return handle

    return Starlette(
        routes=[Route("/encode", endpoint(codec.encode, "encode"), methods=["POST"]),
                Route("/decode", endpoint(codec.decode, "decode"), methods=["POST"])],
        middleware=[Middleware(CORSMiddleware, allow_origins=list(origins), allow_methods=["POST"],
                               allow_headers=["content-type", "x-namespace", "authorization"],
                               allow_credentials=True)])


def settings_app(settings: Settings) -> Starlette:
    keys = settings.payload_keys()
    if keys is None:
        raise ConfigError("the codec server needs PAYLOAD_ENCRYPTION_KEY (the key the workers encrypt with)")
    token = settings.codec_server_token.get_secret_value() if settings.codec_server_token else None
    return codec_app(EncryptionCodec(keys), origins=settings.codec_server_origins, token=token)


async def serve(settings: Settings, host: str, port: int) -> str:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(settings_app(settings), host=host, port=port, log_level="warning"))
    print(f"codec server on http://{host}:{port} (POST /encode, /decode)", flush=True)
    await server.serve()
    return "codec server stopped"
