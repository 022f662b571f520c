"""Pure pieces of connections: limits from hints, signed states, header and path handling."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from interlink.connections.catalog import LimitHint, TokenResponseMapping, load_catalog
from interlink.connections.policies import limit_of, policy_for
from interlink.connections.proxy.support import (
    forwardable_request_headers,
    path_template,
    response_headers,
)
from interlink.connections.signing import StateError, StateSigner, pkce_challenge, render_page
from interlink.connections.tokens import TokenError, parse_token_response
from interlink.egress import EgressStream
from interlink.vault.crypto import MasterKey


@pytest.mark.parametrize(("requests", "per"), [(100, 1), (110, 10), (5000, 3600), (5, 60), (1, 60)])
def test_a_bucket_never_admits_more_than_the_hint_in_a_window(requests: int, per: int) -> None:
    limit = limit_of(LimitHint(requests=requests, per_seconds=per))
    allowed = requests * (1.01 if requests < 10 else 1.0)
    assert limit.burst + limit.rate * per <= allowed + 1e-9


def test_explicit_burst_is_kept_and_the_strictest_limit_wins() -> None:
    assert limit_of(LimitHint(requests=2, per_seconds=1, burst=40)).burst == 40
    xero = policy_for(load_catalog()["xero"])
    assert xero.connection_limit is not None and xero.provider_limit is not None
    assert xero.connection_limit.rate == pytest.approx(5000 / 86400 * 0.9)
    github = policy_for(load_catalog()["github"])
    assert "X-RateLimit-Reset" in github.retry.reset_headers


def test_states_are_signed_single_key_expiring_and_rotatable() -> None:
    old, new = MasterKey(b"a" * 32), MasterKey(b"b" * 32)
    signer = StateSigner([old])
    state, nonce, _ = signer.issue(60)
    assert signer.verify(state) == nonce
    assert StateSigner([new, old]).verify(state) == nonce  # rotation: old keys verify
    with pytest.raises(StateError, match="not issued"):
        StateSigner([new]).verify(state)
    with pytest.raises(StateError, match="not issued"):
        signer.verify(state[:-2] + ("xx" if not state.endswith("xx") else "yy"))
    expired, _, _ = signer.issue(-1)
    with pytest.raises(StateError, match="expired"):
        signer.verify(expired)
    for garbage in ("", "a.b", "a.b.c.d", "x" * 300):
        with pytest.raises(StateError):
            signer.verify(garbage)


def test_pkce_challenge_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_pages_escape_what_they_show() -> None:
    page = render_page("<b>", "<script>x</script>", success=False, link='https://a/"x')
    assert "<script>" not in page and "&lt;script&gt;" in page and '"x' not in page


def test_hop_by_hop_and_caller_credentials_are_dropped() -> None:
    forwarded = forwardable_request_headers(
        [
            (b"authorization", b"Bearer ilk_x"), (b"cookie", b"a=1"), (b"host", b"h"),
            (b"connection", b"keep-alive"), (b"x-interlink-debug", b"1"),
            (b"content-length", b"3"), (b"accept", b"application/json"),
        ]
    )  # fmt: skip
    assert forwarded == {"accept": "application/json"}
    received = [("Transfer-Encoding", "chunked"), ("Set-Cookie", "s"), ("X-A", "1")]
    upstream = EgressStream(200, CIMultiDictProxy(CIMultiDict(received)), _no_body(), _nothing)
    assert response_headers(upstream) == [(b"x-a", b"1")]
    upstream.raw_headers = [(name.encode(), value.encode()) for name, value in received]
    assert response_headers(upstream) == [(b"x-a", b"1")]


async def _no_body() -> AsyncIterator[bytes]:
    return
    yield b""


async def _nothing() -> None:
    return None


def test_path_templates_hide_identifiers() -> None:
    assert path_template("/v1/customers/cus_NffrFeUfNV2Hib") == "/v1/customers/{id}"
    assert path_template("/repos/octocat/Hello-World/issues/42") == (
        "/repos/octocat/Hello-World/issues/{id}"
    )
    assert path_template("/sobjects/Account/001Dn00000Abc12345") == "/sobjects/Account/{id}"


def test_path_templates_are_remembered_within_a_bound() -> None:
    from interlink.connections.proxy import support

    support._TEMPLATES.clear()
    for n in range(support._TEMPLATES_KEPT + 10):
        assert path_template(f"/v1/customers/cus_{n:08d}x/notes") == "/v1/customers/{id}/notes"
    assert 0 < len(support._TEMPLATES) <= support._TEMPLATES_KEPT
    assert path_template("/v1/customers/cus_00000001x/notes") == "/v1/customers/{id}/notes"


def test_token_answers_are_read_by_the_mapping() -> None:
    mapping = TokenResponseMapping(config_fields={"team_id": "team.id"})
    tokens = parse_token_response(
        200, b'{"access_token":"a","expires_in":"60","team":{"id":"T1"}}', mapping, None
    )
    assert (tokens.access_token, tokens.expires_in, tokens.config) == ("a", 60, {"team_id": "T1"})
    form = parse_token_response(200, b"access_token=b&scope=repo", TokenResponseMapping(), 7)
    assert (form.access_token, form.expires_in, form.scope) == ("b", 7, "repo")
    for status, body, error in (
        (200, b'{"error":"bad_verification_code"}', "bad_verification_code"),  # GitHub's 200
        (400, b'{"error":"invalid_grant","error_description":"gone"}', "invalid_grant"),
        (502, b"<html>", "server_error"),
        (200, b"[1]", "invalid_response"),
    ):
        with pytest.raises(TokenError) as caught:
            parse_token_response(status, body, TokenResponseMapping(), None)
        assert caught.value.error == error
    assert TokenError("invalid_grant", "", 400).permanent
    assert not TokenError("server_error", "", 500).permanent
