"""The management API as a user drives it: tenants, keys, isolation, problems, observability."""

from __future__ import annotations

import re
from typing import Any

import httpx

from interlink.api.app import create_app
from interlink.exact_json import MAX_DEPTH as MAX_JSON_DEPTH
from interlink.runtime import Runtime
from tests.conftest import api_client


async def _tenant_with_key(client: httpx.AsyncClient, name: str) -> tuple[str, str]:
    tenant = (await client.post("/v1/tenants", json={"name": name})).json()
    key = (await client.post(f"/v1/tenants/{tenant['id']}/api-keys", json={"name": "ci"})).json()
    return tenant["id"], key["key"]


def _is_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://interlink.dev/problems/{slug}"
    assert body["status"] == status
    assert body["detail"]
    return body


async def test_tenant_and_key_lifecycle(runtime: Runtime) -> None:
    async with api_client(runtime) as admin:
        created = await admin.post(
            "/v1/tenants", json={"name": "Acme", "metadata": {"plan": "pro"}}
        )
        assert created.status_code == 201
        tenant = created.json()
        assert tenant["id"].startswith("ten_")
        key = (await admin.post(f"/v1/tenants/{tenant['id']}/api-keys", json={})).json()
        assert key["key"].startswith("ilk_")
        assert key["scope"] == "tenant"
        listed = (await admin.get(f"/v1/tenants/{tenant['id']}/api-keys")).json()
        assert [k["id"] for k in listed["data"]] == [key["id"]]
        assert "key" not in listed["data"][0] and "key_hash" not in listed["data"][0]

    async with api_client(runtime, token=key["key"]) as tenant_client:
        assert (await tenant_client.get(f"/v1/tenants/{tenant['id']}")).json()["name"] == "Acme"
        _is_problem(await tenant_client.post("/v1/tenants", json={"name": "x"}), 403, "forbidden")
        _is_problem(await tenant_client.get("/v1/tenants"), 403, "forbidden")

    async with api_client(runtime) as admin:
        revoked = await admin.delete(f"/v1/tenants/{tenant['id']}/api-keys/{key['id']}")
        assert revoked.status_code == 204
        _is_problem(
            await admin.delete(f"/v1/tenants/{tenant['id']}/api-keys/{key['id']}"), 404, "not-found"
        )
    async with api_client(runtime, token=key["key"]) as tenant_client:
        _is_problem(await tenant_client.get(f"/v1/tenants/{tenant['id']}"), 401, "unauthorized")


async def test_admin_scoped_keys(runtime: Runtime) -> None:
    async with api_client(runtime) as admin:
        key = (await admin.post("/v1/api-keys", json={"name": "ops"})).json()
        assert key["scope"] == "admin" and key["tenant_id"] is None
    async with api_client(runtime, token=key["key"]) as ops:
        assert (await ops.post("/v1/tenants", json={"name": "Made by ops"})).status_code == 201


async def test_pagination_walks_every_tenant_once(runtime: Runtime) -> None:
    async with api_client(runtime) as admin:
        made = {
            (await admin.post("/v1/tenants", json={"name": f"t{n}"})).json()["id"] for n in range(7)
        }
        seen: list[str] = []
        cursor = None
        for _ in range(10):  # seven tenants, three a page: a cursor that never runs out fails
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = (await admin.get("/v1/tenants", params=params)).json()
            seen.extend(item["id"] for item in page["data"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        else:
            raise AssertionError(f"the cursor did not run out after 10 pages: {seen}")
        assert sorted(seen) == sorted(made)
        _is_problem(await admin.get("/v1/tenants", params={"cursor": "!!!"}), 400, "bad-cursor")
        _is_problem(await admin.get("/v1/tenants", params={"limit": 0}), 422, "validation-error")


def _tenant_routes(runtime: Runtime) -> list[tuple[str, str]]:
    spec = create_app(runtime, run_workers=False).openapi()
    return [
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        if "{tenant_id}" in path
        for method in operations
    ]


async def test_another_tenants_resources_answer_404_on_every_route(db_url: str) -> None:
    """Every route under /v1/tenants/{tenant_id}, of the core and of every installed
    capability, refuses another tenant's key with a 404."""
    from tests.conftest import make_settings

    runtime = Runtime(make_settings(db_url))
    await runtime.start(migrate_schema=True)
    try:
        async with api_client(runtime) as admin:
            tenant_a, _ = await _tenant_with_key(admin, "A")
            _, key_b = await _tenant_with_key(admin, "B")
        routes = _tenant_routes(runtime)
        assert len(routes) >= 20
        async with api_client(runtime, token=key_b) as client_b:
            for method, template in routes:
                path = re.sub(r"\{tenant_id\}", tenant_a, template)
                path = re.sub(r"\{[a-z_]+\}", "x_1", path)
                response = await client_b.request(method, path, json={})
                body = _is_problem(response, 404, "not-found")
                assert tenant_a in body["detail"], (method, template)
    finally:
        await runtime.close()


async def test_errors_are_problem_json_with_precise_fields(runtime: Runtime) -> None:
    async with api_client(runtime) as admin:
        body = _is_problem(
            await admin.post("/v1/tenants", json={"name": ""}), 422, "validation-error"
        )
        assert body["errors"][0]["field"] == "body.name"
        body = _is_problem(
            await admin.post("/v1/tenants", json={"name": "a\x00b"}), 422, "validation-error"
        )
        assert "NUL" in body["detail"]
        # Nesting the store could not write (orjson stops at 254 levels) is refused, not a 500.
        deep: Any = "leaf"
        for _ in range(300):
            deep = [deep]
        body = _is_problem(
            await admin.post("/v1/tenants", json={"name": "deep", "metadata": {"a": deep}}),
            422,
            "validation-error",
        )
        assert f"at most {MAX_JSON_DEPTH} levels" in body["detail"]
        deep = "leaf"
        for _ in range(MAX_JSON_DEPTH - 1):  # with the metadata object: MAX_JSON_DEPTH levels
            deep = [deep]
        made = await admin.post("/v1/tenants", json={"name": "deep", "metadata": {"a": deep}})
        assert made.status_code == 201, made.text
        # Deeper than the standard library's parser reads: malformed JSON that says why.
        deepest = b'{"name": "x", "metadata": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}"
        body = _is_problem(
            await admin.post(
                "/v1/tenants", content=deepest, headers={"content-type": "application/json"}
            ),
            400,
            "malformed-json",
        )
        assert "too deeply" in body["detail"]
        _is_problem(
            await admin.post(
                "/v1/tenants", content=b"{not json", headers={"content-type": "application/json"}
            ),
            400,
            "malformed-json",
        )
        _is_problem(await admin.get("/v1/nowhere"), 404, "not-found")
        _is_problem(await admin.put("/v1/tenants"), 405, "method-not-allowed")
        _is_problem(await admin.get("/v1/tenants/ten_missing"), 404, "not-found")
    async with api_client(runtime, token=None) as anonymous:
        body = _is_problem(await anonymous.get("/v1/tenants"), 401, "unauthorized")
        assert "Bearer" in body["detail"]
    async with api_client(runtime, token="ilk_wrong") as wrong:
        response = await wrong.get("/v1/tenants")
        _is_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_request_id_is_propagated_and_logged_in_audit(runtime: Runtime) -> None:
    async with api_client(runtime) as admin:
        response = await admin.post(
            "/v1/tenants", json={"name": "Traced"}, headers={"X-Request-ID": "req-abc.123"}
        )
        assert response.headers["x-request-id"] == "req-abc.123"
        generated = await admin.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
        assert re.fullmatch(r"[0-9a-f]{24}", generated.headers["x-request-id"])
        tenant_id = response.json()["id"]
        audit = (await admin.get("/v1/audit-log", params={"action": "tenant.created"})).json()
        (entry,) = [e for e in audit["data"] if e["target"] == tenant_id]
        assert entry["actor"] == "admin-token"
        assert entry["request_id"] == "req-abc.123"
        scoped = (await admin.get(f"/v1/tenants/{tenant_id}/audit-log")).json()
        assert [e["action"] for e in scoped["data"]] == ["tenant.created"]


async def test_health_readiness_and_metrics(runtime: Runtime) -> None:
    async with api_client(runtime, token=None) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = (await client.get("/readyz")).json()
        assert ready["status"] == "ready"
        await client.get("/v1/tenants/ten_x")
        async with runtime.db.transaction() as conn:
            await runtime.queue.enqueue(conn, "metrics.test", {})
        text = (await client.get("/metrics")).text
        assert (
            'interlink_http_requests_total{method="GET",route="/v1/tenants/{tenant_id}",status="401"} 1.0'
            in text
        )
        assert 'interlink_queue_jobs{kind="metrics.test",status="queued"} 1.0' in text
        assert "interlink_http_request_duration_seconds_bucket" in text
        assert "interlink_queue_lag_seconds" in text


async def test_openapi_and_docs_are_served(runtime: Runtime) -> None:
    async with api_client(runtime, token=None) as client:
        spec = (await client.get("/openapi.json")).json()
        assert spec["info"]["title"] == "Interlink"
        assert "/v1/tenants" in spec["paths"]
        assert "text/html" in (await client.get("/docs")).headers["content-type"]


async def test_dead_jobs_can_be_listed_and_retried(runtime: Runtime) -> None:
    async with runtime.db.transaction() as conn:
        job_id = await runtime.queue.enqueue(conn, "test.kind", {}, max_attempts=1)
    (job,) = await runtime.queue.claim("w", ["test.kind"], 1)
    await runtime.queue.retry_later(job, 0, "boom")
    async with api_client(runtime) as admin:
        dead = (await admin.get("/v1/jobs", params={"status": "dead"})).json()
        assert [j["id"] for j in dead["data"]] == [job_id]
        assert dead["data"][0]["last_error"] == "boom"
        retried = await admin.post(f"/v1/jobs/{job_id}/retry")
        assert retried.json()["status"] == "queued"
        _is_problem(await admin.post(f"/v1/jobs/{job_id}/retry"), 409, "job-not-dead")
        _is_problem(await admin.post("/v1/jobs/job_nope/retry"), 404, "not-found")


async def test_store_outage_answers_503(pg_url: str) -> None:
    """PostgreSQL unreachable: 503 with Retry-After, never a 2xx or a 500."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from tests.conftest import make_settings

    runtime = Runtime(make_settings(pg_url), capabilities=[])
    await runtime.start(migrate_schema=True)
    try:
        async with api_client(runtime) as admin:
            original = runtime.db.engine.url
            await runtime.db.engine.dispose()
            runtime.db.engine = create_async_engine(original.set(port=1))
            runtime.state.pop("auth_cache", None)
            response = await admin.post("/v1/tenants", json={"name": "lost"})
            body = _is_problem(response, 503, "store-unavailable")
            assert response.headers["retry-after"] == "1"
            assert "nothing was accepted" in body["detail"]
            assert (await admin.get("/readyz")).status_code == 503
            await runtime.db.engine.dispose()
            runtime.db.engine = create_async_engine(original)
            assert (await admin.post("/v1/tenants", json={"name": "back"})).status_code == 201
    finally:
        await runtime.close()


async def test_capability_fast_paths_are_served_ahead_of_fastapi(sqlite_url: str) -> None:
    from starlette.types import Receive, Scope, Send

    from interlink.capability import Capability
    from tests.conftest import make_settings

    seen: list[str] = []

    async def fast(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["app"].state.runtime.db.dialect)
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b"fast"})

    capability = Capability(name="fast", asgi_mounts={"/fast/": fast})
    runtime = Runtime(make_settings(sqlite_url), capabilities=[capability])
    await runtime.start(migrate_schema=True)
    try:
        async with api_client(runtime, token=None) as client:
            response = await client.post("/fast/anything", headers={"X-Request-ID": "hot-1"})
            assert response.status_code == 202
            assert response.text == "fast"
            assert response.headers["x-request-id"] == "hot-1"
            assert (await client.get("/fastish")).status_code == 404
            metrics = (await client.get("/metrics")).text
        assert seen == ["sqlite"]
        assert 'route="/fast/*",status="202"} 1.0' in metrics
    finally:
        await runtime.close()
