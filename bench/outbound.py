"""Outbound webhooks benchmark: delivered, signed webhooks/s and accept→delivered latency.

One command starts everything on 127.0.0.1 and prints, in one run, against one receiver (a bare
aiohttp app in its own process):

(a) the limit: raw aiohttp POSTs of the same signed bodies at the same concurrency, nothing
    stored;
(b) Interlink (``interlink serve``, workers on) embedded on SQLite and on PostgreSQL (a fresh
    database on 127.0.0.1:5432): messages POSTed to the API, accepted (stored, 202) and
    delivered signed; the figure is messages delivered per second, end to end;
(c) what users build instead: a Celery worker (Redis broker on 127.0.0.1:6379, thread pool at
    the same concurrency) doing ``requests.post`` with retries;
(d) the floor: a pass-through on Interlink's own stack and nothing else, uvicorn on uvloop
    serving a bare ASGI app that answers each message 202 at once and POSTs it, signed, to the
    receiver with Interlink's ``Http1Pool``. Nothing is stored, retried or logged. It is the
    most a webhook service on this stack reaches on this machine, where the sender, the
    service and the receiver share the cores; (b)/(d) is what Interlink's own work leaves of it;

then the accept→delivered latency (p50/p99, from the scheduled send time) at a fixed rate.
Each of (a) to (d) first sends ``--warm-up`` messages that are not counted: connection pools,
the database's caches and the interpreter's own warm up before the measured run.

    python bench/outbound.py [--messages 20000] [--warm-up 2000] [--concurrency 64]
                             [--rate 500] [--seconds 5]
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
import base64
import contextlib
import functools
import json
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from bench.harness import ADMIN, call, free_port, spawn, wait_until_up, without_collector_pauses

from interlink.store.scratch import create_database, drop_database

PG = "postgresql://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/15"


# --- the receiver (its own process) -----------------------------------------------------------


def serve_receiver(port: int) -> None:
    without_collector_pauses()
    from aiohttp import web

    arrivals: dict[str, float] = {}
    count = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal count
        await request.read()
        count += 1
        arrivals.setdefault(request.headers.get("webhook-id", str(count)), time.time())
        return web.Response(text="ok")

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"count": count, "unique": len(arrivals)})

    async def dump(request: web.Request) -> web.Response:
        return web.json_response(arrivals)

    async def reset(request: web.Request) -> web.Response:
        nonlocal count
        count = 0
        arrivals.clear()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    app.router.add_get("/arrivals", dump)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- (d) the pass-through floor (its own process) ----------------------------------------------


def serve_floor(port: int, receiver: str, concurrency: int) -> None:
    without_collector_pauses()
    import orjson
    import uvicorn
    import uvloop
    from starlette.types import Receive, Scope, Send
    from yarl import URL

    from interlink.api.server import HttpProtocol
    from interlink.egress.http1 import Http1Pool
    from interlink.egress.port import Timeouts
    from interlink.egress.ssrf import AddressPolicy, GuardedResolver, parse_allow_list
    from interlink.ids import new_id
    from interlink.webhooks.outbound.signing import WebhookSigner, generate_secret

    signer = WebhookSigner([generate_secret()])
    target = URL(f"{receiver}/hook")
    timeouts = Timeouts()
    pools: list[Http1Pool] = []
    slots: list[asyncio.Semaphore] = []
    background: set[asyncio.Task[None]] = set()

    async def deliver(msg_id: str, message: dict[str, Any]) -> None:
        body = orjson.dumps({"type": message["event_type"], "data": message["payload"]})
        headers = signer.sign(msg_id, int(time.time()), body)
        headers["content-type"] = "application/json"
        async with slots[0]:
            answer = await pools[0].open("POST", target, headers, body, timeouts, False)
            try:
                await answer.read()
            finally:
                await answer.aclose()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if not pools:
            pools.append(Http1Pool(GuardedResolver(AddressPolicy(parse_allow_list("127.0.0.0/8")))))
            slots.append(asyncio.Semaphore(concurrency))
        if scope["method"] != "POST":  # the start-up probe
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        chunks = []
        more = True
        while more:
            part = await receive()
            chunks.append(part.get("body", b""))
            more = part.get("more_body", False)
        msg_id = new_id("msg")
        task = asyncio.create_task(deliver(msg_id, orjson.loads(b"".join(chunks))))
        background.add(task)
        task.add_done_callback(background.discard)
        answer = orjson.dumps({"id": msg_id})
        await send({"type": "http.response.start", "status": 202,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(answer)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": answer})

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                            server_header=False, lifespan="off", http=HttpProtocol)  # fmt: skip
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(uvicorn.Server(config).serve())


# --- (c) the Celery worker (its own process) -----------------------------------------------------


def celery_app() -> Any:
    import threading

    import requests
    from celery import Celery

    app = Celery("bench", broker=REDIS)
    app.conf.update(task_acks_late=True, worker_prefetch_multiplier=8, broker_pool_limit=64)
    local = threading.local()

    @app.task(name="bench.deliver", bind=True, max_retries=7)  # type: ignore[untyped-decorator]
    def deliver(self: Any, url: str, body: str, headers: dict[str, str]) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        try:
            answer = session.post(url, data=body.encode(), headers=headers, timeout=15)
        except requests.RequestException as error:
            raise self.retry(exc=error, countdown=5) from error
        if not 200 <= answer.status_code < 300:
            raise self.retry(countdown=5)

    return app


def run_celery_worker(concurrency: int) -> None:
    celery_app().worker_main(
        ["worker", "--pool=threads", f"--concurrency={concurrency}", "--loglevel=warning"]
    )


# --- helpers ---------------------------------------------------------------------------------


async def _until_received(receiver: str, count: int, timeout: float = 300) -> float:
    """Wait until the receiver has ``count`` distinct messages; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await asyncio.to_thread(call, "GET", f"{receiver}/stats"))["unique"] >= count:
            return time.monotonic()
        await asyncio.sleep(0.01)
    raise RuntimeError(f"the receiver did not get {count} messages in time")


def _signed(count: int) -> list[tuple[bytes, dict[str, str]]]:
    from interlink.webhooks.outbound.signing import WebhookSigner, generate_secret

    signer = WebhookSigner([generate_secret()])
    out = []
    for n in range(count):
        body = json.dumps({"type": "order.created", "timestamp": "x", "data": {"n": n}}).encode()
        headers = signer.sign(f"msg_{n}", int(time.time()), body)
        out.append((body, {**headers, "Content-Type": "application/json"}))
    return out


# --- (a) raw aiohttp ---------------------------------------------------------------------------


async def raw_aiohttp(receiver: str, messages: int, concurrency: int) -> float:
    import aiohttp

    requests = _signed(messages)
    queue = list(reversed(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while queue:
                body, headers = queue.pop()
                async with session.post(f"{receiver}/hook", data=body, headers=headers) as r:
                    await r.read()

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return messages / (time.monotonic() - started)


# --- (b) Interlink -----------------------------------------------------------------------------


@contextlib.contextmanager
def interlink(database_url: str, concurrency: int) -> Iterator[str]:
    port = free_port()
    env = {
        "INTERLINK_DATABASE_URL": database_url,
        "INTERLINK_ADMIN_TOKEN": ADMIN,
        "INTERLINK_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "INTERLINK_PORT": str(port),
        "INTERLINK_LOG_LEVEL": "warning",
        "INTERLINK_LOG_FORMAT": "json",
        "INTERLINK_EGRESS_ALLOW": "127.0.0.1/32",
        "INTERLINK_WORKER_CONCURRENCY": str(max(concurrency, 64)),
        "INTERLINK_JOB_POLL_SECONDS": "0.2",
    }
    with tempfile.TemporaryDirectory() as workdir:
        if database_url.startswith("postgresql"):
            subprocess.run(
                [sys.executable, "-m", "interlink", "migrate"],
                env={**os.environ, **env},
                check=True,
                capture_output=True,
                cwd=workdir,
            )
        process = spawn(["-m", "interlink", "serve"], env, cwd=workdir)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base + "/healthz")
            yield base
        finally:
            process.terminate()
            process.wait(30)


def _setup(base: str, receiver: str) -> str:
    tenant: str = call("POST", f"{base}/v1/tenants", {"name": "bench"})["id"]
    call("POST", f"{base}/v1/tenants/{tenant}/endpoints", {"url": f"{receiver}/hook"})
    return tenant


async def interlink_closed_loop(
    base: str, receiver: str, tenant: str, messages: int, concurrency: int
) -> float:
    import aiohttp

    numbers = list(range(messages))
    url = f"{base}/v1/tenants/{tenant}/messages"
    headers = {"Authorization": f"Bearer {ADMIN}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            while numbers:
                n = numbers.pop()
                body = {"event_type": "order.created", "payload": {"n": n}}
                async with session.post(url, json=body) as answer:
                    assert answer.status == 202, await answer.text()
                    await answer.read()

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        done = await _until_received(receiver, messages)
    return messages / (done - started)


async def interlink_latency(
    base: str, receiver: str, tenant: str, rate: float, seconds: float
) -> tuple[float, float]:
    import aiohttp

    url = f"{base}/v1/tenants/{tenant}/messages"
    sent: dict[str, float] = {}
    total = int(rate * seconds)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as session:

        async def one(n: int, scheduled: float) -> None:
            delay = scheduled - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            body = {"event_type": "order.created", "payload": {"n": n}}
            async with session.post(url, json=body) as answer:
                sent[(await answer.json())["id"]] = scheduled

        start = time.time() + 0.2
        await asyncio.gather(*(one(n, start + n / rate) for n in range(total)))
    # Let every message arrive (up to 10 s) so that the next phase starts with no backlog.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        arrivals = await asyncio.to_thread(call, "GET", f"{receiver}/arrivals")
        if all(i in arrivals for i in sent):
            break
        await asyncio.sleep(0.2)
    latencies = sorted(arrivals[i] - t for i, t in sent.items() if i in arrivals)
    missing = len(sent) - len(latencies)
    if missing:
        print(f"  (latency: {missing} of {len(sent)} not delivered within 10 s)")
    latencies.extend([float("inf")] * missing)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return pct(0.5), pct(0.99)


# --- (c) Celery ----------------------------------------------------------------------------------


async def celery_deliveries(receiver: str, messages: int, concurrency: int, warm: int) -> float:
    worker = spawn([__file__, "--celery-worker", str(concurrency)])
    try:
        app = celery_app()
        await asyncio.to_thread(app.control.ping, timeout=10)
        rate = 0.0
        for count in (warm, messages) if warm else (messages,):
            await asyncio.to_thread(call, "POST", f"{receiver}/reset")
            requests = _signed(count)
            started = time.monotonic()
            for body, headers in requests:
                app.send_task("bench.deliver", args=[f"{receiver}/hook", body.decode(), headers])
            done = await _until_received(receiver, count)
            rate = count / (done - started)
        return rate
    finally:
        worker.terminate()
        worker.wait(30)


# --- main ----------------------------------------------------------------------------------


def _create_database() -> str:
    return create_database(f"{PG}/postgres", "bench_outbound")


def _measured(
    receiver: str, warm: int, count: int, run: Callable[[int], Awaitable[float]]
) -> float:
    """``run(warm)``, not counted (unless ``warm`` is 0), then the figure of ``run(count)``."""
    if warm:
        asyncio.run(run(warm))
    call("POST", f"{receiver}/reset")
    return asyncio.run(run(count))


def main(args: argparse.Namespace) -> None:
    without_collector_pauses()  # this process sends the messages whose latency is measured
    port = free_port()
    receiver = f"http://127.0.0.1:{port}"
    process = spawn([__file__, "--receiver", str(port)])
    figures: dict[str, float] = {}
    try:
        wait_until_up(f"{receiver}/stats")
        n, c, w = args.messages, args.concurrency, args.warm_up
        print(f"{n} messages (after {w} to warm up), concurrency {c}, one receiver on 127.0.0.1")
        figures["a"] = _measured(receiver, w, n, lambda k: raw_aiohttp(receiver, k, c))
        print(f"(a) raw aiohttp POSTs, no persistence:   {figures['a']:8.0f} deliveries/s")
        for label, make_url in (("sqlite", None), ("postgres", _create_database)):
            call("POST", f"{receiver}/reset")
            name = make_url() if make_url else None
            with tempfile.TemporaryDirectory() as folder:
                url = name or f"sqlite:///{folder}/bench.db"
                try:
                    with interlink(url, c) as base:
                        tenant = _setup(base, receiver)
                        run = functools.partial(interlink_closed_loop, base, receiver, tenant)
                        rate = _measured(receiver, w, n, lambda k: run(k, c))
                        figures[label] = rate
                        print(f"(b) Interlink {label:<9} accepted→delivered: {rate:8.0f} /s")
                        if label == "sqlite":
                            call("POST", f"{receiver}/reset")
                            for rate, key in ((args.rate / 5, "_low"), (args.rate, "")):
                                call("POST", f"{receiver}/reset")
                                p50, p99 = asyncio.run(
                                    interlink_latency(base, receiver, tenant, rate, args.seconds)
                                )
                                figures["p50" + key], figures["p99" + key] = p50, p99
                finally:
                    if name:
                        drop_database(name)
        call("POST", f"{receiver}/reset")
        floor_port = free_port()
        floor = spawn([__file__, "--floor", str(floor_port), "--receiver-url", receiver,
                       "--concurrency", str(c)])  # fmt: skip
        try:
            wait_until_up(f"http://127.0.0.1:{floor_port}/up")
            floor_url = f"http://127.0.0.1:{floor_port}"
            figures["d"] = _measured(
                receiver, w, n, lambda k: interlink_closed_loop(floor_url, receiver, "floor", k, c)
            )
        finally:
            floor.terminate()
            floor.wait(30)
        print(f"(d) pass-through floor, nothing stored: {figures['d']:8.0f} deliveries/s")
        call("POST", f"{receiver}/reset")
        figures["c"] = asyncio.run(celery_deliveries(receiver, n, c, w))
        print(f"(c) Celery + requests (Redis broker):    {figures['c']:8.0f} deliveries/s")
    finally:
        process.terminate()
        process.wait(10)
    print()
    for label in ("sqlite", "postgres"):
        print(
            f"b/a {label:<9} {figures[label] / figures['a']:5.2f}  (target >= 0.6)   "
            f"b/c {figures[label] / figures['c']:5.1f}x  (target >= 5x)"
        )
    print(
        f"limit on this stack, d/a {figures['d'] / figures['a']:5.2f}   "
        f"b/d sqlite {figures['sqlite'] / figures['d']:5.2f}, "
        f"postgres {figures['postgres'] / figures['d']:5.2f}"
    )
    print(
        f"accept→delivered at {args.rate:.0f} msg/s (SQLite): p50 {figures['p50']:.1f} ms, "
        f"p99 {figures['p99']:.1f} ms  (target p99 <= 50 ms)"
    )
    print(
        f"accept→delivered at {args.rate / 5:.0f} msg/s (SQLite): p50 {figures['p50_low']:.1f} ms,"
        f" p99 {figures['p99_low']:.1f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--warm-up", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--celery-worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--floor", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--receiver-url", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.receiver:
        serve_receiver(parsed.receiver)
    elif parsed.floor:
        serve_floor(parsed.floor, parsed.receiver_url, parsed.concurrency)
    elif parsed.celery_worker:
        run_celery_worker(parsed.celery_worker)
    else:
        main(parsed)
