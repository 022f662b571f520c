"""``GET /v1/providers`` (the catalog) and ``GET /v1/providers/health``."""

from __future__ import annotations

from fastapi import APIRouter

from interlink.api.deps import PrincipalDep, RuntimeDep
from interlink.connections.api.schemas import ProviderHealth, ProviderPublic
from interlink.connections.catalog import OAuth2Auth, Provider
from interlink.connections.health import provider_health
from interlink.connections.state import connections_state

router = APIRouter(tags=["providers"])


def _public(provider: Provider) -> ProviderPublic:
    scopes: list[str] = []
    for mode in provider.auth:
        if isinstance(mode, OAuth2Auth):
            scopes = list(mode.default_scopes)
    limits = provider.rate_limit.limits if provider.rate_limit else ()
    return ProviderPublic(
        name=provider.name,
        display_name=provider.display_name,
        categories=list(provider.categories),
        auth_modes=[mode.type for mode in provider.auth],
        base_url=provider.base_url,
        docs_url=provider.docs_url,
        default_scopes=scopes,
        api_version=provider.api_version.model_dump() if provider.api_version else None,
        rate_limits=[limit.model_dump() for limit in limits],
        health_probe=provider.health_probe.model_dump() if provider.health_probe else None,
        webhook_verifier=provider.webhook_verifier,
    )


@router.get("/v1/providers", summary="The provider catalog")
async def list_providers(principal: PrincipalDep, runtime: RuntimeDep) -> list[ProviderPublic]:
    catalog = connections_state(runtime).catalog
    return [_public(catalog[name]) for name in sorted(catalog)]


@router.get("/v1/providers/health", summary="Health of every provider")
async def providers_health(principal: PrincipalDep, runtime: RuntimeDep) -> list[ProviderHealth]:
    """Circuit breakers and the error rate of recent calls (as seen by this process), and the
    connections per status and outcome of their last scheduled probe (from the store)."""
    return [ProviderHealth(**item) for item in await provider_health(connections_state(runtime))]
