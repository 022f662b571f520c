"""Shared request and response shapes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from interlink import exact_json
from interlink.api.deps import Page, encode_cursor

__all__ = ["JSONObject", "ListResponse", "Name", "StrictModel", "Text", "paginate"]

T = TypeVar("T")


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _no_nul_deep(value: Any, depth: int = 0) -> Any:
    # PostgreSQL's text and jsonb cannot hold NUL: refused up front rather than failing later.
    # JSON numbers beyond 64 bits are refused too: Interlink keeps them exact only in what
    # providers send it (interlink.exact_json), and many receivers' parsers would round them.
    # So is nesting deeper than exact_json.MAX_DEPTH: the store's serializer (orjson) stops at 254
    # levels, and the document is stored inside others (an event's data, a CloudEvent).
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise ValueError("integers must fit in 64 bits")
    elif isinstance(value, dict | list):
        if depth >= exact_json.MAX_DEPTH:
            raise ValueError(f"JSON documents may nest at most {exact_json.MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                _no_nul(key)
                _no_nul_deep(item, depth + 1)
        else:
            for item in value:
                _no_nul_deep(item, depth + 1)
    return value


JSONObject = Annotated[dict[str, Any], AfterValidator(_no_nul_deep)]
Text = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(_no_nul)]
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
    AfterValidator(_no_nul),
]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListResponse(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None


def paginate(
    rows: Sequence[dict[str, Any]], page: Page, *, key: str = "id"
) -> tuple[list[dict[str, Any]], str | None]:
    """Split ``limit + 1`` fetched rows into the page and the cursor of the next one."""
    items = list(rows[: page.limit])
    more = len(rows) > page.limit
    return items, encode_cursor(items[-1][key]) if more and items else None
