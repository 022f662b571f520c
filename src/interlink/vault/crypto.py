"""Envelope encryption: a fresh data key per secret, wrapped by a master key.

Ciphertext format (ASCII, safe in any text column)::

    v1.<key id>.<base64url(nonce | wrapped data key)>.<base64url(nonce | ciphertext)>

The data is bound to ``context`` (associated data such as ``connections.credentials:con_...``),
so a ciphertext copied into another row does not decrypt there. Rotation re-wraps the data key
only; the data ciphertext and its context stay as they are.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["MasterKey", "Vault", "VaultError"]

_VERSION = "v1"
_NONCE = 12


class VaultError(Exception):
    """A ciphertext could not be decrypted (unknown key, tampered, or wrong context)."""


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, repr=False)
class MasterKey:
    """A 32-byte master key; its id is derived from it so it never needs storing."""

    material: bytes

    def __post_init__(self) -> None:
        if len(self.material) != 32:
            raise ValueError("a master key is 32 bytes (base64 of 32 random bytes)")

    @property
    def key_id(self) -> str:
        return hashlib.sha256(b"interlink-master-key" + self.material).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"


class Vault:
    """Encrypts with the first master key; decrypts with any of them."""

    def __init__(self, keys: Sequence[MasterKey]) -> None:
        if not keys:
            raise ValueError("the vault needs at least one master key")
        self._keys = {key.key_id: AESGCM(key.material) for key in keys}
        self.current_key_id = keys[0].key_id

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def encrypt(self, plaintext: str | bytes, *, context: str) -> str:
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_NONCE)
        body = nonce + AESGCM(data_key).encrypt(nonce, data, context.encode())
        return self._wrap(data_key, body)

    def _wrap(self, data_key: bytes, body: bytes) -> str:
        wrap_nonce = os.urandom(_NONCE)
        wrapped = self._keys[self.current_key_id].encrypt(
            wrap_nonce, data_key, self.current_key_id.encode()
        )
        return f"{_VERSION}.{self.current_key_id}.{_b64e(wrap_nonce + wrapped)}.{_b64e(body)}"

    def _unwrap(self, ciphertext: str) -> tuple[str, bytes, bytes]:
        try:
            version, key_id, wrapped_text, body_text = ciphertext.split(".")
            wrapped, body = _b64d(wrapped_text), _b64d(body_text)
        except ValueError as exc:
            raise VaultError("not a vault ciphertext") from exc
        if version != _VERSION:
            raise VaultError(f"unknown ciphertext version {version!r}")
        master = self._keys.get(key_id)
        if master is None:
            raise VaultError(f"ciphertext was made with master key {key_id}, which is not loaded")
        try:
            data_key = master.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], key_id.encode())
        except InvalidTag as exc:
            raise VaultError("the wrapped data key does not authenticate") from exc
        return key_id, data_key, body

    def decrypt_bytes(self, ciphertext: str, *, context: str) -> bytes:
        _, data_key, body = self._unwrap(ciphertext)
        try:
            return AESGCM(data_key).decrypt(body[:_NONCE], body[_NONCE:], context.encode())
        except InvalidTag as exc:
            raise VaultError("the ciphertext does not authenticate in this context") from exc

    def decrypt(self, ciphertext: str, *, context: str) -> str:
        return self.decrypt_bytes(ciphertext, context=context).decode()

    def key_id_of(self, ciphertext: str) -> str:
        parts = ciphertext.split(".")
        if len(parts) != 4:
            raise VaultError("not a vault ciphertext")
        return parts[1]

    def rewrap(self, ciphertext: str) -> str:
        """The same secret with its data key wrapped by the current master key."""
        key_id, data_key, body = self._unwrap(ciphertext)
        if key_id == self.current_key_id:
            return ciphertext
        return self._wrap(data_key, body)
