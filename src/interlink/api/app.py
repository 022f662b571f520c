"""The ASGI application: routers of the core and of every capability, errors, middleware."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from interlink import __version__
from interlink.api.errors import install_error_handlers
from interlink.api.middleware import FastPaths, RequestContextMiddleware
from interlink.api.routes import health, operations, tenants
from interlink.observability.tracing import tracer
from interlink.runtime import Runtime

__all__ = ["InterlinkAPI", "create_app"]


class InterlinkAPI(FastAPI):
    """FastAPI, with the capabilities' hot paths (``asgi_mounts``) served ahead of all of it."""

    fast_paths: FastPaths | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_paths
        if fast is not None and scope["type"] == "http":
            served = fast.match(scope)
            if served is not None:
                scope["app"] = self
                await fast.serve(*served, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(runtime: Runtime, *, run_workers: bool = True, migrate: bool = False) -> FastAPI:
    """Build the API for ``runtime``; with ``run_workers`` the same process also works jobs."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.serving = True
        await runtime.start(migrate_schema=migrate)
        stop = asyncio.Event()
        workers = asyncio.create_task(runtime.run_workers(stop)) if run_workers else None
        app.state.stop = stop
        try:
            yield
        finally:
            stop.set()
            if workers is not None:
                await workers
            await runtime.close()

    app = InterlinkAPI(
        title="Interlink",
        version=__version__,
        summary="Self-hosted integration hub: connections, egress, sync, webhooks, events.",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        # Interlink makes its own spans and metrics (api.middleware); FastAPI's would double them.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    for router in (health.router, tenants.router, operations.router):
        app.include_router(router)
    for capability in runtime.capabilities:
        for router in capability.routers:
            app.include_router(router)
    app.add_middleware(
        RequestContextMiddleware, metrics=runtime.metrics, tracer=tracer(runtime.tracer_provider)
    )
    mounts = [
        (prefix, target)
        for capability in runtime.capabilities
        for prefix, target in capability.asgi_mounts.items()
    ]
    if mounts:
        app.fast_paths = FastPaths(mounts, runtime.metrics)
    return app
