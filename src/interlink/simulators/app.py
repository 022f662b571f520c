"""`ProviderSimulator`: the aiohttp application around one provider's routes.

It injects faults, records requests, counts requests per path and status, and serves the admin
endpoints (``/_sim/faults``, ``/_sim/stats``, ``/_sim/requests``, ``/_sim/tokens``). The hot
path (an authenticated list call) does no more than a dict lookup for the token, a slice of
precomputed records and one ``orjson.dumps``.
"""

from __future__ import annotations

import abc
import asyncio
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from interlink.simulators.faults import Faults
from interlink.simulators.http import json_response
from interlink.simulators.oauth import Clock, OAuthError, OAuthRules, OAuthServerSim, TokenGrant

__all__ = ["ProviderSimulator", "RecordedRequest"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request a simulator received (admin requests are not recorded)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    """Case-insensitive."""
    body: bytes
    status: int
    received_at: float

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (the body decoded as UTF-8 with replacement)."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": {str(name): value for name, value in self.headers.items()},
            "body": self.body.decode("utf-8", "replace"),
            "status": self.status,
            "received_at": self.received_at,
        }


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ProviderSimulator(abc.ABC):
    """An aiohttp application that speaks one provider's wire format.

    Subclasses add their routes, render their own error shapes and token responses, and may
    decorate every response (request ids, rate-limit headers). State a test can assert on:
    :attr:`requests`, :attr:`stats`, :attr:`faults`, :attr:`oauth`.
    """

    name: ClassVar[str]
    oauth_path_prefixes: ClassVar[tuple[str, ...]] = ()
    """Paths served by the OAuth server; API faults are not injected there."""

    def __init__(
        self,
        *,
        records: int = 100,
        seed: int = 0,
        faults: Faults | str = "none",
        clock: Clock = time.time,
        record_requests: bool = True,
        max_recorded: int = 10_000,
    ) -> None:
        if records < 0:
            raise ValueError("records must not be negative")
        self.records_per_stream = records
        self.seed = seed
        self.faults = faults if isinstance(faults, Faults) else Faults.parse(faults)
        self.clock = clock
        self.record_requests = record_requests
        self.requests: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self.stats: Counter[tuple[str, int]] = Counter()
        self._fault_rng = random.Random(f"{seed}:faults")
        self._api_calls = 0
        self._burst_left = 0
        self.oauth = OAuthServerSim(self.oauth_rules(), faults=lambda: self.faults, clock=clock)

    # provider hooks

    @abc.abstractmethod
    def oauth_rules(self) -> OAuthRules:
        """The provider's authorization-server behaviour."""

    @abc.abstractmethod
    def add_routes(self, app: web.Application) -> None:
        """Register the provider's API and OAuth routes."""

    @abc.abstractmethod
    def token_payload(self, request: web.Request, grant: TokenGrant) -> dict[str, Any]:
        """The provider's token-endpoint answer for a grant."""

    @abc.abstractmethod
    def rate_limited_response(self, request: web.Request, retry_after: int) -> web.Response:
        """The provider's 429 (``Retry-After`` is added by the caller)."""

    @abc.abstractmethod
    def server_error_response(self, request: web.Request, status: int) -> web.Response:
        """The provider's answer for an injected 5xx."""

    def not_found_response(self, request: web.Request) -> web.Response | None:
        """The provider's answer for an unknown URL, or ``None`` for aiohttp's plain 404."""
        return None

    def decorate_response(self, request: web.Request, response: web.StreamResponse) -> None:
        """Add provider headers to every non-admin response (default: nothing)."""
        return None

    async def authorize(self, request: web.Request) -> web.Response:
        """The authorization endpoint: redirect back with a code, or with an OAuth error.

        A request that cannot be redirected (unknown client, unusable redirect URI) gets the
        RFC 6749 error as JSON with status 400; override for a provider's own error page.
        """
        try:
            location = self.oauth.authorize_redirect(request.query)
        except OAuthError as exc:
            return json_response({"error": exc.error, "error_description": exc.description}, 400)
        raise web.HTTPFound(location)

    # application

    def create_app(self) -> web.Application:
        """Build the aiohttp application (provider routes, admin routes, middleware)."""
        app = web.Application(middlewares=[self._middleware], client_max_size=4 * 1024 * 1024)
        app.router.add_get("/_sim/faults", self._get_faults)
        app.router.add_put("/_sim/faults", self._put_faults)
        app.router.add_get("/_sim/stats", self._get_stats)
        app.router.add_delete("/_sim/stats", self._delete_stats)
        app.router.add_get("/_sim/requests", self._get_requests)
        app.router.add_post("/_sim/tokens", self._post_token)
        self.add_routes(app)
        return app

    def set_faults(self, spec: Faults | str | Sequence[str], **settings: Any) -> Faults:
        """Switch the fault profile (and optionally tweak its settings); returns the new one."""
        faults = spec if isinstance(spec, Faults) else Faults.parse(spec)
        self.faults = faults.with_settings(**settings) if settings else faults
        self._api_calls = 0
        self._burst_left = 0
        return self.faults

    def count(self, path: str, status: int | None = None) -> int:
        """Requests received on ``path`` (with ``status``, if given)."""
        return sum(
            n for (p, s), n in self.stats.items() if p == path and (status is None or s == status)
        )

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_sim/"):
            return await handler(request)
        body = await request.read() if self.record_requests and request.body_exists else b""
        status = 500
        try:
            response: web.StreamResponse | None = None
            if not path.startswith(self.oauth_path_prefixes):
                response = await self._inject_faults(request)
            if response is None:
                try:
                    response = await handler(request)
                except web.HTTPNotFound:
                    response = self.not_found_response(request)
                    if response is None:
                        raise
            self.decorate_response(request, response)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self.stats[(path, status)] += 1
            if self.record_requests:
                self.requests.append(
                    RecordedRequest(
                        method=request.method,
                        path=path,
                        query=request.query_string,
                        headers=CIMultiDictProxy(CIMultiDict(request.headers)),
                        body=body,
                        status=status,
                        received_at=self.clock(),
                    )
                )

    async def _inject_faults(self, request: web.Request) -> web.StreamResponse | None:
        faults = self.faults
        if faults == _NO_FAULTS:
            return None
        self._api_calls += 1
        rng = self._fault_rng
        if faults.latency_ms:
            await asyncio.sleep(rng.uniform(*faults.latency_ms) / 1000)
        if faults.timeout_ratio and rng.random() < faults.timeout_ratio:
            await asyncio.sleep(faults.hang_seconds)
        if faults.rate_limit_every and self._api_calls % faults.rate_limit_every == 0:
            response = self.rate_limited_response(request, faults.retry_after_seconds)
            response.headers.setdefault("Retry-After", str(faults.retry_after_seconds))
            return response
        if faults.flaky_ratio:
            if self._burst_left > 0:
                self._burst_left -= 1
                return self.server_error_response(request, rng.choice((500, 502, 503)))
            # Bursts average two failures, so start one with probability r / (2 - r).
            if rng.random() < faults.flaky_ratio / (2 - faults.flaky_ratio):
                self._burst_left = rng.randint(0, 2)
                return self.server_error_response(request, rng.choice((500, 502, 503)))
        return None

    # admin endpoints

    async def _get_faults(self, request: web.Request) -> web.Response:
        return json_response(self.faults.to_json())

    async def _put_faults(self, request: web.Request) -> web.Response:
        try:
            data = orjson.loads(await request.read())
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            settings = dict(data)
            spec = settings.pop("profiles", self.faults.profiles)
            if not isinstance(spec, str | list | tuple):
                raise ValueError("profiles must be a string or a list of names")
            self.set_faults(spec, **settings)
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response(self.faults.to_json())

    async def _get_stats(self, request: web.Request) -> web.Response:
        paths: dict[str, dict[str, int]] = {}
        for (path, status), n in sorted(self.stats.items()):
            paths.setdefault(path, {})[str(status)] = n
        return json_response({"total": sum(self.stats.values()), "paths": paths})

    async def _delete_stats(self, request: web.Request) -> web.Response:
        self.stats.clear()
        self.requests.clear()
        return web.Response(status=204)

    async def _get_requests(self, request: web.Request) -> web.Response:
        return json_response([r.to_json() for r in self.requests])

    async def _post_token(self, request: web.Request) -> web.Response:
        """Mint a token without the browser dance (demo mode, benchmarks)."""
        raw = await request.read()
        try:
            data = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("scope", ""), str):
            return json_response({"error": 'expected {"scope"?: string}'}, status=400)
        grant = self.oauth.issue(scope=data.get("scope", self.oauth.rules.default_scope))
        return json_response(self.token_payload(request, grant))


_NO_FAULTS = Faults()
