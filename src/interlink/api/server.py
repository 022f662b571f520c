"""The HTTP server's protocol: uvicorn's httptools protocol, with each answer sent in one write.

uvicorn writes a response's status line and headers when the app sends
``http.response.start`` and the body when it sends ``http.response.body``: two ``send``
system calls per answer, two TCP segments (the listening socket sets ``TCP_NODELAY``) and,
often, two wake-ups of the client. Here the head is held until the next write, which joins
it, so an answer whose body follows at once leaves in one write and one segment. A streamed
answer is not delayed: if nothing follows its head in the same pass of the event loop, the
head goes out at the end of that pass.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HeldWrites", "HttpProtocol", "server_config"]

# Above this, a write is not copied to join another: it goes out as it is.
_JOIN_LIMIT = 64 << 10


class HeldWrites:
    """A transport that holds a write for the next one (the module docstring); everything
    else is the wrapped transport's."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is None:
            if len(data) > _JOIN_LIMIT:
                self._transport.write(data)
                return
            # Held for the next write (the body) or, at the latest, the end of this pass.
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
            return
        self._held = None
        if len(data) > _JOIN_LIMIT:
            self._transport.writelines((held, data))
        else:
            self._transport.write(held + data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Send what is held (nothing once the transport is closing)."""
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`HeldWrites` transport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, HeldWrites(transport, self.loop)))


def server_config(app: Any, *, host: str, port: int) -> uvicorn.Config:
    """The uvicorn settings ``interlink serve`` runs ``app`` with."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
        http=HttpProtocol,
    )
