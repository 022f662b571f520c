"""What a capability (inbound webhooks, outbound webhooks, connections, ...) plugs into the core.

A capability is one folder that exposes a ``capability`` object of this type; the core never
imports a capability's internals. ``interlink.capabilities`` lists the installed ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter
    from starlette.types import ASGIApp

    from interlink.events.relay import EventSubscriber
    from interlink.queue.worker import BatchHandler, HourlyWork, JobHandler
    from interlink.runtime import Runtime

__all__ = ["Capability", "EncryptedColumn"]


@dataclass(frozen=True)
class EncryptedColumn:
    """A column whose values the vault encrypted; ``interlink keys rotate`` re-wraps them."""

    table: str
    key_column: str
    column: str


@dataclass(frozen=True)
class Capability:
    name: str
    routers: Sequence[APIRouter] = ()
    # Path prefix → raw ASGI app served ahead of FastAPI (see api.middleware.FastPaths).
    asgi_mounts: Mapping[str, ASGIApp] = field(default_factory=dict)
    job_handlers: Callable[[Runtime], Mapping[str, JobHandler | BatchHandler]] | None = None
    # Job kind → work run once an hour per deployment (``interlink.queue.hourly_handler``): the
    # core registers its handler and asks for the current hour's run when workers start.
    hourly_jobs: Callable[[Runtime], Mapping[str, HourlyWork]] | None = None
    event_subscribers: Callable[[Runtime], Sequence[EventSubscriber]] | None = None
    cli: typer.Typer | None = None
    cli_name: str | None = None
    migrations: Path | None = None
    encrypted_columns: Sequence[EncryptedColumn] = ()
    on_start: Callable[[Runtime], Awaitable[None]] | None = None
    on_stop: Callable[[Runtime], Awaitable[None]] | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)
