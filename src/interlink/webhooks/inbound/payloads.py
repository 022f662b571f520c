"""Turning a stored raw body back into the payload the worker routes on and emits."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from interlink import exact_json

__all__ = ["decode_payload", "json_safe"]

_FORM = "application/x-www-form-urlencoded"


def json_safe(value: Any) -> Any:
    """``value`` without NUL characters in strings (PostgreSQL's jsonb cannot hold them)."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {json_safe(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    return value


def decode_payload(
    provider: str, content_type: str | None, body: bytes, parsed: tuple[Any] | None = None
) -> Any:
    """The parsed payload: JSON, a form as a dict (Slack interactivity: its ``payload`` JSON).

    A body that is neither, or whose JSON nests deeper than :data:`exact_json.MAX_DEPTH`, is
    returned as text (undecodable bytes replaced), so routing and events always have something
    to work with. Integers beyond 64 bits are kept exact
    (:mod:`interlink.exact_json`). ``parsed`` is the verifier's strict parse of ``body`` when
    the caller has one already (``InboundRequest.strict_json``).
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == _FORM:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if provider == "slack" and "payload" in form:
            try:
                value = exact_json.loads(form["payload"])
            except exact_json.JSONDecodeError:
                return json_safe(form)
            deep = exact_json.nests_deeper(form["payload"], value)
            return json_safe(form if deep else value)
        return json_safe(form)
    if parsed is not None:
        value = parsed[0]  # the verifier refused it if it nested too deep
    else:
        try:
            value = exact_json.loads(body)
        except exact_json.JSONDecodeError:
            return _text(body)
        if exact_json.nests_deeper(body, value):
            return _text(body)  # it could not be written into its event
    # In JSON a NUL can only be written as an escape; without one there is nothing to clean.
    return json_safe(value) if b"\\u0000" in body else value


def _text(body: bytes) -> str:
    return body.decode("utf-8", "replace").replace("\x00", "")
