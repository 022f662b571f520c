"""Endpoint payload filters: which messages an endpoint wants, beyond its event types.

A filter is a JSON document, validated once by :func:`compile_filter` into a
:class:`PayloadFilter` whose :meth:`~PayloadFilter.matches` runs prebuilt closures only::

    {
        "type": "invoice.paid",                          # plain equality
        "data.amount": {"$gte": 100},                    # operator
        "data.currency": {"$in": ["usd", "eur"]},
        "data.customer.email": {"$exists": true},
        "data.lines.0.sku": {"$ne": "free"},             # list index
        "$or": [{"data.country": "FR"}, {"data.vip": true}]
    }

Rules:

- Every key of a document is a condition and all must hold. ``$and`` and ``$or`` take a
  non-empty list of documents and may appear in any document, nested as deep as needed.
- A key that is not ``$and``/``$or`` is a dotted path: each segment is a key of an object, or,
  when the value there is a list, a zero-based index written in digits. There is no implicit
  traversal of lists: ``data.lines.sku`` does not look inside each line.
- A condition is either a literal (equality) or an object of operators, all of which must hold
  (``{"$gte": 1, "$lt": 10}``). An object without ``$`` keys is a literal object compared whole.
- Equality is JSON equality: ``true`` never equals ``1``, ``1`` equals ``1.0``, objects and
  lists compare element by element. ``null`` equals only a present ``null``; use ``$exists``
  to test presence.
- ``$ne`` and ``$nin`` are the exact negations of ``$eq`` and ``$in``, so they hold for a
  missing value.
- ``$gt``/``$gte``/``$lt``/``$lte`` take a number or a string and compare only with a value of
  the same kind (strings lexicographically, which orders ISO 8601 timestamps); any other value,
  or a missing one, does not match. Matching never raises.

Invalid documents raise :class:`FilterError` naming the path and operator, for a 422 answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

__all__ = ["OPERATORS", "FilterError", "PayloadFilter", "compile_filter"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Final = _Missing()

_Check = Callable[[Any], bool]

OPERATORS: Final = frozenset(
    {"$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists", "$and", "$or"}
)
_LOGICAL = ("$and", "$or")


class FilterError(ValueError):
    """A filter document is invalid.

    Attributes:
        path: where in the document the problem is, e.g. ``data.amount`` or
            ``$or[1].data.amount``; empty for the document itself.
        operator: the operator concerned (``$gte``), or None.
        reason: what is wrong, without the location.

    ``str(error)`` reads ``data.amount: $gte: operand must be a number or a string, got
    boolean``.
    """

    def __init__(self, reason: str, *, path: str = "", operator: str | None = None) -> None:
        self.path = path
        self.operator = operator
        self.reason = reason
        location = [part for part in (path, operator) if part]
        super().__init__(": ".join([*location, reason]))


# --- JSON values ------------------------------------------------------------------------------


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_equal(left: object, right: object) -> bool:
    """Equality as JSON sees it: booleans are not numbers, lists and tuples are arrays."""
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, str):
        return isinstance(right, str) and left == right
    if _is_number(left):
        return _is_number(right) and left == right
    if left is None:
        return right is None
    if isinstance(left, list | tuple):
        return (
            isinstance(right, list | tuple)
            and len(left) == len(right)
            and all(_json_equal(a, b) for a, b in zip(left, right, strict=True))
        )
    if isinstance(left, dict):
        return (
            isinstance(right, dict)
            and left.keys() == right.keys()
            and all(_json_equal(value, right[key]) for key, value in left.items())
        )
    return False


def _check_operand_value(value: object, path: str, operator: str | None) -> None:
    """Refuse operands that are not JSON (or JSON-only-by-accident, like NaN)."""
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise FilterError("numbers must be finite", path=path, operator=operator)
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_operand_value(item, path, operator)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise FilterError("object keys must be strings", path=path, operator=operator)
            _check_operand_value(item, path, operator)
        return
    raise FilterError(f"{type(value).__name__} is not a JSON value", path=path, operator=operator)


# --- compiled predicates over one value -------------------------------------------------------


def _equals(operand: object) -> _Check:
    """A predicate ``value == operand`` specialised on the operand's JSON kind."""
    if isinstance(operand, bool):
        return lambda value: value is operand
    if operand is None:
        return lambda value: value is None
    if isinstance(operand, str):
        return lambda value: isinstance(value, str) and value == operand
    if isinstance(operand, int | float):
        return lambda value: (
            isinstance(value, int | float) and not isinstance(value, bool) and value == operand
        )
    return lambda value: _json_equal(value, operand)


def _scalar_key(value: object) -> tuple[str, object] | None:
    """A hashable key under which JSON-equal scalars coincide (and only those)."""
    if isinstance(value, bool):
        return ("b", value)
    if value is None:
        return ("z", None)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, int | float):
        return ("n", value)
    return None


def _member_of(operands: Sequence[object]) -> _Check:
    keys: set[tuple[str, object]] = set()
    composites: list[object] = []
    for operand in operands:
        key = _scalar_key(operand)
        if key is None:
            composites.append(operand)
        else:
            keys.add(key)
    frozen = frozenset(keys)

    if not composites:

        def check(value: object) -> bool:
            key = _scalar_key(value)
            return key is not None and key in frozen

        return check

    def check_with_composites(value: object) -> bool:
        key = _scalar_key(value)
        if key is not None:
            return key in frozen
        return any(_json_equal(value, operand) for operand in composites)

    return check_with_composites


def _compare(operator: str, operand: float | str) -> _Check:
    if isinstance(operand, str):

        def same_kind(value: object) -> bool:
            return isinstance(value, str)
    else:

        def same_kind(value: object) -> bool:
            return isinstance(value, int | float) and not isinstance(value, bool)

    if operator == "$gt":
        return lambda value: same_kind(value) and value > operand
    if operator == "$gte":
        return lambda value: same_kind(value) and value >= operand
    if operator == "$lt":
        return lambda value: same_kind(value) and value < operand
    return lambda value: same_kind(value) and value <= operand


def _negate(check: _Check) -> _Check:
    return lambda value: not check(value)


def _compile_operator(operator: str, operand: object, path: str) -> _Check:
    """One ``{"$op": operand}`` into a predicate over the value found at ``path``."""
    if operator in ("$eq", "$ne"):
        _check_operand_value(operand, path, operator)
        equal = _equals(operand)
        if operator == "$eq":
            return lambda value: value is not _MISSING and equal(value)
        return lambda value: value is _MISSING or not equal(value)
    if operator in ("$in", "$nin"):
        if not isinstance(operand, list | tuple):
            raise FilterError(
                f"operand must be an array, got {_json_kind(operand)}",
                path=path,
                operator=operator,
            )
        _check_operand_value(operand, path, operator)
        member = _member_of(operand)
        if operator == "$in":
            return lambda value: value is not _MISSING and member(value)
        return lambda value: value is _MISSING or not member(value)
    if operator in ("$gt", "$gte", "$lt", "$lte"):
        if isinstance(operand, str | int | float) and not isinstance(operand, bool):
            _check_operand_value(operand, path, operator)
            return _compare(operator, operand)
        raise FilterError(
            f"operand must be a number or a string, got {_json_kind(operand)}",
            path=path,
            operator=operator,
        )
    if operator == "$exists":
        if not isinstance(operand, bool):
            raise FilterError(
                f"operand must be true or false, got {_json_kind(operand)}",
                path=path,
                operator=operator,
            )
        if operand:
            return lambda value: value is not _MISSING
        return lambda value: value is _MISSING
    if operator in _LOGICAL:
        raise FilterError(
            "is only allowed where a field path is, not inside a field's condition",
            path=path,
            operator=operator,
        )
    raise FilterError(
        f"unknown operator (known: {', '.join(sorted(OPERATORS.difference(_LOGICAL)))})",
        path=path,
        operator=operator,
    )


def _compile_condition(condition: object, path: str) -> _Check:
    """A field's condition (literal or operator object) into a predicate over its value."""
    if isinstance(condition, dict) and any(
        isinstance(key, str) and key.startswith("$") for key in condition
    ):
        if not all(isinstance(key, str) and key.startswith("$") for key in condition):
            raise FilterError(
                "cannot mix operators and plain keys in one condition; "
                'write {"$eq": {...}} to compare with an object that has "$" keys',
                path=path,
            )
        checks = [
            _compile_operator(operator, operand, path) for operator, operand in condition.items()
        ]
        return _all_of(checks)
    return _compile_operator("$eq", condition, path)


# --- paths ------------------------------------------------------------------------------------


def _compile_path(path: str, location: str) -> Callable[[Any], Any]:
    """A dotted path into a getter returning the value there, or ``_MISSING``."""
    segments = path.split(".")
    if not path or any(not segment for segment in segments):
        raise FilterError("a field path must be dot-separated non-empty names", path=location)
    steps: tuple[tuple[str, int | None], ...] = tuple(
        (segment, int(segment) if segment.isascii() and segment.isdigit() else None)
        for segment in segments
    )

    if len(steps) == 1 and steps[0][1] is None:
        # The common case, a top-level field: skip the loop.
        only_key = steps[0][0]

        def get_top(payload: Any) -> Any:
            if isinstance(payload, dict):
                return payload.get(only_key, _MISSING)
            return _MISSING

        return get_top

    def get(payload: Any) -> Any:
        current = payload
        for key, index in steps:
            if isinstance(current, dict):
                current = current.get(key, _MISSING)
                if current is _MISSING:
                    return _MISSING
            elif index is not None and isinstance(current, list | tuple):
                if index >= len(current):
                    return _MISSING
                current = current[index]
            else:
                return _MISSING
        return current

    return get


# --- documents --------------------------------------------------------------------------------


def _all_of(checks: Sequence[_Check]) -> _Check:
    if not checks:
        return lambda _payload: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda payload: first(payload) and second(payload)
    frozen = tuple(checks)

    def check(payload: Any) -> bool:
        for each in frozen:  # noqa: SIM110 (a plain loop: no generator on the hot path)
            if not each(payload):
                return False
        return True

    return check


def _any_of(checks: Sequence[_Check]) -> _Check:
    if len(checks) == 1:
        return checks[0]
    frozen = tuple(checks)

    def check(payload: Any) -> bool:
        for each in frozen:  # noqa: SIM110 (a plain loop: no generator on the hot path)
            if each(payload):
                return True
        return False

    return check


def _on_path(get: Callable[[Any], Any], check: _Check) -> _Check:
    return lambda payload: check(get(payload))


def _compile_document(document: object, location: str) -> _Check:
    if not isinstance(document, dict):
        raise FilterError(f"a filter must be an object, got {_json_kind(document)}", path=location)
    checks: list[_Check] = []
    for key, condition in document.items():
        if not isinstance(key, str):
            raise FilterError("field paths must be strings", path=location)
        if key in _LOGICAL:
            checks.append(_compile_logical(key, condition, location))
            continue
        path = f"{location}.{key}" if location else key
        if key.startswith("$"):
            raise FilterError(
                "unknown top-level operator (only $and and $or may stand for a field path)",
                path=location,
                operator=key,
            )
        get = _compile_path(key, path)
        checks.append(_on_path(get, _compile_condition(condition, path)))
    return _all_of(checks)


def _compile_logical(operator: str, operand: object, location: str) -> _Check:
    if not isinstance(operand, list) or not operand:
        raise FilterError(
            "operand must be a non-empty array of filters", path=location, operator=operator
        )
    prefix = f"{location}." if location else ""
    checks = [
        _compile_document(item, f"{prefix}{operator}[{position}]")
        for position, item in enumerate(operand)
    ]
    return _all_of(checks) if operator == "$and" else _any_of(checks)


class PayloadFilter:
    """A compiled payload filter; build it with :func:`compile_filter`.

    Attributes:
        document: the filter document it was compiled from (as given, for display and storage).
    """

    __slots__ = ("_check", "document")

    def __init__(self, document: Mapping[str, Any], check: _Check) -> None:
        self.document = document
        self._check = check

    def matches(self, payload: Any) -> bool:
        """Whether ``payload`` (parsed JSON: dicts, lists, str, int, float, bool, None) passes.

        Never raises: a missing field or a value of another type simply does not match.
        """
        return self._check(payload)

    __call__ = matches

    def __repr__(self) -> str:
        return f"PayloadFilter({self.document!r})"


def compile_filter(document: Mapping[str, Any]) -> PayloadFilter:
    """Validate a filter document and compile it for fast matching.

    Args:
        document: the filter, as parsed from JSON; ``{}`` matches every payload.

    Returns:
        A :class:`PayloadFilter`.

    Raises:
        FilterError: the document is not an object, a path is empty or malformed, an operator is
            unknown or misplaced, or an operand has the wrong type. The error names the path and
            the operator.

    Example::

        only_big = compile_filter({"data.amount": {"$gte": 100}})
        only_big.matches({"data": {"amount": 250}})    # True
        only_big.matches({"data": {"amount": "250"}})  # False: a string is not a number
    """
    return PayloadFilter(document, _compile_document(document, ""))
