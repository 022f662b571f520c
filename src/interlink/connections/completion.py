"""The end of an OAuth flow: store the connection (or its failure) and say so to the browser."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlalchemy.ext.asyncio import AsyncConnection

from interlink.audit import record_action
from interlink.connections import service
from interlink.connections.oauth import CallbackResult
from interlink.connections.state import ConnectionsState
from interlink.connections.tokens import TokenSet

__all__ = ["complete", "fail"]


def _with_params(url: str, params: dict[str, str]) -> str:
    separator = "&" if urlsplit(url).query else "?"
    return f"{url}{separator}{urlencode(params)}"


async def _emit(
    state: ConnectionsState, conn: AsyncConnection, name: str, flow: dict[str, Any], **extra: Any
) -> None:
    data = {"connection_id": flow["connection_id"], "provider": flow["provider"], **extra}
    await state.runtime.outbox.emit(
        conn,
        name,
        data,
        tenant_id=flow["tenant_id"],
        component="connections",
        subject=flow["connection_id"],
    )


async def complete(
    state: ConnectionsState, flow: dict[str, Any], config: dict[str, Any], got: TokenSet
) -> CallbackResult:
    """Store the tokens on a new or re-authorized connection; emit ``connection.created``."""
    runtime = state.runtime
    credentials: dict[str, Any] = {"access_token": got.access_token}
    if got.refresh_token:
        credentials["refresh_token"] = got.refresh_token
    scopes = got.scope.replace(",", " ").split() if got.scope else list(flow["scopes"])
    connection_id = flow["connection_id"]
    async with runtime.db.transaction() as conn:
        existing = await service.get_connection(conn, connection_id, flow["tenant_id"])
        if existing is None:
            await service.insert_connection(
                conn,
                runtime.vault,
                connection_id=connection_id,
                tenant_id=flow["tenant_id"],
                provider=flow["provider"],
                auth_type="oauth2",
                credentials=credentials,
                config=config,
                scopes=scopes,
                expires_in=got.expires_in,
            )
            await _emit(state, conn, "connection.created", flow, auth_type="oauth2")
        else:
            await service.store_tokens(
                conn,
                runtime.vault,
                connection_id,
                credentials,
                expires_in=got.expires_in,
                config=config,
                scopes=scopes,
            )
        await record_action(
            conn,
            "oauth-callback",
            "connection.authorized",
            tenant_id=flow["tenant_id"],
            target=connection_id,
            details={"provider": flow["provider"]},
        )
    state.forget(connection_id)
    redirect = flow["redirect_after"]
    return CallbackResult(
        True,
        "Connected",
        f"Your {state.catalog.get(flow['provider']).display_name} account is connected.",
        redirect=_with_params(redirect, {"connection_id": connection_id}) if redirect else None,
        connection_id=connection_id,
    )


async def fail(state: ConnectionsState, flow: dict[str, Any], reason: str) -> CallbackResult:
    """Record the failure on the connection (created in ``error`` if new); emit ``auth.failed``."""
    runtime = state.runtime
    connection_id = flow["connection_id"]
    async with runtime.db.transaction() as conn:
        existing = await service.get_connection(conn, connection_id, flow["tenant_id"])
        if existing is None:
            await service.insert_connection(
                conn,
                runtime.vault,
                connection_id=connection_id,
                tenant_id=flow["tenant_id"],
                provider=flow["provider"],
                auth_type="oauth2",
                credentials={},
                config=flow["config"],
                scopes=list(flow["scopes"]),
                status="error",
                status_reason=reason,
            )
        else:
            await service.set_status(conn, connection_id, "error", reason)
        await _emit(state, conn, "auth.failed", flow, reason=reason)
    state.forget(connection_id)
    redirect = flow["redirect_after"]
    link = (
        _with_params(redirect, {"connection_id": connection_id, "error": "authorization_failed"})
        if redirect
        else None
    )
    return CallbackResult(
        False, "Connection failed", reason, redirect=link, connection_id=connection_id
    )
