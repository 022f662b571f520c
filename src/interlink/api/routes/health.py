"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from interlink.api.deps import RuntimeDep
from interlink.api.errors import problem_response
from interlink.store.database import StoreUnavailable

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the store is reachable", response_model=None)
async def readyz(runtime: RuntimeDep) -> dict[str, Any] | Response:
    if not await runtime.db.ping():
        return problem_response(503, "the store is not reachable", slug="not-ready")
    return {"status": "ready", "database": runtime.db.dialect}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(runtime: RuntimeDep) -> Response:
    try:
        stats = await runtime.queue.stats()
    except StoreUnavailable:
        stats = None
    if stats is not None:
        runtime.metrics.queue_depth.clear()
        for kind, status, count in stats["counts"]:
            runtime.metrics.queue_depth.labels(kind, status).set(count)
        runtime.metrics.queue_lag.set(stats["lag_seconds"])
    return Response(runtime.metrics.render(), media_type="text/plain; version=0.0.4")
