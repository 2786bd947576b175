"""FileSecretStore: permissions, atomic replacement, reference validation, missing secrets."""

from __future__ import annotations

import stat

import pytest

from tenantmove.errors import ConfigError, SecretMissing
from tenantmove.secrets import FileSecretStore, SecretStore


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_put_get_delete_with_private_permissions(tmp_path):
    store: SecretStore = FileSecretStore(tmp_path / "secrets")
    store.put("dsn/tenant_a_12345678", "postgresql://a:pw@h:5432/a")
    path = tmp_path / "secrets" / "dsn" / "tenant_a_12345678"
    assert store.get("dsn/tenant_a_12345678") == "postgresql://a:pw@h:5432/a"
    assert store.exists("dsn/tenant_a_12345678")
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700 and _mode(tmp_path / "secrets") == 0o700
    store.put("dsn/tenant_a_12345678", "second ✓")  # replaced whole, no temp file left behind
    assert store.get("dsn/tenant_a_12345678") == "second ✓"
    assert [p.name for p in path.parent.iterdir()] == ["tenant_a_12345678"]
    store.delete("dsn/tenant_a_12345678")
    store.delete("dsn/tenant_a_12345678")  # idempotent
    assert not store.exists("dsn/tenant_a_12345678")
    with pytest.raises(SecretMissing, match="expected a secret under 'dsn/tenant_a_12345678'"):
        store.get("dsn/tenant_a_12345678")


@pytest.mark.parametrize("ref", ["", "../etc/passwd", "dsn/../../x", "/abs", ".hidden", "a//b", "a/./b",
                                 "a/", "sp ace", "x" * 202, "a..b"])
def test_bad_refs_are_refused(tmp_path, ref):
    store = FileSecretStore(tmp_path)
    with pytest.raises(ConfigError, match="expected a secret reference"):
        store.put(ref, "v")
    with pytest.raises(ConfigError):
        store.exists(ref)
    assert list(tmp_path.iterdir()) == []
