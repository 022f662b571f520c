"""The head of an HTTP/1.1 request, with the header checks that keep it one request."""

from __future__ import annotations

import re
from collections.abc import Mapping

from yarl import URL

from interlink.egress.errors import InvalidRequest
from interlink.egress.port import Body

__all__ = ["request_head"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Framing is the pool's own business: a caller's copy could smuggle a second request.
_FRAMING = frozenset({"content-length", "transfer-encoding", "host"})
_BODY_EXPECTED = frozenset({"POST", "PUT", "PATCH"})
# Names already checked, with their lower-case form: callers send the same few names again and
# again, and a regular expression per name cost more than the rest of the head (bounded; cleared
# when full).
_CHECKED: dict[str, str] = {}
_CHECKED_KEPT = 4096


def _checked(token: str) -> str | None:
    """``token`` in lower case if it is an HTTP token (a method or a header name), else None."""
    lowered = _CHECKED.get(token)
    if lowered is None:
        if not _TOKEN.fullmatch(token):
            return None
        if len(_CHECKED) >= _CHECKED_KEPT:
            _CHECKED.clear()
        lowered = _CHECKED[token] = token.lower()
    return lowered


def _one_line(value: str) -> bool:
    return "\r" not in value and "\n" not in value and "\0" not in value


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
    if _checked(method) is None:
        raise InvalidRequest(f"invalid method {method!r}")
    authority = f"[{host}]" if ":" in host else host
    if not target.is_default_port():
        authority = f"{authority}:{port}"
    lines = [f"{method} {target.raw_path_qs} HTTP/1.1\r\n", f"Host: {authority}\r\n"]
    seen_agent = seen_accept = False
    if headers:
        # All values at once: one scan of the joined text instead of one per value.
        if not _one_line("".join(headers.values())):
            bad = next(name for name, value in headers.items() if not _one_line(value))
            raise InvalidRequest(f"invalid header {bad!r}: names are tokens, values one line")
        for name, value in headers.items():
            lowered = _checked(name)
            if lowered is None:
                raise InvalidRequest(f"invalid header {name!r}: names are tokens, values one line")
            if lowered in _FRAMING:
                if lowered == "host":
                    lines[1] = f"Host: {value}\r\n"
                continue
            if lowered == "user-agent":
                seen_agent = True
            elif lowered == "accept":
                seen_accept = True
            lines.append(f"{name}: {value}\r\n")
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
