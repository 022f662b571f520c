"""AddressPolicy, literal parsing and URL validation, with an in-memory resolver."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interlink.egress import (
    AddressPolicy,
    BlockedDestination,
    DNSError,
    GuardedResolver,
    InvalidURL,
    StaticResolver,
    parse_allow_list,
    parse_ip_literal,
)
from interlink.egress.ssrf import hostname_problem


class ClosingResolver(StaticResolver):
    """The shipped `StaticResolver`, remembering whether it was closed."""

    closed = False

    async def close(self) -> None:
        self.closed = True


REFUSED = {
    "127.0.0.1": "127.0.0.0/8",
    "127.255.255.254": "127.0.0.0/8",
    "::1": "::1/128",
    "10.0.0.1": "10.0.0.0/8",
    "172.16.0.1": "172.16.0.0/12",
    "172.31.255.255": "172.16.0.0/12",
    "192.168.1.1": "192.168.0.0/16",
    "169.254.169.254": "169.254.0.0/16",
    "100.64.0.1": "100.64.0.0/10",
    "0.0.0.0": "0.0.0.0/8",
    "0.1.2.3": "0.0.0.0/8",
    "224.0.0.251": "224.0.0.0/4",
    "239.255.255.250": "224.0.0.0/4",
    "255.255.255.255": "255.255.255.255/32",
    "240.0.0.1": "240.0.0.0/4",
    "192.0.2.10": "192.0.2.0/24",
    "198.51.100.10": "198.51.100.0/24",
    "203.0.113.10": "203.0.113.0/24",
    "198.18.0.1": "198.18.0.0/15",
    "::": "::/128",
    "fc00::1": "fc00::/7",
    "fd12:3456::1": "fc00::/7",
    "fe80::1": "fe80::/10",
    "fe80::1%eth0": "fe80::/10",
    "ff02::1": "ff00::/8",
    "2001:db8::1": "2001:db8::/32",
    "::ffff:127.0.0.1": "127.0.0.0/8",
    "::ffff:169.254.169.254": "169.254.0.0/16",
    "::127.0.0.1": "::/96",
    "64:ff9b::7f00:1": "127.0.0.0/8",
    "64:ff9b:1::1": "64:ff9b:1::/48",
    "2002:7f00:1::1": "127.0.0.0/8",
    "2002:a00:1::1": "10.0.0.0/8",
    # Teredo with server 65.54.227.120 and client 127.0.0.1 (stored inverted).
    "2001:0:4136:e378:8000:63bf:80ff:fffe": "127.0.0.0/8",
    "100::1": "100::/64",
    "5f00::1": None,  # only checks that an address outside 2000::/3 is refused
}

ADMITTED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "100.63.255.255",
    "100.128.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "2606:4700:4700::1111",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize(("address", "network"), REFUSED.items())
def test_refused_addresses_name_their_range(address: str, network: str | None) -> None:
    with pytest.raises(BlockedDestination) as caught:
        AddressPolicy().check(address)

    if network is not None:
        assert caught.value.network == network
        assert network in str(caught.value)
    assert caught.value.error_class == "blocked_destination"
    assert not caught.value.retryable


@pytest.mark.parametrize("address", ADMITTED)
def test_public_addresses_are_admitted(address: str) -> None:
    AddressPolicy().check(address)


def test_metadata_refusal_says_metadata() -> None:
    with pytest.raises(BlockedDestination, match="metadata"):
        AddressPolicy().check("169.254.169.254")


def test_allow_list_overrides_including_mapped_forms() -> None:
    policy = AddressPolicy(parse_allow_list("127.0.0.0/8, 10.1.0.0/16"))

    policy.check("127.0.0.1")
    policy.check("::ffff:127.0.0.1")
    policy.check("10.1.2.3")
    with pytest.raises(BlockedDestination):
        policy.check("10.2.0.1")
    with pytest.raises(BlockedDestination):
        policy.check("::1")


def test_parse_allow_list_accepts_hosts_and_host_bits() -> None:
    assert parse_allow_list(" 10.1.2.3/8 ,127.0.0.1,, ::1 ") == [
        ip_network("10.0.0.0/8"),
        ip_network("127.0.0.1/32"),
        ip_network("::1/128"),
    ]
    with pytest.raises(ValueError, match="not-a-network"):
        parse_allow_list("not-a-network")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7F.0.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("fe80::1%25eth0", "fe80::1"),
    ],
)
def test_literals_in_every_notation(host: str, expected: str) -> None:
    assert parse_ip_literal(host) == ip_address(expected)


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "1password.com",
        "08.0.0.1",
        "256.0.0.1",
        "1.2.3.4.5",
        "0x",
        "1..1",
        "١٢٧.0.0.1",
        "1_0.0.0.1",
        "",
    ],
)
def test_non_literals_are_not_addresses(host: str) -> None:
    assert parse_ip_literal(host) is None


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_ipv4_spelling_means_the_same_address(value: int) -> None:
    address = IPv4Address(value)
    octets = [int(part) for part in str(address).split(".")]

    assert parse_ip_literal(str(value)) == address
    assert parse_ip_literal(hex(value)) == address
    assert parse_ip_literal(".".join(oct(o).replace("0o", "0") for o in octets)) == address
    assert parse_ip_literal(f"{octets[0]}.{value & 0xFFFFFF}") == address


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_mapped_ipv6_is_judged_as_its_ipv4(value: int) -> None:
    policy = AddressPolicy()
    mapped = IPv6Address(f"::ffff:{IPv4Address(value)}")

    def verdict(address: IPv4Address | IPv6Address) -> str | None:
        try:
            policy.check(address)
        except BlockedDestination as refused:
            return refused.network
        return None

    assert verdict(mapped) == verdict(IPv4Address(value))


def test_literal_host_check_mirrors_what_aiohttp_skips_resolving() -> None:
    policy = AddressPolicy()

    policy.check_literal_host("example.com")  # names are left to the resolver
    policy.check_literal_host("0x7f.0.0.1")  # not numeric to aiohttp: it resolves it
    with pytest.raises(BlockedDestination):
        policy.check_literal_host("127.1")
    with pytest.raises(BlockedDestination):
        policy.check_literal_host("::ffff:7f00:1")
    with pytest.raises(InvalidURL):
        policy.check_literal_host("1.2.3.4.5")


async def test_validate_url_checks_every_resolved_address() -> None:
    resolver = StaticResolver(
        {
            "public.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
            "mixed.example": ["93.184.215.14", "10.0.0.7"],
            "metadata.example": ["169.254.169.254"],
        }
    )
    policy = AddressPolicy()

    await policy.validate_url("https://public.example/hook", resolver)
    with pytest.raises(BlockedDestination) as caught:
        await policy.validate_url("https://mixed.example/hook", resolver)
    assert (caught.value.host, caught.value.address) == ("mixed.example", "10.0.0.7")
    with pytest.raises(BlockedDestination):
        await policy.validate_url("http://metadata.example/latest", resolver)
    with pytest.raises(DNSError):
        await policy.validate_url("https://nowhere.example/", resolver)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0x7f.0.0.1/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://10.0.0.1/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
async def test_validate_url_judges_literals_without_resolving(url: str) -> None:
    resolver = StaticResolver({})

    with pytest.raises(BlockedDestination):
        await AddressPolicy().validate_url(url, resolver)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://example.com/", "scheme"),
        ("https:///path", "no host"),
        ("https://user:secret@example.com/", "credentials"),
        ("https://example.com@127.0.0.1/", "credentials"),
        ("https://example.com:0/", "port"),
        ("https://exa mple.com/", "neither"),
        ("http://1.2.3.4.5/", "neither"),
        ("https://example..com/", "empty label"),
        ("https://.com/", "empty label"),
        (f"https://{'a' * 64}.com/", "longer than 63"),
        (f"https://{'a' * 60}.{'b' * 60}.{'c' * 60}.{'d' * 60}.{'e' * 60}.com/", "longer than 253"),
    ],
)
async def test_validate_url_refuses_malformed_urls(url: str, reason: str) -> None:
    with pytest.raises(InvalidURL, match=reason):
        await AddressPolicy().validate_url(url, StaticResolver({"example.com": ["8.8.8.8"]}))


async def test_require_https_admits_http_only_inside_the_allow_list() -> None:
    resolver = StaticResolver({"public.example": ["8.8.8.8"], "internal.example": ["10.9.0.5"]})
    policy = AddressPolicy(parse_allow_list("10.9.0.0/16"), require_https=True)

    await policy.validate_url("https://public.example/", resolver)
    await policy.validate_url("http://internal.example/", resolver)
    with pytest.raises(InvalidURL, match="https is required"):
        await policy.validate_url("http://public.example/", resolver)


async def test_guarded_resolver_refuses_before_returning_addresses() -> None:
    inner = ClosingResolver({"ok.example": ["8.8.8.8"], "evil.example": ["8.8.8.8", "127.0.0.1"]})
    guarded = GuardedResolver(AddressPolicy(), inner)

    assert [r["host"] for r in await guarded.resolve("ok.example", 443)] == ["8.8.8.8"]
    with pytest.raises(BlockedDestination) as caught:
        await guarded.resolve("evil.example", 443)
    assert caught.value.host == "evil.example"

    await guarded.close()
    assert inner.closed


async def test_guarded_resolver_admits_allowed_ranges() -> None:
    inner = StaticResolver({"localhost": ["127.0.0.1", "::1"]})
    guarded = GuardedResolver(AddressPolicy(parse_allow_list("127.0.0.0/8,::1")), inner)

    assert len(await guarded.resolve("localhost", 80, socket.AF_UNSPEC)) == 2


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("api.example.com", None),
        ("api.example.com.", None),
        ("under_score.example", None),
        (f"{'a' * 63}.example", None),
        ("xn--exmple-cua.com", None),
        ("", "is empty"),
        (".", "is empty"),
        ("a..b", "has an empty label"),
        (".example.com", "has an empty label"),
        ("example.com..", "has an empty label"),
        (f"{'a' * 64}.example", "has a label longer than 63 characters"),
        ("exa mple.com", "holds characters"),
        ("::1", "holds characters"),
    ],
)
def test_hostname_problem_names_what_dns_cannot_hold(host: str, problem: str | None) -> None:
    found = hostname_problem(host)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


@pytest.mark.parametrize("host", ["a..b", ".example.com", f"{'a' * 64}.example"])
async def test_a_name_the_resolver_cannot_encode_is_an_invalid_url(host: str) -> None:
    """The system resolver's IDNA codec raises UnicodeError (no OSError) on these: at connect
    time that was an unhandled error, a 500 from the proxy."""
    guarded = GuardedResolver(AddressPolicy())
    with pytest.raises(InvalidURL, match="the host name has"):
        await guarded.resolve(host, 443, socket.AF_UNSPEC)
    await guarded.close()
