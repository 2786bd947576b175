"""Secret stores: where DSNs with passwords live, so that only references travel through workflow history."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from tenantmove.errors import ConfigError, SecretMissing

# A reference becomes a relative path under the store's root: no leading dot or slash, no "..", nothing a
# shell or a file system would read specially.
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,200}$")


class SecretStore(Protocol):
    """A key-value store of secrets. `get` raises SecretMissing; `delete` of a missing ref is no error."""

    def put(self, ref: str, value: str) -> None: ...

    def get(self, ref: str) -> str: ...

    def delete(self, ref: str) -> None: ...

    def exists(self, ref: str) -> bool: ...


def check_ref(ref: str) -> str:
    """The ref itself when it is a valid secret reference; ConfigError otherwise."""
    parts = ref.split("/")
    if not _REF.fullmatch(ref) or ".." in ref or any(part in ("", ".") for part in parts):
        raise ConfigError(f"expected a secret reference like 'dsn/tenant_x' (letters, digits, / _ . -, no "
                          f"'..', no empty or '.' parts), found {ref!r}")
    return ref


class FileSecretStore:
    """One file per ref under root: directories 0700, files 0600, each written atomically (temp + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, ref: str) -> Path:
        return self.root.joinpath(*check_ref(ref).split("/"))

    def _make_dirs(self, directory: Path) -> None:
        # mkdir(parents=True) would apply the umask to the parents; each level is created 0700 on its own.
        missing = []
        for parent in [directory, *directory.parents]:
            if parent.exists():
                break
            missing.append(parent)
        for path in reversed(missing):
            path.mkdir(mode=0o700, exist_ok=True)
            path.chmod(0o700)

    def put(self, ref: str, value: str) -> None:
        path = self._path(ref)
        self._make_dirs(path.parent)
        # mkstemp creates the file 0600; the rename makes a reader see either the old or the new secret,
        # never half of one, and a crash leaves at most a stray temp file, never a truncated secret.
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(value.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a crash only once the directory is on disk
        finally:
            os.close(dir_fd)

    def get(self, ref: str) -> str:
        try:
            return self._path(ref).read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise SecretMissing(f"expected a secret under {ref!r}, found none in {self.root}") from None

    def delete(self, ref: str) -> None:
        self._path(ref).unlink(missing_ok=True)

    def exists(self, ref: str) -> bool:
        return self._path(ref).is_file()
