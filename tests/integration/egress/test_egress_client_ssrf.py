"""The SSRF guard at connect time, against real listeners on loopback."""

from __future__ import annotations

import socket

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from interlink.egress import (
    AddressPolicy,
    BlockedDestination,
    EgressClient,
    EgressError,
    RequestPolicy,
    RetryPolicy,
    parse_allow_list,
)


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


class SwitchingResolver(AbstractResolver):
    """Answers `first` to the first lookup and `then` to every later one (DNS rebinding)."""

    def __init__(self, first: str, then: str) -> None:
        self.answers = [first, then]
        self.lookups = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self.answers[min(self.lookups, 1)]
        self.lookups += 1
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "[::ffff:127.0.0.1]",
        "2130706433",
        "0x7f000001",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "127.1",
    ],
)
async def test_loopback_in_any_notation_never_reaches_the_listener(
    guarded_client: EgressClient, listen, host: str, whole: str
) -> None:
    listener = await listen("127.0.0.1")

    with pytest.raises(EgressError) as caught:
        await getattr(guarded_client, whole)("GET", f"http://{host}:{listener.port}/")

    assert isinstance(caught.value, BlockedDestination)
    assert caught.value.address in {"127.0.0.1", "::ffff:7f00:1"}
    assert listener.connections == 0


async def test_blocked_destination_names_address_and_range(
    guarded_client: EgressClient, listen, whole: str
) -> None:
    listener = await listen("127.0.0.1")

    with pytest.raises(BlockedDestination) as caught:
        await getattr(guarded_client, whole)(
            "POST", f"http://localhost:{listener.port}/", body=b"{}"
        )

    assert caught.value.address == "127.0.0.1"
    assert caught.value.network == "127.0.0.0/8"
    assert "loopback" in str(caught.value)
    assert caught.value.retryable is False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_ipv6_loopback_never_reaches_the_listener(
    guarded_client: EgressClient, listen
) -> None:
    listener = await listen("::1")

    with pytest.raises(BlockedDestination):
        await guarded_client.request("GET", f"http://[::1]:{listener.port}/")

    assert listener.connections == 0


@pytest.mark.parametrize(
    "address", ["10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1"]
)
async def test_private_and_metadata_literals_are_refused_before_connecting(
    guarded_client: EgressClient, address: str, whole: str
) -> None:
    with pytest.raises(BlockedDestination) as caught:
        await getattr(guarded_client, whole)("GET", f"http://{address}/latest/meta-data/")

    assert caught.value.address == address


async def test_allow_list_admits_loopback(local_client: EgressClient, listen) -> None:
    listener = await listen("127.0.0.1")

    response = await local_client.request("GET", f"http://127.0.0.1:{listener.port}/")

    assert response.status == 200
    assert listener.connections == 1


async def test_redirect_to_loopback_is_returned_not_followed(serve, listen, whole: str) -> None:
    target = await listen("127.0.0.2")

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"http://127.0.0.2:{target.port}/")

    origin = await serve(redirect, host="127.0.0.1")
    policy = AddressPolicy(parse_allow_list("127.0.0.1/32"))
    async with EgressClient(address_policy=policy) as client:
        response = await getattr(client, whole)("GET", origin.url + "/")

    assert response.status == 302
    assert response.headers["Location"] == f"http://127.0.0.2:{target.port}/"
    assert len(origin.hits) == 1
    assert target.connections == 0


async def test_redirect_is_not_followed_even_with_a_retry_policy(serve) -> None:
    async def redirect(request: web.Request) -> web.StreamResponse:
        if request.path == "/start":
            raise web.HTTPTemporaryRedirect("/elsewhere")
        return web.Response(text="followed")

    server = await serve(redirect)
    async with EgressClient(address_policy=AddressPolicy(parse_allow_list("127.0.0.1"))) as client:
        response = await client.request(
            "GET", server.url + "/start", policy=RequestPolicy(retry=RetryPolicy())
        )

    assert response.status == 307
    assert [hit.path for hit in server.hits] == ["/start"]


async def test_dns_rebinding_is_refused_at_connect_time(listen, whole: str) -> None:
    listener = await listen("127.0.0.1")
    resolver = SwitchingResolver(first="93.184.215.14", then="127.0.0.1")
    url = f"http://rebind.example:{listener.port}/"
    async with EgressClient(resolver=resolver) as client:
        await client.validate_url(url)  # public at creation time

        with pytest.raises(BlockedDestination) as caught:
            await getattr(client, whole)("POST", url, body=b"{}")

    assert caught.value.host == "rebind.example"
    assert caught.value.address == "127.0.0.1"
    assert resolver.lookups == 2
    assert listener.connections == 0


async def test_rebinding_resolver_does_reach_the_listener_when_loopback_is_allowed(
    listen,
) -> None:
    # Control for the test above: the same setup connects when the guard admits loopback.
    listener = await listen("127.0.0.1")
    resolver = SwitchingResolver(first="93.184.215.14", then="127.0.0.1")
    policy = AddressPolicy(parse_allow_list("127.0.0.0/8"))
    async with EgressClient(address_policy=policy, resolver=resolver) as client:
        await client.validate_url(f"http://rebind.example:{listener.port}/")
        response = await client.request("GET", f"http://rebind.example:{listener.port}/")

    assert response.status == 200
    assert listener.connections == 1


async def test_validate_url_refuses_a_name_resolving_to_loopback(
    guarded_client: EgressClient,
) -> None:
    with pytest.raises(BlockedDestination) as caught:
        await guarded_client.validate_url("https://localhost/hook")

    assert caught.value.host == "localhost"


async def test_environment_proxy_is_ignored(
    local_client: EgressClient, listen, monkeypatch, whole: str
) -> None:
    # A proxy from the environment would resolve names itself, around the guard.
    listener = await listen("127.0.0.1")
    proxy = await listen("127.0.0.1")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")

    response = await getattr(local_client, whole)("GET", f"http://127.0.0.1:{listener.port}/")

    assert response.status == 200
    assert (listener.connections, proxy.connections) == (1, 0)
