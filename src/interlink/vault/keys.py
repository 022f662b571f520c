"""Where master keys come from: ``INTERLINK_MASTER_KEY`` or, embedded, a 0600 key file."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from interlink.settings import Settings, SettingsError
from interlink.vault.crypto import MasterKey

__all__ = ["generate_master_key", "key_file_path", "load_master_keys"]


def generate_master_key() -> str:
    """A new master key as ``INTERLINK_MASTER_KEY`` takes it (base64 of 32 random bytes)."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _decode(text: str, position: int) -> MasterKey:
    try:
        material = base64.b64decode(text.strip(), validate=True)
        return MasterKey(material)
    except (binascii.Error, ValueError) as exc:
        raise SettingsError(
            f"INTERLINK_MASTER_KEY: key #{position} is not base64 of 32 bytes"
        ) from exc


def key_file_path(settings: Settings) -> Path | None:
    path = settings.sqlite_path
    return None if path is None else path.with_name(path.name + ".key")


def load_master_keys(settings: Settings, *, create: bool = True) -> list[MasterKey]:
    """The configured keys, first one encrypting; embedded mode makes a key file if none."""
    if settings.master_key:
        return [_decode(key.get_secret_value(), n) for n, key in enumerate(settings.master_key, 1)]
    path = key_file_path(settings)
    if path is None:
        if settings.is_sqlite:  # in-memory database: an ephemeral key is all that makes sense
            return [MasterKey(secrets.token_bytes(32))]
        raise SettingsError("INTERLINK_MASTER_KEY: required with PostgreSQL")
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise SettingsError(f"master key file {path} must be mode 0600, not {oct(mode)}")
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        return [_decode(line, n) for n, line in enumerate(lines, 1)]
    if not create:
        raise SettingsError(f"no master key: set INTERLINK_MASTER_KEY or create {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(generate_master_key() + "\n")
    return load_master_keys(settings, create=False)
