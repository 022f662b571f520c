"""Prefixed, time-ordered, unguessable identifiers (``ten_01J...``).

An id is a prefix and 26 Crockford base32 characters: 48 bits of milliseconds then 80 random
bits, so ids sort by creation time (cursors rely on it) and cannot be guessed.
"""

from __future__ import annotations

import os
import time

__all__ = ["PREFIXES", "new_id"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every pair of digits, indexed by the 10 bits it stands for.
_PAIRS = [first + second for first in _ALPHABET for second in _ALPHABET]
_SHIFTS = tuple(range(120, -1, -10))

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
    # 26 digits are 130 bits: 13 pairs of 10, the top two bits 0.
    return f"{prefix}_{''.join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])}"
