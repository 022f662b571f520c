"""EgressClient against real aiohttp servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time

import pytest
from aiohttp import web

from interlink.egress import (
    AddressPolicy,
    BreakerConfig,
    BreakerRegistry,
    CircuitOpen,
    CircuitState,
    ConnectionFailed,
    ConnectionRefused,
    EgressClient,
    InvalidURL,
    LocalTokenBucket,
    RateLimited,
    ReadTimeout,
    RequestPolicy,
    RetryPolicy,
    Timeouts,
    TotalTimeout,
    parse_allow_list,
)

LOOPBACK = AddressPolicy(parse_allow_list("127.0.0.0/8"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_post_returns_status_headers_and_body(
    local_client: EgressClient, serve, whole: str
) -> None:
    async def echo(request: web.Request) -> web.Response:
        response = web.Response(status=201, body=await request.read())
        response.headers.add("X-Seen", request.headers["X-Custom"])
        response.headers.add("X-Seen", "twice")
        return response

    server = await serve(echo)

    response = await getattr(local_client, whole)(
        "POST", server.url + "/hook", headers={"X-Custom": "one"}, body=b'{"a":1}'
    )

    assert response.status == 201
    assert response.body == b'{"a":1}'
    assert response.headers.getall("X-Seen") == ["one", "twice"]
    assert response.attempts == 1
    assert response.elapsed > 0
    assert not response.truncated


async def test_keep_alive_reuses_one_connection(
    local_client: EgressClient, serve, whole: str
) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    server = await serve(ok)

    for _ in range(3):
        await getattr(local_client, whole)("POST", server.url + "/", body=b"x")

    assert len({id(hit.transport) for hit in server.hits}) == 1


async def test_body_cap_reads_prefix_and_keeps_connection(serve, whole: str) -> None:
    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"a" * 10_000)

    server = await serve(big)
    async with EgressClient(address_policy=LOOPBACK, max_body_bytes=100) as client:
        first = await getattr(client, whole)("GET", server.url + "/")
        second = await getattr(client, whole)("GET", server.url + "/", max_body=20_000)

    assert (first.body, first.truncated) == (b"a" * 100, True)
    assert (len(second.body), second.truncated) == (10_000, False)
    assert server.hits[0].transport is server.hits[1].transport  # drained, then reused


async def test_body_far_past_the_cap_drops_the_connection(serve, whole: str) -> None:
    async def huge(request: web.Request) -> web.Response:
        return web.Response(body=b"b" * 200_000)

    server = await serve(huge)
    async with EgressClient(address_policy=LOOPBACK, max_body_bytes=10, drain_limit=1000) as c:
        first = await getattr(c, whole)("GET", server.url + "/")
        await getattr(c, whole)("GET", server.url + "/")

    assert (first.body, first.truncated) == (b"b" * 10, True)
    assert server.hits[0].transport is not server.hits[1].transport


async def test_cookies_are_never_sent_back(local_client: EgressClient, serve) -> None:
    async def sets_cookie(request: web.Request) -> web.Response:
        response = web.Response(text=request.headers.get("Cookie", "none"))
        response.set_cookie("session", "tenant-a")
        return response

    server = await serve(sets_cookie)

    await local_client.request("GET", server.url + "/")
    second = await local_client.request("GET", server.url + "/")

    assert second.body == b"none"


async def test_slow_server_raises_read_timeout(
    local_client: EgressClient, serve, whole: str
) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="late")

    server = await serve(slow)

    with pytest.raises(ReadTimeout) as caught:
        await getattr(local_client, whole)(
            "GET", server.url + "/", timeouts=Timeouts(connect=1, read=0.2, total=5)
        )

    assert caught.value.error_class == "timeout"
    assert caught.value.retryable


async def test_total_timeout_bounds_a_trickling_body(
    local_client: EgressClient, serve, whole: str
) -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(50):
            await response.write(b".")
            await asyncio.sleep(0.05)
        return response

    server = await serve(trickle)

    with pytest.raises(TotalTimeout) as caught:
        await getattr(local_client, whole)(
            "GET", server.url + "/", timeouts=Timeouts(connect=1, read=1, total=0.5)
        )

    assert caught.value.error_class == "timeout"


async def test_refused_port_raises_connection_refused(
    local_client: EgressClient, whole: str
) -> None:
    with pytest.raises(ConnectionRefused) as caught:
        await getattr(local_client, whole)("GET", f"http://127.0.0.1:{_free_port()}/")

    assert caught.value.error_class == "connection_refused"
    assert caught.value.retryable


@pytest.mark.parametrize("url", ["ftp://example.com/", "/relative", "http:///nohost"])
async def test_non_http_urls_are_invalid(local_client: EgressClient, url: str) -> None:
    with pytest.raises(InvalidURL):
        await local_client.request("GET", url)


async def test_stream_yields_chunks_and_passes_compressed_bodies_through(
    local_client: EgressClient, serve
) -> None:
    payload = b"record\n" * 1000
    compressed = gzip.compress(payload)

    async def gzipped(request: web.Request) -> web.Response:
        return web.Response(body=compressed, headers={"Content-Encoding": "gzip"})

    server = await serve(gzipped)

    async with local_client.stream("GET", server.url + "/export") as upstream:
        assert upstream.status == 200
        assert upstream.headers["Content-Encoding"] == "gzip"
        received = b"".join([chunk async for chunk in upstream.iter_chunks()])
    whole = await local_client.request("GET", server.url + "/export")

    assert received == compressed  # the proxy forwards what the provider sent
    assert whole.body == payload  # full responses are decompressed


async def test_send_asks_for_no_compression_and_keeps_a_compressed_body_as_it_came(
    local_client: EgressClient, serve
) -> None:
    compressed = gzip.compress(b"accepted\n" * 100)

    async def gzipped(request: web.Request) -> web.Response:
        return web.Response(body=compressed, headers={"Content-Encoding": "gzip"})

    server = await serve(gzipped)

    response = await local_client.send("POST", server.url + "/hook", body=b"{}")

    assert "Accept-Encoding" not in server.hits[0].headers
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.body == compressed


async def test_retry_after_is_honoured_in_real_time(local_client: EgressClient, serve) -> None:
    async def limited_once(request: web.Request) -> web.Response:
        if len(server.hits) == 1:
            return web.Response(status=429, headers={"Retry-After": "2"})
        return web.Response(text="ok")

    server = await serve(limited_once)
    policy = RequestPolicy(retry=RetryPolicy(max_attempts=3, max_total=10))
    started = time.monotonic()

    response = await local_client.request("GET", server.url + "/", policy=policy)

    assert response.status == 200
    assert response.attempts == 2
    assert time.monotonic() - started >= 2.0
    assert response.elapsed >= 2.0


async def test_post_is_retried_only_with_an_idempotency_key(
    local_client: EgressClient, serve
) -> None:
    async def unavailable(request: web.Request) -> web.Response:
        return web.Response(status=503)

    server = await serve(unavailable)
    policy = RequestPolicy(retry=RetryPolicy(max_attempts=3, sleep=lambda _: asyncio.sleep(0)))

    plain = await local_client.request("POST", server.url + "/", body=b"{}", policy=policy)
    keyed = await local_client.request(
        "POST", server.url + "/", body=b"{}", headers={"Idempotency-Key": "k1"}, policy=policy
    )

    assert (plain.status, plain.attempts) == (503, 1)
    assert (keyed.status, keyed.attempts) == (503, 3)
    assert len(server.hits) == 4


async def test_open_breaker_fails_fast_without_touching_the_server(serve) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500)

    server = await serve(broken)
    now = [0.0]
    transitions: list[tuple[str, CircuitState, CircuitState]] = []
    breakers = BreakerRegistry(
        BreakerConfig(minimum_calls=4, failure_rate_threshold=0.5, cool_down=30),
        clock=lambda: now[0],
        on_state_change=lambda host, old, new: transitions.append((host, old, new)),
    )
    async with EgressClient(address_policy=LOOPBACK, breakers=breakers) as client:
        policy = RequestPolicy()
        for _ in range(4):
            assert (await client.request("GET", server.url + "/", policy=policy)).status == 500
        hits_when_opened = len(server.hits)

        with pytest.raises(CircuitOpen) as caught:
            await client.request("GET", server.url + "/", policy=policy)

        assert len(server.hits) == hits_when_opened == 4
        assert caught.value.host == f"127.0.0.1:{server.port}"
        assert caught.value.retry_after == pytest.approx(30)

        now[0] = 31.0  # cool-down over: probes go through again
        assert (await client.request("GET", server.url + "/", policy=policy)).status == 500
        assert len(server.hits) == 5

    assert [new for _, _, new in transitions] == [
        CircuitState.OPEN,
        CircuitState.HALF_OPEN,
        CircuitState.OPEN,
    ]


async def test_rate_limited_calls_are_spaced_and_refused_past_max_wait(serve) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    server = await serve(ok)
    limiter = LocalTokenBucket(rate=20, burst=1)
    async with EgressClient(address_policy=LOOPBACK, rate_limiter=limiter) as client:
        policy = RequestPolicy(rate_limit_key="endpoint:ep_1")
        started = time.monotonic()
        for _ in range(3):
            await client.request("POST", server.url + "/", body=b"", policy=policy)
        spaced = time.monotonic() - started

        with pytest.raises(RateLimited):
            await client.request(
                "POST",
                server.url + "/",
                body=b"",
                policy=RequestPolicy(rate_limit_key="endpoint:ep_1", max_rate_limit_wait=0.0),
            )

    assert spaced >= 0.09  # 3 calls at 20/s with a burst of 1: two waits of 50 ms
    assert len(server.hits) == 3


async def test_provider_quota_headers_slow_the_next_call(serve) -> None:
    async def quota(request: web.Request) -> web.Response:
        return web.Response(headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"})

    server = await serve(quota)
    limiter = LocalTokenBucket(rate=100, burst=100)
    async with EgressClient(address_policy=LOOPBACK, rate_limiter=limiter) as client:
        policy = RequestPolicy(rate_limit_key="con_1", max_rate_limit_wait=0.0)
        await client.request("GET", server.url + "/", policy=policy)

        with pytest.raises(RateLimited) as caught:
            await client.request("GET", server.url + "/", policy=policy)

    assert caught.value.retry_after == pytest.approx(1.0, abs=0.05)
    assert len(server.hits) == 1


async def test_stream_sends_a_streamed_request_body(local_client: EgressClient, serve) -> None:
    async def count(request: web.Request) -> web.Response:
        return web.Response(text=str(len(await request.read())))

    server = await serve(count)

    async def upload():
        for _ in range(10):
            yield b"x" * 1000

    async with local_client.stream("PUT", server.url + "/upload", body=upload()) as upstream:
        assert upstream.status == 200
        assert await upstream.read() == b"10000"


async def test_stream_body_cut_off_raises_an_egress_error(
    local_client: EgressClient, serve
) -> None:
    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100000"})
        await response.prepare(request)
        await response.write(b"partial")
        request.transport.close()
        return response

    server = await serve(cut)

    async with local_client.stream("GET", server.url + "/") as upstream:
        with pytest.raises(ConnectionFailed):
            async for _ in upstream.iter_chunks():
                pass
