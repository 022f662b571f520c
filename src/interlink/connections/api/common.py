"""Helpers shared by the connections routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from interlink.api.errors import Problem
from interlink.connections.oauth import FlowError

__all__ = ["ConnectionIdPath", "ProviderPath", "problem_of_flow"]

ConnectionIdPath = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9_]{1,60}$", description="Connection id (con_...)")
]
ProviderPath = Annotated[
    str, Path(pattern=r"^[a-z][a-z0-9_-]{0,49}$", description="Provider name (stripe, ...)")
]


def problem_of_flow(error: FlowError) -> Problem:
    headers = {"Retry-After": "30"} if error.status == 503 else None
    return Problem(error.status, error.detail, slug=error.slug, headers=headers)
