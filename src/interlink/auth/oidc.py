"""OIDC bearer JWTs, validated against the issuer's JWKS (Auth0, Okta, Keycloak, ...).

A token is accepted when its signature verifies with a key from the JWKS, ``iss`` and ``aud``
match the settings, it is within ``exp``/``nbf`` (with leeway), and it carries either the admin
value in its scope or roles claim, or a tenant id in the tenant claim.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError, MissingKeyError
from joserfc.jwk import KeySet

from interlink.auth.principal import Principal
from interlink.settings import Settings

__all__ = ["OIDCError", "OIDCValidator"]

_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


class OIDCError(Exception):
    """The JWT was refused; the message says why (never echoing the token)."""


JWKSFetcher = Callable[[str], Awaitable[dict[str, Any]]]


async def _fetch_json(url: str) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        response.raise_for_status()
        data = await response.json(content_type=None)
    if not isinstance(data, dict):
        raise OIDCError(f"{url} did not answer a JSON object")
    return data


class OIDCValidator:
    def __init__(
        self,
        settings: Settings,
        *,
        fetch: JWKSFetcher = _fetch_json,
        cache_seconds: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not settings.oidc_issuer or not settings.oidc_audience:
            raise ValueError("OIDC needs INTERLINK_OIDC_ISSUER and INTERLINK_OIDC_AUDIENCE")
        self.issuer = settings.oidc_issuer
        self.audience = settings.oidc_audience
        self.jwks_url = settings.oidc_jwks_url
        self.settings = settings
        self._fetch = fetch
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _jwks_url(self) -> str:
        if self.jwks_url:
            return self.jwks_url
        discovery = await self._fetch(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
        uri = discovery.get("jwks_uri")
        if not isinstance(uri, str):
            raise OIDCError("the issuer's discovery document has no jwks_uri")
        self.jwks_url = uri
        return uri

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        async with self._lock:
            fresh = self._clock() - self._fetched_at < self._cache_seconds
            # A forced refresh (unknown kid) is allowed at most every 30 s.
            recent = self._clock() - self._fetched_at < 30
            if self._keys is not None and ((fresh and not refresh) or (refresh and recent)):
                return self._keys
            try:
                data = await self._fetch(await self._jwks_url())
                self._keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
            except (aiohttp.ClientError, TimeoutError, ValueError, JoseError) as exc:
                if self._keys is not None:
                    return self._keys
                raise OIDCError(f"could not load the issuer's JWKS: {type(exc).__name__}") from exc
            self._fetched_at = self._clock()
            return self._keys

    async def validate(self, token: str) -> Principal:
        try:
            token_obj = await self._decode(token)
        except OIDCError:
            raise
        except (JoseError, ValueError) as exc:
            raise OIDCError(f"the JWT is not valid: {type(exc).__name__}") from exc
        claims = token_obj.claims
        self._check_claims(claims)
        return self._principal(claims)

    async def _decode(self, token: str) -> jwt.Token:
        try:
            return jwt.decode(token, await self._key_set(), algorithms=_ALGORITHMS)
        except (InvalidKeyIdError, MissingKeyError):
            # The issuer may have rotated its keys since we fetched them.
            return jwt.decode(token, await self._key_set(refresh=True), algorithms=_ALGORITHMS)

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now = self._clock()
        leeway = self.settings.oidc_leeway_seconds
        if claims.get("iss") != self.issuer:
            raise OIDCError("the JWT's issuer is not the configured one")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.audience not in audiences:
            raise OIDCError("the JWT is not meant for this audience")
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise OIDCError("the JWT has no expiry")
        if now > exp + leeway:
            raise OIDCError("the JWT has expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and now + leeway < nbf:
            raise OIDCError("the JWT is not valid yet")

    def _principal(self, claims: dict[str, Any]) -> Principal:
        subject = str(claims.get("sub", "unknown"))
        granted: set[str] = set()
        scope = claims.get(self.settings.oidc_scope_claim)
        if isinstance(scope, str):
            granted.update(scope.split())
        elif isinstance(scope, list):
            granted.update(str(item) for item in scope)
        roles = claims.get(self.settings.oidc_roles_claim)
        if isinstance(roles, list):
            granted.update(str(item) for item in roles)
        if self.settings.oidc_admin_value in granted:
            return Principal(scope="admin", actor=f"oidc:{subject}")
        tenant = claims.get(self.settings.oidc_tenant_claim)
        if isinstance(tenant, str) and tenant:
            return Principal(scope="tenant", actor=f"oidc:{subject}", tenant_id=tenant)
        raise OIDCError("the JWT grants neither the admin role nor a tenant")
