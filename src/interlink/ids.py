"""Prefixed, time-ordered, unguessable identifiers (``ten_01J...``).

An id is a prefix and 26 Crockford base32 characters: 48 bits of milliseconds then 80 random
bits, so ids sort by creation time (cursors rely on it) and cannot be guessed.
"""

from __future__ import annotations

import base64
import os
import time

__all__ = ["PREFIXES", "new_id"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# base64's base32 alphabet, digit for digit, to Crockford's.
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())

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
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10))
    # 20 bytes are 32 base32 digits; the value fills the last 26 (130 bits), the first 6 are 0.
    digits = base64.b32encode(value.to_bytes(20)).translate(_TO_CROCKFORD)
    return f"{prefix}_{digits[6:].decode()}"
