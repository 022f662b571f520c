"""An auto-approving OAuth 2.0 authorization server that each provider simulator wraps.

It serves the authorization code grant with PKCE S256, refresh with or without rotation, client
credentials and revocation; each provider renders the results in its own wire format.
"""

# ruff: noqa: S105  (token prefixes and the simulator client secret are fixtures)
from __future__ import annotations

import base64
import dataclasses
import enum
import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlencode, urlsplit

from interlink.simulators.faults import Faults
from interlink.simulators.http import basic_credentials

__all__ = [
    "SIM_CLIENT_ID",
    "SIM_CLIENT_SECRET",
    "Clock",
    "OAuthError",
    "OAuthRules",
    "OAuthServerSim",
    "TokenCheck",
    "TokenGrant",
    "TokenStatus",
    "pkce_s256",
]

SIM_CLIENT_ID = "interlink-sim-client"
"""The OAuth client every simulator knows."""
SIM_CLIENT_SECRET = "interlink-sim-secret"
"""Its client secret."""

Clock = Callable[[], float]


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
