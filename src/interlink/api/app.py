"""The ASGI application: routers of the core and of every capability, errors, middleware."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from interlink import __version__
from interlink.api.errors import install_error_handlers
from interlink.api.middleware import FastPathMiddleware, RequestContextMiddleware
from interlink.api.routes import health, operations, tenants
from interlink.observability.tracing import tracer
from interlink.runtime import Runtime

__all__ = ["create_app"]


def create_app(runtime: Runtime, *, run_workers: bool = True, migrate: bool = False) -> FastAPI:
    """Build the API for ``runtime``; with ``run_workers`` the same process also works jobs."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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

    app = FastAPI(
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
    if mounts:  # added last, so it sits outside the request-context middleware
        app.add_middleware(FastPathMiddleware, mounts=mounts, metrics=runtime.metrics)
    return app
