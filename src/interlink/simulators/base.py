"""What every provider simulator shares.

- :class:`Faults`: the declarative fault profiles (``none``, ``latency``, ``rate_limit``,
  ``flaky``, ``timeout``, ``expiring_tokens``, ``revoked_refresh``, ``access_denied``),
  combinable by comma and switchable at run time through ``PUT /_sim/faults``.
- :class:`RecordGenerator`: seeded, deterministic fake records (the same seed gives the same
  records on every machine).
- :class:`OAuthServerSim`: an auto-approving OAuth 2.0 authorization server (authorization code
  with PKCE S256, refresh with or without rotation, client credentials, revocation) whose wire
  format each provider wraps.
- :class:`ProviderSimulator`: the aiohttp application around a provider's routes: fault
  injection, request recording, per-path statistics and the admin endpoints
  (``/_sim/faults``, ``/_sim/stats``, ``/_sim/requests``, ``/_sim/tokens``).
- :func:`serve_simulator` (in-process, for tests) and :func:`run_simulator` (the CLI).

The hot path (an authenticated list call) does no more than a dict lookup for the token, a slice
of precomputed records and one ``orjson.dumps``.
"""

# ruff: noqa: S105  (token prefixes and the simulator client secret are fixtures)
from __future__ import annotations

import abc
import asyncio
import base64
import binascii
import dataclasses
import enum
import hashlib
import importlib
import random
import secrets
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import orjson
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = [
    "FAULT_PROFILES",
    "SIMULATOR_NAMES",
    "SIM_CLIENT_ID",
    "SIM_CLIENT_SECRET",
    "Faults",
    "OAuthError",
    "OAuthRules",
    "OAuthServerSim",
    "ProviderSimulator",
    "RecordGenerator",
    "RecordedRequest",
    "RunningSimulator",
    "TokenCheck",
    "TokenGrant",
    "TokenStatus",
    "create_simulator",
    "json_response",
    "pkce_s256",
    "run_simulator",
    "serve_simulator",
]

SIM_CLIENT_ID = "interlink-sim-client"
"""The OAuth client every simulator knows."""
SIM_CLIENT_SECRET = "interlink-sim-secret"
"""Its client secret."""

SIMULATOR_NAMES: tuple[str, ...] = ("stripe", "salesforce", "hubspot", "github")
"""Providers with a simulator, in the order the CLI lists them."""

Clock = Callable[[], float]

# --- fault profiles ---------------------------------------------------------------------------

FAULT_PROFILES: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "none": {},
        "latency": {"latency_ms": (50, 300)},
        "rate_limit": {"rate_limit_every": 5},
        "flaky": {"flaky_ratio": 0.2},
        "timeout": {"timeout_ratio": 0.1},
        "expiring_tokens": {"access_token_ttl": 5.0},
        "revoked_refresh": {"revoked_refresh": True},
        "access_denied": {"deny_authorize": True},
    }
)
"""Profile name -> the :class:`Faults` settings it turns on."""


@dataclass(frozen=True, slots=True)
class Faults:
    """The faults a simulator injects; build with :meth:`parse`, tweak with :meth:`with_settings`.

    Faults apply to API routes; OAuth routes see only ``expiring_tokens``, ``revoked_refresh`` and
    ``access_denied``.
    """

    profiles: tuple[str, ...] = ()
    latency_ms: tuple[int, int] | None = None
    """Every API request waits a uniform random delay in this range."""
    rate_limit_every: int | None = None
    """Every Nth API request is answered with the provider's 429."""
    retry_after_seconds: int = 2
    flaky_ratio: float = 0.0
    """About this share of API requests fail with 500/502/503, in bursts of one to three."""
    timeout_ratio: float = 0.0
    """This share of API requests hangs ``hang_seconds`` before answering."""
    hang_seconds: float = 30.0
    access_token_ttl: float | None = None
    """Lifetime of access tokens issued from now on, overriding the provider's."""
    revoked_refresh: bool = False
    """Refresh grants answer ``invalid_grant``."""
    deny_authorize: bool = False
    """The authorize endpoint redirects back with ``error=access_denied``."""

    @classmethod
    def parse(cls, spec: str | Sequence[str]) -> Faults:
        """Combine profiles given as ``"latency,rate_limit"`` or a list of names.

        Raises:
            ValueError: an unknown profile name.
        """
        names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec)]
        names = [n for n in names if n and n != "none"]
        settings: dict[str, Any] = {}
        for name in names:
            if name not in FAULT_PROFILES:
                known = ", ".join(FAULT_PROFILES)
                raise ValueError(f"unknown fault profile '{name}' (known: {known})")
            settings.update(FAULT_PROFILES[name])
        return cls(profiles=tuple(dict.fromkeys(names)), **settings)

    def with_settings(self, **changes: Any) -> Faults:
        """Return a copy with some settings changed (types and ranges checked).

        Raises:
            ValueError: an unknown setting or a value of the wrong type or range.
        """
        fields_by_name = {f.name: f for f in dataclasses.fields(self)}
        clean: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in fields_by_name or key == "profiles":
                raise ValueError(f"unknown fault setting '{key}'")
            clean[key] = _check_setting(key, value)
        return dataclasses.replace(self, **clean)

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON-ready data (what ``GET /_sim/faults`` answers)."""
        data = dataclasses.asdict(self)
        data["profiles"] = list(self.profiles)
        data["latency_ms"] = list(self.latency_ms) if self.latency_ms else None
        return data


def _check_setting(key: str, value: Any) -> Any:
    if value is None and key in {"latency_ms", "rate_limit_every", "access_token_ttl"}:
        return None
    if key in {"revoked_refresh", "deny_authorize"}:
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false")
        return value
    if key == "latency_ms":
        if (
            not isinstance(value, list | tuple)
            or len(value) != 2
            or not all(isinstance(v, int) and v >= 0 for v in value)
            or value[0] > value[1]
        ):
            raise ValueError("latency_ms must be [low, high] milliseconds")
        return (value[0], value[1])
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number")
    if key in {"rate_limit_every", "retry_after_seconds"}:
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive integer")
        return value
    if key in {"flaky_ratio", "timeout_ratio"} and not 0 <= value <= 1:
        raise ValueError(f"{key} must be between 0 and 1")
    if value < 0:
        raise ValueError(f"{key} must not be negative")
    return float(value)


# --- deterministic records --------------------------------------------------------------------

_FIRST_NAMES = (
    "Ada", "Alan", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger",
    "Radia", "Tim", "Katherine", "Guido", "Hedy", "John", "Sophie", "Niklaus", "Anita", "Donald",
    "Joan", "Bjarne", "Lynn", "James", "Karen", "Leslie", "Mary", "Vint", "Shafi", "Whitfield",
)  # fmt: skip
_LAST_NAMES = (
    "Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie",
    "Allen", "Dijkstra", "Perlman", "Berners-Lee", "Johnson", "van Rossum", "Lamarr", "McCarthy",
    "Wilson", "Wirth", "Borg", "Knuth", "Clarke", "Stroustrup", "Conway", "Gosling", "Jones",
    "Lamport", "Kenneth", "Cerf", "Goldwasser", "Diffie",
)  # fmt: skip
_COMPANY_WORDS = (
    "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent",
    "Tyrell", "Cyberdyne", "Aperture", "Monarch", "Oscorp", "Wonka", "Gringotts", "Dunder",
    "Pied Piper", "Massive", "Nakatomi",
)  # fmt: skip
_COMPANY_SUFFIXES = ("Inc", "LLC", "Ltd", "GmbH", "Group", "Labs", "Systems", "Holdings")
_INDUSTRIES = (
    "Technology", "Manufacturing", "Retail", "Finance", "Healthcare", "Education", "Energy",
    "Media", "Transportation", "Hospitality",
)  # fmt: skip
_PLACES = (
    ("Berlin", "DE"), ("Paris", "FR"), ("London", "GB"), ("New York", "US"), ("Austin", "US"),
    ("Toronto", "CA"), ("Sydney", "AU"), ("Tokyo", "JP"), ("Madrid", "ES"), ("Lisbon", "PT"),
    ("Amsterdam", "NL"), ("Dublin", "IE"),
)  # fmt: skip
_PRODUCT_WORDS = (
    "Widget", "Gadget", "Sprocket", "Flux Capacitor", "Gizmo", "Doohickey", "Thingamajig",
    "Module", "Adapter", "Sensor", "License", "Subscription", "Support Plan", "Starter Kit",
)  # fmt: skip
_WORDS = (
    "sync", "fails", "when", "token", "expires", "during", "pagination", "webhook", "retry",
    "invoice", "customer", "export", "timeout", "slow", "crash", "missing", "field", "update",
    "records", "duplicate", "after", "upgrade", "error", "rate", "limit", "dashboard",
)  # fmt: skip
_ALPHANUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

SIM_EPOCH = 1_704_067_200
"""2024-01-01T00:00:00Z: generated records are created in the year after this instant."""


@dataclass(frozen=True, slots=True)
class Person:
    """A generated person."""

    first_name: str
    last_name: str
    email: str


class RecordGenerator:
    """Seeded fake data; each ``stream`` gets its own sequence, so streams are independent.

    Example:
        >>> gen = RecordGenerator(seed=7, stream="customers")
        >>> gen.ident("cus_", 14) == RecordGenerator(seed=7, stream="customers").ident("cus_", 14)
        True
    """

    def __init__(self, seed: int, stream: str) -> None:
        self.rng = random.Random(f"{seed}:{stream}")

    def ident(self, prefix: str, length: int, alphabet: str = _ALPHANUM) -> str:
        """A random id such as ``cus_NffrFeUfNV2Hib``."""
        return prefix + "".join(self.rng.choices(alphabet, k=length))

    def person(self, domain: str | None = None) -> Person:
        """A person with a matching e-mail address."""
        first = self.rng.choice(_FIRST_NAMES)
        last = self.rng.choice(_LAST_NAMES)
        local = f"{first}.{last}".lower().replace(" ", "").replace("-", "")
        number = self.rng.randrange(1, 10_000)
        return Person(first, last, f"{local}{number}@{domain or 'example.com'}")

    def company(self) -> str:
        """A company name."""
        return f"{self.rng.choice(_COMPANY_WORDS)} {self.rng.choice(_COMPANY_SUFFIXES)}"

    @staticmethod
    def domain_of(company: str, unique: int) -> str:
        """A web domain for a company (``unique`` keeps domains distinct)."""
        stem = company.split()[0].lower()
        return f"{stem}{unique}.example.com"

    def industry(self) -> str:
        """An industry."""
        return self.rng.choice(_INDUSTRIES)

    def place(self) -> tuple[str, str]:
        """A (city, ISO country code) pair."""
        return self.rng.choice(_PLACES)

    def phone(self) -> str:
        """A phone number in the reserved 555 range."""
        return f"+1-555-{self.rng.randrange(100, 1000)}-{self.rng.randrange(1000, 10000)}"

    def product(self) -> str:
        """A product name."""
        model = f"{self.rng.choice('ABCDEFGHJK')}{self.rng.randrange(1, 100)}"
        return f"{self.rng.choice(_PRODUCT_WORDS)} {model}"

    def sentence(self, words: int) -> str:
        """A lower-case sentence of ``words`` words, capitalised."""
        text = " ".join(self.rng.choices(_WORDS, k=words))
        return text[:1].upper() + text[1:]

    def amount(self, low: int, high: int) -> int:
        """An amount in minor units, rounded to 100."""
        return self.rng.randrange(low // 100, high // 100 + 1) * 100

    def timestamps(self, count: int, start: int = SIM_EPOCH, span: int = 365 * 86_400) -> list[int]:
        """``count`` strictly increasing Unix timestamps within ``span`` seconds of ``start``."""
        step = max(span // max(count, 1), 2)
        return [start + i * step + self.rng.randrange(0, step // 2) for i in range(count)]


# --- HTTP helpers -----------------------------------------------------------------------------


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response serialised with orjson."""
    return web.Response(
        body=orjson.dumps(data), status=status, headers=headers, content_type="application/json"
    )


def bearer_token(request: web.Request, schemes: tuple[str, ...] = ("bearer",)) -> str | None:
    """The credential of an ``Authorization: <scheme> <token>`` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() in schemes and token.strip():
        return token.strip()
    return None


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """Decode ``Authorization: Basic ...`` into (username, password)."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


async def read_form(request: web.Request) -> dict[str, str]:
    """The ``application/x-www-form-urlencoded`` (or multipart) fields of a request."""
    form = await request.post()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def origin_of(request: web.Request) -> str:
    """``scheme://host[:port]`` as the client addressed this server."""
    return f"{request.scheme}://{request.host}"


# --- OAuth authorization server ---------------------------------------------------------------


class OAuthError(Exception):
    """An OAuth error (RFC 6749 section 5.2) that a provider renders in its own wire format."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True, slots=True)
class OAuthRules:
    """How one provider's authorization server behaves."""

    access_token_ttl: int | None = 3600
    """Seconds an access token lives; ``None`` never expires."""
    rotate_refresh_tokens: bool = False
    """A refresh returns a new refresh token and invalidates the old one."""
    issue_refresh_token: bool = True
    refresh_token_ttl: int | None = None
    allow_client_credentials: bool = False
    access_token_prefix: str = "sim_at_"
    refresh_token_prefix: str = "sim_rt_"
    code_ttl: int = 600
    default_scope: str = ""


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """Tokens issued by one token request."""

    access_token: str
    refresh_token: str | None
    expires_in: int | None
    scope: str
    client_id: str
    issued_at: float
    grant_type: str = "authorization_code"
    """The grant that produced these tokens (``refresh_token``: ``refresh_token`` is the old one
    unless the provider rotates)."""


class TokenStatus(enum.Enum):
    """What a presented access token is."""

    VALID = "valid"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """The result of :meth:`OAuthServerSim.check`.

    ``expires_in`` is the remaining lifetime of a valid token (``None``: never expires);
    ``expired_for`` the seconds since an expired one expired.
    """

    status: TokenStatus
    scope: str = ""
    expires_in: float | None = None
    expired_for: float = 0.0


@dataclass(slots=True)
class _Code:
    client_id: str
    redirect_uri: str | None
    scope: str
    challenge: str | None
    challenge_method: str
    expires_at: float


@dataclass(slots=True)
class _AccessToken:
    client_id: str
    scope: str
    expires_at: float | None
    refresh_token: str | None


@dataclass(slots=True)
class _RefreshToken:
    client_id: str
    scope: str
    expires_at: float | None
    revoked: bool = False


def pkce_s256(verifier: str) -> str:
    """The S256 code challenge of a PKCE code verifier (RFC 7636 section 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OAuthServerSim:
    """An auto-approving OAuth 2.0 authorization server that a provider simulator wraps.

    It knows one confidential client (:data:`SIM_CLIENT_ID` / :data:`SIM_CLIENT_SECRET` unless
    ``clients`` says otherwise), accepts client authentication by form fields or HTTP Basic, and
    enforces PKCE whenever the authorization request carried a ``code_challenge``.
    """

    def __init__(
        self,
        rules: OAuthRules,
        *,
        faults: Callable[[], Faults],
        clock: Clock = time.time,
        clients: Mapping[str, str] | None = None,
    ) -> None:
        self.rules = rules
        self._faults = faults
        self._clock = clock
        self.clients: Mapping[str, str] = MappingProxyType(
            dict(clients or {SIM_CLIENT_ID: SIM_CLIENT_SECRET})
        )
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _AccessToken] = {}
        self._refresh: dict[str, _RefreshToken] = {}

    # authorization endpoint

    def authorize_redirect(self, query: Mapping[str, str]) -> str:
        """Approve (or deny) an authorization request and return the redirect URL.

        Denies with ``error=access_denied`` when the query has ``sim_deny=1`` or the
        ``access_denied`` fault is on.

        Raises:
            OAuthError: the client or redirect URI is unusable, so nothing may be redirected.
        """
        client_id = query.get("client_id", "")
        if client_id not in self.clients:
            raise OAuthError("invalid_client", f"unknown client_id '{client_id}'")
        redirect_uri = query.get("redirect_uri", "")
        parts = urlsplit(redirect_uri)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.fragment:
            raise OAuthError("invalid_request", "redirect_uri must be an absolute http(s) URL")
        reply: dict[str, str] = {}
        challenge = query.get("code_challenge")
        method = query.get("code_challenge_method", "plain")
        if query.get("response_type") != "code":
            reply["error"] = "unsupported_response_type"
        elif query.get("sim_deny") == "1" or self._faults().deny_authorize:
            reply["error"] = "access_denied"
            reply["error_description"] = "The user denied access"
        elif challenge is not None and method not in {"S256", "plain"}:
            reply["error"] = "invalid_request"
            reply["error_description"] = "code_challenge_method must be S256 or plain"
        else:
            code = secrets.token_urlsafe(24)
            self._codes[code] = _Code(
                client_id=client_id,
                redirect_uri=redirect_uri,
                scope=query.get("scope", self.rules.default_scope),
                challenge=challenge,
                challenge_method=method,
                expires_at=self._clock() + self.rules.code_ttl,
            )
            reply["code"] = code
        if "state" in query:
            reply["state"] = query["state"]
        separator = "&" if parts.query else "?"
        return f"{redirect_uri}{separator}{urlencode(reply)}"

    # token endpoint

    def authenticate_client(self, form: Mapping[str, str], authorization: str | None) -> str:
        """Check client credentials from HTTP Basic or the form; return the client id.

        Raises:
            OAuthError: ``invalid_client`` (status 401).
        """
        basic = basic_credentials(authorization)
        client_id, secret = basic if basic else (form.get("client_id"), form.get("client_secret"))
        if client_id is None or secret is None:
            raise OAuthError("invalid_client", "client authentication is missing", 401)
        expected = self.clients.get(client_id)
        if expected is None or not secrets.compare_digest(expected, secret):
            raise OAuthError("invalid_client", "client authentication failed", 401)
        return client_id

    def token_request(self, form: Mapping[str, str], authorization: str | None) -> TokenGrant:
        """Serve one token request (any supported grant type).

        Raises:
            OAuthError: the request is refused; ``error`` says why.
        """
        client_id = self.authenticate_client(form, authorization)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(client_id, form)
        if grant_type == "refresh_token":
            return dataclasses.replace(self._refresh_grant(client_id, form), grant_type=grant_type)
        if grant_type == "client_credentials" and self.rules.allow_client_credentials:
            grant = self.issue(client_id=client_id, scope=form.get("scope", ""), refresh=False)
            return dataclasses.replace(grant, grant_type=grant_type)
        raise OAuthError("unsupported_grant_type", f"grant_type '{grant_type}' is not supported")

    def _exchange_code(self, client_id: str, form: Mapping[str, str]) -> TokenGrant:
        code = self._codes.pop(form.get("code", ""), None)  # single use
        if code is None or code.expires_at < self._clock() or code.client_id != client_id:
            raise OAuthError("invalid_grant", "authorization code is invalid or expired")
        redirect_uri = form.get("redirect_uri")
        if redirect_uri is not None and redirect_uri != code.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization")
        if code.challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier:
                raise OAuthError("invalid_grant", "code_verifier is required")
            computed = pkce_s256(verifier) if code.challenge_method == "S256" else verifier
            if not secrets.compare_digest(computed, code.challenge):
                raise OAuthError("invalid_grant", "code_verifier does not match code_challenge")
        return self.issue(client_id=client_id, scope=code.scope)

    def _refresh_grant(self, client_id: str, form: Mapping[str, str]) -> TokenGrant:
        token = form.get("refresh_token", "")
        record = self._refresh.get(token)
        now = self._clock()
        if self._faults().revoked_refresh:
            raise OAuthError("invalid_grant", "refresh token has been revoked")
        if (
            record is None
            or record.revoked
            or record.client_id != client_id
            or (record.expires_at is not None and record.expires_at < now)
        ):
            raise OAuthError("invalid_grant", "refresh token is invalid, expired or revoked")
        if self.rules.rotate_refresh_tokens:
            record.revoked = True
            return self.issue(client_id=client_id, scope=record.scope)
        return self._issue_access(client_id, record.scope, refresh_token=token, now=now)

    def issue(
        self, *, client_id: str = SIM_CLIENT_ID, scope: str = "", refresh: bool = True
    ) -> TokenGrant:
        """Issue an access token (and a refresh token if the rules and ``refresh`` say so)."""
        now = self._clock()
        refresh_token: str | None = None
        if refresh and self.rules.issue_refresh_token:
            refresh_token = self.rules.refresh_token_prefix + secrets.token_urlsafe(32)
            ttl = self.rules.refresh_token_ttl
            self._refresh[refresh_token] = _RefreshToken(
                client_id, scope, None if ttl is None else now + ttl
            )
        return self._issue_access(client_id, scope, refresh_token=refresh_token, now=now)

    def _issue_access(
        self, client_id: str, scope: str, *, refresh_token: str | None, now: float
    ) -> TokenGrant:
        fault_ttl = self._faults().access_token_ttl
        ttl = fault_ttl if fault_ttl is not None else self.rules.access_token_ttl
        access_token = self.rules.access_token_prefix + secrets.token_urlsafe(32)
        self._access[access_token] = _AccessToken(
            client_id, scope, None if ttl is None else now + ttl, refresh_token
        )
        return TokenGrant(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_in=None if ttl is None else max(int(ttl), 1),
            scope=scope,
            client_id=client_id,
            issued_at=now,
        )

    # resource server side

    def check(self, access_token: str | None) -> TokenCheck:
        """Tell whether an access token is valid, expired or unknown (revoked counts as unknown)."""
        record = self._access.get(access_token or "")
        if record is None:
            return TokenCheck(TokenStatus.UNKNOWN)
        if record.expires_at is None:
            return TokenCheck(TokenStatus.VALID, record.scope)
        overdue = self._clock() - record.expires_at
        if overdue >= 0:
            return TokenCheck(TokenStatus.EXPIRED, record.scope, expired_for=overdue)
        return TokenCheck(TokenStatus.VALID, record.scope, expires_in=-overdue)

    def revoke(self, token: str) -> bool:
        """Revoke an access or refresh token (a refresh token takes its access tokens along).

        Returns:
            Whether the token was known.
        """
        if self._access.pop(token, None) is not None:
            return True
        record = self._refresh.get(token)
        if record is None:
            return False
        record.revoked = True
        for key in [k for k, v in self._access.items() if v.refresh_token == token]:
            del self._access[key]
        return True

    def revoke_all(self) -> list[str]:
        """Revoke every token issued so far; returns the revoked access tokens."""
        revoked = list(self._access)
        self._access.clear()
        for record in self._refresh.values():
            record.revoked = True
        return revoked


# --- the simulator application ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request a simulator received (admin requests are not recorded)."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    """Case-insensitive."""
    body: bytes
    status: int
    received_at: float

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (the body decoded as UTF-8 with replacement)."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": {str(name): value for name, value in self.headers.items()},
            "body": self.body.decode("utf-8", "replace"),
            "status": self.status,
            "received_at": self.received_at,
        }


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ProviderSimulator(abc.ABC):
    """An aiohttp application that speaks one provider's wire format.

    Subclasses add their routes, render their own error shapes and token responses, and may
    decorate every response (request ids, rate-limit headers). State a test can assert on:
    :attr:`requests`, :attr:`stats`, :attr:`faults`, :attr:`oauth`.
    """

    name: ClassVar[str]
    oauth_path_prefixes: ClassVar[tuple[str, ...]] = ()
    """Paths served by the OAuth server; API faults are not injected there."""

    def __init__(
        self,
        *,
        records: int = 100,
        seed: int = 0,
        faults: Faults | str = "none",
        clock: Clock = time.time,
        record_requests: bool = True,
        max_recorded: int = 10_000,
    ) -> None:
        if records < 0:
            raise ValueError("records must not be negative")
        self.records_per_stream = records
        self.seed = seed
        self.faults = faults if isinstance(faults, Faults) else Faults.parse(faults)
        self.clock = clock
        self.record_requests = record_requests
        self.requests: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self.stats: Counter[tuple[str, int]] = Counter()
        self._fault_rng = random.Random(f"{seed}:faults")
        self._api_calls = 0
        self._burst_left = 0
        self.oauth = OAuthServerSim(self.oauth_rules(), faults=lambda: self.faults, clock=clock)

    # provider hooks

    @abc.abstractmethod
    def oauth_rules(self) -> OAuthRules:
        """The provider's authorization-server behaviour."""

    @abc.abstractmethod
    def add_routes(self, app: web.Application) -> None:
        """Register the provider's API and OAuth routes."""

    @abc.abstractmethod
    def token_payload(self, request: web.Request, grant: TokenGrant) -> dict[str, Any]:
        """The provider's token-endpoint answer for a grant."""

    @abc.abstractmethod
    def rate_limited_response(self, request: web.Request, retry_after: int) -> web.Response:
        """The provider's 429 (``Retry-After`` is added by the caller)."""

    @abc.abstractmethod
    def server_error_response(self, request: web.Request, status: int) -> web.Response:
        """The provider's answer for an injected 5xx."""

    def not_found_response(self, request: web.Request) -> web.Response | None:
        """The provider's answer for an unknown URL, or ``None`` for aiohttp's plain 404."""
        return None

    def decorate_response(self, request: web.Request, response: web.StreamResponse) -> None:
        """Add provider headers to every non-admin response (default: nothing)."""
        return None

    # application

    def create_app(self) -> web.Application:
        """Build the aiohttp application (provider routes, admin routes, middleware)."""
        app = web.Application(middlewares=[self._middleware], client_max_size=4 * 1024 * 1024)
        app.router.add_get("/_sim/faults", self._get_faults)
        app.router.add_put("/_sim/faults", self._put_faults)
        app.router.add_get("/_sim/stats", self._get_stats)
        app.router.add_delete("/_sim/stats", self._delete_stats)
        app.router.add_get("/_sim/requests", self._get_requests)
        app.router.add_post("/_sim/tokens", self._post_token)
        self.add_routes(app)
        return app

    def set_faults(self, spec: Faults | str | Sequence[str], **settings: Any) -> Faults:
        """Switch the fault profile (and optionally tweak its settings); returns the new one."""
        faults = spec if isinstance(spec, Faults) else Faults.parse(spec)
        self.faults = faults.with_settings(**settings) if settings else faults
        self._api_calls = 0
        self._burst_left = 0
        return self.faults

    def count(self, path: str, status: int | None = None) -> int:
        """Requests received on ``path`` (with ``status``, if given)."""
        return sum(
            n for (p, s), n in self.stats.items() if p == path and (status is None or s == status)
        )

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_sim/"):
            return await handler(request)
        body = await request.read() if self.record_requests and request.body_exists else b""
        status = 500
        try:
            response: web.StreamResponse | None = None
            if not path.startswith(self.oauth_path_prefixes):
                response = await self._inject_faults(request)
            if response is None:
                try:
                    response = await handler(request)
                except web.HTTPNotFound:
                    response = self.not_found_response(request)
                    if response is None:
                        raise
            self.decorate_response(request, response)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self.stats[(path, status)] += 1
            if self.record_requests:
                self.requests.append(
                    RecordedRequest(
                        method=request.method,
                        path=path,
                        query=request.query_string,
                        headers=CIMultiDictProxy(CIMultiDict(request.headers)),
                        body=body,
                        status=status,
                        received_at=self.clock(),
                    )
                )

    async def _inject_faults(self, request: web.Request) -> web.StreamResponse | None:
        faults = self.faults
        if faults == _NO_FAULTS:
            return None
        self._api_calls += 1
        rng = self._fault_rng
        if faults.latency_ms:
            await asyncio.sleep(rng.uniform(*faults.latency_ms) / 1000)
        if faults.timeout_ratio and rng.random() < faults.timeout_ratio:
            await asyncio.sleep(faults.hang_seconds)
        if faults.rate_limit_every and self._api_calls % faults.rate_limit_every == 0:
            response = self.rate_limited_response(request, faults.retry_after_seconds)
            response.headers.setdefault("Retry-After", str(faults.retry_after_seconds))
            return response
        if faults.flaky_ratio:
            if self._burst_left > 0:
                self._burst_left -= 1
                return self.server_error_response(request, rng.choice((500, 502, 503)))
            # Bursts average two failures, so start one with probability r / (2 - r).
            if rng.random() < faults.flaky_ratio / (2 - faults.flaky_ratio):
                self._burst_left = rng.randint(0, 2)
                return self.server_error_response(request, rng.choice((500, 502, 503)))
        return None

    # admin endpoints

    async def _get_faults(self, request: web.Request) -> web.Response:
        return json_response(self.faults.to_json())

    async def _put_faults(self, request: web.Request) -> web.Response:
        try:
            data = orjson.loads(await request.read())
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            settings = dict(data)
            spec = settings.pop("profiles", self.faults.profiles)
            if not isinstance(spec, str | list | tuple):
                raise ValueError("profiles must be a string or a list of names")
            self.set_faults(spec, **settings)
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response(self.faults.to_json())

    async def _get_stats(self, request: web.Request) -> web.Response:
        paths: dict[str, dict[str, int]] = {}
        for (path, status), n in sorted(self.stats.items()):
            paths.setdefault(path, {})[str(status)] = n
        return json_response({"total": sum(self.stats.values()), "paths": paths})

    async def _delete_stats(self, request: web.Request) -> web.Response:
        self.stats.clear()
        self.requests.clear()
        return web.Response(status=204)

    async def _get_requests(self, request: web.Request) -> web.Response:
        return json_response([r.to_json() for r in self.requests])

    async def _post_token(self, request: web.Request) -> web.Response:
        """Mint a token without the browser dance (demo mode, benchmarks)."""
        raw = await request.read()
        try:
            data = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("scope", ""), str):
            return json_response({"error": 'expected {"scope"?: string}'}, status=400)
        grant = self.oauth.issue(scope=data.get("scope", self.oauth.rules.default_scope))
        return json_response(self.token_payload(request, grant))


_NO_FAULTS = Faults()


# --- running ----------------------------------------------------------------------------------


def create_simulator(
    name: str,
    *,
    records: int = 100,
    seed: int = 0,
    faults: Faults | str = "none",
    clock: Clock = time.time,
    record_requests: bool = True,
) -> ProviderSimulator:
    """Instantiate the simulator of provider ``name``.

    Raises:
        ValueError: no simulator for that provider, or an unknown fault profile.
    """
    if name not in SIMULATOR_NAMES:
        raise ValueError(f"no simulator for '{name}' (available: {', '.join(SIMULATOR_NAMES)})")
    module = importlib.import_module(f"interlink.simulators.{name}")
    cls: type[ProviderSimulator] = module.SIMULATOR
    return cls(
        records=records, seed=seed, faults=faults, clock=clock, record_requests=record_requests
    )


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    """A simulator serving on 127.0.0.1: its ``url`` and the ``simulator`` to assert on."""

    url: str
    simulator: ProviderSimulator
    host: str = field(default="127.0.0.1")
    port: int = field(default=0)


async def _start(
    simulator: ProviderSimulator, host: str, port: int, shutdown_timeout: float
) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(
        simulator.create_app(),
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=shutdown_timeout,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    if bound == 0 and runner.addresses:
        bound = int(runner.addresses[0][1])
    return runner, bound


@asynccontextmanager
async def serve_simulator(
    name: str,
    *,
    records: int = 100,
    faults: Faults | str = "none",
    seed: int = 0,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Clock = time.time,
    record_requests: bool = True,
) -> AsyncIterator[RunningSimulator]:
    """Serve a simulator in-process for the duration of the ``async with`` block.

    Example:
        >>> async with serve_simulator("stripe", records=50) as sim:
        ...     url = f"{sim.url}/v1/customers"
        ...     assert sim.simulator.count("/v1/customers") == 0

    Args:
        name: one of :data:`SIMULATOR_NAMES`.
        records: records generated per stream.
        faults: a :class:`Faults` or profile names, comma-separated.
        port: 0 picks a free port.
        clock: time source for token expiry and timestamps (tests pass a fake one).
    """
    simulator = create_simulator(
        name,
        records=records,
        seed=seed,
        faults=faults,
        clock=clock,
        record_requests=record_requests,
    )
    runner, bound = await _start(simulator, host, port, shutdown_timeout=0.5)
    try:
        yield RunningSimulator(f"http://{host}:{bound}", simulator, host, bound)
    finally:
        await runner.cleanup()


async def run_simulator(
    name: str,
    host: str = "127.0.0.1",
    port: int = 12111,
    records: int = 100,
    faults: Faults | str = "none",
    *,
    seed: int = 0,
    record_requests: bool = True,
    ready: Callable[[RunningSimulator], None] | None = None,
) -> None:
    """Serve a simulator until cancelled (what ``interlink simulate`` runs).

    Args:
        record_requests: keep the last requests for ``GET /_sim/requests`` (turn off for
            benchmarks).
        ready: called once the server listens (e.g. to print its URL).

    Raises:
        ValueError: unknown simulator or fault profile.
    """
    simulator = create_simulator(
        name, records=records, seed=seed, faults=faults, record_requests=record_requests
    )
    runner, bound = await _start(simulator, host, port, shutdown_timeout=2.0)
    try:
        if ready is not None:
            ready(RunningSimulator(f"http://{host}:{bound}", simulator, host, bound))
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
