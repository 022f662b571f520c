"""decode_payload: the payload the worker routes on and emits, integers beyond 64 bits exact."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

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
    with pytest.raises(PayloadError, match="nests JSON too deeply"):
        parse_json(body, "stripe")
    request = InboundRequest(method="POST", url="https://x/in/src", path_qs="/in/src", body=body)
    with pytest.raises(PayloadError):
        request.json("stripe")
