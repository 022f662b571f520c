"""decode_payload: the payload the worker routes on and emits, integers beyond 64 bits exact."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from interlink.exact_json import MAX_DEPTH
from interlink.webhooks.inbound.payloads import decode_payload
from interlink.webhooks.inbound.verifiers.base import InboundRequest, PayloadError, parse_json

FORM = "application/x-www-form-urlencoded"
EVENT = {
    "id": "evt_1",
    "type": "invoice.paid",
    "data": {"object": {"amount_due": 123456789012345678901234, "balance": -(2**63) - 1}},
}


def test_a_json_body_keeps_its_integers_exact() -> None:
    body = json.dumps(EVENT, indent=2).encode()

    payload = decode_payload("stripe", "application/json; charset=utf-8", body)

    assert payload == EVENT
    assert type(payload["data"]["object"]["amount_due"]) is int
    # A body orjson refuses is still its text, a long integer in it or not.
    refused = b'{"ratio": NaN, "n": 123456789012345678901234}'
    assert decode_payload("stripe", "application/json", refused) == refused.decode()


def test_a_slack_form_payload_keeps_its_integers_exact() -> None:
    interaction = {"type": "block_actions", "actions": [{"value": 2**64 + 1, "note": "a\x00b"}]}
    body = urlencode({"payload": json.dumps(interaction)}).encode()

    payload = decode_payload("slack", FORM, body)

    assert payload == {"type": "block_actions", "actions": [{"value": 2**64 + 1, "note": "ab"}]}


def test_a_body_nested_deeper_than_any_parser_reads_is_a_payload_error() -> None:
    """orjson refuses over 1,024 levels and the standard library runs out of stack: a clear
    400 (PayloadError), not a RecursionError escaping as a 500."""
    body = b"[" * 5000 + b"]" * 5000
    with pytest.raises(PayloadError, match="nests JSON more than 128 levels deep"):
        parse_json(body, "stripe")
    request = InboundRequest(method="POST", url="https://x/in/src", path_qs="/in/src", body=body)
    with pytest.raises(PayloadError):
        request.json("stripe")


def test_json_nested_deeper_than_interlink_writes_is_kept_as_text() -> None:
    """What the verifier did not parse (a form, a media type that needs no JSON) and nests
    deeper than exact_json.MAX_DEPTH stays text: the event it goes into can be written."""

    def document(levels: int) -> dict[str, object]:  # an object around levels - 1 arrays
        inner: object = "leaf"
        for _ in range(levels - 1):
            inner = [inner]
        return {"deep": inner}

    body = json.dumps(document(MAX_DEPTH + 1)).encode()
    assert decode_payload("hmac", "text/plain", body) == body.decode()
    form = {"payload": json.dumps(document(MAX_DEPTH + 1)), "token": "t"}
    assert decode_payload("slack", FORM, urlencode(form).encode()) == form
    fits = json.dumps(document(MAX_DEPTH)).encode()
    assert decode_payload("hmac", "text/plain", fits) == document(MAX_DEPTH)
