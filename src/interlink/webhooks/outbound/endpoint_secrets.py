"""Endpoint signing secrets and authentication settings: encryption at rest and rotation.

Every secret column is encrypted by the vault with a context naming its table, column and
row, so a ciphertext copied to another row does not decrypt.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson

from interlink.store.types import utcnow
from interlink.vault import Vault
from interlink.webhooks.outbound.signing import generate_keypair, parse_secret, public_key_for

__all__ = [
    "DEFAULT_GRACE",
    "MAX_GRACE",
    "active_secrets",
    "decrypt_auth",
    "encrypt_auth",
    "encrypt_column",
    "new_signing_columns",
    "public_key",
    "rotation_columns",
]

DEFAULT_GRACE = timedelta(hours=24)
MAX_GRACE = timedelta(days=7)


def _context(column: str, endpoint_id: str) -> str:
    return f"outbound_endpoints.{column}:{endpoint_id}"


def encrypt_column(vault: Vault, column: str, endpoint_id: str, value: str) -> str:
    """Encrypt ``value`` for ``column`` of endpoint ``endpoint_id``."""
    return vault.encrypt(value, context=_context(column, endpoint_id))


def _decrypt(vault: Vault, row: dict[str, Any], column: str) -> str | None:
    value = row.get(column)
    if not value:
        return None
    return vault.decrypt(value, context=_context(column, row["id"]))


def new_signing_columns(
    vault: Vault, endpoint_id: str, secret: str, *, asymmetric: bool
) -> dict[str, Any]:
    """Columns for a new endpoint's ``whsec_`` secret (checked) and optional ed25519 key."""
    parse_secret(secret)
    columns: dict[str, Any] = {"secret": encrypt_column(vault, "secret", endpoint_id, secret)}
    if asymmetric:
        signing_key, _ = generate_keypair()
        columns["signing_key"] = encrypt_column(vault, "signing_key", endpoint_id, signing_key)
    return columns


def rotation_columns(
    vault: Vault, row: dict[str, Any], new_secret: str, grace: timedelta, now: datetime
) -> dict[str, Any]:
    """Columns that make ``new_secret`` current and keep the old one valid for ``grace``."""
    parse_secret(new_secret)
    current = _decrypt(vault, row, "secret")
    columns: dict[str, Any] = {
        "secret": encrypt_column(vault, "secret", row["id"], new_secret),
        "previous_secret": None,
        "previous_secret_expires_at": None,
    }
    if current and grace > timedelta(0):
        columns["previous_secret"] = encrypt_column(vault, "previous_secret", row["id"], current)
        columns["previous_secret_expires_at"] = now + grace
    return columns


def active_secrets(vault: Vault, row: dict[str, Any], now: datetime | None = None) -> list[str]:
    """The secrets and keys a delivery is signed with, newest first."""
    now = now or utcnow()
    found = [_decrypt(vault, row, "secret") or ""]
    expires = row.get("previous_secret_expires_at")
    if expires is not None and expires > now:
        previous = _decrypt(vault, row, "previous_secret")
        if previous:
            found.append(previous)
    signing_key = _decrypt(vault, row, "signing_key")
    if signing_key:
        found.append(signing_key)
    return found


def public_key(vault: Vault, row: dict[str, Any]) -> str | None:
    """The ``whpk_`` key receivers verify ``v1a`` signatures with, if the endpoint has one."""
    signing_key = _decrypt(vault, row, "signing_key")
    return public_key_for(signing_key) if signing_key else None


def encrypt_auth(vault: Vault, endpoint_id: str, auth: dict[str, Any] | None) -> str | None:
    """The encrypted form of an endpoint's authentication settings."""
    if auth is None:
        return None
    return encrypt_column(vault, "auth", endpoint_id, orjson.dumps(auth).decode())


def decrypt_auth(vault: Vault, row: dict[str, Any]) -> dict[str, Any] | None:
    """The endpoint's authentication settings, decrypted."""
    text = _decrypt(vault, row, "auth")
    if text is None:
        return None
    value: dict[str, Any] = orjson.loads(text)
    return value
