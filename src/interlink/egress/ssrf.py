"""The SSRF guard: which addresses outbound calls may reach.

`AddressPolicy` judges one IP address; it refuses loopback, private, link-local (cloud
metadata), CGNAT, multicast, reserved, documentation and other special-purpose ranges, and
sees through IPv6 forms that carry an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo). An
allow-list of networks (from ``INTERLINK_EGRESS_ALLOW``) overrides the refusal.

The guard acts twice:

* at creation time, `AddressPolicy.validate_url` checks a URL (scheme, host, literal IPs in
  every notation ``inet_aton`` accepts, every address the name resolves to);
* at connect time, `GuardedResolver` wraps aiohttp's resolver so every address a name
  resolves to is judged before a socket is opened (DNS rebinding cannot slip through), and
  `AddressPolicy.check_literal_host` judges hosts that aiohttp connects to without resolving.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from interlink.egress.errors import BlockedDestination, DNSError, InvalidURL

__all__ = [
    "AddressPolicy",
    "GuardedResolver",
    "IPAddress",
    "IPNetwork",
    "hostname_problem",
    "parse_allow_list",
    "parse_ip_literal",
]

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# (network, label); the first match names the refusal, so specific ranges come first.
_REFUSED_V4: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "this network / unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT shared space"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local, includes cloud metadata 169.254.169.254"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)

_REFUSED_V6: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "deprecated IPv4-compatible"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001:2::/48", "benchmarking"),
    ("2001:10::/28", "deprecated ORCHID"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("fc00::/7", "unique local, private"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "deprecated site-local"),
    ("ff00::/8", "multicast"),
    # Everything outside global unicast 2000::/3 is reserved by the IETF.
    ("::/8", "reserved"),
    ("100::/8", "reserved"),
    ("200::/7", "reserved"),
    ("400::/6", "reserved"),
    ("800::/5", "reserved"),
    ("1000::/4", "reserved"),
    ("4000::/3", "reserved"),
    ("6000::/3", "reserved"),
    ("8000::/3", "reserved"),
    ("a000::/3", "reserved"),
    ("c000::/3", "reserved"),
    ("e000::/4", "reserved"),
    ("f000::/5", "reserved"),
    ("f800::/6", "reserved"),
    ("fe00::/9", "reserved"),
)

_Range = tuple[int, int, str, str]  # first, last, cidr, label


def _ranges(table: Iterable[tuple[str, str]]) -> tuple[_Range, ...]:
    out = []
    for cidr, label in table:
        net = ip_network(cidr)
        out.append((int(net.network_address), int(net.broadcast_address), cidr, label))
    return tuple(out)


_RANGES_V4 = _ranges(_REFUSED_V4)
_RANGES_V6 = _ranges(_REFUSED_V6)
_NAT64 = _ranges([("64:ff9b::/96", "NAT64")])[0]

_LITERAL_CACHE_SIZE = 1024
_IPV4_PART = re.compile(r"0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*", re.IGNORECASE)
_HOSTNAME = re.compile(r"[a-z0-9_.-]+", re.IGNORECASE)


def hostname_problem(host: str) -> str | None:
    """Why ``host`` cannot be looked up as a DNS name, or None when it can.

    The resolver encodes names with the IDNA codec, which raises (no ``OSError``) on an empty
    label (``a..b``, ``.com``) or one over 63 characters; RFC 1035 bounds the whole name to
    253. The host is the URL's ASCII form (yarl gives internationalised names as punycode).

        >>> hostname_problem("api.example.com"), hostname_problem("example.com.")
        (None, None)
        >>> hostname_problem("a..b")
        'has an empty label'
    """
    name = host[:-1] if host.endswith(".") else host
    if not name:
        return "is empty"
    if len(name) > 253:
        return "is longer than 253 characters"
    if not _HOSTNAME.fullmatch(name):
        return "holds characters other than letters, digits, '-', '_' and '.'"
    labels = name.split(".")
    if "" in labels:
        return "has an empty label"
    if max(map(len, labels)) > 63:
        return "has a label longer than 63 characters"
    return None


def parse_ip_literal(host: str) -> IPAddress | None:
    """Return the address a literal host means, or None if `host` is not a literal IP.

    IPv4 is read the way ``inet_aton`` (and so the socket layer) reads it: one to four
    dot-separated parts, each decimal, octal (leading ``0``) or hex (``0x``), the last part
    filling the remaining bytes. So ``2130706433``, ``0x7f000001``, ``0177.0.0.1``,
    ``0x7f.0.0.1`` and ``127.1`` all mean 127.0.0.1. IPv6 may be bracketed and carry a zone.

    Example:
        >>> parse_ip_literal("127.1")
        IPv4Address('127.0.0.1')
    """
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return None
    parts = host.removesuffix(".").split(".")
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.fullmatch(p) for p in parts):
        return None
    numbers = [_parse_ipv4_part(p) for p in parts]
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 1 << (8 * (4 - len(leading))):
        return None
    value = last
    for index, number in enumerate(leading):
        value |= number << (8 * (3 - index))
    return IPv4Address(value)


def _parse_ipv4_part(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:], 16)
    return int(part, 8 if part[0] == "0" else 10)


def parse_allow_list(value: str | Iterable[str]) -> list[IPNetwork]:
    """Parse allow-list CIDRs (``"10.0.0.0/8, 127.0.0.1"`` or a list) into networks.

    A bare address means that single host. Host bits are tolerated (``10.1.2.3/8`` means
    ``10.0.0.0/8``).

    Raises:
        ValueError: an entry is not an IP network.
    """
    items = value.split(",") if isinstance(value, str) else value
    return [ip_network(item.strip(), strict=False) for item in items if item.strip()]


def _looks_like_ip_to_aiohttp(host: str) -> bool:
    # aiohttp connects to such hosts without calling the resolver (helpers.is_ip_address).
    return ":" in host or host.replace(".", "").isdigit()


def _match(ranges: tuple[_Range, ...], value: int) -> tuple[str, str] | None:
    for first, last, cidr, label in ranges:
        if first <= value <= last:
            return cidr, label
    return None


class AddressPolicy:
    """Decides whether an outbound call may reach an address.

    Args:
        allow: networks admitted even though they fall in a refused range (parsed from
            ``INTERLINK_EGRESS_ALLOW`` by the caller, see `parse_allow_list`).
        require_https: `validate_url` refuses ``http://`` URLs unless every address the
            host resolves to is admitted by `allow`.

    Example:
        >>> policy = AddressPolicy(allow=parse_allow_list("10.1.0.0/16"))
        >>> policy.check("10.1.2.3")  # admitted by the allow-list
        >>> policy.check("10.2.0.1")
        Traceback (most recent call last):
        ...
        interlink.egress.errors.BlockedDestination: destination refused: 10.2.0.1 is in ...
    """

    def __init__(self, allow: Sequence[IPNetwork] = (), *, require_https: bool = False) -> None:
        self.allow: tuple[IPNetwork, ...] = tuple(allow)
        self.require_https = require_https
        self._allow_v4 = tuple(
            (int(n.network_address), int(n.broadcast_address)) for n in self.allow if n.version == 4
        )
        self._allow_v6 = tuple(
            (int(n.network_address), int(n.broadcast_address)) for n in self.allow if n.version == 6
        )
        self._admitted_literals: set[str] = set()  # the policy never changes, so verdicts hold

    def admits_explicitly(self, ip: IPAddress) -> bool:
        """Whether `ip` (or the IPv4 address an IPv4-mapped `ip` carries) is in the allow-list."""
        if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        value = int(ip)
        ranges = self._allow_v4 if ip.version == 4 else self._allow_v6
        return any(first <= value <= last for first, last in ranges)

    def check(self, ip: IPAddress | str, host: str | None = None) -> None:
        """Refuse `ip` unless outbound calls may reach it.

        Args:
            ip: the address (an ``ipaddress`` object or its standard text form).
            host: the host name it was resolved from, for the error message.

        Raises:
            BlockedDestination: names the address and the refused range.
        """
        address = ip_address(ip.split("%", 1)[0]) if isinstance(ip, str) else ip
        refusal = self._refusal(address)
        if refusal is not None:
            raise BlockedDestination(str(address), refusal[0], refusal[1], host)

    def _refusal(self, ip: IPAddress) -> tuple[str, str] | None:
        if self.admits_explicitly(ip):
            return None
        value = int(ip)
        if isinstance(ip, IPv4Address):
            return _match(_RANGES_V4, value)
        mapped = ip.ipv4_mapped
        if mapped is not None:  # the socket talks IPv4 to the embedded address
            refusal = self._refusal(mapped)
            return None if refusal is None else (refusal[0], f"{refusal[1]}, IPv4-mapped")
        if _NAT64[0] <= value <= _NAT64[1]:
            # DNS64 synthesises these for every IPv4-only name: judge the embedded address.
            refusal = self._refusal(IPv4Address(value & 0xFFFFFFFF))
            return None if refusal is None else (refusal[0], f"{refusal[1]}, via NAT64")
        for embedded, how in _tunnel_endpoints(ip):
            refusal = self._refusal(embedded)
            if refusal is not None:
                return refusal[0], f"{refusal[1]}, embedded in {how}"
        return _match(_RANGES_V6, value)

    def check_literal_host(self, host: str) -> None:
        """Judge a host that the HTTP client would connect to without resolving it.

        aiohttp skips the resolver for hosts that look like IP addresses; this closes that
        path. Hosts that are names are left to `GuardedResolver`.

        Raises:
            BlockedDestination: the literal address is refused.
            InvalidURL: the host looks numeric but is no address.
        """
        if host in self._admitted_literals or not _looks_like_ip_to_aiohttp(host):
            return
        ip = parse_ip_literal(host)
        if ip is None:
            raise InvalidURL(host, "numeric host that is not an IP address")
        self.check(ip, host)
        if len(self._admitted_literals) >= _LITERAL_CACHE_SIZE:
            self._admitted_literals.clear()
        self._admitted_literals.add(host)

    async def validate_url(self, url: str | URL, resolver: AbstractResolver | None = None) -> None:
        """Check a URL when it is configured (e.g. an endpoint is created).

        Scheme must be http or https, a host must be present, credentials in the URL are
        refused, a literal IP in any notation is judged as the address it means, and a
        name is resolved with every address judged.

        Args:
            url: the URL to check.
            resolver: resolves names (default: aiohttp's default resolver).

        Raises:
            InvalidURL: malformed, unsupported scheme, userinfo, or https required.
            BlockedDestination: the host is or resolves to a refused address.
            DNSError: the name does not resolve.
        """
        text = str(url)
        try:
            parsed = url if isinstance(url, URL) else URL(url)
        except ValueError as exc:
            raise InvalidURL(text, str(exc)) from exc
        if parsed.scheme not in ("http", "https"):
            raise InvalidURL(text, "scheme must be http or https")
        if parsed.raw_user is not None or parsed.raw_password is not None:
            raise InvalidURL(text, "credentials in the URL are not allowed; send them in headers")
        host = parsed.raw_host
        if not host:
            raise InvalidURL(text, "no host")
        port = parsed.port
        if port is None or not 0 < port < 65536:
            raise InvalidURL(text, "port must be between 1 and 65535")
        addresses = await self._addresses(text, host, port, resolver)
        for address in addresses:
            self.check(address, host)
        if (
            self.require_https
            and parsed.scheme == "http"
            and not all(self.admits_explicitly(a) for a in addresses)
        ):
            raise InvalidURL(text, "https is required for destinations outside the allow-list")

    async def _addresses(
        self, text: str, host: str, port: int, resolver: AbstractResolver | None
    ) -> list[IPAddress]:
        literal = parse_ip_literal(host)
        if literal is not None:
            return [literal]
        if _looks_like_ip_to_aiohttp(host):
            raise InvalidURL(text, "host is neither a valid name nor an IP address")
        if problem := hostname_problem(host):
            raise InvalidURL(text, f"host is neither a valid name nor an IP address: it {problem}")
        owned = resolver is None
        active = DefaultResolver() if resolver is None else resolver
        try:
            results = await active.resolve(host, port, family=socket.AF_UNSPEC)
        except OSError as exc:
            raise DNSError(f"cannot resolve {host}: {exc}") from exc
        finally:
            if owned:
                await active.close()
        if not results:
            raise DNSError(f"{host} resolved to no address")
        return [_resolved_address(host, r["host"]) for r in results]


def _resolved_address(host: str, text: str) -> IPAddress:
    try:
        return ip_address(text.split("%", 1)[0])
    except ValueError as exc:
        raise DNSError(f"resolver returned {text!r} for {host}, not an IP address") from exc


def _tunnel_endpoints(ip: IPv6Address) -> list[tuple[IPv4Address, str]]:
    six_to_four = ip.sixtofour
    if six_to_four is not None:
        return [(six_to_four, "6to4 2002::/16")]
    teredo = ip.teredo
    if teredo is not None:
        server, client = teredo
        return [(server, "Teredo 2001::/32 (server)"), (client, "Teredo 2001::/32 (client)")]
    return []


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that judges every resolved address before a socket is opened.

    It wraps the real resolver; if any address a name resolves to is refused, the whole
    resolution fails with `BlockedDestination` (a name that mixes public and private
    addresses is treated as hostile). aiohttp caches only successful resolutions, so a
    refused name is judged again on every connection attempt.

    Args:
        policy: the address policy.
        resolver: the real resolver (default: aiohttp's default resolver, created on first use).
    """

    def __init__(self, policy: AddressPolicy, resolver: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve `host` with the real resolver and judge every address."""
        if self._resolver is None:
            self._resolver = DefaultResolver()
        try:
            results = await self._resolver.resolve(host, port, family)
        except UnicodeError as exc:
            # The IDNA codec's refusal of a name no DNS can hold (an empty or too long label):
            # every egress connection resolves through this class, so it is turned here.
            problem = hostname_problem(host) or "cannot be encoded for DNS"
            raise InvalidURL(host, f"the host name {problem}") from exc
        for result in results:
            self.policy.check(_resolved_address(host, result["host"]), host)
        return results

    async def close(self) -> None:
        """Close the wrapped resolver."""
        if self._resolver is not None:
            await self._resolver.close()
