"""Endpoint authentication besides the signature: basic, a static header, OAuth2 client
credentials (token fetched, cached and refreshed by Interlink) or a client certificate (mTLS).

Settings are a tagged object, e.g. ``{"type": "basic", "username": "u", "password": "p"}``,
``{"type": "header", "name": "X-Api-Key", "value": "..."}``,
``{"type": "oauth2_client_credentials", "token_url": "...", "client_id": "...",
"client_secret": "...", "scope": "..."}`` or ``{"type": "mtls", "cert_pem": "...",
"key_pem": "...", "ca_pem": "..."}``.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any
from urllib.parse import urlencode

import orjson

from interlink.egress import ClientCertificate, EgressClient, EgressError, Timeouts

__all__ = ["AuthFailed", "EndpointAuth", "TokenCache"]

_TOKEN_TIMEOUTS = Timeouts(connect=5.0, read=10.0, total=10.0)
_REFRESH_MARGIN = 30.0


class AuthFailed(Exception):
    """The endpoint's credentials could not be obtained (token endpoint refused or down)."""

    error_class = "auth"


class TokenCache:
    """A process's OAuth2 tokens by token URL and client id (with when to stop using each), and
    the fetches under way: deliveries that find no usable token wait for one fetch together,
    so a burst of them to an endpoint asks its token endpoint once."""

    def __init__(self) -> None:
        self.tokens: dict[str, tuple[str, float]] = {}
        self.fetching: dict[str, asyncio.Future[str]] = {}


class EndpointAuth:
    """The authentication of one endpoint, compiled once per endpoint version."""

    def __init__(self, settings: dict[str, Any] | None, tokens: TokenCache):
        self.settings = settings or {}
        self.kind = self.settings.get("type")
        self.static_headers: dict[str, str] = {}
        self.certificate: ClientCertificate | None = None
        self._tokens = tokens
        if self.kind == "basic":
            pair = f"{self.settings['username']}:{self.settings['password']}".encode()
            self.static_headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        elif self.kind == "header":
            self.static_headers[self.settings["name"]] = self.settings["value"]
        elif self.kind == "mtls":
            self.certificate = ClientCertificate(
                cert_pem=self.settings["cert_pem"],
                key_pem=self.settings["key_pem"],
                ca_pem=self.settings.get("ca_pem"),
            )

    @property
    def dynamic(self) -> bool:
        return self.kind == "oauth2_client_credentials"

    def _cache_key(self) -> str:
        return f"{self.settings['token_url']}|{self.settings['client_id']}"

    def forget_token(self) -> None:
        """Drop the cached token (the endpoint answered 401 with it)."""
        if self.dynamic:
            self._tokens.tokens.pop(self._cache_key(), None)

    async def headers(self, egress: EgressClient) -> dict[str, str]:
        """Headers to add to one request; fetches an OAuth2 token when none is cached."""
        if not self.dynamic:
            return self.static_headers
        key = self._cache_key()
        cache = self._tokens
        cached = cache.tokens.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return {"Authorization": f"Bearer {cached[0]}"}
        fetch = cache.fetching.get(key)
        if fetch is None:
            fetch = cache.fetching[key] = asyncio.ensure_future(self._fetch_and_keep(egress, key))
            fetch.add_done_callback(_settled(cache, key))
        # Shielded: a delivery that gives up (cancelled) does not cancel the others' fetch.
        token = await asyncio.shield(fetch)
        return {"Authorization": f"Bearer {token}"}

    async def _fetch_and_keep(self, egress: EgressClient, key: str) -> str:
        token, expires_in = await self._fetch(egress)
        lifetime = max(1.0, expires_in - _REFRESH_MARGIN)
        self._tokens.tokens[key] = (token, time.monotonic() + lifetime)
        return token

    async def _fetch(self, egress: EgressClient) -> tuple[str, float]:
        form: dict[str, str] = {"grant_type": "client_credentials"}
        for name in ("scope", "audience"):
            if self.settings.get(name):
                form[name] = self.settings[name]
        pair = f"{self.settings['client_id']}:{self.settings['client_secret']}".encode()
        try:
            response = await egress.request(
                "POST",
                self.settings["token_url"],
                headers={
                    "Authorization": "Basic " + base64.b64encode(pair).decode(),
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                },
                body=urlencode(form).encode(),
                timeouts=_TOKEN_TIMEOUTS,
            )
        except EgressError as error:
            raise AuthFailed(f"token endpoint: {error}") from error
        if response.status != 200:
            raise AuthFailed(f"token endpoint answered {response.status}")
        try:
            document = orjson.loads(response.body)
            token = str(document["access_token"])
            expires_in = float(document.get("expires_in") or 3600)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise AuthFailed("token endpoint answered without an access_token") from error
        return token, expires_in


def _settled(cache: TokenCache, key: str) -> Any:
    def done(fetch: asyncio.Future[str]) -> None:
        if cache.fetching.get(key) is fetch:
            del cache.fetching[key]
        if not fetch.cancelled():
            fetch.exception()  # seen here too: every waiter may have given up

    return done
