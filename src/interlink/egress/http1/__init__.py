"""A lean HTTP/1.1 client for streamed calls: keep-alive pools over asyncio protocols.

`EgressClient.stream` (the proxy's path) sends through this pool instead of aiohttp. A proxied
call needs a small part of a general client: the body passes through as sent (no
decompression), redirects are never followed, cookies are never kept. Doing only that, with
the response parsed by ``httptools`` (the parser uvicorn uses), the proxy spends about half
the CPU per call it spent with aiohttp, and its throughput is bounded by that CPU.

``head`` writes a request's head, ``connection`` is one connection's protocol, ``pool`` the
pool that `EgressClient` holds.

What it does do:

- **Pools** per origin (scheme, host, port, TLS context), most recent connection first, idle
  ones closed after ``keepalive_timeout``; at most ``limit`` open connections in all (0: no
  bound), a caller beyond it waits its turn (within its total timeout).
- **The SSRF guard**: names are resolved through the `GuardedResolver` (a refused address
  fails the call before any socket is opened), answers are kept ``dns_cache_ttl`` seconds.
- **Timeouts** as `Timeouts` says: ``connect`` covers TCP and the TLS handshake, ``read`` is
  the longest silence while a response is awaited, ``total`` runs until the stream is closed.
- **A stale keep-alive connection** (closed by the server while idle, seen only when the next
  request is sent) is replaced by a new one and the request sent again, when it is
  idempotent and nothing of the answer had arrived.
- **Framing**: ``Content-Length`` for bytes, chunked transfer for a stream of chunks;
  responses by length, chunked or until close; ``HEAD`` and 1xx answers; back-pressure (the
  socket is not read while 256 KiB of the body wait for the reader).
- **Header injection** is refused: a name that is not a token or a value with CR, LF or NUL
  raises `InvalidRequest` before anything is sent.

Every failure leaves as an `EgressError`, like aiohttp's do through `translate_aiohttp_error`.
"""

from interlink.egress.http1.pool import Http1Pool

__all__ = ["Http1Pool"]
