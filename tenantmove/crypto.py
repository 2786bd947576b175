"""AES-256-GCM key rings from settings: encrypt with the first key, decrypt with any (key rotation)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tenantmove.errors import ConfigError, DecryptionFailed

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16


def key_id(key: bytes) -> str:
    """A short public name for a key: it travels with the ciphertext so the reader picks the right key.
    A domain-separated digest of a 256-bit random key says nothing usable about the key itself."""
    return hashlib.sha256(b"stagesub-migrate key id\0" + key).hexdigest()[:16]


def new_key() -> str:
    """A fresh key in the settings' format (base64 of 32 random bytes)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


class KeyRing:
    """Keys by id; the first one encrypts. Error messages name key ids, never key material."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ConfigError("expected at least one encryption key, found none")
        for key in keys:
            if len(key) != KEY_BYTES:
                raise ConfigError(f"expected a {KEY_BYTES}-byte AES-256 key, found {len(key)} bytes")
        self._keys = {key_id(key): AESGCM(key) for key in keys}
        self.primary = key_id(keys[0])

    @classmethod
    def parse(cls, value: str, setting: str) -> KeyRing:
        """From a setting: base64 keys separated by commas (the first encrypts)."""
        keys = []
        for position, part in enumerate(p.strip() for p in value.split(",") if p.strip()):
            try:
                keys.append(base64.b64decode(part, validate=True))
            except (binascii.Error, ValueError):
                raise ConfigError(f"{setting}: expected base64 keys separated by commas, key {position + 1} "
                                  "is not base64") from None
        if not keys:
            raise ConfigError(f"{setting}: expected base64 keys separated by commas, found none")
        try:
            return cls(keys)
        except ConfigError as exc:
            raise ConfigError(f"{setting}: {exc.message}") from None

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def encrypt(self, plaintext: bytes, aad: bytes = b"") -> tuple[str, bytes]:
        """(key id, nonce + ciphertext + tag). Random 96-bit nonces: safe for far more messages per key
        than a migration tool produces (NIST SP 800-38D's 2**32 bound)."""
        nonce = os.urandom(NONCE_BYTES)
        return self.primary, nonce + self._keys[self.primary].encrypt(nonce, plaintext, aad)

    def decrypt(self, kid: str, blob: bytes, aad: bytes = b"", *, what: str = "data") -> bytes:
        aead = self._keys.get(kid)
        if aead is None:
            raise DecryptionFailed(f"{what} was encrypted with key id {kid!r}, expected one of the configured "
                                   f"key ids {', '.join(self._keys)}: configure that key to read it")
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionFailed(f"{what} is too short to be AES-GCM ciphertext ({len(blob)} bytes)")
        try:
            return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise DecryptionFailed(f"{what} failed authentication under key id {kid!r}: it was altered, "
                                   "or encrypted with another key of the same id") from None
