"""Checks on endpoint settings before they are stored: URL (SSRF guard, https), filter,
schedule, custom headers and authentication. Each refusal names the field (a 422)."""

from __future__ import annotations

from typing import Any

from interlink.egress import ClientCertificate, EgressClient, EgressError, build_ssl_context
from interlink.webhooks.outbound.filters import FilterError, compile_filter
from interlink.webhooks.outbound.schedule import RetrySchedule

__all__ = ["EndpointConfigError", "check_auth", "check_endpoint_fields", "check_url"]

_RESERVED_HEADERS = frozenset(
    {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-type",
        "content-length",
        "host",
        "transfer-encoding",
        "connection",
        "user-agent",
    }
)


class EndpointConfigError(ValueError):
    """An endpoint setting is refused; the message says which and why (a 422)."""


async def check_url(egress: EgressClient, url: str) -> None:
    """The SSRF guard and the https rule, at creation: raises EndpointConfigError."""
    try:
        await egress.validate_url(url)
    except EgressError as error:
        raise EndpointConfigError(f"url: {error}") from error


async def check_auth(egress: EgressClient, auth: dict[str, Any] | None) -> None:
    """Refuse authentication settings that cannot work: a reserved header name, a token URL
    the SSRF guard refuses, a client certificate or key that does not load."""
    if auth is None:
        return
    if auth["type"] == "header" and auth["name"].lower() in _RESERVED_HEADERS:
        raise EndpointConfigError(f"auth.name: {auth['name']} is set by Interlink")
    if auth["type"] == "oauth2_client_credentials":
        try:
            await egress.validate_url(auth["token_url"])
        except EgressError as error:
            raise EndpointConfigError(f"auth.token_url: {error}") from error
    if auth["type"] == "mtls":
        certificate = ClientCertificate(
            cert_pem=auth["cert_pem"], key_pem=auth["key_pem"], ca_pem=auth.get("ca_pem")
        )
        try:
            build_ssl_context(certificate)
        except EgressError as error:
            raise EndpointConfigError(f"auth: {error}") from error


def check_endpoint_fields(fields: dict[str, Any]) -> None:
    """Validate the filter, the schedule override and the custom headers."""
    if fields.get("filter") is not None:
        try:
            compile_filter(fields["filter"])
        except FilterError as error:
            raise EndpointConfigError(f"filter: {error}") from error
    if fields.get("retry_schedule") is not None:
        try:
            RetrySchedule.parse(fields["retry_schedule"])
        except ValueError as error:
            raise EndpointConfigError(f"retry_schedule: {error}") from error
    for name in fields.get("headers") or {}:
        if name.lower() in _RESERVED_HEADERS:
            raise EndpointConfigError(f"headers: {name} is set by Interlink and cannot be changed")
