"""Proxy benchmark: added latency and throughput of ``/v1/proxy`` against direct aiohttp calls.

One command starts everything on 127.0.0.1 and measures, in one run and against the same
upstream (a bare aiohttp app answering a small JSON document, as a provider would):

(a) direct: aiohttp calls straight to the upstream;
(b) proxied: the same calls through ``interlink serve`` (embedded SQLite, workers on), on a
    ``rest`` connection with an API key, so credentials are injected and the full egress
    policy (retry, breaker, limiter check, buffered request.completed events) applies;
(c) floor: the same calls through a pass-through proxy on the same stack and nothing else:
    uvicorn on uvloop serving a bare ASGI app that forwards each request with Interlink's
    ``Http1Pool`` and relays the answer. No authentication, policy, metrics or events. It is
    the limit a proxy on this stack reaches on this machine; (b)/(c) is what Interlink's own
    work per call leaves of it.

Latency is measured sequentially (one request at a time, so queueing does not hide the cost);
throughput closed-loop at ``--concurrency``, for ``--seconds`` per path in each of ``--rounds``
rounds that measure the three paths back to back; the ratios are the medians of the rounds'.
The load runs in its own process.

    python bench/proxy.py [--rounds 5] [--seconds 3] [--concurrency 32] [--requests 2000]
"""

# ruff: noqa: E402
from __future__ import annotations

import os
import sys

# Run as a script, this folder comes first on sys.path, where bench/queue.py would shadow the
# standard library: import the benchmarks as the package `bench` from the repository instead.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [os.path.dirname(_HERE), *(p for p in sys.path if os.path.abspath(p or ".") != _HERE)]

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time

from bench.harness import ADMIN, call, free_port, wait_until_up, without_collector_pauses

BODY = json.dumps({"object": "balance", "available": [{"amount": 1234, "currency": "usd"}]})


def serve_floor(port: int, upstream_url: str) -> None:
    """(c): uvicorn as ``interlink serve`` runs it, in front of a pass-through to the upstream."""
    import uvicorn
    import uvloop
    from starlette.types import Receive, Scope, Send
    from yarl import URL

    from interlink.api.server import HttpProtocol
    from interlink.egress.http1 import Http1Pool
    from interlink.egress.port import Timeouts
    from interlink.egress.ssrf import AddressPolicy, GuardedResolver, parse_allow_list

    pools: list[Http1Pool] = []
    timeouts = Timeouts()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if not pools:
            policy = AddressPolicy(allow=parse_allow_list("127.0.0.0/8"))
            pools.append(Http1Pool(GuardedResolver(policy)))
        target = URL(upstream_url + scope["path"])
        headers = {"Authorization": "Bearer sk_bench"}
        upstream = await pools[0].open("GET", target, headers, None, timeouts, True)
        try:
            body = await upstream.read()
            headers_out = [(b"content-type", b"application/json"),
                           (b"content-length", str(len(body)).encode())]  # fmt: skip
            await send({"type": "http.response.start", "status": upstream.status,
                        "headers": headers_out})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
        finally:
            await upstream.aclose()

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                            server_header=False, lifespan="off", http=HttpProtocol)  # fmt: skip
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(uvicorn.Server(config).serve())


def serve_upstream(port: int) -> None:
    from aiohttp import web

    async def balance(request: web.Request) -> web.Response:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.Response(text=BODY, content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/balance", balance)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def _sequential(url: str, headers: dict[str, str], count: int) -> list[float]:
    import aiohttp

    latencies = []
    async with aiohttp.ClientSession(headers=headers) as session:
        for n in range(count + 200):
            started = time.perf_counter()
            async with session.get(url) as answer:
                await answer.read()
                assert answer.status == 200, answer.status
            if n >= 200:  # warm-up
                latencies.append(time.perf_counter() - started)
    return sorted(latencies)


async def _closed_loop(
    url: str, headers: dict[str, str], seconds: float, concurrency: int
) -> float:
    import aiohttp

    ok = 0
    deadline = 0.0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok
        while time.perf_counter() < deadline:
            async with session.get(url) as answer:
                await answer.read()
                ok += answer.status == 200

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        deadline = time.perf_counter() + 1.0
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        ok = 0
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return ok / (time.perf_counter() - started)


def load(url: str, token: str, mode: str, seconds: float, concurrency: int, count: int) -> None:
    without_collector_pauses()
    headers = {"Authorization": f"Bearer {token}"}
    if mode == "rate":
        rate = asyncio.run(_closed_loop(url, headers, seconds, concurrency))
        print(json.dumps({"per_second": rate}))
        return
    latencies = asyncio.run(_sequential(url, headers, count))

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    print(json.dumps({"p50_ms": pct(0.5), "p99_ms": pct(0.99)}))


def _measure(url: str, token: str, mode: str, args: argparse.Namespace) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--load", url, "--token", token, "--mode", mode,
         "--seconds", str(args.seconds), "--concurrency", str(args.concurrency),
         "--requests", str(args.requests)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _rounds(paths: dict[str, tuple[str, str]], args: argparse.Namespace) -> list[dict[str, float]]:
    """Closed-loop calls/s of every path in each round, the order rotated from round to round.

    The machine's speed drifts over a run (a shared host: the same path measured a minute
    apart moved by a third). Measured one after the other within a round, the three paths see
    about the same machine, so each round's ratios compare like with like; the rotation keeps
    any path from always running first or last.
    """
    names = list(paths)
    rounds = []
    for number in range(args.rounds):
        order = names[number % len(names) :] + names[: number % len(names)]
        rounds.append({name: _measure(*paths[name], "rate", args)["per_second"] for name in order})
    return rounds


def main(args: argparse.Namespace) -> None:
    upstream_port, interlink_port, floor_port = free_port(), free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    base = f"http://127.0.0.1:{interlink_port}"
    workdir = tempfile.mkdtemp(prefix="interlink-bench-proxy-")
    env = {
        **os.environ,
        "INTERLINK_DATABASE_URL": f"sqlite:///{workdir}/interlink.db",
        "INTERLINK_ADMIN_TOKEN": ADMIN,
        "INTERLINK_PORT": str(interlink_port),
        "INTERLINK_EGRESS_ALLOW": "127.0.0.0/8",
        "INTERLINK_LOG_LEVEL": "warning",
    }
    upstream = subprocess.Popen([sys.executable, __file__, "--serve-upstream", str(upstream_port)])
    floor = subprocess.Popen(
        [sys.executable, __file__, "--serve-floor", str(floor_port), "--upstream", upstream_url]
    )
    command = ["-m", "interlink", "serve"]
    interlink = subprocess.Popen(
        [sys.executable, *command], env=env, cwd=workdir,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until_up(f"{upstream_url}/v1/balance")
        wait_until_up(f"{base}/healthz")
        wait_until_up(f"http://127.0.0.1:{floor_port}/v1/balance")
        tenant = call("POST", base + "/v1/tenants", {"name": "bench"})["id"]
        key = call("POST", base + f"/v1/tenants/{tenant}/api-keys", {"name": "bench"})["key"]
        connection = call(
            "POST",
            base + f"/v1/tenants/{tenant}/connections",
            {"provider": "rest", "auth_type": "api_key", "credentials": {"api_key": "sk_bench"},
             "config": {"base_url": upstream_url}, "verify": False},
        )["id"]  # fmt: skip
        paths = {
            "direct": (f"{upstream_url}/v1/balance", "sk_bench"),
            "proxied": (f"{base}/v1/proxy/{connection}/v1/balance", key),
            "floor": (f"http://127.0.0.1:{floor_port}/v1/balance", "unused"),
        }
        latency = {name: _measure(*paths[name], "latency", args) for name in paths}
        rounds = _rounds(paths, args)
    finally:
        for process in (interlink, floor, upstream):
            process.terminate()
            process.wait(timeout=20)
    _report(latency, rounds)


def _report(latency: dict[str, dict[str, float]], rounds: list[dict[str, float]]) -> None:
    direct, proxied = latency["direct"], latency["proxied"]
    print(f"{'sequential calls':20}{'p50 ms':>10}{'p99 ms':>10}")
    labels = {"direct": "direct aiohttp", "proxied": "through proxy", "floor": "pass-through floor"}
    for name, label in labels.items():
        print(f"{label:20}{latency[name]['p50_ms']:>10.3f}{latency[name]['p99_ms']:>10.3f}")
    print(f"\n{'closed loop, calls/s':22}{'direct':>9}{'proxied':>9}{'floor':>9}"
          f"{'prox/dir':>10}{'floor/dir':>10}{'prox/floor':>11}")  # fmt: skip
    ratios: dict[str, list[float]] = {"proxied/direct": [], "floor/direct": [], "proxied/floor": []}
    for number, row in enumerate(rounds, 1):
        ratio = {
            "proxied/direct": row["proxied"] / row["direct"],
            "floor/direct": row["floor"] / row["direct"],
            "proxied/floor": row["proxied"] / row["floor"],
        }
        for name, value in ratio.items():
            ratios[name].append(value)
        print(f"{'round ' + str(number):22}{row['direct']:>9.0f}{row['proxied']:>9.0f}"
              f"{row['floor']:>9.0f}{ratio['proxied/direct']:>10.2f}"
              f"{ratio['floor/direct']:>10.2f}{ratio['proxied/floor']:>11.2f}")  # fmt: skip
    median = {name: statistics.median(values) for name, values in ratios.items()}
    added_p50 = proxied["p50_ms"] - direct["p50_ms"]
    added_p99 = proxied["p99_ms"] - direct["p99_ms"]
    print(f"\nadded latency: p50 {added_p50:.3f} ms (target <= 2 ms), p99 {added_p99:.3f} ms")
    spread = ratios["proxied/direct"]
    print(f"throughput ratio proxied/direct, median of {len(rounds)} rounds: "
          f"{median['proxied/direct']:.2f} (target >= 0.5; rounds "
          f"{min(spread):.2f} to {max(spread):.2f})")  # fmt: skip
    print(f"limit on this stack, floor/direct: {median['floor/direct']:.2f}; "
          f"proxied/floor: {median['proxied/floor']:.2f} (medians)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--serve-upstream", type=int)
    parser.add_argument("--serve-floor", type=int)
    parser.add_argument("--upstream", default="")
    parser.add_argument("--load")
    parser.add_argument("--token", default="")
    parser.add_argument("--mode", choices=("latency", "rate"), default="latency")
    parsed = parser.parse_args()
    if parsed.serve_upstream:
        serve_upstream(parsed.serve_upstream)
    elif parsed.serve_floor:
        serve_floor(parsed.serve_floor, parsed.upstream)
    elif parsed.load:
        load(parsed.load, parsed.token, parsed.mode, parsed.seconds, parsed.concurrency,
             parsed.requests)  # fmt: skip
    else:
        main(parsed)
