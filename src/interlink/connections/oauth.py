"""OAuth2 authorization code + PKCE: starting a flow and finishing it on the callback.

``start_flow`` stores a single-use state row (with the PKCE verifier, encrypted) and returns
the provider's authorize URL. ``finish_flow`` verifies the signed state, consumes its row
atomically, exchanges the code and stores the connection; every failure becomes a
``CallbackResult`` page (and the connection, where one is known, ends in ``error``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.connections import apps, service, tokens
from interlink.connections.catalog import (
    CatalogError,
    OAuth2Auth,
    TemplateError,
    UnknownProviderError,
    render_url_template,
)
from interlink.connections.credentials import auth_mode_of
from interlink.connections.signing import StateError, pkce_challenge
from interlink.connections.state import ConnectionsState
from interlink.connections.tables import oauth_states
from interlink.egress import EgressError
from interlink.ids import new_id
from interlink.store.types import utcnow

__all__ = [
    "CallbackResult",
    "FlowError",
    "callback_url",
    "finish_flow",
    "purge_states",
    "start_flow",
]

STATE_TTL = 600.0


class FlowError(Exception):
    """The flow cannot start; ``slug`` and ``status`` shape the problem answer."""

    def __init__(self, status: int, detail: str, slug: str) -> None:
        super().__init__(detail)
        self.status, self.detail, self.slug = status, detail, slug


@dataclass(frozen=True, slots=True)
class CallbackResult:
    """How the callback answers the browser: a redirect or an HTML page."""

    ok: bool
    title: str
    message: str
    redirect: str | None = None
    connection_id: str | None = None


def callback_url(state: ConnectionsState) -> str:
    """The redirect URI to register at every provider."""
    return f"{state.runtime.settings.effective_public_url}/oauth/callback"


def check_redirect_after(value: str) -> str:
    """Accept only absolute http(s) URLs without credentials (no open redirect to javascript:)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise FlowError(422, "redirect_after must be an absolute http(s) URL", "validation-error")
    if any(ord(ch) < 33 for ch in value):
        raise FlowError(422, "redirect_after must not contain spaces or control characters",
                        "validation-error")  # fmt: skip
    return value


async def start_flow(
    state: ConnectionsState,
    *,
    tenant_id: str,
    provider_name: str,
    scopes: list[str] | None,
    redirect_after: str | None,
    config: Mapping[str, Any],
    connection_id: str | None = None,
) -> str:
    """Store a state and return the provider's authorize URL.

    Raises:
        FlowError: unknown provider, no OAuth2 mode, no OAuth app, bad config or redirect.
    """
    try:
        provider = state.catalog[provider_name]
        mode = auth_mode_of(provider, "oauth2")
    except UnknownProviderError as error:
        raise FlowError(422, f"provider: {error}", "unknown-provider") from error
    except KeyError as error:
        raise FlowError(
            422, f"provider '{provider_name}' does not support OAuth2", "oauth-unsupported"
        ) from error
    assert isinstance(mode, OAuth2Auth)
    if redirect_after is not None:
        check_redirect_after(redirect_after)
    runtime = state.runtime
    async with runtime.db.transaction() as conn:
        app = await apps.get_app(conn, tenant_id, provider_name)
        if connection_id is not None:
            existing = await service.get_connection(conn, connection_id, tenant_id)
            if existing is None or existing["provider"] != provider_name:
                raise FlowError(404, f"connection {connection_id} does not exist", "not-found")
            config = {**existing["config"], **config}
    if app is None:
        raise FlowError(
            422,
            f"no OAuth app for '{provider_name}': PUT /v1/tenants/{tenant_id}/oauth-apps/"
            f"{provider_name} with its client_id and client_secret first",
            "oauth-app-missing",
        )
    chosen = list(scopes if scopes is not None else (app["scopes"] or mode.default_scopes))
    try:
        authorize = render_url_template(mode.authorize_url, config, what="authorize_url")
        render_url_template(mode.token_url, config, what="token_url")
        state.catalog.render_base_url(provider, config)
    except (TemplateError, CatalogError) as error:
        raise FlowError(422, f"config: {error}", "invalid-config") from error
    signed, nonce, expiry = state.extras["signer"].issue(STATE_TTL)
    verifier = secrets.token_urlsafe(48) if mode.pkce else None
    redirect_uri = callback_url(state)
    async with runtime.db.transaction() as conn:
        await conn.execute(
            oauth_states.insert().values(
                id=nonce,
                tenant_id=tenant_id,
                provider=provider_name,
                connection_id=connection_id or new_id("con"),
                code_verifier=None
                if verifier is None
                else runtime.vault.encrypt(verifier, context=f"oauth_states:{nonce}"),
                redirect_uri=redirect_uri,
                redirect_after=redirect_after,
                scopes=chosen,
                config=dict(config),
                expires_at=datetime.fromtimestamp(expiry, UTC),
                created_at=utcnow(),
            )
        )
    query = {
        **mode.authorize_params,
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": redirect_uri,
        "state": signed,
    }
    if chosen:
        query["scope"] = mode.scope_separator.join(chosen)
    if verifier is not None:
        query.update(code_challenge=pkce_challenge(verifier), code_challenge_method="S256")
    separator = "&" if urlsplit(authorize).query else "?"
    return f"{authorize}{separator}{urlencode(query)}"


async def purge_states(conn: AsyncConnection, older_than: timedelta) -> int:
    """Delete flows that expired more than ``older_than`` ago (used or abandoned)."""
    result = await conn.execute(
        delete(oauth_states).where(oauth_states.c.expires_at < utcnow() - older_than)
    )
    return int(result.rowcount or 0)


async def _consume(state: ConnectionsState, nonce: str) -> dict[str, Any] | None:
    async with state.runtime.db.transaction() as conn:
        now = utcnow()
        result = await conn.execute(
            update(oauth_states)
            .where(
                oauth_states.c.id == nonce,
                oauth_states.c.used_at.is_(None),
                oauth_states.c.expires_at > now,
            )
            .values(used_at=now)
            .returning(*oauth_states.c)
        )
        row = result.mappings().first()
    return dict(row) if row else None


async def finish_flow(state: ConnectionsState, query: Mapping[str, str]) -> CallbackResult:
    """Handle the provider's redirect back; never raises for bad input."""
    from interlink.connections.completion import complete, fail

    try:
        nonce = state.extras["signer"].verify(query.get("state", ""))
    except StateError as error:
        return CallbackResult(False, "Connection failed", str(error))
    flow = await _consume(state, nonce)
    if flow is None:
        return CallbackResult(
            False,
            "Connection failed",
            "this sign-in link was already used or has expired; start the connection again",
        )
    if query.get("error"):
        description = query.get("error_description") or "the provider refused the authorization"
        return await fail(state, flow, f"{query['error']}: {description}"[:400])
    code = query.get("code")
    if not code:
        return await fail(state, flow, "the provider sent no authorization code")
    provider = state.catalog.get(flow["provider"], None)
    if provider is None:
        return await fail(state, flow, f"provider '{flow['provider']}' is no longer in the catalog")
    mode = auth_mode_of(provider, "oauth2")
    assert isinstance(mode, OAuth2Auth)
    config = dict(flow["config"])
    for key, param in mode.callback_config.items():
        if query.get(param):
            config[key] = query[param]
    async with state.runtime.db.transaction() as conn:
        app = await apps.get_app(conn, flow["tenant_id"], flow["provider"])
    if app is None:
        return await fail(state, flow, "the OAuth app was removed during the sign-in")
    verifier = flow["code_verifier"]
    try:
        got = await tokens.exchange_code(
            state.egress,
            mode,
            config,
            code=code,
            redirect_uri=flow["redirect_uri"],
            code_verifier=None
            if verifier is None
            else state.runtime.vault.decrypt(verifier, context=f"oauth_states:{nonce}"),
            client_id=app["client_id"],
            client_secret=apps.app_secret(state.runtime.vault, app),
        )
    except tokens.TokenError as error:
        return await fail(state, flow, f"the provider refused the code exchange: {error}")
    except (EgressError, TemplateError) as error:
        return await fail(state, flow, f"the provider's token endpoint failed: {error}")
    return await complete(state, flow, {**config, **got.config}, got)
