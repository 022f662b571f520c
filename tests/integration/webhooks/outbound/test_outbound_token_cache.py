"""OAuth2 client-credentials tokens for endpoints: a burst of deliveries without a usable token
asks the token endpoint once, against a real token endpoint on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from interlink.egress import AddressPolicy, EgressClient, parse_allow_list
from interlink.webhooks.outbound.auth import AuthFailed, EndpointAuth, TokenCache
from tests.integration.webhooks.outbound.outbound_support import Received, receiver


class TokenEndpoint:
    """Answers token requests slowly, as ``receiver``'s behaviour, and counts them."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False

    async def answer(self, _: Received, n: int) -> web.StreamResponse:
        self.calls = n
        await asyncio.sleep(0.2)
        if self.fail:
            return web.Response(status=503)
        return web.json_response({"access_token": f"t{n}", "expires_in": 3600})


@pytest.fixture
async def token_endpoint() -> AsyncIterator[tuple[TokenEndpoint, str]]:
    endpoint = TokenEndpoint()
    async with receiver(endpoint.answer) as sink:
        yield endpoint, f"http://127.0.0.1:{sink.port}/token"


@pytest.fixture
async def egress() -> AsyncIterator[EgressClient]:
    client = EgressClient(address_policy=AddressPolicy(allow=parse_allow_list("127.0.0.1/32")))
    try:
        yield client
    finally:
        await client.close()


def _auth(url: str, cache: TokenCache) -> EndpointAuth:
    settings = {
        "type": "oauth2_client_credentials",
        "token_url": url,
        "client_id": "cid",
        "client_secret": "secret",
    }
    return EndpointAuth(settings, cache)


async def test_concurrent_deliveries_share_one_token_fetch(
    token_endpoint: tuple[TokenEndpoint, str], egress: EgressClient
) -> None:
    endpoint, url = token_endpoint
    cache = TokenCache()
    # Two versions of the same endpoint (compiled apart) share the process's cache.
    first, second = _auth(url, cache), _auth(url, cache)
    headers = await asyncio.gather(*(auth.headers(egress) for auth in [first, second] * 10))
    assert endpoint.calls == 1
    assert {h["Authorization"] for h in headers} == {"Bearer t1"}
    assert not cache.fetching
    assert await first.headers(egress) == {"Authorization": "Bearer t1"}  # cached
    assert endpoint.calls == 1
    first.forget_token()  # the endpoint answered 401 with it
    again = await asyncio.gather(*(second.headers(egress) for _ in range(5)))
    assert endpoint.calls == 2
    assert {h["Authorization"] for h in again} == {"Bearer t2"}


async def test_a_failed_fetch_fails_every_waiter_and_the_next_delivery_asks_again(
    token_endpoint: tuple[TokenEndpoint, str], egress: EgressClient
) -> None:
    endpoint, url = token_endpoint
    cache = TokenCache()
    auth = _auth(url, cache)
    endpoint.fail = True
    outcomes = await asyncio.gather(
        *(auth.headers(egress) for _ in range(5)), return_exceptions=True
    )
    assert endpoint.calls == 1
    assert all(isinstance(o, AuthFailed) and "503" in str(o) for o in outcomes)
    assert not cache.fetching and not cache.tokens
    endpoint.fail = False
    assert await auth.headers(egress) == {"Authorization": "Bearer t2"}


async def test_a_delivery_that_gives_up_does_not_cancel_the_fetch_for_the_others(
    token_endpoint: tuple[TokenEndpoint, str], egress: EgressClient
) -> None:
    endpoint, url = token_endpoint
    cache = TokenCache()
    auth = _auth(url, cache)
    quitter = asyncio.create_task(auth.headers(egress))
    stayer = asyncio.create_task(auth.headers(egress))
    await asyncio.sleep(0.05)
    quitter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await quitter
    assert await stayer == {"Authorization": "Bearer t1"}
    assert endpoint.calls == 1
