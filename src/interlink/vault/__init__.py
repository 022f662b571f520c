"""The vault: secrets and credentials encrypted at rest (AES-256-GCM, envelope encryption).

Owns the master keys. Every ciphertext names the master key that wrapped its data key, so
several keys can be active during a rotation. Imports nothing else from Interlink but settings.
"""

from interlink.vault.crypto import MasterKey, Vault, VaultError
from interlink.vault.keys import generate_master_key, load_master_keys

__all__ = ["MasterKey", "Vault", "VaultError", "generate_master_key", "load_master_keys"]
