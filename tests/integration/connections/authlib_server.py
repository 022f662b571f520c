"""A standards-compliant OAuth 2.0 authorization server built from Authlib's components.

Authorization code with PKCE (RFC 7636, S256 required), refresh tokens with rotation, RFC 7009
revocation, and one protected resource (``GET /api/me``), served by aiohttp on 127.0.0.1.
Everything is in memory; ``AuthlibServer.tokens`` is what a test asserts on.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    JsonPayload,
    JsonRequest,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge

from tests.integration.connections.authlib_models import (
    ACCESS_TTL,
    CLIENT_ID,
    CLIENT_SECRET,
    AuthlibRequest,
    Client,
    Code,
    Token,
)

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "AuthlibServer", "serve_authlib"]


@dataclass
class State:
    client: Client
    codes: dict[str, Code] = field(default_factory=dict)
    tokens: list[Token] = field(default_factory=list)
    token_requests: list[str] = field(default_factory=list)


class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_post", "client_secret_basic"]

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        self.server.store.codes[code] = Code(
            code, data["redirect_uri"], data.get("scope", ""),
            data.get("code_challenge"), data.get("code_challenge_method"),
        )  # fmt: skip

    def query_authorization_code(self, code: str, client: Any) -> Code | None:
        found: Code | None = self.server.store.codes.get(code)
        return found

    def delete_authorization_code(self, authorization_code: Code) -> None:
        self.server.store.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: Code) -> str:
        return "user-1"


class RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_post", "client_secret_basic"]
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: the old refresh token dies

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        for token in self.server.store.tokens:
            if token.refresh_token == refresh_token and not token.revoked:
                return token
        return None

    def authenticate_user(self, credential: Token) -> str:
        return "user-1"

    def revoke_old_credential(self, credential: Token) -> None:
        credential.revoked = True


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["client_secret_post", "client_secret_basic"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        for token in self.server.store.tokens:
            if token_string in (token.access_token, token.refresh_token):
                return token
        return None

    def revoke_token(self, token: Token, request: Any) -> None:
        token.revoked = True


class Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, store: State) -> None:
        super().__init__()
        self.store = store

    def query_client(self, client_id: str) -> Client | None:
        return self.store.client if client_id == CLIENT_ID else None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        self.store.tokens.append(
            Token(token["access_token"], token.get("refresh_token"),
                  token.get("scope", ""), time.time())
        )  # fmt: skip

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request if isinstance(request, OAuth2Request) else AuthlibRequest(*request)

    def create_json_request(self, request: Any) -> JsonRequest:
        json_request = JsonRequest(request[0], request[1], request[2])
        json_request.payload = JsonPayload()
        return json_request

    def handle_response(self, status: int, body: Any, headers: Any) -> web.Response:
        if isinstance(body, dict):
            body = orjson.dumps(body)
        return web.Response(status=status, body=body, headers=dict(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


def build_app(server: Server) -> web.Application:
    async def authorize(request: web.Request) -> web.StreamResponse:
        oauth_request = AuthlibRequest("GET", str(request.url), request.headers, request.query, {})
        grant = server.get_consent_grant(request=oauth_request, end_user="user-1")
        response: web.StreamResponse = server.create_authorization_response(
            oauth_request, grant_user="user-1", grant=grant
        )
        return response

    async def token(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        server.store.token_requests.append(str(form.get("grant_type")))
        args = ("POST", str(request.url), request.headers, {}, form)
        response: web.StreamResponse = server.create_token_response(args)
        return response

    async def revoke(request: web.Request) -> web.StreamResponse:
        args = ("POST", str(request.url), request.headers, {}, await request.post())
        response: web.StreamResponse = server.create_endpoint_response("revocation", args)
        return response

    async def me(request: web.Request) -> web.Response:
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        for item in server.store.tokens:
            if item.access_token == bearer and not item.revoked and not item.is_expired():
                return web.json_response({"user": "user-1", "scope": item.scope})
        return web.json_response({"error": "invalid_token"}, status=401)

    app = web.Application()
    app.router.add_get("/authorize", authorize)
    app.router.add_post("/token", token)
    app.router.add_post("/revoke", revoke)
    app.router.add_get("/api/me", me)
    return app


@dataclass
class AuthlibServer:
    url: str
    store: State


@asynccontextmanager
async def serve_authlib(redirect_uri: str) -> AsyncIterator[AuthlibServer]:
    store = State(Client(redirect_uri))
    server = Server(store)
    server.register_grant(CodeGrant, [CodeChallenge(required=True)])
    server.register_grant(RefreshGrant)
    server.register_token_generator(
        "default",
        BearerTokenGenerator(
            access_token_generator=lambda **_: secrets.token_urlsafe(32),
            refresh_token_generator=lambda **_: secrets.token_urlsafe(32),
            expires_generator=lambda *_: ACCESS_TTL,
        ),
    )
    server.register_endpoint(Revocation)
    runner = web.AppRunner(build_app(server), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield AuthlibServer(f"http://127.0.0.1:{port}", store)
    finally:
        await runner.cleanup()
