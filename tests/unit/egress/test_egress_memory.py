"""InMemoryEgress: the port without a network, for services' unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from interlink.egress import (
    AddressPolicy,
    BlockedDestination,
    ConnectionRefused,
    DNSError,
    EgressResponse,
    InMemoryEgress,
    RecordedRequest,
    RequestPolicy,
    RetryPolicy,
    make_response,
    parse_allow_list,
)


async def test_requests_are_recorded_and_answered_by_the_handler() -> None:
    async def receiver(request: RecordedRequest) -> EgressResponse:
        return make_response(202, b"queued:" + request.body, [("X-Id", "1"), ("X-Id", "2")])

    egress = InMemoryEgress(receiver)
    policy = RequestPolicy(retry=RetryPolicy())

    response = await egress.request(
        "post",
        "https://hooks.example/in",
        headers={"webhook-id": "msg_1"},
        body=b"{}",
        policy=policy,
    )

    assert (response.status, response.body) == (202, b"queued:{}")
    assert response.headers.getall("X-Id") == ["1", "2"]
    (recorded,) = egress.requests
    assert (recorded.method, str(recorded.url), recorded.body) == (
        "POST",
        "https://hooks.example/in",
        b"{}",
    )
    assert recorded.headers["Webhook-Id"] == "msg_1"
    assert recorded.policy is policy


async def test_handler_errors_reach_the_caller() -> None:
    async def down(request: RecordedRequest) -> EgressResponse:
        raise ConnectionRefused("nothing listens")

    with pytest.raises(ConnectionRefused):
        await InMemoryEgress(down).request("GET", "https://api.example/")


async def test_literal_private_addresses_are_refused_like_in_production() -> None:
    egress = InMemoryEgress()

    with pytest.raises(BlockedDestination):
        await egress.request("POST", "http://169.254.169.254/latest", body=b"")
    assert egress.requests == []


async def test_validate_url_resolves_through_the_static_table() -> None:
    egress = InMemoryEgress(
        hosts={"hooks.example": ["93.184.215.14"], "intranet.example": ["10.0.0.5"]}
    )

    await egress.validate_url("https://hooks.example/in")
    with pytest.raises(BlockedDestination):
        await egress.validate_url("https://intranet.example/in")
    with pytest.raises(DNSError):
        await egress.validate_url("https://unknown.example/in")


async def test_allow_list_applies_to_the_in_memory_adapter_too() -> None:
    egress = InMemoryEgress(address_policy=AddressPolicy(parse_allow_list("10.0.0.0/8")))

    response = await egress.request("GET", "http://10.0.0.5/health")

    assert response.status == 200


async def test_stream_reads_streamed_request_bodies_and_yields_the_response() -> None:
    async def echo(request: RecordedRequest) -> EgressResponse:
        return make_response(200, request.body)

    async def upload() -> AsyncIterator[bytes]:
        yield b"part1-"
        yield b"part2"

    egress = InMemoryEgress(echo)
    async with egress.stream("PUT", "https://files.example/f", body=upload()) as upstream:
        received = await upstream.read()

    assert received == b"part1-part2"


async def test_max_body_truncates() -> None:
    egress = InMemoryEgress(lambda request: _reply(b"abcdef"))

    response = await egress.request("GET", "https://api.example/", max_body=3)

    assert (response.body, response.truncated) == (b"abc", True)


async def _reply(body: bytes) -> EgressResponse:
    return make_response(200, body)
