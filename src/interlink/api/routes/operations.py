"""Operator views: jobs (dead letters and retry), the audit log, and the event outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from interlink.api.deps import AdminDep, Page, PageDep, RuntimeDep, TenantDep, encode_cursor
from interlink.api.errors import Problem
from interlink.api.models import ListResponse, StrictModel, paginate
from interlink.audit import list_actions

router = APIRouter(tags=["operations"])


class JobPublic(StrictModel):
    id: str
    kind: str
    tenant_id: str | None
    status: str
    attempts: int
    max_attempts: int
    run_at: datetime
    idempotency_key: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def _job(row: dict[str, Any]) -> JobPublic:
    return JobPublic(**{k: row[k] for k in JobPublic.model_fields})


@router.get("/v1/jobs", summary="List jobs, e.g. the dead ones (admin)")
async def list_jobs(
    runtime: RuntimeDep,
    admin: AdminDep,
    page: PageDep,
    status: Annotated[Literal["queued", "running", "succeeded", "dead"] | None, Query()] = None,
    kind: Annotated[str | None, Query(max_length=100)] = None,
) -> ListResponse[JobPublic]:
    rows = await runtime.queue.list(
        status=status, kind=kind, after=page.after, limit=page.limit + 1
    )
    items, cursor = paginate(rows, page)
    return ListResponse(data=[_job(row) for row in items], next_cursor=cursor)


@router.get("/v1/jobs/{job_id}", summary="Get a job (admin)")
async def get_job(job_id: str, runtime: RuntimeDep, admin: AdminDep) -> JobPublic:
    row = await runtime.queue.get(job_id)
    if row is None:
        raise Problem.not_found("job", job_id)
    return _job(row)


@router.post("/v1/jobs/{job_id}/retry", summary="Retry a dead job (admin)")
async def retry_job(job_id: str, runtime: RuntimeDep, admin: AdminDep) -> JobPublic:
    if not await runtime.queue.retry_dead(job_id):
        row = await runtime.queue.get(job_id)
        if row is None:
            raise Problem.not_found("job", job_id)
        raise Problem(409, f"job {job_id} is {row['status']}, not dead", slug="job-not-dead")
    async with runtime.db.transaction() as conn:
        from interlink.audit import record_action

        await record_action(conn, admin, "job.retried", target=job_id)
    row = await runtime.queue.get(job_id)
    assert row is not None
    return _job(row)


class AuditEntry(StrictModel):
    id: str
    tenant_id: str | None
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]
    request_id: str | None
    created_at: datetime


async def _audit(
    runtime: RuntimeDep, tenant_id: str | None, page: Page, action: str | None
) -> ListResponse[AuditEntry]:
    async with runtime.db.transaction() as conn:
        rows = await list_actions(
            conn, tenant_id=tenant_id, after=page.after, limit=page.limit + 1, action=action
        )
    items, cursor = paginate(rows, page)
    return ListResponse(data=[AuditEntry(**row) for row in items], next_cursor=cursor)


@router.get("/v1/audit-log", summary="The whole audit log (admin)")
async def audit_log(
    runtime: RuntimeDep,
    admin: AdminDep,
    page: PageDep,
    action: Annotated[str | None, Query(max_length=100)] = None,
) -> ListResponse[AuditEntry]:
    return await _audit(runtime, None, page, action)


@router.get("/v1/tenants/{tenant_id}/audit-log", summary="A tenant's audit log")
async def tenant_audit_log(
    scope: TenantDep,
    runtime: RuntimeDep,
    page: PageDep,
    action: Annotated[str | None, Query(max_length=100)] = None,
) -> ListResponse[AuditEntry]:
    return await _audit(runtime, scope.tenant_id, page, action)


@router.get("/v1/tenants/{tenant_id}/events", summary="A tenant's events (CloudEvents)")
async def tenant_events(
    scope: TenantDep,
    runtime: RuntimeDep,
    page: PageDep,
    type: Annotated[
        str | None, Query(max_length=200, description="e.g. dev.interlink.record.updated")
    ] = None,
) -> ListResponse[dict[str, Any]]:
    rows = await runtime.outbox.list(
        tenant_id=scope.tenant_id, type_=type, after_id=page.after, limit=page.limit + 1
    )
    items = rows[: page.limit]
    cursor = encode_cursor(items[-1]["id"]) if len(rows) > page.limit and items else None
    return ListResponse(data=items, next_cursor=cursor)
