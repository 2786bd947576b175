"""Archive files encrypted at rest: AES-GCM frames of 1 MiB, bound to their archive and file, in order, to the end.

    file   = MAGIC (8) | key id (16 ascii) | frame size (4, big endian) | frame*
    frame  = length of sealed (4, big endian) | final flag (1) | sealed = nonce | ciphertext | tag
    AAD    = header | "<archive id>/<file name>" | frame index (8, big endian) | final flag

Memory stays one frame whatever the table's size. Each frame authenticates its position and whether it
is the last, so a reordered, dropped, truncated or swapped-in frame (or a whole file taken from another
archive) fails authentication instead of loading other rows.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Protocol

from tenantmove.crypto import NONCE_BYTES, TAG_BYTES, KeyRing
from tenantmove.errors import ArchiveError, DecryptionFailed

MAGIC = b"TMARGCM1"
FRAME = 1 << 20
_HEADER = struct.Struct(">8s16sI")
_FRAME_HEAD = struct.Struct(">IB")
_INDEX = struct.Struct(">Q")


class Writable(Protocol):
    def write(self, data: bytes) -> int: ...


class FrameWriter:
    """A write-only file object (what GzipFile writes into) that seals frames into `out`; finish() seals
    the last frame, marked final, even when it is empty."""

    def __init__(self, out: Writable, keys: KeyRing, context: str) -> None:
        self.out, self.keys = out, keys
        self.header = _HEADER.pack(MAGIC, keys.primary.encode(), FRAME)
        self.context = context.encode()
        self.buffer = bytearray()
        self.index = 0
        out.write(self.header)

    def _seal(self, chunk: bytes, final: bool) -> None:
        flag = 1 if final else 0
        _, sealed = self.keys.encrypt(chunk, self.header + self.context + _INDEX.pack(self.index) + bytes([flag]))
        self.out.write(_FRAME_HEAD.pack(len(sealed), flag) + sealed)
        self.index += 1

    def write(self, data: bytes) -> int:
        self.buffer += data
        while len(self.buffer) > FRAME:  # strictly more: the final frame is never left without bytes to seal
            self._seal(bytes(self.buffer[:FRAME]), final=False)
            del self.buffer[:FRAME]
        return len(data)

    def flush(self) -> None:
        pass

    def finish(self) -> None:
        self._seal(bytes(self.buffer), final=True)
        self.buffer = bytearray()


class FrameReader:
    """Plaintext frame by frame from `read_stored` (a read(n) over the stored bytes); b"" after the final
    frame. Raises ArchiveError for anything that is not an intact sequence of this file's frames."""

    def __init__(self, read_stored: Callable[[int], bytes], keys: KeyRing | None, context: str, table: str,
                 name: str) -> None:
        self.read_stored, self.keys, self.table, self.name = read_stored, keys, table, name
        self.context = context.encode()
        self.header = self._exact(_HEADER.size, "header")
        magic, kid, self.frame_size = _HEADER.unpack(self.header)
        if magic != MAGIC:
            raise self._error("is not an encrypted archive file (bad magic)")
        self.kid = kid.decode(errors="replace")
        if keys is None:
            raise self._error(f"is encrypted with key id {self.kid!r}: set ARCHIVE_ENCRYPTION_KEY to read it")
        self.index = 0
        self.done = False

    def _error(self, what: str) -> ArchiveError:
        return ArchiveError(f"file {self.name} of table {self.table} {what}", table=self.table)

    def _exact(self, size: int, what: str) -> bytes:
        data = b""
        while len(data) < size:
            more = self.read_stored(size - len(data))
            if not more:
                raise self._error(f"is truncated (in its {what})")
            data += more
        return data

    def read(self) -> bytes:
        if self.done:
            return b""
        length, flag = _FRAME_HEAD.unpack(self._exact(_FRAME_HEAD.size, f"frame {self.index} head"))
        if flag > 1 or not NONCE_BYTES + TAG_BYTES <= length <= self.frame_size + NONCE_BYTES + TAG_BYTES:
            raise self._error(f"has a damaged frame {self.index} head")
        sealed = self._exact(length, f"frame {self.index}")
        aad = self.header + self.context + _INDEX.pack(self.index) + bytes([flag])
        assert self.keys is not None
        try:
            plain = self.keys.decrypt(self.kid, sealed, aad, what=f"frame {self.index}")
        except DecryptionFailed as exc:
            raise self._error(f"cannot be decrypted: {exc.message}") from None
        self.index += 1
        if flag:
            self.done = True
            if self.read_stored(1):
                raise self._error("has data after its final frame")
        return plain

    def rest(self) -> bytes:
        """Whatever plaintext is left up to the final frame (none in an intact file whose gzip stream ended)."""
        out = bytearray()
        while block := self.read():
            out += block
        if not self.done:
            raise self._error("is truncated (no final frame)")
        return bytes(out)
