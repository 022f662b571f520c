"""Routing rules: which of a source's destinations an event goes to.

A destination matches an event when its ``event_types`` (if any) contain the provider's event
type, exactly or by a trailing ``*`` wildcard (``invoice.*``), and its payload ``filter`` (if
any, the syntax of :mod:`interlink.webhooks.outbound.filters`: dotted paths, ``$in``,
``$exists``, ...) matches the payload.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from interlink import exact_json
from interlink.webhooks.outbound.filters import FilterError, PayloadFilter, compile_filter

__all__ = ["FilterError", "check_rules", "event_type_matches", "route_matches"]


def event_type_matches(patterns: Sequence[str] | None, event_type: str | None) -> bool:
    """Whether ``event_type`` is selected by ``patterns`` (None or empty: every type)."""
    if not patterns:
        return True
    if event_type is None:
        return False
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith("*") and event_type.startswith(pattern[:-1]):
            return True
    return False


@lru_cache(maxsize=1024)
def _compiled(document: str) -> PayloadFilter:
    parsed: dict[str, Any] = exact_json.loads(document)
    return compile_filter(parsed)


def check_rules(
    event_types: Sequence[str] | None, payload_filter: Mapping[str, Any] | None
) -> None:
    """Validate a destination's rules.

    Raises:
        FilterError: the filter is not valid (the message names the path and operator).
    """
    if payload_filter is not None:
        compile_filter(payload_filter)
    for pattern in event_types or ():
        if "*" in pattern[:-1]:
            raise FilterError("a wildcard is allowed only at the end", path=pattern)


def route_matches(destination: Mapping[str, Any], event_type: str | None, payload: Any) -> bool:
    """Whether the event goes to ``destination`` (a row of ``inbound_destinations``)."""
    if not destination["enabled"]:
        return False
    if not event_type_matches(destination["event_types"], event_type):
        return False
    document = destination["filter"]
    if not document:
        return True
    return _compiled(exact_json.dumps_text(document, sort_keys=True)).matches(payload)
