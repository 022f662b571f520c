"""Fixtures for egress integration tests: real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from interlink.egress import AddressPolicy, EgressClient, parse_allow_list

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Server:
    """An aiohttp server on a loopback address, counting the requests it handled."""

    url: str
    port: int
    hits: list[web.Request] = field(default_factory=list)


@dataclass
class Listener:
    """A raw TCP listener that counts accepted connections and answers 200 to anything."""

    host: str
    port: int
    connections: int = 0


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    """Factory: ``await serve(handler, host="127.0.0.1", ssl_context=None)`` -> `Server`."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler, host: str = "127.0.0.1", ssl_context=None) -> Server:
        server = Server(url="", port=0)

        async def counting(request: web.Request) -> web.StreamResponse:
            server.hits.append(request)
            return await handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", counting)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
        await site.start()
        server.port = runner.addresses[0][1]
        scheme = "https" if ssl_context is not None else "http"
        shown = f"[{host}]" if ":" in host else host
        server.url = f"{scheme}://{shown}:{server.port}"
        return server

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def listen() -> AsyncIterator[Callable[..., Awaitable[Listener]]]:
    """Factory: ``await listen(host="127.0.0.1")`` -> `Listener` counting TCP connections."""
    servers: list[asyncio.Server] = []

    async def start(host: str = "127.0.0.1") -> Listener:
        listener = Listener(host=host, port=0)

        async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            listener.connections += 1
            try:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server = await asyncio.start_server(on_connection, host, 0, family=family)
        servers.append(server)
        listener.port = server.sockets[0].getsockname()[1]
        return listener

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def guarded_client() -> AsyncIterator[EgressClient]:
    """A client with the default policy: every private and loopback range refused."""
    async with EgressClient() as client:
        yield client


@pytest.fixture
async def local_client() -> AsyncIterator[EgressClient]:
    """A client whose allow-list admits loopback (``INTERLINK_EGRESS_ALLOW=127.0.0.0/8``)."""
    async with EgressClient(
        address_policy=AddressPolicy(parse_allow_list("127.0.0.0/8"))
    ) as client:
        yield client


@pytest.fixture(params=["request", "send"])
def whole(request: pytest.FixtureRequest) -> str:
    """The two calls that read a whole response: through aiohttp, and the lean pool's."""
    return str(request.param)
