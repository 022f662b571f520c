"""Event type schemas: check that a message's payload has the shape its event type promises.

An event type in a tenant's catalog may carry a JSON Schema (Draft 2020-12) for its payload.
:func:`compile_schema` checks the schema once, against the Draft 2020-12 meta-schema and for
``$ref`` targets that do not exist, and returns a :class:`PayloadValidator` that is reused for
every message of that type::

    validator = compile_schema({
        "type": "object",
        "required": ["amount", "currency"],
        "properties": {"amount": {"type": "integer", "minimum": 0},
                       "currency": {"enum": ["usd", "eur"]}},
    })
    validator.errors({"amount": -5})
    # [SchemaViolation(path='amount', message='-5 is less than the minimum of 0', ...),
    #  SchemaViolation(path='currency', message="'currency' is a required property", ...)]

References are resolved only inside the schema itself: a ``$ref`` to a URL is refused, never
fetched (a tenant must not make Interlink open connections). ``format`` is asserted for the
formats jsonschema can check with what is installed (``email``, ``ipv4``, ``uuid``, ...;
``date-time`` needs the ``rfc3339-validator`` package); pass ``check_formats=False`` to treat
``format`` as an annotation only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as MetaSchemaViolation
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012, SchemaRegistry

__all__ = ["DIALECT", "PayloadValidator", "SchemaError", "SchemaViolation", "compile_schema"]

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
_DEFAULT_BASE_URI: Final = "urn:interlink:event-type-schema"
_MAX_MESSAGE_CHARS: Final = 300
# Keywords whose values are data, not subschemas: a "$ref" inside them is not a reference.
_DATA_KEYWORDS: Final = frozenset({"const", "enum", "examples", "default"})


# Keywords whose value is one subschema, a map of subschemas, or a list of subschemas.
_SUBSCHEMA_KEYWORDS: Final = frozenset(
    {
        "additionalProperties",
        "items",
        "contains",
        "propertyNames",
        "not",
        "if",
        "then",
        "else",
        "unevaluatedItems",
        "unevaluatedProperties",
        "contentSchema",
    }
)
_SUBSCHEMA_MAP_KEYWORDS: Final = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
_SUBSCHEMA_LIST_KEYWORDS: Final = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
# jsonschema reports a ``false`` subschema without the instance path; ``{"not": {}}`` refuses
# the same values and keeps the path. This very ``{}`` marks the replacements.
_ACCEPT_ALL: Final[dict[str, Any]] = {}


class SchemaError(ValueError):
    """A JSON Schema is refused: not valid Draft 2020-12, or a ``$ref`` that cannot be resolved.

    Attributes:
        path: where in the schema, as a JSON pointer (``/properties/amount/minimum``), or ``""``
            for the schema itself.
        reason: what is wrong, without the location.
    """

    def __init__(self, reason: str, *, path: str = "") -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"invalid JSON Schema at {path or '/'}: {reason}")


@dataclass(frozen=True, slots=True)
class SchemaViolation:
    """One way in which a payload breaks its schema.

    Attributes:
        path: the offending field as a dotted path (``data.lines.0.amount``); ``""`` is the
            payload itself. A missing required property is reported at the property's own path.
        message: what is wrong, in jsonschema's words (long values are shortened).
        pointer: the same location as a JSON pointer (``/data/lines/0/amount``), unambiguous
            even for keys containing dots.
        keyword: the schema keyword that failed (``type``, ``required``, ``minimum``, ...), or
            ``false`` where a ``false`` schema refused the value.
    """

    path: str
    message: str
    pointer: str = ""
    keyword: str = ""


def _pointer(parts: Iterator[str | int] | tuple[str | int, ...]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _shorten(message: str) -> str:
    if len(message) <= _MAX_MESSAGE_CHARS:
        return message
    return message[: _MAX_MESSAGE_CHARS - 1] + "…"


def _iter_refs(node: object, *, root: bool = True) -> Iterator[tuple[str, str]]:
    """Yield ``(pointer, ref)`` for every ``$ref`` in a schema; ``("", "$id")`` for a nested
    ``$id``, which changes the base URI and so makes a simple lookup unreliable."""
    stack: list[tuple[object, tuple[str | int, ...], bool]] = [(node, (), root)]
    while stack:
        current, location, is_root = stack.pop()
        if isinstance(current, dict):
            ref = current.get("$ref")
            if isinstance(ref, str):
                yield _pointer((*location, "$ref")), ref
            if not is_root and isinstance(current.get("$id"), str):
                yield "", "$id"
            for key, value in current.items():
                if key not in _DATA_KEYWORDS:
                    stack.append((value, (*location, key), False))
        elif isinstance(current, list):
            stack.extend((value, (*location, index), False) for index, value in enumerate(current))


def _check_refs(schema: dict[str, Any], registry: SchemaRegistry) -> None:
    refs = list(_iter_refs(schema))
    if any(ref == "$id" and where == "" for where, ref in refs):
        return  # nested base URIs: PayloadValidator.errors reports what cannot be resolved
    declared = schema.get("$id")
    base = declared if isinstance(declared, str) else _DEFAULT_BASE_URI
    resource = DRAFT202012.create_resource(schema)
    resolver = registry.with_resource(base, resource).crawl().resolver(base_uri=base)
    for where, ref in refs:
        try:
            resolver.lookup(ref)
        except Unresolvable:
            raise SchemaError(
                f"$ref {ref!r} cannot be resolved (only references within the schema are allowed)",
                path=where,
            ) from None


def _with_located_false(schema: Any) -> Any:
    """A copy of ``schema`` in which every ``false`` subschema is ``{"not": _ACCEPT_ALL}``."""
    if schema is False:
        return {"not": _ACCEPT_ALL}
    if not isinstance(schema, dict):
        return schema
    copy = dict(schema)
    for key, value in schema.items():
        if key in _SUBSCHEMA_KEYWORDS:
            copy[key] = _with_located_false(value)
        elif key in _SUBSCHEMA_MAP_KEYWORDS and isinstance(value, dict):
            copy[key] = {name: _with_located_false(item) for name, item in value.items()}
        elif key in _SUBSCHEMA_LIST_KEYWORDS and isinstance(value, list):
            copy[key] = [_with_located_false(item) for item in value]
    return copy


class PayloadValidator:
    """A compiled payload schema; build it with :func:`compile_schema`.

    Thread-safe and reusable: keep one per event type.

    Attributes:
        schema: the schema it was compiled from.
    """

    __slots__ = ("_validator", "schema")

    def __init__(self, schema: Mapping[str, Any] | bool, validator: Draft202012Validator) -> None:
        self.schema = schema
        self._validator = validator

    def __repr__(self) -> str:
        return f"PayloadValidator({self.schema!r})"

    def is_valid(self, payload: Any) -> bool:
        """Whether ``payload`` satisfies the schema (faster than :meth:`errors` when it does).

        Raises:
            SchemaError: a ``$ref`` inside a nested ``$id`` cannot be resolved.
        """
        try:
            return bool(self._validator.is_valid(payload))
        except Unresolvable as exc:
            raise SchemaError(f"$ref cannot be resolved: {exc}") from None

    def errors(self, payload: Any) -> list[SchemaViolation]:
        """Every violation of the schema by ``payload``, ordered by location; empty when valid.

        Args:
            payload: the parsed JSON payload.

        Returns:
            One :class:`SchemaViolation` per failed keyword at the top level of the schema's
            evaluation (an ``anyOf`` that fails is one violation, at the ``anyOf``).

        Raises:
            SchemaError: a ``$ref`` inside a nested ``$id`` cannot be resolved.
        """
        try:
            found = list(self._validator.iter_errors(payload))
        except Unresolvable as exc:
            raise SchemaError(f"$ref cannot be resolved: {exc}") from None
        if not found:
            return []
        # jsonschema yields one "required" error per missing property, in the order of the
        # keyword's list; count them per object to name the property each one is about.
        required_seen: dict[tuple[int, tuple[str | int, ...]], int] = {}
        violations: list[SchemaViolation] = []
        for error in found:
            location = tuple(error.absolute_path)
            keyword, message = str(error.validator), error.message
            if error.validator == "required":
                location = _missing_property_location(error, location, required_seen)
            elif error.validator == "not" and error.validator_value is _ACCEPT_ALL:
                keyword, message = "false", f"False schema does not allow {error.instance!r}"
            violations.append(
                SchemaViolation(
                    path=".".join(str(part) for part in location),
                    message=_shorten(message),
                    pointer=_pointer(location),
                    keyword=keyword,
                )
            )
        violations.sort(key=lambda violation: (violation.pointer, violation.keyword))
        return violations


def _missing_property_location(
    error: ValidationError,
    location: tuple[str | int, ...],
    seen: dict[tuple[int, tuple[str | int, ...]], int],
) -> tuple[str | int, ...]:
    instance, required = error.instance, error.validator_value
    if not isinstance(instance, dict) or not isinstance(required, list):
        return location
    missing = [name for name in required if name not in instance]
    key = (id(instance), tuple(error.absolute_schema_path))
    index = seen.get(key, 0)
    seen[key] = index + 1
    if index < len(missing) and isinstance(missing[index], str):
        return (*location, missing[index])
    return location


def compile_schema(
    schema: Mapping[str, Any] | bool, *, check_formats: bool = True
) -> PayloadValidator:
    """Check a payload schema and compile it for repeated validation.

    Args:
        schema: a JSON Schema, Draft 2020-12 (``$schema`` may be omitted; another dialect is
            refused). ``true`` and ``false`` are the schemas that accept and refuse everything.
        check_formats: assert ``format`` (see the module docstring) rather than ignore it.

    Returns:
        A :class:`PayloadValidator`.

    Raises:
        SchemaError: the schema breaks the Draft 2020-12 meta-schema, names another dialect,
            or has a ``$ref`` that does not resolve within itself; the error's ``path`` points
            at the offending place in the schema.

    Example::

        compile_schema({"type": "object", "properties": {"amount": {"minimum": "0"}}})
        # SchemaError: invalid JSON Schema at /properties/amount/minimum:
        #   '0' is not of type 'number'
    """
    if isinstance(schema, bool):
        document: dict[str, Any] | bool = schema
    elif isinstance(schema, Mapping):
        document = dict(schema)
        dialect = document.get("$schema")
        if dialect is not None and str(dialect).rstrip("#") != DIALECT:
            raise SchemaError(
                f"$schema must be {DIALECT!r} (Draft 2020-12), got {dialect!r}", path="/$schema"
            )
    else:
        raise SchemaError(f"a schema must be an object or a boolean, got {type(schema).__name__}")

    try:
        Draft202012Validator.check_schema(document)
    except MetaSchemaViolation as exc:
        raise SchemaError(_shorten(exc.message), path=_pointer(tuple(exc.absolute_path))) from None

    # An empty registry: references resolve within the schema only, nothing is fetched.
    registry: SchemaRegistry = Registry()
    if isinstance(document, dict):
        _check_refs(document, registry)
    validator = Draft202012Validator(
        _with_located_false(document),
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER if check_formats else None,
    )
    return PayloadValidator(schema, validator)
