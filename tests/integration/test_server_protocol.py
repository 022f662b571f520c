"""The server protocol of ``interlink serve`` (``interlink.api.server``) under uvicorn: each
answer whose body follows its head leaves in one write, and nothing is delayed or reordered:
streams, large bodies, pipelined requests, ``Expect: 100-continue`` and closing answers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import uvicorn

from interlink.api.server import HttpProtocol, server_config

BIG = bytes(range(256)) * 4096  # 1 MiB


class Stream:
    """``/stream`` sends its body only once ``go_on`` is set: after the client has the head."""

    go_on = asyncio.Event()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await Stream.go_on.wait()
        await send({"type": "http.response.body", "body": b"late", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    answer = BIG if path == "/big" else b"echo:" + body
    headers = [(b"content-length", str(len(answer)).encode())]
    if path == "/close":
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


class Counted:
    """Counts the writes that reach the socket's transport."""

    writes = 0

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        Counted.writes += 1
        self._transport.write(data)

    def writelines(self, lines: Any) -> None:
        Counted.writes += 1
        self._transport.writelines(lines)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CountingProtocol(HttpProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Counted(transport))  # type: ignore[arg-type]


@pytest.fixture
async def server() -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = server_config(app, host="127.0.0.1", port=port)
    assert config.http is HttpProtocol  # what `interlink serve` runs
    config.http = CountingProtocol
    config.lifespan = "off"  # this app has no start-up or shutdown of its own
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    Counted.writes = 0
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def _raw(url: str, request: bytes, *, until: bytes, timeout: float = 5) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        data = b""
        while until not in data:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
            data += chunk
        return data
    finally:
        writer.close()


async def test_each_answer_is_one_write_on_a_kept_alive_connection(server: str) -> None:
    async with aiohttp.ClientSession() as session:
        for n in range(5):
            async with session.post(f"{server}/echo", data=str(n).encode()) as answer:
                assert answer.status == 200
                assert await answer.read() == f"echo:{n}".encode()
    assert Counted.writes == 5


async def test_pipelined_requests_are_answered_whole_and_in_order(server: str) -> None:
    one = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n1"
    two = b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n2"
    data = await _raw(server, one + two, until=b"echo:2")
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert data.index(b"echo:1") < data.index(b"echo:2")


async def test_a_streamed_head_is_not_held_until_its_body(server: str) -> None:
    Stream.go_on = asyncio.Event()
    try:
        async with aiohttp.ClientSession() as session:
            # The body follows only once the head has arrived: a head held until its body
            # would never come.
            async with asyncio.timeout(30):
                answer = await session.get(f"{server}/stream")
            async with answer:
                assert answer.status == 200
                Stream.go_on.set()
                assert await answer.read() == b"late"
    finally:
        Stream.go_on.set()  # let the app finish, whatever happened


async def test_a_large_body_arrives_intact(server: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server}/big") as answer:
            assert await answer.read() == BIG


async def test_expect_100_continue_is_answered_before_the_body_is_sent(server: str) -> None:
    host, port = server.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        writer.write(b"body")
        final = await asyncio.wait_for(reader.readuntil(b"echo:body"), 5)
        assert final.startswith(b"HTTP/1.1 200 OK")
    finally:
        writer.close()


async def test_an_answer_that_closes_the_connection_is_sent_whole_first(server: str) -> None:
    request = b"POST /close HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
    data = await _raw(server, request, until=b"\x00never")
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"echo:hi")
    assert b"connection: close" in data.lower()
