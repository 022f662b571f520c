"""Signed, expiring OAuth ``state`` values and the HTML pages the callback ends on.

A state is ``<nonce>.<expiry>.<signature>``: the nonce names a stored, single-use row; the
signature is an HMAC-SHA256 keyed with a key derived (HKDF) from the vault's master key, so a
forged or altered state is refused before the store is even read. Every master key verifies
(rotation); the first one signs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
import time
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from interlink.vault.crypto import MasterKey

__all__ = ["StateError", "StateSigner", "pkce_challenge", "render_page"]


class StateError(Exception):
    """The state is malformed, forged or expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636)."""
    return _b64(hashlib.sha256(verifier.encode("ascii")).digest())


class StateSigner:
    """Signs and verifies OAuth states with keys derived from the master keys."""

    def __init__(self, master_keys: Sequence[MasterKey]) -> None:
        self._keys = [
            HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=b"interlink oauth state v1"
            ).derive(key.material)
            for key in master_keys
        ]

    def _sign(self, key: bytes, payload: str) -> str:
        return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())

    def issue(self, ttl: float) -> tuple[str, str, int]:
        """A new state: returns (state, nonce, expiry epoch seconds)."""
        nonce = secrets.token_urlsafe(24)
        expiry = int(time.time() + ttl)
        payload = f"{nonce}.{expiry}"
        return f"{payload}.{self._sign(self._keys[0], payload)}", nonce, expiry

    def verify(self, state: str) -> str:
        """Check a state's signature and expiry and return its nonce.

        Raises:
            StateError: malformed, not signed by us, or expired.
        """
        parts = state.split(".")
        if len(parts) != 3 or not parts[1].isdigit() or len(state) > 200:
            raise StateError("the sign-in link is malformed")
        payload = f"{parts[0]}.{parts[1]}"
        if not any(hmac.compare_digest(self._sign(k, payload), parts[2]) for k in self._keys):
            raise StateError("the sign-in link was not issued by this Interlink")
        if int(parts[1]) < time.time():
            raise StateError("the sign-in link has expired; start the connection again")
        return parts[0]


def render_page(title: str, message: str, *, success: bool, link: str | None = None) -> str:
    """A small self-contained HTML page (every value escaped)."""
    colour = "#1a7f37" if success else "#cf222e"
    back = (
        f'<p><a href="{html.escape(link, quote=True)}">Return to the application</a></p>'
        if link
        else "<p>You can close this window.</p>"
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        "<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;"
        "padding:0 1rem;color:#1f2328}h1{font-size:1.4rem;color:" + colour + "}</style>"
        f"</head><body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{back}"
        "</body></html>"
    )
