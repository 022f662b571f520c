"""The error tree and the one place aiohttp exceptions are translated."""

from __future__ import annotations

import errno
import ssl
from collections import namedtuple

import aiohttp
import pytest

from interlink.egress import (
    BlockedDestination,
    CircuitOpen,
    ConnectionFailed,
    ConnectionRefused,
    ConnectTimeout,
    DNSError,
    EgressError,
    EgressTimeout,
    InvalidURL,
    RateLimited,
    ReadTimeout,
    TLSError,
    TotalTimeout,
)
from interlink.egress.errors import translate_aiohttp_error

Key = namedtuple("Key", "host port is_ssl ssl proxy proxy_auth proxy_headers_hash")
KEY = Key("api.example", 443, True, True, None, None, None)


@pytest.mark.parametrize(
    ("error", "error_class", "retryable"),
    [
        (BlockedDestination("127.0.0.1", "127.0.0.0/8", "loopback"), "blocked_destination", False),
        (InvalidURL("x", "bad"), "invalid_url", False),
        (ConnectTimeout("x"), "timeout", True),
        (ReadTimeout("x"), "timeout", True),
        (TotalTimeout("x"), "timeout", True),
        (DNSError("x"), "dns", True),
        (TLSError("x"), "tls", False),
        (ConnectionRefused("x"), "connection_refused", True),
        (ConnectionFailed("x"), "connection", True),
        (CircuitOpen("h", 1.0), "circuit_open", True),
        (RateLimited("k", 1.0), "rate_limited", True),
    ],
)
def test_error_classes_and_retryability(
    error: EgressError, error_class: str, retryable: bool
) -> None:
    assert isinstance(error, EgressError)
    assert (error.error_class, error.retryable, error.attempts) == (error_class, retryable, 1)


def test_timeouts_share_a_base() -> None:
    assert all(issubclass(c, EgressTimeout) for c in (ConnectTimeout, ReadTimeout, TotalTimeout))
    assert issubclass(ConnectionRefused, ConnectionFailed)


def test_blocked_destination_message_names_host_address_and_range() -> None:
    error = BlockedDestination("10.0.0.7", "10.0.0.0/8", "private", host="mixed.example")

    assert str(error).startswith("destination refused: mixed.example resolved to 10.0.0.7")
    assert "10.0.0.0/8 (private)" in str(error)


def _ssl_error() -> ssl.SSLError:
    return ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] alert")


def _os_error_with_tls_cause() -> aiohttp.ClientOSError:
    error = aiohttp.ClientOSError(1, "lost")
    error.__cause__ = _ssl_error()
    return error


@pytest.mark.parametrize(
    ("raised", "url", "expected"),
    [
        (aiohttp.ConnectionTimeoutError("t"), "https://a/", ConnectTimeout),
        (aiohttp.SocketTimeoutError("t"), "https://a/", ReadTimeout),
        (aiohttp.ServerTimeoutError("t"), "https://a/", ReadTimeout),
        (TimeoutError(), "https://a/", TotalTimeout),
        (aiohttp.ClientConnectorDNSError(KEY, OSError(-2, "Name unknown")), "https://a/", DNSError),
        (
            aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(errno.ECONNREFUSED, "no")),
            "https://a/",
            ConnectionRefused,
        ),
        (
            aiohttp.ClientConnectorError(KEY, OSError(errno.ENETUNREACH, "unreachable")),
            "https://a/",
            ConnectionFailed,
        ),
        (aiohttp.ClientConnectorError(KEY, ConnectionResetError()), "https://a/", TLSError),
        (aiohttp.ClientConnectorError(KEY, ConnectionResetError()), "http://a/", ConnectionFailed),
        (aiohttp.ClientConnectorSSLError(KEY, _ssl_error()), "https://a/", TLSError),
        (
            aiohttp.ClientConnectorCertificateError(KEY, ssl.CertificateError("mismatch")),
            "https://a/",
            TLSError,
        ),
        (_os_error_with_tls_cause(), "https://a/", TLSError),
        (aiohttp.ServerDisconnectedError(), "https://a/", ConnectionFailed),
        (aiohttp.ClientPayloadError("cut"), "https://a/", ConnectionFailed),
        (aiohttp.InvalidURL("nope"), "nope", InvalidURL),
        (ConnectionResetError(errno.ECONNRESET, "reset"), "https://a/", ConnectionFailed),
    ],
)
def test_aiohttp_errors_are_translated(raised: BaseException, url: str, expected: type) -> None:
    translated = translate_aiohttp_error(raised, url)

    assert type(translated) is expected


def test_egress_errors_pass_through_untranslated() -> None:
    blocked = BlockedDestination("127.0.0.1", "127.0.0.0/8", "loopback")

    assert translate_aiohttp_error(blocked, "http://localhost/") is blocked
