"""The head of an HTTP/1.1 request, with the header checks that keep it one request."""

from __future__ import annotations

import re
from collections.abc import Mapping

from yarl import URL

from interlink.egress.errors import InvalidRequest
from interlink.egress.port import Body

__all__ = ["request_head"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_UNSAFE_VALUE = re.compile(r"[\r\n\0]")
# Framing is the pool's own business: a caller's copy could smuggle a second request.
_FRAMING = frozenset({"content-length", "transfer-encoding", "host"})
_BODY_EXPECTED = frozenset({"POST", "PUT", "PATCH"})


def request_head(
    method: str,
    target: URL,
    host: str,
    port: int,
    headers: Mapping[str, str] | None,
    body: Body,
    user_agent: str,
) -> bytes:
    """The request line and headers; raises `InvalidRequest` for what would not be one line."""
    if not _TOKEN.fullmatch(method):
        raise InvalidRequest(f"invalid method {method!r}")
    authority = f"[{host}]" if ":" in host else host
    if not target.is_default_port():
        authority = f"{authority}:{port}"
    lines = [f"{method} {target.raw_path_qs} HTTP/1.1\r\n"]
    seen_agent = seen_accept = False
    host_line = f"Host: {authority}\r\n"
    for name, value in (headers or {}).items():
        if not _TOKEN.fullmatch(name) or _UNSAFE_VALUE.search(value):
            raise InvalidRequest(f"invalid header {name!r}: names are tokens, values one line")
        lowered = name.lower()
        if lowered in _FRAMING:
            if lowered == "host":
                host_line = f"Host: {value}\r\n"
            continue
        seen_agent = seen_agent or lowered == "user-agent"
        seen_accept = seen_accept or lowered == "accept"
        lines.append(f"{name}: {value}\r\n")
    lines.insert(1, host_line)
    if not seen_agent:
        lines.append(f"User-Agent: {user_agent}\r\n")
    if not seen_accept:
        lines.append("Accept: */*\r\n")
    if isinstance(body, bytes):
        lines.append(f"Content-Length: {len(body)}\r\n")
    elif body is None:
        if method in _BODY_EXPECTED:
            lines.append("Content-Length: 0\r\n")
    else:
        lines.append("Transfer-Encoding: chunked\r\n")
    lines.append("\r\n")
    text = "".join(lines)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")  # as aiohttp sends a value outside Latin-1
