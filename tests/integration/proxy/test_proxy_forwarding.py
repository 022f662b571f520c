"""What the proxy forwards and what it answers: bodies, methods, provider errors, framing."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import uvicorn
from yarl import URL

from interlink.api.app import create_app
from interlink.api.server import server_config
from interlink.connections.refresh import load_view
from interlink.simulators import serve_simulator
from tests.integration.connections.conn_support import running_hub


async def test_bodies_methods_and_provider_errors_pass_through(sqlite_url: str) -> None:
    async with serve_simulator("stripe", records=2) as sim:
        async with running_hub(sqlite_url, {"stripe": sim.url}) as hub:
            base = f"/v1/proxy/{await hub.api_key_connection('stripe', 'sk_test_f')}"
            async with hub.client(hub.key) as app:
                made = await app.post(
                    f"{base}/v1/customers",
                    content=b"email=ada%40example.com&name=Ada",
                    headers={"Content-Type": "application/x-www-form-urlencoded",
                             "Idempotency-Key": "k1"},
                )  # fmt: skip
                assert made.status_code == 200, made.text
                assert made.json()["email"] == "ada@example.com"
                sent = sim.simulator.requests[-1]
                assert sent.method == "POST" and sent.body == b"email=ada%40example.com&name=Ada"
                assert sent.headers["Idempotency-Key"] == "k1"
                assert made.headers["content-length"] == str(len(made.content))
                missing = await app.get(f"{base}/v1/customers/cus_doesnotexist")
                assert missing.status_code == 404
                assert missing.headers["content-type"].startswith("application/json")
                assert missing.json()["error"]["type"] == "invalid_request_error"  # Stripe's
                gone = await app.delete(f"{base}/v1/customers/{made.json()['id']}")
                assert gone.status_code == 200 and gone.json()["deleted"] is True
                for path in ("/v1/proxy/bad!id/x", "/v1/proxy/con_missing/v1/balance"):
                    answer = await app.get(path)
                    assert answer.status_code == 404
                    assert answer.headers["content-type"] == "application/problem+json"


async def test_an_answer_served_by_interlink_carries_one_date(sqlite_url: str) -> None:
    """The provider dates its answer and so does the server; a second Date would make the
    relayed header invalid, so the provider's is dropped (``proxy.support``)."""
    async with serve_simulator("stripe", records=1) as sim:
        async with running_hub(sqlite_url, {"stripe": sim.url}) as hub:
            connection_id = await hub.api_key_connection("stripe", "sk_test_d")
            async with _served(create_app(hub.runtime, run_workers=False)) as url:
                headers = {"Authorization": f"Bearer {hub.key}"}
                async with aiohttp.ClientSession(headers=headers) as session:
                    async with session.get(f"{sim.url}/v1/balance") as direct:
                        assert _dates(direct)  # the provider dates its answers (a 401 here)
                    proxied_url = f"{url}/v1/proxy/{connection_id}/v1/balance"
                    async with session.get(proxied_url) as proxied:
                        assert proxied.status == 200, await proxied.text()
                        assert len(_dates(proxied)) == 1


async def test_a_chunked_body_is_forwarded_and_a_call_without_one_sends_none(
    sqlite_url: str,
) -> None:
    """The proxy reads a body only when the request declares one (``Content-Length`` or
    ``Transfer-Encoding``); a chunked one arrives whole, a call without one sends none."""
    async with serve_simulator("stripe", records=1) as sim:
        async with running_hub(sqlite_url, {"stripe": sim.url}) as hub:
            connection_id = await hub.api_key_connection("stripe", "sk_test_c")
            async with _served(create_app(hub.runtime, run_workers=False)) as url:
                base = f"{url}/v1/proxy/{connection_id}"
                headers = {"Authorization": f"Bearer {hub.key}"}

                async def chunks() -> AsyncIterator[bytes]:
                    for part in (b"email=grace%40example.com", b"&name=Grace"):
                        yield part

                async with aiohttp.ClientSession(headers=headers) as session:
                    form = {"Content-Type": "application/x-www-form-urlencoded"}
                    async with session.post(
                        f"{base}/v1/customers", data=chunks(), headers=form
                    ) as made:
                        assert made.status == 200, await made.text()
                        assert (await made.json())["name"] == "Grace"
                    sent = sim.simulator.requests[-1]
                    assert sent.body == b"email=grace%40example.com&name=Grace"
                    assert sent.headers["Content-Length"] == str(len(sent.body))
                    async with session.get(f"{base}/v1/balance") as balance:
                        assert balance.status == 200, await balance.text()
                    sent = sim.simulator.requests[-1]
                    assert sent.method == "GET" and sent.body == b""
                    assert "Content-Length" not in sent.headers
                    assert "Transfer-Encoding" not in sent.headers


async def test_a_provider_limiting_each_connection_gives_each_its_own_bucket(
    sqlite_url: str,
) -> None:
    """The policy of a call is kept per connection where the provider limits connections
    (Stripe does), and rebuilt when the catalog changes."""
    async with serve_simulator("stripe", records=1) as sim:
        async with running_hub(sqlite_url, {"stripe": sim.url}) as hub:
            state = hub.state
            views = []
            for api_key in ("sk_test_one", "sk_test_two"):
                view = await load_view(state, await hub.api_key_connection("stripe", api_key))
                assert view is not None
                views.append(view)
            policy = state.policy(views[0].provider)
            assert policy.connection_limit is not None
            first, second = (state.request_policy(view, policy) for view in views)
            assert first.rate_limit_key == f"connection:{views[0].id}"
            assert second.rate_limit_key == f"connection:{views[1].id}"
            assert first.rate_limit == policy.connection_limit
            assert first.max_rate_limit_wait == state.max_rate_limit_wait
            assert state.request_policy(views[0], policy) is first
            state.use_catalog(state.catalog)
            assert state.request_policy(views[0], policy) is not first


async def test_dot_segments_cannot_leave_the_providers_base_path(sqlite_url: str) -> None:
    """A '.' or '..' segment would be resolved against the base URL (RFC 3986 section 5.2.4)
    and could reach a path of the provider's host outside it: refused, nothing is sent."""
    async with serve_simulator("stripe", records=1) as sim:
        async with running_hub(sqlite_url, {"stripe": sim.url}) as hub:
            connection_id = await hub.api_key_connection("stripe", "sk_test_dots")
            async with _served(create_app(hub.runtime, run_workers=False)) as url:
                headers = {"Authorization": f"Bearer {hub.key}"}
                base = f"{url}/v1/proxy/{connection_id}"
                sent = len(sim.simulator.requests)
                async with aiohttp.ClientSession(headers=headers) as session:
                    for path in ("/v1/../v1/balance", "/v1/%2E%2e/v1/balance", "/./v1/balance",
                                 "/v1/balance/.."):  # fmt: skip
                        target = URL(base + path, encoded=True)
                        async with session.get(target) as refused:
                            assert refused.status == 422, path
                            problem = await refused.json(content_type=None)
                            assert problem["type"].endswith("/invalid-path")
                    assert len(sim.simulator.requests) == sent
                    # Dots inside a segment are the provider's business.
                    async with session.get(URL(base + "/v1/customers/cus..x", encoded=True)) as a:
                        assert a.status == 404  # Stripe's own answer, passed through
                    assert sim.simulator.requests[-1].path == "/v1/customers/cus..x"


async def test_a_base_url_host_no_dns_can_hold_is_a_problem_not_a_500(sqlite_url: str) -> None:
    """A catalog's base URL is the operator's and is not judged at creation: a host with an
    empty label made the resolver's IDNA codec raise UnicodeError at each call, a 500."""
    async with running_hub(sqlite_url, {"stripe": "http://api..stripe.test:9"}) as hub:
        created = await hub.admin.post(
            f"/v1/tenants/{hub.tenant_id}/connections",
            json={"provider": "stripe", "auth_type": "api_key", "verify": False,
                  "credentials": {"api_key": "sk_test_dots"}},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        async with hub.client(hub.key) as app:
            answer = await app.get(f"/v1/proxy/{created.json()['id']}/v1/balance")
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert "the host name has an empty label" in answer.json()["detail"]


def _dates(answer: aiohttp.ClientResponse) -> list[bytes]:
    return [value for name, value in answer.raw_headers if name.lower() == b"date"]


@contextlib.asynccontextmanager
async def _served(app: Any) -> AsyncIterator[str]:
    """``app`` under uvicorn as ``interlink serve`` runs it (the runtime is already started)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = server_config(app, host="127.0.0.1", port=sock.getsockname()[1])
    config.lifespan = "off"
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
