"""Tenants and their API keys, and the bootstrap admin token. Imports the store, auth, audit."""

from interlink.tenants.service import (
    ApiKeyCreated,
    authenticate_token,
    create_api_key,
    create_tenant,
    ensure_admin_token,
    get_tenant,
    list_api_keys,
    list_tenants,
    revoke_api_key,
)

__all__ = [
    "ApiKeyCreated",
    "authenticate_token",
    "create_api_key",
    "create_tenant",
    "ensure_admin_token",
    "get_tenant",
    "list_api_keys",
    "list_tenants",
    "revoke_api_key",
]
