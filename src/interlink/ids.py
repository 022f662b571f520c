"""Prefixed, time-ordered, unguessable identifiers (``ten_01J...``).

An id is a prefix and 26 Crockford base32 characters: 48 bits of milliseconds then 80 random
bits, so ids sort by creation time (cursors rely on it) and cannot be guessed.
"""

from __future__ import annotations

import secrets
import time

__all__ = ["PREFIXES", "new_id"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

PREFIXES = frozenset(
    {
        "ten",
        "key",
        "con",
        "ep",
        "msg",
        "att",
        "src",
        "evt",
        "syn",
        "run",
        "rec",
        "cfl",
        "job",
        "aud",
    }
)


def new_id(prefix: str) -> str:
    """Return a new id such as ``ten_01JD3Q0Z8N6V6Q3X9T1W2Y4B5C``."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"
