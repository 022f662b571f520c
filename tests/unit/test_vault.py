from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from interlink.settings import Settings, SettingsError
from interlink.vault import MasterKey, Vault, VaultError, generate_master_key, load_master_keys


def _vault(*keys: MasterKey) -> Vault:
    return Vault(list(keys))


def test_round_trip_and_context_binding() -> None:
    vault = _vault(MasterKey(secrets.token_bytes(32)))
    ciphertext = vault.encrypt("sk_live_very_secret", context="connections:con_1")
    assert "sk_live" not in ciphertext
    assert vault.decrypt(ciphertext, context="connections:con_1") == "sk_live_very_secret"
    with pytest.raises(VaultError, match="context"):
        vault.decrypt(ciphertext, context="connections:con_2")


def test_each_encryption_is_different() -> None:
    vault = _vault(MasterKey(secrets.token_bytes(32)))
    assert vault.encrypt("x", context="c") != vault.encrypt("x", context="c")


def test_tampering_is_detected() -> None:
    vault = _vault(MasterKey(secrets.token_bytes(32)))
    ciphertext = vault.encrypt("secret", context="c")
    head, body = ciphertext.rsplit(".", 1)
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    with pytest.raises(VaultError):
        vault.decrypt(f"{head}.{flipped}", context="c")
    with pytest.raises(VaultError, match="not a vault ciphertext"):
        vault.decrypt("garbage", context="c")


def test_rotation_rewraps_under_the_first_key() -> None:
    old, new = MasterKey(secrets.token_bytes(32)), MasterKey(secrets.token_bytes(32))
    ciphertext = _vault(old).encrypt("token", context="c")
    both = _vault(new, old)
    rewrapped = both.rewrap(ciphertext)
    assert both.key_id_of(rewrapped) == new.key_id
    assert _vault(new).decrypt(rewrapped, context="c") == "token"
    with pytest.raises(VaultError, match="not loaded"):
        _vault(new).decrypt(ciphertext, context="c")


def test_master_key_repr_hides_material() -> None:
    key = MasterKey(b"s" * 32)
    assert "sss" not in repr(key)
    with pytest.raises(ValueError, match="32 bytes"):
        MasterKey(b"short")


def test_key_file_is_created_0600_beside_the_database(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/data/interlink.db")
    keys = load_master_keys(settings)
    path = tmp_path / "data" / "interlink.db.key"
    assert path.exists()
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_master_keys(settings)[0].key_id == keys[0].key_id


def test_key_file_with_loose_permissions_is_refused(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/interlink.db")
    load_master_keys(settings)
    os.chmod(tmp_path / "interlink.db.key", 0o644)
    with pytest.raises(SettingsError, match="must be mode 0600"):
        load_master_keys(settings)


def test_environment_keys_and_errors() -> None:
    first, second = generate_master_key(), generate_master_key()
    settings = Settings(database_url="postgresql://u@h/db", master_key=f"{first},{second}")
    keys = load_master_keys(settings)
    assert len(keys) == 2
    with pytest.raises(SettingsError, match="key #2 is not base64 of 32 bytes"):
        load_master_keys(Settings(database_url="postgresql://u@h/db", master_key=f"{first},abc"))
    with pytest.raises(SettingsError, match="required with PostgreSQL"):
        load_master_keys(Settings(database_url="postgresql://u@h/db"))
