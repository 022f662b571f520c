"""The proxy's resilience against real simulators: Retry-After, the limiter, the breaker."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from interlink.connections.catalog import LimitHint, RateLimitHints
from interlink.egress import BreakerConfig, waiting_disabled
from interlink.simulators import serve_simulator
from tests.integration.connections.conn_support import Hub, catalog_for, running_hub


async def _stripe_connection(hub: Hub) -> str:
    created = await hub.admin.post(
        f"/v1/tenants/{hub.tenant_id}/connections",
        json={
            "provider": "stripe",
            "auth_type": "api_key",
            "credentials": {"api_key": "sk_test_x"},
        },
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_429_with_retry_after_is_retried_after_the_wait(sqlite_url: str) -> None:
    async with serve_simulator("stripe") as sim:
        async with running_hub(sqlite_url, {"stripe": sim.url}) as hub:
            connection_id = await _stripe_connection(hub)
            sim.simulator.set_faults("rate_limit", rate_limit_every=2, retry_after_seconds=2)
            async with hub.client(hub.key) as app:
                assert (await app.get(f"/v1/proxy/{connection_id}/v1/customers")).status_code == 200
                started = time.monotonic()
                answer = await app.get(f"/v1/proxy/{connection_id}/v1/customers")
                waited = time.monotonic() - started
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-interlink-attempts"] == "2"
            assert waited >= 2.0
            stamps = [r.received_at for r in sim.simulator.requests if r.path == "/v1/customers"]
            assert stamps[-1] - stamps[-2] >= 2.0


async def test_client_side_limiter_keeps_under_the_catalog_limit(sqlite_url: str) -> None:
    async with serve_simulator("stripe", clock=time.monotonic) as sim:
        catalog = catalog_for({"stripe": sim.url})
        hint = RateLimitHints(limits=(LimitHint(requests=10, per_seconds=1),))
        stripe = catalog["stripe"].model_copy(update={"rate_limit": hint})
        async with running_hub(sqlite_url, catalog=catalog) as hub:
            hub.state.use_catalog(type(catalog)({**dict(catalog), "stripe": stripe}))
            connection_id = await _stripe_connection(hub)
            # When the bucket gives each call its turn (it reserves it at once, on the same
            # clock): the moments a loaded machine's delays cannot bunch up, as they can the
            # calls' arrivals (the bucket allows exactly 10 in a second, with no room to spare).
            limiter = hub.state.limiter
            acquire = limiter.acquire
            turns: list[float] = []

            async def noting_turns(key: str, cost: float = 1.0, **options: Any) -> float:
                asked = time.monotonic()
                wait = await acquire(key, cost, **options)
                if key == f"connection:{connection_id}":
                    turns.append(asked + wait)
                return wait

            limiter.acquire = noting_turns  # type: ignore[method-assign]
            async with hub.client(hub.key) as app:
                answers = await asyncio.gather(
                    *(app.get(f"/v1/proxy/{connection_id}/v1/balance") for _ in range(25))
                )
            assert [a.status_code for a in answers] == [200] * 25
            stamps = sorted(
                r.received_at for r in sim.simulator.requests if r.path == "/v1/balance"
            )[1:]  # the first one was the health probe at creation
            turns.sort()
            assert len(stamps) == len(turns) == 25
            for index, start in enumerate(turns):
                in_window = [s for s in turns[index:] if s - start < 1.0]
                assert len(in_window) <= 10, f"{len(in_window)} calls within one second"
            # and no call reached the provider before its turn
            assert all(stamp >= turn for stamp, turn in zip(stamps, turns, strict=True))


async def test_breaker_opens_fails_fast_and_closes_after_a_probe(sqlite_url: str) -> None:
    async with serve_simulator("stripe") as sim:
        async with running_hub(sqlite_url, {"stripe": sim.url}) as hub:
            hub.state.breakers.config = BreakerConfig(
                minimum_calls=4, cool_down=2.0, half_open_probes=1, window_seconds=10.0
            )
            connection_id = await _stripe_connection(hub)
            sim.simulator.set_faults("flaky", flaky_ratio=1.0)
            path = f"/v1/proxy/{connection_id}/v1/customers"
            with waiting_disabled():
                app = hub.client(hub.key)
                statuses = []
                for _ in range(4):
                    statuses.append((await app.get(path)).status_code)
                assert statuses[-1] == 503, statuses
                hits = len(sim.simulator.requests)
                fast = await app.get(path)
                assert fast.status_code == 503
                assert fast.headers["content-type"] == "application/problem+json"
                assert fast.json()["type"].endswith("/circuit-open")
                assert int(fast.headers["retry-after"]) >= 1
                assert len(sim.simulator.requests) == hits  # refused without a call
                sim.simulator.set_faults("none")
                await asyncio.sleep(2.1)
                assert (await app.get(path)).status_code == 200
                assert (await app.get(path)).status_code == 200
                await app.aclose()
            await hub.state.events.flush()
            types = [e["type"] for e in await hub.runtime.outbox.list(tenant_id=None, limit=500)]
            assert "dev.interlink.circuit_breaker.opened" in types
            assert "dev.interlink.circuit_breaker.closed" in types
            assert "dev.interlink.request.completed" in types
