"""Talking to a provider's token endpoint: code exchange, refresh, client credentials, revoke.

Answers are read with the catalog's ``token_response`` mapping; an OAuth error answer
(``{"error": "invalid_grant"}``, also GitHub's errors sent with status 200) becomes a
``TokenError`` carrying the OAuth error code, and transport failures stay ``EgressError``s.
"""

# ruff: noqa: S105  (grant and auth-method names are not secrets)
from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import orjson

from interlink.connections.catalog import (
    OAuth2Auth,
    OAuth2ClientCredentialsAuth,
    TokenResponseMapping,
    render_url_template,
)
from interlink.egress import EgressClient, Timeouts

__all__ = ["TokenError", "TokenSet", "client_credentials", "exchange_code", "refresh", "revoke"]

TOKEN_TIMEOUTS = Timeouts(connect=5.0, read=20.0, total=30.0)


class TokenError(Exception):
    """The token endpoint refused the request (``error`` is the OAuth error code)."""

    def __init__(self, error: str, description: str, status: int) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status

    @property
    def permanent(self) -> bool:
        """Whether retrying cannot help until the user authorizes again."""
        return self.error in {"invalid_grant", "unauthorized_client", "invalid_client"}


@dataclass(frozen=True, slots=True)
class TokenSet:
    """Tokens and config read from one token response."""

    access_token: str
    refresh_token: str | None
    expires_in: int | None
    scope: str | None
    config: dict[str, Any] = field(default_factory=dict)


def _dig(data: Mapping[str, Any], path: str | None) -> Any:
    if path is None:
        return None
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


def parse_token_response(
    status: int, body: bytes, mapping: TokenResponseMapping, default_expires_in: int | None
) -> TokenSet:
    """Read a token endpoint's answer (JSON, or form-encoded as GitHub sends without Accept)."""
    try:
        data = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        data = dict(parse_qsl(body.decode("utf-8", "replace")))
    if not isinstance(data, dict):
        raise TokenError("invalid_response", "the token endpoint did not answer an object", status)
    token = _dig(data, mapping.access_token)
    if status >= 400 or data.get("error") or not isinstance(token, str) or not token:
        error = str(data.get("error") or ("server_error" if status >= 500 else "invalid_response"))
        detail = str(data.get("error_description") or data.get("message") or f"status {status}")
        raise TokenError(error, detail[:300], status)
    refresh_token = _dig(data, mapping.refresh_token)
    expires = _dig(data, mapping.expires_in)
    try:
        expires_in = int(expires) if expires is not None else default_expires_in
    except (TypeError, ValueError):
        expires_in = default_expires_in
    scope = _dig(data, mapping.scope)
    config = {
        key: value
        for key, path in mapping.config_fields.items()
        if (value := _dig(data, path)) is not None
    }
    return TokenSet(
        access_token=token,
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        expires_in=expires_in,
        scope=scope if isinstance(scope, str) else None,
        config=config,
    )


async def _post_token(
    egress: EgressClient,
    url: str,
    form: dict[str, str],
    *,
    client_id: str,
    client_secret: str,
    method: str,
    extra_headers: Mapping[str, str],
) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    headers.update(extra_headers)
    if method == "client_secret_basic":
        pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        form = {**form, "client_id": client_id, "client_secret": client_secret}
    response = await egress.request(
        "POST", url, headers=headers, body=urlencode(form).encode(), timeouts=TOKEN_TIMEOUTS
    )
    return response.status, response.body


def _url(template: str, config: Mapping[str, Any], what: str) -> str:
    return render_url_template(template, config, what=what)


async def exchange_code(
    egress: EgressClient,
    mode: OAuth2Auth,
    config: Mapping[str, Any],
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    client_id: str,
    client_secret: str,
) -> TokenSet:
    """Exchange an authorization code (with its PKCE verifier) for tokens."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    form.update(mode.token_params)
    if code_verifier:
        form["code_verifier"] = code_verifier
    status, body = await _post_token(
        egress,
        _url(mode.token_url, config, "token_url"),
        form,
        client_id=client_id,
        client_secret=client_secret,
        method=mode.token_auth_method,
        extra_headers=mode.token_headers,
    )
    return parse_token_response(status, body, mode.token_response, mode.default_expires_in)


async def refresh(
    egress: EgressClient,
    mode: OAuth2Auth,
    config: Mapping[str, Any],
    *,
    refresh_token: str,
    client_id: str,
    client_secret: str,
) -> TokenSet:
    """Use a refresh token; a response without a new refresh token keeps the old one."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    status, body = await _post_token(
        egress,
        _url(mode.token_url, config, "token_url"),
        form,
        client_id=client_id,
        client_secret=client_secret,
        method=mode.token_auth_method,
        extra_headers=mode.token_headers,
    )
    tokens = parse_token_response(status, body, mode.token_response, mode.default_expires_in)
    if tokens.refresh_token is None:
        tokens = TokenSet(
            tokens.access_token, refresh_token, tokens.expires_in, tokens.scope, tokens.config
        )
    return tokens


async def client_credentials(
    egress: EgressClient,
    mode: OAuth2ClientCredentialsAuth,
    config: Mapping[str, Any],
    *,
    client_id: str,
    client_secret: str,
    scopes: list[str],
) -> TokenSet:
    """Obtain an access token with the client credentials grant."""
    form = {"grant_type": "client_credentials", **mode.token_params}
    if scopes:
        form["scope"] = mode.scope_separator.join(scopes)
    if mode.audience:
        form["audience"] = mode.audience
    status, body = await _post_token(
        egress,
        _url(mode.token_url, config, "token_url"),
        form,
        client_id=client_id,
        client_secret=client_secret,
        method=mode.token_auth_method,
        extra_headers={},
    )
    return parse_token_response(status, body, TokenResponseMapping(), None)


async def revoke(
    egress: EgressClient,
    mode: OAuth2Auth,
    config: Mapping[str, Any],
    *,
    token: str,
    client_id: str,
    client_secret: str,
) -> bool:
    """Revoke ``token`` at the provider (RFC 7009 or the provider's variant); True if it took."""
    if mode.revoke_url is None:
        return False
    template = mode.revoke_url.replace("{token}", quote(token, safe=""))
    url = _url(template, config, "revoke_url")
    headers: dict[str, str] = {"Accept": "application/json"}
    body: bytes | None = None
    if "{token}" not in mode.revoke_url:
        fields = {"token": token}
        if mode.token_auth_method == "client_secret_basic":
            pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            fields.update(client_id=client_id, client_secret=client_secret)
        if mode.revoke_format == "json":
            headers["Content-Type"] = "application/json"
            body = orjson.dumps(fields)
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = urlencode(fields).encode()
    response = await egress.request(
        mode.revoke_method, url, headers=headers, body=body, timeouts=TOKEN_TIMEOUTS
    )
    return response.status < 300
