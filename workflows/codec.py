"""Client-side Temporal wiring: the data converter (pydantic, optionally AES-GCM encrypted) and connect()."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec
from temporalio.runtime import Runtime

from tenantmove.crypto import KeyRing
from tenantmove.settings import Settings

# The names Temporal's own encryption sample uses, so its tooling and codec servers recognise the payloads.
ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"


class EncryptionCodec(PayloadCodec):
    """Each payload, metadata and all, becomes one AES-GCM message under the ring's first key. Payloads that
    are not encrypted pass through on decode: histories written before encryption was turned on stay
    readable."""

    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            kid, blob = self.keys.encrypt(payload.SerializeToString())
            out.append(Payload(metadata={"encoding": ENCODING, KEY_ID: kid.encode()}, data=blob))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                out.append(payload)
                continue
            kid = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
            out.append(Payload.FromString(self.keys.decrypt(kid, payload.data, what="a Temporal payload")))
        return out


def data_converter(settings: Settings) -> DataConverter:
    """pydantic JSON; with PAYLOAD_ENCRYPTION_KEY, encrypted, failure messages and stack traces included
    (the default failure converter would leave those in clear, and an error message can quote a row)."""
    keys = settings.payload_keys()
    if keys is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(keys),
                               failure_converter_class=DefaultFailureConverterWithEncodedAttributes)


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """Every process that talks to Temporal connects here, so all of them share one data converter."""
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                data_converter=data_converter(settings), runtime=runtime)
