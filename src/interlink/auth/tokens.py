"""Bearer tokens: random, prefixed, shown once, stored only as a SHA-256 digest.

The tokens carry 256 bits of randomness, so a fast digest is enough: nothing can be guessed
from it, and a lookup by digest is one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["ADMIN_TOKEN_PREFIX", "API_KEY_PREFIX", "hash_token", "new_admin_token", "new_api_key"]

API_KEY_PREFIX = "ilk_"
ADMIN_TOKEN_PREFIX = "ila_"  # noqa: S105 (a prefix, not a secret)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_admin_token() -> str:
    return ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(32)
