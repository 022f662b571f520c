"""Creating connections from static credentials (checked by the health probe first),
probing them, and deleting them (revoking the token at the provider first)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from yarl import URL

from interlink.audit import record_action
from interlink.auth.principal import Principal
from interlink.connections import apps, service, tokens
from interlink.connections.catalog import (
    ApiKeyAuth,
    BasicAuth,
    OAuth2Auth,
    OAuth2ClientCredentialsAuth,
    TemplateError,
    UnknownProviderError,
)
from interlink.connections.credentials import ConnectionView, auth_mode_of, request_auth, view_of
from interlink.connections.oauth import FlowError
from interlink.connections.state import ConnectionsState
from interlink.egress import (
    BlockedDestination,
    CircuitOpen,
    EgressError,
    InvalidURL,
    RequestPolicy,
)
from interlink.egress.ssrf import hostname_problem, parse_ip_literal
from interlink.ids import new_id

__all__ = ["ProbeResult", "create_connection", "delete_connection", "probe"]

log = structlog.get_logger("interlink.connections")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What the provider's health probe said about a connection."""

    healthy: bool
    status: int | None
    detail: str


async def probe(state: ConnectionsState, view: ConnectionView) -> ProbeResult | None:
    """Call the provider's health probe with the connection's credentials (None: no probe)."""
    spec = view.provider.health_probe
    if spec is None:
        return None
    headers, query = request_auth(view)
    url = view.base_url + spec.path
    if query:
        from urllib.parse import urlencode

        url += "?" + urlencode(query)
    try:
        response = await state.egress.request(
            spec.method, url, headers=headers, policy=RequestPolicy(), max_body=64 * 1024,
            ssl_context=view.client_certificate,
        )  # fmt: skip
    except EgressError as error:
        return ProbeResult(False, None, f"{error.error_class}: {error}")
    healthy = response.status == spec.expect_status
    detail = "ok" if healthy else f"status {response.status}: {response.text()[:200]}"
    return ProbeResult(healthy, response.status, detail)


def _required_fields(mode: Any) -> tuple[str, ...]:
    if isinstance(mode, ApiKeyAuth):
        return (mode.field,)
    if isinstance(mode, BasicAuth):
        return tuple(f for f in (mode.username_field, mode.password_field) if f)
    return ("client_id", "client_secret")


def _unusable_credential(mode: Any, credentials: Mapping[str, str]) -> str | None:
    """Why a credential could never be sent, or None: keys, names and secrets travel in
    headers, query strings and forms, where a control character (a line break, say) cannot
    go; a Basic user-id cannot hold ':' (RFC 7617 section 2). Refused here, not at each call."""
    for field in _required_fields(mode):
        value = str(credentials.get(field, ""))
        if any((ord(ch) < 0x20 and ch != "\t") or ch == "\x7f" for ch in value):
            return f"credentials.{field}: must not hold control characters (line breaks, ...)"
    if isinstance(mode, BasicAuth) and ":" in str(credentials.get(mode.username_field, "")):
        return f"credentials.{mode.username_field}: a Basic auth user-id cannot hold ':'"
    return None


def _base_url_host(base_url: str) -> str:
    """The host the egress layer will connect to for ``base_url``, as yarl gives it (an
    internationalised name in punycode, an IPv6 literal without brackets)."""
    try:
        return URL(base_url).raw_host or ""
    except ValueError as error:
        raise FlowError(422, f"config: the base URL {base_url!r} is invalid: {error}",
                        "invalid-config") from error  # fmt: skip


async def create_connection(
    state: ConnectionsState,
    principal: Principal,
    *,
    tenant_id: str,
    provider_name: str,
    auth_type: str,
    credentials: Mapping[str, str],
    config: Mapping[str, Any],
    name: str | None,
    metadata: Mapping[str, Any],
    verify: bool = True,
) -> dict[str, Any]:
    """Check the credentials against the provider, then store an active connection.

    Raises:
        FlowError: 422 for unknown providers, bad config, refused credentials; 502/503 when the
            provider cannot be reached (nothing is stored then).
    """
    try:
        provider = state.catalog[provider_name]
        mode = auth_mode_of(provider, auth_type)
    except UnknownProviderError as error:
        raise FlowError(422, f"provider: {error}", "unknown-provider") from error
    except KeyError as error:
        raise FlowError(422, f"auth_type: {error.args[0]}", "unsupported-auth-type") from error
    if isinstance(mode, OAuth2Auth):
        raise FlowError(422, "OAuth2 connections are made with .../connections/oauth/start",
                        "use-oauth-flow")  # fmt: skip
    missing = [f for f in _required_fields(mode) if not credentials.get(f)]
    if missing:
        raise FlowError(422, f"credentials: missing {', '.join(missing)}", "validation-error")
    if unusable := _unusable_credential(mode, credentials):
        raise FlowError(422, unusable, "validation-error")
    secrets: dict[str, Any] = dict(credentials)
    connection_id = new_id("con")
    row = {
        "id": connection_id, "tenant_id": tenant_id, "provider": provider_name,
        "auth_type": auth_type, "status": "active", "status_reason": None, "config": dict(config),
        "credentials": "", "credentials_version": 1, "expires_at": None, "token_lifetime": None,
    }  # fmt: skip
    expires_in = None
    try:
        if isinstance(mode, OAuth2ClientCredentialsAuth):
            got = await tokens.client_credentials(
                state.egress, mode, config, client_id=secrets["client_id"],
                client_secret=secrets["client_secret"], scopes=list(mode.scopes),
            )  # fmt: skip
            secrets["access_token"] = got.access_token
            expires_in = got.expires_in
        view = _draft(state, row, secrets)
        if provider.base_url_placeholders:
            # The caller's config makes the base URL: a literal address the SSRF guard refuses
            # is refused now, probe or not; a name is judged on what it resolves to at each
            # call. (The catalog's own URLs are the operator's, overrides for tests included.)
            host = _base_url_host(view.base_url)
            state.egress.address_policy.check_literal_host(host)
            if parse_ip_literal(host) is None and (problem := hostname_problem(host)):
                raise FlowError(422, f"config: the base URL's host {host!r} {problem}",
                                "invalid-config")  # fmt: skip
        result = await probe(state, view) if verify else None
    except TemplateError as error:
        raise FlowError(422, f"config: {error}", "invalid-config") from error
    except (BlockedDestination, InvalidURL) as error:
        raise FlowError(422, f"the provider's address is refused: {error}",
                        "blocked-destination") from error  # fmt: skip
    except tokens.TokenError as error:
        raise FlowError(422, f"the provider refused the client credentials: {error}",
                        "credentials-refused") from error  # fmt: skip
    except CircuitOpen as error:
        raise FlowError(503, f"the provider is failing, try later: {error}",
                        "provider-unavailable") from error  # fmt: skip
    except EgressError as error:
        raise FlowError(502, f"the provider could not be reached: {error}",
                        "provider-unreachable") from error  # fmt: skip
    if result is not None and not result.healthy:
        if result.status in (401, 403):
            raise FlowError(422, f"the provider refused these credentials ({result.detail})",
                            "credentials-refused")  # fmt: skip
        slug = "provider-unreachable" if result.status is None else "provider-error"
        raise FlowError(502, f"the provider's health probe failed: {result.detail}", slug)
    runtime = state.runtime
    async with runtime.db.transaction() as conn:
        stored = await service.insert_connection(
            conn, runtime.vault, connection_id=connection_id, tenant_id=tenant_id,
            provider=provider_name, auth_type=auth_type, credentials=secrets, config=config,
            expires_in=expires_in, name=name, metadata=metadata,
        )  # fmt: skip
        await runtime.outbox.emit(
            conn, "connection.created",
            {"connection_id": connection_id, "provider": provider_name, "auth_type": auth_type},
            tenant_id=tenant_id, component="connections", subject=connection_id,
        )  # fmt: skip
        await record_action(conn, principal, "connection.created", tenant_id=tenant_id,
                            target=connection_id, details={"provider": provider_name})  # fmt: skip
    return stored


def _draft(state: ConnectionsState, row: dict[str, Any], secrets: dict[str, Any]) -> ConnectionView:
    from interlink.connections.credentials import encrypt_credentials

    sealed = {**row, "credentials": encrypt_credentials(state.runtime.vault, row["id"], secrets)}
    return view_of(sealed, state.catalog, state.runtime.vault)


async def _revoke_at_provider(
    state: ConnectionsState, row: dict[str, Any], app: dict[str, Any] | None
) -> bool:
    """Revoke the connection's token where the provider supports it; True if it took.

    Best effort: a provider that cannot be reached or refuses leaves the caller to go on.
    """
    runtime = state.runtime
    try:
        view = view_of(row, state.catalog, runtime.vault)
        token = view.credentials.get("refresh_token") or view.credentials.get("access_token")
        if isinstance(view.mode, OAuth2Auth) and token and app is not None:
            return await tokens.revoke(
                state.egress, view.mode, view.config, token=str(token),
                client_id=app["client_id"], client_secret=apps.app_secret(runtime.vault, app),
            )  # fmt: skip
    except Exception as error:
        log.warning("token revocation failed", connection_id=row["id"], error=str(error))
    return False


async def _load_with_app(
    state: ConnectionsState, tenant_id: str, connection_id: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    async with state.runtime.db.transaction() as conn:
        row = await service.get_connection(conn, connection_id, tenant_id)
        app = await apps.get_app(conn, tenant_id, row["provider"]) if row else None
    return row, app


async def revoke_connection(
    state: ConnectionsState, principal: Principal, tenant_id: str, connection_id: str
) -> dict[str, Any] | None:
    """Revoke the token at the provider (where supported), forget every credential and keep
    the connection as ``revoked`` (its history stays; authorizing it again revives it).

    Returns the updated row, or None if there is no such connection. Revoking a revoked
    connection changes nothing and emits nothing.
    """
    runtime = state.runtime
    row, app = await _load_with_app(state, tenant_id, connection_id)
    if row is None:
        return None
    if row["status"] == "revoked":
        return row
    revoked = await _revoke_at_provider(state, row, app)
    reason = "revoked by request" + ("" if revoked else "; the provider was not told")
    async with runtime.db.transaction() as conn:
        if not await service.forget_credentials(
            conn, runtime.vault, tenant_id, connection_id, reason
        ):
            return None  # deleted meanwhile
        await runtime.outbox.emit(
            conn, "connection.revoked",
            {"connection_id": connection_id, "provider": row["provider"],
             "revoked_at_provider": revoked},
            tenant_id=tenant_id, component="connections", subject=connection_id,
        )  # fmt: skip
        details = {"revoked_at_provider": revoked}
        await record_action(conn, principal, "connection.revoked", tenant_id=tenant_id,
                            target=connection_id, details=details)  # fmt: skip
        updated = await service.get_connection(conn, connection_id, tenant_id)
    state.forget(connection_id)
    return updated


async def delete_connection(
    state: ConnectionsState, principal: Principal, tenant_id: str, connection_id: str
) -> bool:
    """Revoke the token where the provider supports it, then delete; False if not found."""
    runtime = state.runtime
    row, app = await _load_with_app(state, tenant_id, connection_id)
    if row is None:
        return False
    # A connection revoked already has no token left to revoke.
    revoked = row["status"] != "revoked" and await _revoke_at_provider(state, row, app)
    async with runtime.db.transaction() as conn:
        deleted = await service.delete_connection(conn, tenant_id, connection_id)
        if deleted:
            await runtime.outbox.emit(
                conn, "connection.revoked",
                {"connection_id": connection_id, "provider": row["provider"],
                 "revoked_at_provider": revoked},
                tenant_id=tenant_id, component="connections", subject=connection_id,
            )  # fmt: skip
            await record_action(conn, principal, "connection.deleted", tenant_id=tenant_id,
                                target=connection_id)  # fmt: skip
    state.forget(connection_id)
    return deleted
