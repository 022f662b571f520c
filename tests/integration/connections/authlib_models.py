"""The in-memory model of the Authlib test server: its one client, codes, tokens, requests."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Request, TokenMixin
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload

CLIENT_ID = "authlib-client"
CLIENT_SECRET = "authlib-secret"  # noqa: S105
ACCESS_TTL = 3600


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    redirect_uri: str

    def get_client_id(self) -> str:
        return CLIENT_ID

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, CLIENT_SECRET)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_post", "client_secret_basic")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class Code:
    code: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class Token(TokenMixin):  # type: ignore[misc]
    access_token: str
    refresh_token: str | None
    scope: str
    issued_at: float
    revoked: bool = False

    def check_client(self, client: Any) -> bool:
        return True

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return ACCESS_TTL

    def is_expired(self) -> bool:
        return time.time() > self.issued_at + ACCESS_TTL

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> str:
        return "user-1"


class AuthlibRequest(OAuth2Request):  # type: ignore[misc]
    def __init__(self, method: str, url: str, headers: Any, query: Any, form: Any) -> None:
        super().__init__(method=method, uri=url, headers=headers)
        self._args, self._form = dict(query), dict(form)
        self.payload = BasicOAuth2Payload({**self._args, **self._form})

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form
