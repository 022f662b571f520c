"""Event type payload schemas."""

from __future__ import annotations

from typing import Any

import pytest

from interlink.webhooks.outbound.schemas import (
    PayloadValidator,
    SchemaError,
    SchemaViolation,
    compile_schema,
)

INVOICE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id", "amount", "currency"],
    "properties": {
        "id": {"type": "string"},
        "amount": {"type": "integer", "minimum": 0},
        "currency": {"enum": ["usd", "eur"]},
        "customer": {
            "type": "object",
            "required": ["email"],
            "properties": {"email": {"type": "string", "format": "email"}},
        },
        "lines": {"type": "array", "items": {"$ref": "#/$defs/line"}},
    },
    "$defs": {
        "line": {
            "type": "object",
            "required": ["sku", "quantity"],
            "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer"}},
        }
    },
}

VALID = {
    "id": "inv_1",
    "amount": 1250,
    "currency": "usd",
    "customer": {"email": "ada@example.com"},
    "lines": [{"sku": "A-1", "quantity": 2}],
}


@pytest.fixture(scope="module")
def invoice() -> PayloadValidator:
    return compile_schema(INVOICE_SCHEMA)


def test_valid_payload_has_no_violations(invoice: PayloadValidator) -> None:
    assert invoice.errors(VALID) == []
    assert invoice.is_valid(VALID)


def test_violation_names_the_offending_field(invoice: PayloadValidator) -> None:
    payload = {**VALID, "amount": -5}
    assert invoice.errors(payload) == [
        SchemaViolation(
            path="amount",
            message="-5 is less than the minimum of 0",
            pointer="/amount",
            keyword="minimum",
        )
    ]
    assert not invoice.is_valid(payload)


def test_nested_and_referenced_violations_have_full_paths(invoice: PayloadValidator) -> None:
    payload = {
        **VALID,
        "customer": {"email": 42},
        "lines": [{"sku": "A-1", "quantity": 2}, {"sku": "B-2", "quantity": "two"}],
    }
    assert [(v.path, v.pointer, v.keyword) for v in invoice.errors(payload)] == [
        ("customer.email", "/customer/email", "type"),
        ("lines.1.quantity", "/lines/1/quantity", "type"),
    ]


def test_each_missing_required_property_is_reported_at_its_own_path(
    invoice: PayloadValidator,
) -> None:
    payload = {"amount": 1, "customer": {}, "lines": [{}]}
    violations = invoice.errors(payload)
    assert [(v.path, v.message) for v in violations] == [
        ("currency", "'currency' is a required property"),
        ("customer.email", "'email' is a required property"),
        ("id", "'id' is a required property"),
        ("lines.0.quantity", "'quantity' is a required property"),
        ("lines.0.sku", "'sku' is a required property"),
    ]
    assert {v.keyword for v in violations} == {"required"}


def test_root_violation_has_an_empty_path(invoice: PayloadValidator) -> None:
    assert invoice.errors(["not", "an", "object"]) == [
        SchemaViolation(
            path="",
            message="['not', 'an', 'object'] is not of type 'object'",
            pointer="",
            keyword="type",
        )
    ]


def test_pointer_escapes_keys_that_a_dotted_path_cannot_show() -> None:
    validator = compile_schema(
        {"properties": {"a.b": {"properties": {"c/d~e": {"type": "integer"}}}}}
    )
    (violation,) = validator.errors({"a.b": {"c/d~e": "x"}})
    assert violation.path == "a.b.c/d~e"
    assert violation.pointer == "/a.b/c~1d~0e"


def test_long_values_are_shortened_in_messages() -> None:
    validator = compile_schema({"type": "string"})
    (violation,) = validator.errors({"blob": "x" * 10_000})
    assert len(violation.message) == 300
    assert violation.message.endswith("…")


def test_formats_are_asserted_unless_turned_off() -> None:
    schema = {"properties": {"email": {"format": "email"}, "ip": {"format": "ipv4"}}}
    payload = {"email": "not-an-address", "ip": "999.1.1.1"}
    assert [v.path for v in compile_schema(schema).errors(payload)] == ["email", "ip"]
    assert compile_schema(schema, check_formats=False).errors(payload) == []


def test_boolean_schemas() -> None:
    assert compile_schema(True).errors({"anything": 1}) == []
    assert compile_schema(False).errors({}) == [
        SchemaViolation(
            path="", message="False schema does not allow {}", pointer="", keyword="false"
        )
    ]


def test_false_subschemas_report_the_refused_value_at_its_path() -> None:
    validator = compile_schema(
        {
            "properties": {"a": False, "nested": {"additionalProperties": False}},
            "prefixItems": [True, False],
            "anyOf": [{"const": False}, {"type": "object"}],
        }
    )
    assert [(v.path, v.keyword, v.message) for v in validator.errors({"a": 1, "b": 2})] == [
        ("a", "false", "False schema does not allow 1"),
    ]
    assert [(v.path, v.keyword) for v in validator.errors({"nested": {"x": 1, "y": 2}})] == [
        ("nested.x", "false"),
        ("nested.y", "false"),
    ]
    assert [(v.path, v.keyword) for v in validator.errors([1, 2])] == [
        ("", "anyOf"),
        ("1", "false"),
    ]
    # a ``false`` that is data, not a subschema, keeps its meaning
    assert validator.errors(False) == []
    assert validator.errors(True) == [
        SchemaViolation(
            path="",
            message="True is not valid under any of the given schemas",
            pointer="",
            keyword="anyOf",
        )
    ]


# --- refused schemas --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "path", "message"),
    [
        ({"type": "nope"}, "/type", "is not valid under any of the given schemas"),
        ({"properties": {"a": {"minimum": "0"}}}, "/properties/a/minimum", "'0' is not of type"),
        ({"required": "id"}, "/required", "'id' is not of type 'array'"),
        ({"items": [{"type": "string"}]}, "/items", "is not of type 'object', 'boolean'"),
        ({"$ref": "#/$defs/missing"}, "/$ref", "'#/$defs/missing' cannot be resolved"),
        (
            {"properties": {"a": {"$ref": "#/$defs/missing"}}},
            "/properties/a/$ref",
            "cannot be resolved",
        ),
        (
            {"$ref": "http://127.0.0.1:9/schema.json"},
            "/$ref",
            "only references within the schema are allowed",
        ),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#"},
            "/$schema",
            "must be 'https://json-schema.org/draft/2020-12/schema'",
        ),
    ],
)
def test_broken_schema_is_refused_with_its_location(
    schema: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(SchemaError) as caught:
        compile_schema(schema)
    assert caught.value.path == path
    assert message in caught.value.reason
    assert str(caught.value).startswith(f"invalid JSON Schema at {path}: ")


def test_schema_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(SchemaError, match="must be an object or a boolean, got list"):
        compile_schema([{"type": "string"}])  # type: ignore[arg-type]


def test_schema_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="invalid JSON Schema"):
        compile_schema({"minLength": -1})


def test_internal_references_and_anchors_resolve() -> None:
    validator = compile_schema(
        {
            "$id": "https://schemas.example.com/order.json",
            "properties": {
                "a": {"$ref": "#/$defs/positive"},
                "b": {"$ref": "#positive"},
                "c": {"$ref": "order.json#/$defs/positive"},
            },
            "$defs": {"positive": {"$anchor": "positive", "type": "integer", "minimum": 1}},
        }
    )
    assert [v.path for v in validator.errors({"a": 0, "b": 0, "c": 0})] == ["a", "b", "c"]
    assert validator.errors({"a": 1, "b": 2, "c": 3}) == []


def test_data_that_looks_like_a_reference_is_not_checked() -> None:
    validator = compile_schema({"const": {"$ref": "#/nowhere"}})
    assert validator.errors({"$ref": "#/nowhere"}) == []


def test_unresolvable_reference_under_a_nested_id_is_reported_when_used() -> None:
    validator = compile_schema(
        {
            "$id": "https://schemas.example.com/root.json",
            "properties": {
                "a": {"$id": "https://schemas.example.com/inner.json", "$ref": "missing.json"}
            },
        }
    )
    assert validator.errors({"b": 1}) == []
    with pytest.raises(SchemaError, match="cannot be resolved"):
        validator.errors({"a": 1})
    with pytest.raises(SchemaError, match="cannot be resolved"):
        validator.is_valid({"a": 1})
