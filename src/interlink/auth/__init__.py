"""Who is calling: the bootstrap admin token, API keys (admin or one tenant), OIDC JWTs."""

from interlink.auth.principal import Principal
from interlink.auth.tokens import hash_token, new_admin_token, new_api_key

__all__ = ["Principal", "hash_token", "new_admin_token", "new_api_key"]
