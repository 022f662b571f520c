"""Routing decides on integers beyond 64 bits exactly, as the payload holds them."""

from __future__ import annotations

from typing import Any

from interlink.webhooks.inbound.payloads import decode_payload
from interlink.webhooks.inbound.routing import route_matches

# -2**63 - 1 and -2**63 are the same float: read as one, the balance would pass $gte -2**63.
BODY = (
    b'{"type": "invoice.paid", "data": {"object": '
    b'{"balance": -9223372036854775809, "amount": 18446744073709551617}}}'
)


def destination(payload_filter: dict[str, Any]) -> dict[str, Any]:
    return {"enabled": True, "event_types": ["invoice.*"], "filter": payload_filter}


def matches(payload_filter: dict[str, Any]) -> bool:
    payload = decode_payload("stripe", "application/json", BODY)
    return route_matches(destination(payload_filter), "invoice.paid", payload)


def test_a_filter_within_64_bits_decides_on_the_exact_value() -> None:
    assert not matches({"data.object.balance": {"$gte": -(2**63)}})
    assert matches({"data.object.balance": {"$lt": -(2**63)}})
    assert not matches({"data.object.balance": -(2**63)})


def test_a_filter_beyond_64_bits_decides_on_the_exact_value() -> None:
    # 2**64 + 1 and 2**64 are the same float; equal to one, less than the other, exactly.
    assert matches({"data.object.amount": {"$gte": 2**64 + 1}})
    assert not matches({"data.object.amount": {"$gt": 2**64 + 1}})
    assert matches({"data.object.amount": 2**64 + 1})
    assert not matches({"data.object.amount": {"$in": [2**64, 2**64 + 2]}})
