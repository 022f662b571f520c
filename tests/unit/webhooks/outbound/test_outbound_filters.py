"""Endpoint payload filters: every operator, precise errors, and JSON equality properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlink.webhooks.outbound.filters import FilterError, PayloadFilter, compile_filter

PAYLOAD: dict[str, Any] = {
    "type": "invoice.paid",
    "timestamp": "2024-05-01T12:00:00Z",
    "data": {
        "amount": 150,
        "ratio": 0.5,
        "currency": "usd",
        "paid": True,
        "note": None,
        "tags": ["vip", "eu"],
        "customer": {"email": "ada@example.com", "country": "FR"},
        "lines": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
        "0": "a key that looks like an index",
        "one": 1,
        "flags": [True, False],
        "counts": [1, 0],
    },
}


def _matches(document: dict[str, Any], payload: Any = None) -> bool:
    return compile_filter(document).matches(PAYLOAD if payload is None else payload)


# --- table of operators -----------------------------------------------------------------------

CASES: list[tuple[str, dict[str, Any], bool]] = [
    # plain equality and $eq
    ("eq string", {"type": "invoice.paid"}, True),
    ("eq string, other value", {"type": "invoice.failed"}, False),
    ("eq nested", {"data.customer.country": "FR"}, True),
    ("eq number", {"data.amount": 150}, True),
    ("eq number int vs float", {"data.amount": 150.0}, True),
    ("eq bool is not a number", {"data.paid": 1}, False),
    ("eq number is not a bool", {"data.amount": True}, False),
    ("eq bool", {"data.paid": True}, True),
    ("eq 1 is not true", {"data.one": True}, False),
    ("eq list of bools is not list of numbers", {"data.counts": [True, False]}, False),
    ("eq list of numbers is not list of bools", {"data.flags": [1, 0]}, False),
    ("eq list of bools", {"data.flags": [True, False]}, True),
    ("eq object with a bool is not one with a number", {"data": {"one": True}}, False),
    ("eq null present", {"data.note": None}, True),
    ("eq null does not match missing", {"data.nothing": None}, False),
    ("eq list whole", {"data.tags": ["vip", "eu"]}, True),
    ("eq list order matters", {"data.tags": ["eu", "vip"]}, False),
    ("eq object whole", {"data.customer": {"country": "FR", "email": "ada@example.com"}}, True),
    ("eq object missing key", {"data.customer": {"country": "FR"}}, False),
    ("eq string is not a number", {"data.amount": "150"}, False),
    ("$eq operator", {"data.currency": {"$eq": "usd"}}, True),
    ("$eq missing", {"data.missing": {"$eq": "usd"}}, False),
    ("$eq object with $ keys", {"data.x": {"$eq": {"$gt": 1}}}, False),
    # list indexes
    ("index", {"data.lines.1.sku": "B-2"}, True),
    ("index 0", {"data.tags.0": "vip"}, True),
    ("index out of range", {"data.lines.5.sku": "B-2"}, False),
    ("digit key in an object", {"data.0": "a key that looks like an index"}, True),
    ("name on a list does not traverse", {"data.lines.sku": "A-1"}, False),
    ("path through a scalar", {"data.amount.value": 1}, False),
    # $ne
    ("$ne other", {"data.currency": {"$ne": "eur"}}, True),
    ("$ne same", {"data.currency": {"$ne": "usd"}}, False),
    ("$ne missing holds", {"data.missing": {"$ne": "usd"}}, True),
    ("$ne other type holds", {"data.amount": {"$ne": "150"}}, True),
    # $in / $nin
    ("$in", {"data.currency": {"$in": ["usd", "eur"]}}, True),
    ("$in absent", {"data.currency": {"$in": ["gbp", "eur"]}}, False),
    ("$in typed", {"data.amount": {"$in": ["150", True]}}, False),
    ("$in number", {"data.amount": {"$in": [1, 150.0]}}, True),
    ("$in object", {"data.lines.0": {"$in": [{"qty": 2, "sku": "A-1"}]}}, True),
    ("$in empty", {"data.currency": {"$in": []}}, False),
    ("$in true does not hold 1", {"data.one": {"$in": [True]}}, False),
    ("$in 1 does not hold true", {"data.paid": {"$in": [1, 1.0]}}, False),
    ("$in holds a bool", {"data.paid": {"$in": [1, True]}}, True),
    ("$in list of bools", {"data.counts": {"$in": [[True, False], [1, 0]]}}, True),
    ("$in list of bools only", {"data.counts": {"$in": [[True, False]]}}, False),
    ("$in missing", {"data.missing": {"$in": [None]}}, False),
    ("$nin", {"data.currency": {"$nin": ["gbp"]}}, True),
    ("$nin present", {"data.currency": {"$nin": ["usd"]}}, False),
    ("$nin missing holds", {"data.missing": {"$nin": ["usd"]}}, True),
    # comparisons
    ("$gt", {"data.amount": {"$gt": 149}}, True),
    ("$gt equal", {"data.amount": {"$gt": 150}}, False),
    ("$gte equal", {"data.amount": {"$gte": 150}}, True),
    ("$gte above", {"data.amount": {"$gte": 151}}, False),
    ("$lt", {"data.amount": {"$lt": 150.5}}, True),
    ("$lt equal", {"data.amount": {"$lt": 150}}, False),
    ("$lte equal", {"data.amount": {"$lte": 150}}, True),
    ("$lte below", {"data.ratio": {"$lte": 0.25}}, False),
    ("range", {"data.amount": {"$gte": 100, "$lt": 200}}, True),
    ("range outside", {"data.amount": {"$gte": 100, "$lt": 150}}, False),
    ("$gt string", {"timestamp": {"$gt": "2024-01-01"}}, True),
    ("$lt string", {"timestamp": {"$lt": "2024-01-01"}}, False),
    ("$gt string vs number", {"data.amount": {"$gt": "1"}}, False),
    ("$gt number vs string", {"data.currency": {"$gt": 0}}, False),
    ("$gt number vs bool", {"data.paid": {"$gte": 0}}, False),
    ("$gt number vs null", {"data.note": {"$lt": 1}}, False),
    ("$gt number vs list", {"data.tags": {"$lt": 1}}, False),
    ("$gt missing", {"data.missing": {"$gt": 0}}, False),
    ("$lte missing", {"data.missing": {"$lte": 0}}, False),
    # $exists
    ("$exists true", {"data.customer.email": {"$exists": True}}, True),
    ("$exists true on null", {"data.note": {"$exists": True}}, True),
    ("$exists true missing", {"data.customer.phone": {"$exists": True}}, False),
    ("$exists false missing", {"data.customer.phone": {"$exists": False}}, True),
    ("$exists false present", {"data.customer.email": {"$exists": False}}, False),
    # $and / $or
    ("$and all", {"$and": [{"type": "invoice.paid"}, {"data.amount": {"$gt": 100}}]}, True),
    ("$and one fails", {"$and": [{"type": "invoice.paid"}, {"data.amount": {"$gt": 200}}]}, False),
    ("$or one holds", {"$or": [{"data.currency": "eur"}, {"data.amount": 150}]}, True),
    ("$or none holds", {"$or": [{"data.currency": "eur"}, {"data.amount": 1}]}, False),
    (
        "nested logic",
        {"type": "invoice.paid", "$or": [{"$and": [{"data.paid": True}, {"data.ratio": 0.5}]}]},
        True,
    ),
    ("empty filter matches all", {}, True),
    # the example from the documentation
    (
        "documented example",
        {
            "data.amount": {"$gte": 100},
            "data.currency": {"$in": ["usd", "eur"]},
            "type": "invoice.paid",
            "data.customer.email": {"$exists": True},
        },
        True,
    ),
]


@pytest.mark.parametrize(
    ("document", "expected"),
    [pytest.param(document, expected, id=name) for name, document, expected in CASES],
)
def test_operator_table(document: dict[str, Any], expected: bool) -> None:
    assert _matches(document) is expected


@pytest.mark.parametrize(
    "payload",
    [None, 3, "text", [1, 2], {"data": "not an object"}, {"data": [1, 2, 3]}, {}],
)
def test_odd_payloads_never_raise(payload: Any) -> None:
    document = {
        "data.amount": {"$gte": 1, "$lt": "z"},
        "data.1": {"$in": [2, {"a": 1}]},
        "data.x.y": {"$exists": False},
    }
    payload_filter = compile_filter(document)
    assert payload_filter.matches(payload) is False
    assert payload_filter(payload) is False


def test_top_level_list_payload_can_be_indexed() -> None:
    assert compile_filter({"1.name": "b"}).matches([{"name": "a"}, {"name": "b"}])


def test_compiled_filter_keeps_its_document() -> None:
    document = {"type": "invoice.paid"}
    payload_filter = compile_filter(document)
    assert isinstance(payload_filter, PayloadFilter)
    assert payload_filter.document is document
    assert repr(payload_filter) == "PayloadFilter({'type': 'invoice.paid'})"


# --- invalid filters --------------------------------------------------------------------------

INVALID: list[tuple[str, Any, str, str | None, str]] = [
    (
        "unknown operator",
        {"data.amount": {"$regex": "x"}},
        "data.amount",
        "$regex",
        "data.amount: $regex: unknown operator (known: $eq, $exists, $gt, $gte, $in, $lt, "
        "$lte, $ne, $nin)",
    ),
    (
        "comparison with a bool",
        {"data.amount": {"$gte": True}},
        "data.amount",
        "$gte",
        "data.amount: $gte: operand must be a number or a string, got boolean",
    ),
    (
        "comparison with a list",
        {"data.amount": {"$lt": [1]}},
        "data.amount",
        "$lt",
        "data.amount: $lt: operand must be a number or a string, got array",
    ),
    (
        "comparison with null",
        {"data.amount": {"$gt": None}},
        "data.amount",
        "$gt",
        "data.amount: $gt: operand must be a number or a string, got null",
    ),
    (
        "$in with a scalar",
        {"data.currency": {"$in": "usd"}},
        "data.currency",
        "$in",
        "data.currency: $in: operand must be an array, got string",
    ),
    (
        "$nin with an object",
        {"data.currency": {"$nin": {"a": 1}}},
        "data.currency",
        "$nin",
        "data.currency: $nin: operand must be an array, got object",
    ),
    (
        "$exists with a number",
        {"data.x": {"$exists": 1}},
        "data.x",
        "$exists",
        "data.x: $exists: operand must be true or false, got number",
    ),
    (
        "non-finite number",
        {"data.x": {"$eq": float("inf")}},
        "data.x",
        "$eq",
        "data.x: $eq: numbers must be finite",
    ),
    (
        "NaN inside $in",
        {"data.x": {"$in": [1, float("nan")]}},
        "data.x",
        "$in",
        "data.x: $in: numbers must be finite",
    ),
    (
        "not JSON",
        {"data.x": {"$eq": {1, 2}}},
        "data.x",
        "$eq",
        "data.x: $eq: set is not a JSON value",
    ),
    (
        "mixed operators and keys",
        {"data.x": {"$gt": 1, "y": 2}},
        "data.x",
        None,
        "data.x: cannot mix operators and plain keys in one condition; "
        'write {"$eq": {...}} to compare with an object that has "$" keys',
    ),
    (
        "$or inside a field",
        {"data.x": {"$or": [{"a": 1}]}},
        "data.x",
        "$or",
        "data.x: $or: is only allowed where a field path is, not inside a field's condition",
    ),
    (
        "unknown top-level operator",
        {"$not": {"a": 1}},
        "",
        "$not",
        "$not: unknown top-level operator (only $and and $or may stand for a field path)",
    ),
    (
        "empty $or",
        {"$or": []},
        "",
        "$or",
        "$or: operand must be a non-empty array of filters",
    ),
    (
        "$and with an object",
        {"$and": {"a": 1}},
        "",
        "$and",
        "$and: operand must be a non-empty array of filters",
    ),
    (
        "$or item not an object",
        {"$or": [{"a": 1}, "b"]},
        "$or[1]",
        None,
        "$or[1]: a filter must be an object, got string",
    ),
    (
        "error deep inside logic",
        {"$or": [{"a": 1}, {"$and": [{"data.amount": {"$gte": "1", "$lt": False}}]}]},
        "$or[1].$and[0].data.amount",
        "$lt",
        "$or[1].$and[0].data.amount: $lt: operand must be a number or a string, got boolean",
    ),
    (
        "empty path segment",
        {"data..amount": 1},
        "data..amount",
        None,
        "data..amount: a field path must be dot-separated non-empty names",
    ),
    (
        "empty path",
        {"": 1},
        "",
        None,
        "a field path must be dot-separated non-empty names",
    ),
    (
        "trailing dot",
        {"data.": 1},
        "data.",
        None,
        "data.: a field path must be dot-separated non-empty names",
    ),
    (
        "document not an object",
        ["type", "invoice.paid"],
        "",
        None,
        "a filter must be an object, got array",
    ),
]


@pytest.mark.parametrize(
    ("document", "path", "operator", "message"),
    [pytest.param(doc, path, op, msg, id=name) for name, doc, path, op, msg in INVALID],
)
def test_invalid_filters_are_refused_with_path_and_operator(
    document: Any, path: str, operator: str | None, message: str
) -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter(document)
    assert caught.value.path == path
    assert caught.value.operator == operator
    assert str(caught.value) == message


def test_filter_error_is_a_value_error_with_its_reason() -> None:
    with pytest.raises(ValueError, match="operand must be an array") as caught:
        compile_filter({"a": {"$in": 1}})
    assert isinstance(caught.value, FilterError)
    assert caught.value.reason == "operand must be an array, got number"


# --- properties -------------------------------------------------------------------------------

# Values that Python's == or hashing could confuse, drawn often on purpose.
CONFUSABLE = [None, True, False, 0, 1, -1, 0.0, -0.0, 1.0, 2**53, float(2**53), "", "1", "true"]
scalars = st.one_of(
    st.sampled_from(CONFUSABLE),
    st.integers(min_value=-3, max_value=3),
    st.floats(min_value=-3, max_value=3, allow_nan=False),
    st.text(max_size=3),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)
# st.recursive mostly draws containers; operands need scalars at least as often.
operands = st.one_of(scalars, json_values)


def _twins(value: Any) -> list[Any]:
    """Values that Python's ``==`` confuses with ``value`` though JSON does not (or does)."""
    if isinstance(value, bool):
        return [int(value), float(value)]
    if isinstance(value, int):
        return [float(value), *([bool(value)] if value in (0, 1) else [])]
    if isinstance(value, float) and value.is_integer():
        return [int(value), *([bool(value)] if value in (0, 1) else [])]
    if isinstance(value, list):
        return [[(_twins(item) or [item])[0] for item in value]]
    return []


def _near(value: Any) -> st.SearchStrategy[Any]:
    """Values equal to, confusable with, or unrelated to ``value``."""
    return st.one_of(st.sampled_from([value, *_twins(value)]), operands)


@settings(max_examples=300)
@given(data=st.data(), operand=operands)
def test_in_of_one_value_is_equality_on_it(data: st.DataObject, operand: Any) -> None:
    value = data.draw(_near(operand), label="value")
    payload = {"field": value}
    by_in = compile_filter({"field": {"$in": [operand]}}).matches(payload)
    by_eq = compile_filter({"field": {"$eq": operand}}).matches(payload)
    assert by_in == by_eq
    assert compile_filter({"field": {"$nin": [operand]}}).matches(payload) == (not by_eq)
    assert compile_filter({"field": {"$ne": operand}}).matches(payload) == (not by_eq)
    if not (isinstance(operand, dict) and any(key.startswith("$") for key in operand)):
        assert compile_filter({"field": operand}).matches(payload) == by_eq


@given(operand=operands)
def test_a_value_always_equals_itself_and_never_matches_when_missing(operand: Any) -> None:
    assert compile_filter({"field": {"$eq": operand}}).matches({"field": operand})
    assert compile_filter({"field": {"$in": [operand]}}).matches({"field": operand})
    assert not compile_filter({"field": {"$eq": operand}}).matches({"other": operand})


@given(data=st.data(), items=st.lists(operands, max_size=4))
def test_in_is_equality_with_any_of_its_values(data: st.DataObject, items: list[Any]) -> None:
    candidates = [twin for item in items for twin in [item, *_twins(item)]]
    value = data.draw(st.one_of(st.sampled_from(candidates), operands) if items else operands)
    payload = {"field": value}
    expected = any(compile_filter({"field": {"$eq": item}}).matches(payload) for item in items)
    assert compile_filter({"field": {"$in": items}}).matches(payload) == expected


@given(
    value=st.one_of(st.integers(), st.floats(allow_nan=False), st.text(), st.booleans()),
    bound=st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text()),
)
def test_comparisons_split_the_line_and_never_cross_kinds(value: Any, bound: Any) -> None:
    payload = {"field": value}
    results = {
        op: compile_filter({"field": {op: bound}}).matches(payload)
        for op in ("$lt", "$lte", "$gt", "$gte")
    }
    same_kind = (isinstance(value, str) and isinstance(bound, str)) or (
        not isinstance(value, str | bool) and not isinstance(bound, str)
    )
    if not same_kind:
        assert not any(results.values())
        return
    assert results["$lt"] == (value < bound)
    assert results["$gte"] == (not results["$lt"])
    assert results["$gt"] == (not results["$lte"])
