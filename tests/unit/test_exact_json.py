"""exact_json: orjson's results and errors, except that integers beyond 64 bits stay exact."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from interlink import exact_json

BIG = 123456789012345678901234  # orjson reads 1.2345678901234569e+23
NEGATIVE = -(2**63) - 1  # orjson reads -9.223372036854776e+18
BEYOND_UNSIGNED = 2**64  # orjson reads 1.8446744073709552e+19


def both(text: str) -> list[Any]:
    """What loads makes of ``text`` given as bytes and as str."""
    return [exact_json.loads(text.encode()), exact_json.loads(text)]


def test_integers_beyond_64_bits_are_read_exactly_wherever_they_are() -> None:
    text = json.dumps(
        {"amount": BIG, "balance": NEGATIVE, "lines": [BEYOND_UNSIGNED, {"n": -BIG}], "x": 1.5}
    )
    for value in both(text):
        assert value == {
            "amount": BIG,
            "balance": NEGATIVE,
            "lines": [BEYOND_UNSIGNED, {"n": -BIG}],
            "x": 1.5,
        }
        assert type(value["amount"]) is int and type(value["lines"][1]["n"]) is int
    assert both(str(BIG)) == [BIG, BIG]
    assert orjson.loads(text)["amount"] != BIG  # what this module is for


@pytest.mark.parametrize(
    "text",
    [
        # 19 and 20 digits that fit in orjson's range are ints there already.
        '{"a": 1234567890123456789, "b": -9223372036854775808, "c": 18446744073709551615}',
        # A long run of digits in a string, a key or a float is not an integer at all.
        '{"id": "12345678901234567890123456", "12345678901234567890": true}',
        '{"f": 1.2345678901234567890123, "g": 12345678901234567890e-5, "h": -1e-30}',
        "[0.000000000000000000000000000001, 1e22, 123456789012345678901234.5]",
        '{"plain": 4900, "currency": "usd", "none": null, "ok": [true, false]}',
    ],
)
def test_other_values_are_orjsons_own(text: str) -> None:
    expected = orjson.loads(text)
    for value in both(text):
        assert value == expected
        assert repr(value) == repr(expected)  # the same types, the same floats


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1',
        b"",
        # The standard library reads these; orjson, so loads, does not, long digits or not.
        b'{"ratio": NaN, "n": 123456789012345678901234}',
        b'{"n": 1e400, "m": 123456789012345678901234}',
        b'{"note": "\\ud800", "n": 123456789012345678901234}',
        '{"n": 123456789012345678901234}'.encode("utf-16"),
        b'\xef\xbb\xbf{"n": 123456789012345678901234}',
    ],
)
def test_what_orjson_refuses_raises_its_error(body: bytes) -> None:
    with pytest.raises(orjson.JSONDecodeError):
        exact_json.loads(body)
    # Every caller catches one of these.
    assert exact_json.JSONDecodeError is orjson.JSONDecodeError
    assert issubclass(exact_json.JSONDecodeError, json.JSONDecodeError)
    assert issubclass(exact_json.JSONDecodeError, ValueError)


def test_a_nesting_only_orjson_reads_keeps_its_value() -> None:
    deep = b"[" * 1010 + str(BIG).encode() + b"]" * 1010
    value = exact_json.loads(deep)  # the standard library would raise RecursionError
    for _ in range(1010):
        (value,) = value
    assert value == orjson.loads(str(BIG))


def test_dumps_writes_integers_beyond_64_bits_exactly() -> None:
    value = {"b": BIG, "a": [NEGATIVE, BEYOND_UNSIGNED], "name": "Zoë", "at": "2026-01-01"}
    written = exact_json.dumps(value)
    assert written == (
        b'{"b":123456789012345678901234,"a":[-9223372036854775809,18446744073709551616],'
        b'"name":"Zo\xc3\xab","at":"2026-01-01"}'
    )
    assert exact_json.loads(written) == value
    assert exact_json.dumps(value, sort_keys=True).startswith(b'{"a":[')
    assert exact_json.dumps_text(value) == written.decode()
    with pytest.raises(TypeError, match="64-bit"):
        orjson.dumps(value)  # the message dumps recognises


@pytest.mark.parametrize(
    "value",
    [
        {"amount": 4900, "max": 18446744073709551615, "min": -(2**63), "f": 0.1, "s": "é\n"},
        {"z": 1, "a": {"y": None, "b": [1.5e300, True]}},
        {"at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)},  # orjson writes it; json cannot
    ],
)
def test_dumps_is_orjson_when_orjson_can(value: Any) -> None:
    assert exact_json.dumps(value) == orjson.dumps(value)
    assert exact_json.dumps(value, sort_keys=True) == orjson.dumps(
        value, option=orjson.OPT_SORT_KEYS
    )


def test_dumps_refuses_what_neither_can_write() -> None:
    with pytest.raises(TypeError):
        exact_json.dumps({1: "a key orjson refuses", "n": BIG})
    with pytest.raises(TypeError):
        exact_json.dumps({"s": {1, 2}})
    with pytest.raises(ValueError):
        exact_json.dumps({"n": BIG, "f": float("nan")})


def test_dumps_writes_datetimes_as_orjson_does_beside_a_big_integer() -> None:
    """The accept route answers a stored message (datetimes, maybe a fanned-out provider
    payload holding a big integer) with ``utc_z``: the fallback writes times as orjson does."""
    moment = datetime(2026, 11, 24, 23, 55, 51, 123456, tzinfo=UTC)
    whole = datetime(2026, 11, 24, 23, 55, 51, tzinfo=UTC)
    plain = {"created_at": moment, "at": whole}
    for utc_z in (False, True):
        expected = orjson.loads(exact_json.dumps(plain, utc_z=utc_z))
        mixed = orjson.loads(exact_json.dumps({**plain, "n": 1}, utc_z=utc_z))
        assert exact_json.loads(exact_json.dumps({**plain, "n": BIG}, utc_z=utc_z)) == {
            **expected,
            "n": BIG,
        }
        assert {k: v for k, v in mixed.items() if k != "n"} == expected
    assert exact_json.dumps({"t": moment, "n": BIG}, utc_z=True) == (
        b'{"t":"2026-11-24T23:55:51.123456Z","n":' + str(BIG).encode() + b"}"
    )
    with pytest.raises(TypeError):
        exact_json.dumps({"n": BIG, "other": object()})


@pytest.mark.parametrize("levels", [1, exact_json.MAX_DEPTH, exact_json.MAX_DEPTH + 1, 600])
def test_nests_deeper_counts_objects_and_arrays(levels: int) -> None:
    value: Any = {"leaf": 1}
    for n in range(levels - 1):
        value = [value] if n % 2 else {"k": value, "sibling": [1, 2]}
    text = json.dumps(value)
    expected = levels > exact_json.MAX_DEPTH
    assert exact_json.nests_deeper(text, value) is expected
    assert exact_json.nests_deeper(text.encode(), value) is expected


def test_brackets_inside_strings_only_cost_the_walk() -> None:
    value = {"text": "[" * 500, "n": [1]}
    assert not exact_json.nests_deeper(json.dumps(value), value)
