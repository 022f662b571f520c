"""What every simulator shares: fault profiles, admin endpoints, recording, determinism."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from interlink.simulators import (
    Faults,
    RecordGenerator,
    RunningSimulator,
    create_simulator,
    run_simulator,
    serve_simulator,
)

KEY = {"Authorization": "Bearer sk_test_interlink"}


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with serve_simulator("stripe", records=20) as running:
        yield running


def test_profiles_combine_by_comma() -> None:
    faults = Faults.parse("latency, rate_limit,revoked_refresh")
    assert faults.profiles == ("latency", "rate_limit", "revoked_refresh")
    assert faults.latency_ms == (50, 300)
    assert faults.rate_limit_every == 5
    assert faults.revoked_refresh is True
    assert faults.flaky_ratio == 0
    assert Faults.parse("none") == Faults() == Faults.parse("")
    assert Faults.parse(["flaky", "timeout"]).timeout_ratio == 0.1
    assert Faults.parse("expiring_tokens").access_token_ttl == 5


def test_unknown_profile_and_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault profile 'chaos'"):
        Faults.parse("latency,chaos")
    with pytest.raises(ValueError, match="unknown fault setting 'speed'"):
        Faults().with_settings(speed=1)
    with pytest.raises(ValueError, match="flaky_ratio must be between 0 and 1"):
        Faults().with_settings(flaky_ratio=2)
    with pytest.raises(ValueError, match="latency_ms"):
        Faults().with_settings(latency_ms=[300, 50])


def test_records_are_deterministic_per_seed() -> None:
    first = create_simulator("stripe", records=5, seed=1)
    again = create_simulator("stripe", records=5, seed=1)
    other = create_simulator("stripe", records=5, seed=2)
    assert first.lists["customers"].items == again.lists["customers"].items  # type: ignore[attr-defined]
    assert first.lists["customers"].items != other.lists["customers"].items  # type: ignore[attr-defined]
    a, b = RecordGenerator(3, "x"), RecordGenerator(3, "y")
    assert [a.ident("", 8) for _ in range(3)] != [b.ident("", 8) for _ in range(3)]


def test_unknown_simulator() -> None:
    with pytest.raises(ValueError, match="no simulator for 'zendesk'"):
        create_simulator("zendesk")


async def test_fault_admin_endpoint_switches_profiles(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{sim.url}/_sim/faults") as resp:
        assert (await resp.json())["profiles"] == []
    body = {"profiles": "rate_limit,latency", "rate_limit_every": 1, "latency_ms": [1, 2]}
    async with http.put(f"{sim.url}/_sim/faults", json=body) as resp:
        current = await resp.json()
    assert current["profiles"] == ["rate_limit", "latency"]
    assert current["latency_ms"] == [1, 2]
    async with http.get(f"{sim.url}/v1/customers", headers=KEY) as resp:
        assert resp.status == 429
    async with http.put(f"{sim.url}/_sim/faults", json={"profiles": "bogus"}) as resp:
        assert resp.status == 400
        assert "unknown fault profile 'bogus'" in (await resp.json())["error"]
    async with http.put(f"{sim.url}/_sim/faults", json={"profiles": "none"}) as resp:
        assert (await resp.json())["rate_limit_every"] is None
    async with http.get(f"{sim.url}/v1/customers", headers=KEY) as resp:
        assert resp.status == 200


async def test_stats_count_requests_by_path_and_status(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    for _ in range(3):
        async with http.get(f"{sim.url}/v1/customers", headers=KEY):
            pass
    async with http.get(f"{sim.url}/v1/customers"):
        pass
    async with http.get(f"{sim.url}/v1/customers/cus_nope", headers=KEY):
        pass
    async with http.get(f"{sim.url}/_sim/stats") as resp:
        stats = await resp.json()
    assert stats == {
        "total": 5,
        "paths": {"/v1/customers": {"200": 3, "401": 1}, "/v1/customers/cus_nope": {"404": 1}},
    }
    assert sim.simulator.count("/v1/customers") == 4
    async with http.delete(f"{sim.url}/_sim/stats") as resp:
        assert resp.status == 204
    assert sim.simulator.count("/v1/customers") == 0
    assert list(sim.simulator.requests) == []


async def test_requests_are_recorded_for_assertions(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{sim.url}/v1/customers",
        data={"name": "Ada"},
        headers={**KEY, "Idempotency-Key": "abc"},
    ):
        pass
    (recorded,) = sim.simulator.requests
    assert (recorded.method, recorded.path, recorded.status) == ("POST", "/v1/customers", 200)
    assert recorded.headers["Idempotency-Key"] == "abc"
    assert recorded.body == b"name=Ada"
    async with http.get(f"{sim.url}/_sim/requests") as resp:
        (as_json,) = await resp.json()
    assert as_json["body"] == "name=Ada"


async def test_flaky_profile_fails_about_a_fifth_of_requests(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    sim.simulator.set_faults("flaky")
    statuses = []
    for _ in range(300):
        async with http.get(f"{sim.url}/v1/products", params={"limit": "1"}, headers=KEY) as resp:
            statuses.append(resp.status)
            if resp.status >= 500:
                assert (await resp.json())["error"]["type"] == "api_error"
    failures = [s for s in statuses if s >= 500]
    assert set(failures) <= {500, 502, 503}
    assert len(set(failures)) > 1
    assert 30 <= len(failures) <= 95  # seeded, so stable; about 20 %
    assert set(statuses) - {500, 502, 503} == {200}


async def test_latency_profile_delays_api_calls_only(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    sim.simulator.set_faults("latency", latency_ms=[120, 120])
    started = time.monotonic()
    async with http.get(f"{sim.url}/v1/products", headers=KEY) as resp:
        assert resp.status == 200
    assert time.monotonic() - started >= 0.12
    # A latency no loaded machine comes near: an admin call that answers well before it was
    # not delayed.
    sim.simulator.set_faults("latency", latency_ms=[30_000, 30_000])
    started = time.monotonic()
    async with http.get(f"{sim.url}/_sim/stats") as resp:
        assert resp.status == 200
    assert time.monotonic() - started < 10


async def test_timeout_profile_hangs_past_the_client_timeout(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    sim.simulator.set_faults("timeout", timeout_ratio=1.0, hang_seconds=30)
    with pytest.raises(asyncio.TimeoutError):
        async with http.get(
            f"{sim.url}/v1/products", headers=KEY, timeout=aiohttp.ClientTimeout(total=0.3)
        ):
            pass


async def test_oauth_routes_are_spared_from_api_faults(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    sim.simulator.set_faults("rate_limit", rate_limit_every=1)
    async with http.post(f"{sim.url}/oauth/token", data={"grant_type": "refresh_token"}) as resp:
        assert resp.status != 429


async def test_run_simulator_serves_until_cancelled(http: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ready: asyncio.Future[RunningSimulator] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_simulator("github", "127.0.0.1", port, 12, "none", ready=ready.set_result)
    )
    running = await asyncio.wait_for(ready, 5)
    assert running.url == f"http://127.0.0.1:{port}"
    async with http.get(f"{running.url}/repos/octocat/Hello-World/issues") as resp:
        assert resp.status == 200
        assert len(await resp.json()) == 12 - 12 // 5
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
