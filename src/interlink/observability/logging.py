"""structlog: JSON lines for machines, console rendering on a TTY, secrets redacted.

Every log line carries the request id bound by the HTTP middleware (``request_id``). A
processor replaces the value of any key that names a secret, and masks bearer tokens and
Interlink keys that slip into free text, before anything is rendered.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["configure_logging", "redact"]

_SECRET_KEYS = re.compile(
    r"(secret|password|passwd|token|api[_-]?key|authorization|cookie|credential|private|signature)",
    re.IGNORECASE,
)
_SECRET_TEXT = re.compile(
    r"(il[ak]_[A-Za-z0-9_\-]{8,}|whsec_[A-Za-z0-9+/=]{8,}|whsk_[A-Za-z0-9+/=]{8,}"
    r"|sk_(?:live|test)_[A-Za-z0-9]{8,}|Bearer\s+[A-Za-z0-9._~+/\-]{8,}=*)"
)
REDACTED = "[redacted]"


def redact(value: Any) -> Any:
    """Mask secrets in a value that is about to be logged or shown."""
    if isinstance(value, str):
        return _SECRET_TEXT.sub(REDACTED, value)
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and _SECRET_KEYS.search(key) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def _redact_processor(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if _SECRET_KEYS.search(key) and key != "event":
            event_dict[key] = REDACTED
        else:
            event_dict[key] = redact(value)
    return event_dict


def configure_logging(fmt: str | None = None, level: str = "info") -> None:
    """Configure structlog and route the standard library's logging through it."""
    use_json = fmt == "json" or (fmt is None and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_processor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    numeric = getattr(logging, level.upper())
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info if use_json else structlog.dev.set_exc_info,
            structlog.processors.StackInfoRenderer(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for noisy in ("uvicorn.access", "sqlalchemy.engine", "aiosqlite", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
