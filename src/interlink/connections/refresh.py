"""Loading connections for use and keeping their tokens fresh, once per connection at a time.

A token is refreshed ahead of expiry (``refresh_margin``, at most half its lifetime, so that
short-lived tokens are not refreshed on every call) and when the provider answers 401. Within
a process, concurrent callers share one refresh (a future per connection). Across processes,
the refresh lease on the connection row decides: one conditional UPDATE hands it to exactly
one process while the tokens are still at the version the caller saw; the others poll the row
until the version changes (bounded by ``refresh_wait``). ``invalid_grant`` moves the connection
to ``expired`` with a ``connection.expired`` event, after which calls fail fast without
touching the provider until the user authorizes again.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import structlog

from interlink.connections import apps, leases, service, tokens
from interlink.connections.catalog import OAuth2Auth, OAuth2ClientCredentialsAuth
from interlink.connections.credentials import ConnectionView, view_of
from interlink.connections.state import ConnectionsState
from interlink.egress import EgressError
from interlink.store.types import utcnow

__all__ = ["ConnectionUnusable", "RefreshFailed", "ensure_fresh", "load_view"]

log = structlog.get_logger("interlink.connections.refresh")


class ConnectionUnusable(Exception):
    """The connection cannot be used until the user acts (expired, revoked, missing app)."""

    def __init__(self, connection_id: str, status: str, reason: str) -> None:
        super().__init__(f"connection {connection_id} is {status}: {reason}")
        self.connection_id = connection_id
        self.status = status
        self.reason = reason


class RefreshFailed(Exception):
    """A refresh failed for a reason that may pass (provider down, timeout)."""


async def load_view(
    state: ConnectionsState, connection_id: str, *, use_cache: bool = True
) -> ConnectionView | None:
    """The connection with its credentials, from the short-lived cache or the store."""
    if use_cache:
        cached = state.cached(connection_id)
        if cached is not None:
            return cached
    runtime = state.runtime
    async with runtime.db.transaction() as conn:
        row = await service.get_connection(conn, connection_id)
    if row is None:
        state.forget(connection_id)
        return None
    view = view_of(row, state.catalog, runtime.vault)
    state.remember(view)
    return view


def _due(state: ConnectionsState, view: ConnectionView) -> bool:
    if view.expires_at is None:
        return isinstance(view.mode, OAuth2ClientCredentialsAuth) and not view.credentials.get(
            "access_token"
        )
    margin = state.refresh_margin
    if isinstance(view.mode, OAuth2ClientCredentialsAuth):
        margin = min(margin, 60.0)
    if view.token_lifetime:
        margin = min(margin, view.token_lifetime / 2)
    return (view.expires_at - utcnow()).total_seconds() < margin


async def ensure_fresh(
    state: ConnectionsState, view: ConnectionView, *, rejected_version: int | None = None
) -> ConnectionView:
    """Return ``view`` or a refreshed one; refresh if due or if the provider rejected the token.

    Raises:
        ConnectionUnusable: the connection is expired or revoked, or refresh is impossible.
        RefreshFailed: a refresh was needed and failed for a passing reason.
    """
    if view.status in ("expired", "revoked"):
        raise ConnectionUnusable(view.id, view.status, view.status_reason or "authorize again")
    if rejected_version is None and not _due(state, view):
        return view
    if not view.refreshable:
        return view
    flights: dict[str, asyncio.Future[ConnectionView]] = state.extras.setdefault("flights", {})
    flight = flights.get(view.id)
    if flight is None:
        flight = asyncio.ensure_future(_refresh(state, view))
        flights[view.id] = flight
        flight.add_done_callback(lambda _: flights.pop(view.id, None))
    return await asyncio.shield(flight)


async def _refresh(state: ConnectionsState, view: ConnectionView) -> ConnectionView:
    runtime = state.runtime
    deadline = time.monotonic() + state.refresh_wait
    while True:
        async with runtime.db.transaction() as conn:
            took = await leases.take_refresh_lease(
                conn, view.id, state.owner, view.version, state.lease_seconds
            )
            row = None if took else await service.get_connection(conn, view.id)
        if took:
            return await _refresh_holding_lease(state, view)
        if row is None:
            state.forget(view.id)
            raise ConnectionUnusable(view.id, "deleted", "the connection was deleted")
        if int(row["credentials_version"]) != view.version:
            fresh = view_of(row, state.catalog, runtime.vault)
            state.remember(fresh)
            if fresh.status in ("expired", "revoked"):
                raise ConnectionUnusable(fresh.id, fresh.status, fresh.status_reason or "")
            return fresh
        if row["status"] in ("expired", "revoked"):
            state.forget(view.id)
            raise ConnectionUnusable(view.id, row["status"], row["status_reason"] or "")
        if time.monotonic() > deadline:
            raise RefreshFailed("timed out waiting for another process to refresh the token")
        await asyncio.sleep(0.05)


async def _client(state: ConnectionsState, view: ConnectionView) -> tuple[str, str]:
    if isinstance(view.mode, OAuth2ClientCredentialsAuth):
        return str(view.credentials.get("client_id", "")), str(
            view.credentials.get("client_secret", "")
        )
    async with state.runtime.db.transaction() as conn:
        app = await apps.get_app(conn, view.tenant_id, view.provider_name)
    if app is None:
        raise ConnectionUnusable(view.id, "error", "the tenant has no OAuth app for the provider")
    return app["client_id"], apps.app_secret(state.runtime.vault, app)


async def _refresh_holding_lease(state: ConnectionsState, view: ConnectionView) -> ConnectionView:
    runtime = state.runtime
    provider = view.provider_name
    try:
        client_id, client_secret = await _client(state, view)
        if isinstance(view.mode, OAuth2Auth):
            got = await tokens.refresh(
                state.egress,
                view.mode,
                view.config,
                refresh_token=str(view.credentials["refresh_token"]),
                client_id=client_id,
                client_secret=client_secret,
            )
        else:
            assert isinstance(view.mode, OAuth2ClientCredentialsAuth)
            got = await tokens.client_credentials(
                state.egress,
                view.mode,
                view.config,
                client_id=client_id,
                client_secret=client_secret,
                scopes=list(view.mode.scopes),
            )
    except tokens.TokenError as error:
        state.metrics.refreshes.labels(provider, error.error).inc()
        if error.permanent:
            await mark_expired(state, view, f"refresh refused: {error}")
            raise ConnectionUnusable(view.id, "expired", str(error)) from error
        await _release(state, view, f"refresh failed: {error}")
        raise RefreshFailed(str(error)) from error
    except ConnectionUnusable as error:
        await _release(state, view, error.reason)
        raise
    except (EgressError, Exception) as error:
        state.metrics.refreshes.labels(provider, "error").inc()
        await _release(state, view, f"refresh failed: {error}")
        raise RefreshFailed(f"token endpoint unreachable: {error}") from error
    credentials: dict[str, Any] = {**view.credentials, "access_token": got.access_token}
    if got.refresh_token:
        credentials["refresh_token"] = got.refresh_token
    config = {**view.config, **got.config} if got.config else None
    async with runtime.db.transaction() as conn:
        await service.store_tokens(
            conn, runtime.vault, view.id, credentials, expires_in=got.expires_in, config=config
        )
        row = await service.get_connection(conn, view.id)
    state.metrics.refreshes.labels(provider, "ok").inc()
    log.info("token refreshed", connection_id=view.id, provider=provider)
    assert row is not None
    fresh = view_of(row, state.catalog, runtime.vault)
    state.remember(fresh)
    return fresh


async def _release(state: ConnectionsState, view: ConnectionView, reason: str) -> None:
    async with state.runtime.db.transaction() as conn:
        row = await service.get_connection(conn, view.id)
        failures = int(row["refresh_failures"]) + 1 if row else 1
        await leases.release_refresh_lease(
            conn, view.id, state.owner, failures=failures, reason=reason
        )
    state.forget(view.id)


async def mark_expired(state: ConnectionsState, view: ConnectionView, reason: str) -> None:
    """Move the connection to ``expired`` and emit ``connection.expired`` and ``auth.failed``."""
    runtime = state.runtime
    data = {"connection_id": view.id, "provider": view.provider_name, "reason": reason}
    async with runtime.db.transaction() as conn:
        await service.set_status(conn, view.id, "expired", reason)
        for name in ("connection.expired", "auth.failed"):
            await runtime.outbox.emit(
                conn, name, data, tenant_id=view.tenant_id, component="connections", subject=view.id
            )
    state.forget(view.id)


def refresh_horizon(state: ConnectionsState) -> timedelta:
    """How far ahead the scheduled refresh job looks for expiring tokens."""
    return timedelta(seconds=state.refresh_margin)
