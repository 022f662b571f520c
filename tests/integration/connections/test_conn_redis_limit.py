"""Two runtimes (as two ``interlink serve`` processes would be) share one connection's
rate-limit budget through Redis (``redis_url``) when calls go through the proxy.

The limit comes from the catalog: a provider file (``providers_path``) declares
``{requests: 40, per_seconds: 3600, scope: connection}``, which is a token bucket of burst
4 (10 % of the budget) refilled at 0.01/s. The next token is 100 s away, longer than the
proxy's 10 s wait, so a call past the burst answers 429 ``rate-limited`` at once.

Needs Redis on 127.0.0.1:6379: with CI=true the test fails without it, elsewhere it is skipped.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from aiohttp import web

from interlink.connections.capability import capability
from interlink.connections.catalog import LimitHint
from interlink.connections.policies import limit_of
from interlink.connections.state import connections_state
from interlink.egress import Limit, LocalTokenBucket, RedisTokenBucket
from interlink.runtime import Runtime
from tests.conftest import api_client, make_settings, require_service

REDIS_URL = "redis://127.0.0.1:6379/0"
BUCKET_PREFIX = "interlink:egress:ratelimit:"  # RedisTokenBucket's default prefix
CATALOG = """
version: 1
providers:
  - name: metered
    display_name: Metered REST API
    categories: [generic]
    base_url: "{base_url}"
    auth:
      - type: api_key
        in: header
        name: Authorization
        prefix: "Bearer "
        field: api_key
    rate_limit:
      limits:
        - {requests: 40, per_seconds: 3600, scope: connection}
"""
HINT = LimitHint(requests=40, per_seconds=3600, scope="connection")
CALLS = 12


@dataclass
class Upstream:
    url: str = ""
    paths: list[str] = field(default_factory=list)


@dataclass
class Pair:
    """Two runtimes on one store, a tenant key usable on both, and a metered connection."""

    runtimes: tuple[Runtime, Runtime]
    apps: tuple[httpx.AsyncClient, httpx.AsyncClient]
    connection_id: str


@contextlib.asynccontextmanager
async def upstream_server() -> AsyncIterator[Upstream]:
    upstream = Upstream()

    async def answer(request: web.Request) -> web.Response:
        upstream.paths.append(request.path)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    upstream.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield upstream
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def two_runtimes(
    sqlite_url: str, directory: Path, upstream: Upstream, redis_url: str | None
) -> AsyncIterator[Pair]:
    catalog = directory / "metered.yaml"
    catalog.write_text(CATALOG)
    settings = make_settings(
        sqlite_url, egress_allow=["127.0.0.0/8"], providers_path=[str(catalog)], redis_url=redis_url
    )
    first = Runtime(settings, capabilities=[capability])
    second = Runtime(settings, capabilities=[capability])  # another process on the same store
    async with api_client(first) as admin, api_client(second) as other_admin:
        tenant = (await admin.post("/v1/tenants", json={"name": "Acme"})).json()["id"]
        key = await admin.post(f"/v1/tenants/{tenant}/api-keys", json={"name": "app"})
        created = await admin.post(
            f"/v1/tenants/{tenant}/connections",
            json={"provider": "metered", "auth_type": "api_key",
                  "credentials": {"api_key": "k-1"}, "config": {"base_url": upstream.url}},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        headers = {"Authorization": f"Bearer {key.json()['key']}"}
        async with (
            httpx.AsyncClient(transport=admin._transport, base_url=admin.base_url,
                              headers=headers) as app_a,
            httpx.AsyncClient(transport=other_admin._transport, base_url=other_admin.base_url,
                              headers=headers) as app_b,
        ):  # fmt: skip
            yield Pair((first, second), (app_a, app_b), created.json()["id"])


async def _fire(pair: Pair) -> tuple[list[httpx.Response], float]:
    """``CALLS`` proxied calls, alternately through each runtime; the answers and the time."""
    started = time.monotonic()
    answers = []
    for number in range(CALLS):
        app = pair.apps[number % 2]
        answers.append(await app.get(f"/v1/proxy/{pair.connection_id}/items/{number}"))
    return answers, time.monotonic() - started


def _admitted(limit: Limit, elapsed: float) -> int:
    """Most calls a token bucket admits in ``elapsed`` seconds: its burst plus the refill."""
    return math.floor(limit.burst + limit.rate * elapsed)


def _assert_rate_limited(answer: httpx.Response, connection_id: str, elapsed: float) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"].endswith("/rate-limited")
    assert f"connection:{connection_id}" in problem["detail"]
    # The next token is 1 / 0.01 = 100 s away, less what refilled while the test ran.
    assert 100 - math.ceil(elapsed) - 1 <= int(answer.headers["retry-after"]) <= 100


def test_catalog_hint_gives_a_bucket_of_burst_4_refilled_at_one_per_100_seconds() -> None:
    assert limit_of(HINT) == Limit(rate=0.01, burst=4.0)


async def test_two_runtimes_share_one_connection_budget_through_redis(
    sqlite_url: str, tmp_path: Path
) -> None:
    require_service("redis")
    limit = limit_of(HINT)
    checker = aioredis.Redis.from_url(REDIS_URL)
    connection_id = None
    try:
        async with (
            upstream_server() as upstream,
            two_runtimes(sqlite_url, tmp_path, upstream, REDIS_URL) as pair,
        ):
            connection_id = pair.connection_id
            for runtime in pair.runtimes:
                assert isinstance(connections_state(runtime).limiter, RedisTokenBucket)

            answers, elapsed = await _fire(pair)

            allowed = _admitted(limit, elapsed)
            assert allowed == 4  # the burst; a per-process bucket would let 2 * 4 through
            statuses = [answer.status_code for answer in answers]
            # Alternating A, B, A, B: the first four calls spend the shared burst, after which
            # both runtimes refuse, B included, though B itself has made only two calls.
            assert statuses == [200] * allowed + [429] * (CALLS - allowed)
            assert upstream.paths == [f"/items/{n}" for n in range(allowed)]
            for answer in answers[allowed:]:
                _assert_rate_limited(answer, connection_id, elapsed)
            bucket = await checker.hgetall(f"{BUCKET_PREFIX}connection:{connection_id}")
            assert float(bucket[b"tokens"]) < 1.0  # the one budget lives in Redis
        # Stopped runtimes must have closed their Redis clients: collect now, so that a leaked
        # connection's ResourceWarning fails this test rather than whichever test runs next.
        del pair
        gc.collect()
    finally:
        if connection_id is not None:
            await checker.delete(f"{BUCKET_PREFIX}connection:{connection_id}")
        await checker.aclose()


async def test_without_redis_each_embedded_runtime_spends_its_own_budget(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The control: on SQLite without Redis the buckets are per process, so two runtimes let
    twice the burst through. The Redis test above would fail with such buckets."""
    limit = limit_of(HINT)
    async with (
        upstream_server() as upstream,
        two_runtimes(sqlite_url, tmp_path, upstream, None) as pair,
    ):
        for runtime in pair.runtimes:
            assert isinstance(connections_state(runtime).limiter, LocalTokenBucket)

        answers, elapsed = await _fire(pair)

        per_process = _admitted(limit, elapsed)
        statuses = [answer.status_code for answer in answers]
        assert statuses == [200] * (2 * per_process) + [429] * (CALLS - 2 * per_process)
        assert len(upstream.paths) == 2 * per_process == 8
        for answer in answers[2 * per_process :]:
            _assert_rate_limited(answer, pair.connection_id, elapsed)
