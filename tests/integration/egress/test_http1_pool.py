"""The lean HTTP/1.1 pool behind `EgressClient.stream`, against scripted servers on 127.0.0.1.

Each server here answers byte for byte as its test writes, so that the framing, keep-alive,
stale-connection and timeout paths are exercised as they happen on the wire.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import uvloop

from interlink.egress import (
    AddressPolicy,
    BlockedDestination,
    ConnectionFailed,
    ConnectionRefused,
    EgressClient,
    InvalidRequest,
    ReadTimeout,
    Timeouts,
    TotalTimeout,
    parse_allow_list,
)

LOOPBACK = AddressPolicy(parse_allow_list("127.0.0.0/8"))
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Scripted"], Awaitable[None]]


@dataclass
class Scripted:
    """A TCP server running ``script`` on every connection; counts what it saw."""

    port: int = 0
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        """One request head (and its Content-Length body); b"" when the client closed."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return b""
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        request = head + (await reader.readexactly(length) if length else b"")
        self.requests.append(request)
        return request


@asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[Scripted]:
    state = Scripted()
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await script(reader, writer, state)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)


async def keep_answering(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: Scripted
) -> None:
    while await state.read_request(reader):
        writer.write(OK)
        await writer.drain()


@pytest.fixture
async def client() -> AsyncIterator[EgressClient]:
    async with EgressClient(address_policy=LOOPBACK, keepalive_timeout=30) as egress:
        yield egress


async def fetch(client: EgressClient, url: str, **options: object) -> tuple[int, bytes]:
    async with client.stream("GET", url, **options) as upstream:  # type: ignore[arg-type]
        return upstream.status, await upstream.read()


async def test_connections_are_kept_alive_and_reused(client: EgressClient) -> None:
    async with scripted(keep_answering) as server:
        answers = [await fetch(client, server.url + f"/n/{n}") for n in range(5)]
    assert answers == [(200, b"ok")] * 5
    assert server.connections == 1
    first = server.requests[0].decode()
    assert first.startswith("GET /n/0 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n" in first
    assert "Accept-Encoding" not in first  # the body comes back as the caller asked for it


async def test_a_connection_closed_while_idle_is_replaced(client: EgressClient) -> None:
    async def one_then_close(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        writer.write(OK)
        await writer.drain()

    async with scripted(one_then_close) as server:
        assert await fetch(client, server.url) == (200, b"ok")
        await asyncio.sleep(0.05)  # the server's FIN arrives while the connection is idle
        assert await fetch(client, server.url) == (200, b"ok")
    assert server.connections == 2


async def test_a_stale_connection_is_retried_only_for_idempotent_requests(
    client: EgressClient,
) -> None:
    """The server takes the second request on a kept-alive connection and hangs up unanswered
    (its keep-alive timer fired as the request arrived): a GET goes again on a new
    connection, a POST is not sent twice."""

    async def answer_first_drop_second(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        writer.write(OK)
        await writer.drain()
        await state.read_request(reader)

    async with scripted(answer_first_drop_second) as server:
        assert await fetch(client, server.url) == (200, b"ok")
        assert await fetch(client, server.url) == (200, b"ok")
        assert server.connections == 2 and len(server.requests) == 3

        with pytest.raises(ConnectionFailed, match="closed by the server"):
            async with client.stream("POST", server.url, body=b"{}"):
                pass  # sent on the second connection, which the server drops
        async with client.stream("POST", server.url, body=b"{}") as upstream:
            assert upstream.status == 200  # a new connection; the first POST was not resent
    assert [r.split(b" ", 1)[0] for r in server.requests].count(b"POST") == 2
    assert server.connections == 3


async def test_chunked_and_until_close_bodies_are_read_whole(client: EgressClient) -> None:
    async def chunked(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"hello ", b"chunked ", b"world"):
            writer.write(b"%x\r\n%b\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        await state.read_request(reader)

    async def until_close(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end")
        await writer.drain()

    async with scripted(chunked) as server:
        assert await fetch(client, server.url) == (200, b"hello chunked world")
    async with scripted(until_close) as server:
        assert await fetch(client, server.url) == (200, b"to the end")


async def test_head_interim_and_empty_answers(client: EgressClient) -> None:
    async def varied(reader, writer, state: Scripted) -> None:
        while request := await state.read_request(reader):
            if request.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
            elif b"/continue" in request:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
            else:
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()

    async with scripted(varied) as server:
        async with client.stream("HEAD", server.url) as upstream:
            assert upstream.status == 200 and upstream.headers["Content-Length"] == "1234"
            assert await upstream.read() == b""
        assert await fetch(client, server.url + "/continue") == (200, b"ok")
        assert await fetch(client, server.url + "/empty") == (204, b"")
        assert await fetch(client, server.url + "/empty") == (204, b"")
    assert server.connections == 2  # a HEAD answer's connection is not used again


async def test_a_large_body_read_slowly_arrives_intact(client: EgressClient) -> None:
    payload = bytes(range(256)) * 16384  # 4 MiB: reading pauses and resumes many times

    async def large(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload))
        writer.write(payload)
        await writer.drain()
        await state.read_request(reader)

    received = bytearray()
    async with scripted(large) as server:
        async with client.stream("GET", server.url) as upstream:
            async for chunk in upstream.iter_chunks():
                received += chunk
                if len(received) < 1 << 20:
                    await asyncio.sleep(0.001)
    assert bytes(received) == payload


async def test_silence_and_the_total_budget_are_bounded(client: EgressClient) -> None:
    async def headers_then_silence(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await asyncio.sleep(5)

    async def never_answers(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        await asyncio.sleep(5)

    quick_read = Timeouts(connect=1, read=0.2, total=10)
    async with scripted(headers_then_silence) as server:
        async with client.stream("GET", server.url, timeouts=quick_read) as upstream:
            with pytest.raises(ReadTimeout):
                await upstream.read()
    async with scripted(never_answers) as server:
        with pytest.raises(ReadTimeout):
            await fetch(client, server.url, timeouts=quick_read)
        started = asyncio.get_running_loop().time()
        with pytest.raises(TotalTimeout):
            await fetch(client, server.url, timeouts=Timeouts(connect=1, read=None, total=0.3))
        assert asyncio.get_running_loop().time() - started < 2


async def test_header_injection_is_refused_before_sending(client: EgressClient) -> None:
    async with scripted(keep_answering) as server:
        for headers in ({"X-A": "1\r\nX-Injected: yes"}, {"Bad Name": "1"}, {"X-A": "a\nb"}):
            with pytest.raises(InvalidRequest):
                await fetch(client, server.url, headers=headers)
        assert server.requests == []
        # A caller's framing headers are replaced by the pool's own.
        async with client.stream(
            "POST", server.url, headers={"Content-Length": "999", "Transfer-Encoding": "x"},
            body=b"abc",
        ) as upstream:  # fmt: skip
            assert upstream.status == 200
    sent = server.requests[0].decode()
    assert "Content-Length: 3\r\n" in sent and "999" not in sent and "Transfer-Encoding" not in sent


async def test_a_malformed_answer_is_a_connection_failure(client: EgressClient) -> None:
    async def garbage(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()

    async with scripted(garbage) as server:
        with pytest.raises(ConnectionFailed, match="invalid HTTP response"):
            await fetch(client, server.url)


async def test_the_connection_limit_queues_callers() -> None:
    async with (
        EgressClient(address_policy=LOOPBACK, limit=1) as egress,
        scripted(keep_answering) as server,
    ):

        async def one(n: int) -> tuple[int, bytes]:
            async with egress.stream("GET", f"{server.url}/{n}") as upstream:
                await asyncio.sleep(0.02)  # hold the connection for a while
                return upstream.status, await upstream.read()

        answers = await asyncio.gather(*(one(n) for n in range(4)))
    assert answers == [(200, b"ok")] * 4
    assert server.connections == 1


async def test_idle_connections_expire() -> None:
    async with (
        EgressClient(address_policy=LOOPBACK, keepalive_timeout=0.1) as egress,
        scripted(keep_answering) as server,
    ):
        assert await fetch(egress, server.url) == (200, b"ok")
        await asyncio.sleep(0.3)
        assert await fetch(egress, server.url) == (200, b"ok")
    assert server.connections == 2


async def test_a_released_stream_released_again_leaves_the_next_caller_alone(
    client: EgressClient,
) -> None:
    """The proxy closes a 401 answer, then its context closes it once more; by then the
    connection may carry the next call, which must not be cut off."""

    async def body_after_a_pause(reader, writer, state: Scripted) -> None:
        while await state.read_request(reader):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"ok")

    async with scripted(body_after_a_pause) as server:
        async with client.stream("GET", server.url) as first:
            await first.read()
            await first.aclose()
            async with client.stream("GET", server.url) as second:
                await first.aclose()
                assert await second.read() == b"ok"
    assert server.connections == 1


async def test_reading_a_body_after_its_stream_closed_fails_at_once(
    client: EgressClient,
) -> None:
    async def body_never_comes(reader, writer, state: Scripted) -> None:
        await state.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    async with scripted(body_never_comes) as server:
        async with client.stream("GET", server.url) as upstream:
            pass
        with pytest.raises(ConnectionFailed, match="stream was closed"):
            await asyncio.wait_for(upstream.read(), timeout=2)


async def test_names_are_resolved_through_the_ssrf_guard() -> None:
    async with (
        EgressClient(address_policy=AddressPolicy()) as egress,
        scripted(keep_answering) as server,
    ):
        with pytest.raises(BlockedDestination):
            await fetch(egress, f"http://localhost:{server.port}/")
    assert server.connections == 0


async def test_a_refused_connection_is_named(client: EgressClient) -> None:
    with pytest.raises(ConnectionRefused):
        await fetch(client, f"http://127.0.0.1:{_unused_port()}/")


def test_the_pool_runs_on_uvloop() -> None:
    """``interlink serve`` runs on uvloop, whose transports differ from asyncio's."""

    async def main() -> list[tuple[int, bytes]]:
        async with (
            EgressClient(address_policy=LOOPBACK) as egress,
            scripted(keep_answering) as server,
        ):
            return [await fetch(egress, server.url) for _ in range(3)]

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(main()) == [(200, b"ok")] * 3


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
