"""Endpoint authentication besides the signature: basic, a static header, OAuth2 client
credentials (token fetched, cached and refreshed by Interlink) or a client certificate (mTLS).

Settings are a tagged object, e.g. ``{"type": "basic", "username": "u", "password": "p"}``,
``{"type": "header", "name": "X-Api-Key", "value": "..."}``,
``{"type": "oauth2_client_credentials", "token_url": "...", "client_id": "...",
"client_secret": "...", "scope": "..."}`` or ``{"type": "mtls", "cert_pem": "...",
"key_pem": "...", "ca_pem": "..."}``.
"""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import urlencode

import orjson

from interlink.egress import ClientCertificate, EgressClient, EgressError, Timeouts

__all__ = ["AuthFailed", "EndpointAuth"]

_TOKEN_TIMEOUTS = Timeouts(connect=5.0, read=10.0, total=10.0)
_REFRESH_MARGIN = 30.0


class AuthFailed(Exception):
    """The endpoint's credentials could not be obtained (token endpoint refused or down)."""

    error_class = "auth"


class EndpointAuth:
    """The authentication of one endpoint, compiled once per endpoint version."""

    def __init__(self, settings: dict[str, Any] | None, tokens: dict[str, tuple[str, float]]):
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
            self._tokens.pop(self._cache_key(), None)

    async def headers(self, egress: EgressClient) -> dict[str, str]:
        """Headers to add to one request; fetches an OAuth2 token when none is cached."""
        if not self.dynamic:
            return self.static_headers
        key = self._cache_key()
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return {"Authorization": f"Bearer {cached[0]}"}
        token, expires_in = await self._fetch(egress)
        lifetime = max(1.0, expires_in - _REFRESH_MARGIN)
        self._tokens[key] = (token, time.monotonic() + lifetime)
        return {"Authorization": f"Bearer {token}"}

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
