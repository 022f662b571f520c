"""One delivery attempt: sign the exact bytes, add the endpoint's headers and auth, POST.

:class:`CompiledEndpoint` is what the worker keeps per endpoint version: the decrypted
secrets turned into a :class:`WebhookSigner` (HMAC states precomputed), the static headers,
the authentication, the timeouts and the schedule. It is rebuilt only when the endpoint
changes (``version``) or a rotated secret's grace period ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from interlink.egress import EgressError, Timeouts
from interlink.store.types import utcnow
from interlink.vault import Vault
from interlink.webhooks.outbound.auth import AuthFailed, EndpointAuth
from interlink.webhooks.outbound.endpoint_secrets import active_secrets, decrypt_auth
from interlink.webhooks.outbound.schedule import RetrySchedule
from interlink.webhooks.outbound.signing import WebhookSigner
from interlink.webhooks.outbound.state import RESPONSE_BODY_BYTES, OutboundState

__all__ = ["AttemptResult", "CompiledEndpoint", "compiled_endpoint", "send_attempt"]

_HEADER_VALUE_LIMIT = 1000


@dataclass(frozen=True)
class CompiledEndpoint:
    """An endpoint ready to deliver to."""

    id: str
    url: str
    headers: dict[str, str]
    signer: WebhookSigner
    auth: EndpointAuth
    timeouts: Timeouts
    schedule: RetrySchedule


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt gave: a response or an error, and how long it took."""

    started_at: datetime
    duration_ms: float
    status_code: int | None = None
    headers: dict[str, str] | None = None
    body: str | None = None
    error_class: str | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retry_after(self) -> str | None:
        return (self.headers or {}).get("retry-after")


def compiled_endpoint(state: OutboundState, vault: Vault, row: Any) -> CompiledEndpoint:
    """The compiled form of an endpoint row, from the cache when still current."""
    now = utcnow()
    expires = row.previous_secret_expires_at
    rotating = expires is not None and expires > now
    key = (row.id, row.version * 2 + int(rotating))
    found = state.compiled.get(key)
    if found is not None:
        assert isinstance(found, CompiledEndpoint)
        return found
    record = dict(row._mapping)
    timeout = min(row.timeout_seconds, state.config.max_timeout)
    compiled = CompiledEndpoint(
        id=row.id,
        url=row.url,
        headers={**(row.headers or {}), "Content-Type": "application/json"},
        signer=WebhookSigner(active_secrets(vault, record, now)),
        auth=EndpointAuth(decrypt_auth(vault, record), state.tokens),
        timeouts=Timeouts(connect=min(10.0, timeout), read=timeout, total=timeout),
        schedule=(
            RetrySchedule.parse(row.retry_schedule, clamp=True)
            if row.retry_schedule
            else state.config.schedule
        ),
    )
    if len(state.compiled) > 10_000:
        state.compiled.clear()
    state.compiled[key] = compiled
    return compiled


def _headers_of(response_headers: Any) -> dict[str, str]:
    shown: dict[str, str] = {}
    for name, value in response_headers.items():
        lowered = name.lower()
        joined = f"{shown[lowered]}, {value}" if lowered in shown else value
        shown[lowered] = joined[:_HEADER_VALUE_LIMIT]
    return shown


async def send_attempt(
    state: OutboundState, endpoint: CompiledEndpoint, message_id: str, body: bytes
) -> AttemptResult:
    """POST ``body`` to the endpoint, signed; never raises for transport or auth failures."""
    started_at = utcnow()
    started = time.perf_counter()
    try:
        headers = {**endpoint.headers, **(await endpoint.auth.headers(state.egress))}
        headers.update(endpoint.signer.sign(message_id, int(time.time()), body))
        response = await state.egress.send(
            "POST",
            endpoint.url,
            headers=headers,
            body=body,
            timeouts=endpoint.timeouts,
            ssl_context=endpoint.auth.certificate,
            max_body=RESPONSE_BODY_BYTES,
        )
    except (EgressError, AuthFailed) as error:
        return AttemptResult(
            started_at=started_at,
            duration_ms=(time.perf_counter() - started) * 1000,
            error_class=error.error_class,
            error=str(error)[:2000],
        )
    if response.status == 401:
        endpoint.auth.forget_token()
    return AttemptResult(
        started_at=started_at,
        duration_ms=(time.perf_counter() - started) * 1000,
        status_code=response.status,
        headers=_headers_of(response.headers),
        body=response.body.decode("utf-8", errors="replace"),
        error_class=None if 200 <= response.status < 300 else "http_status",
    )
