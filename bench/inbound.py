"""Inbound webhooks benchmark: verified + durably stored webhooks/s and ack latency.

One command starts everything on 127.0.0.1 and prints, in one run:

(a) the limit: a bare ASGI endpoint answering 200, on the same uvicorn settings as
    ``interlink serve``;
(b) Interlink (``interlink serve``, workers on) embedded on SQLite and on PostgreSQL (a fresh
    database on 127.0.0.1:5432), Stripe-signed requests verified and stored;
(c) what users write instead: a FastAPI route that verifies with ``stripe.Webhook`` and commits
    one row per request to PostgreSQL with SQLAlchemy.

Load comes from a second process (an aiohttp client): closed-loop for throughput, then, once
the server is idle again (Interlink processes after the ack what the closed loop left), open-loop
at a fixed rate for latency (measured from the scheduled send time, so queueing counts). The
server's CPU time per answered request during the closed loop is printed too: on a shared
machine it moves far less than requests/s (for Interlink it includes the in-process workers).

    python bench/inbound.py [--seconds 5] [--rate 1000] [--concurrency 64]
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
import json
import subprocess
import tempfile
import time
from typing import Any

from bench.harness import ADMIN, call, free_port, spawn, wait_until_up, without_collector_pauses

from interlink.store.scratch import create_database, drop_database

SECRET = "whsec_bench_secret"
PG = "postgresql://postgres@127.0.0.1:5432"
BARE = "a  bare ASGI (limit)"


def _uvicorn(app: Any, port: int, *, as_interlink: bool) -> None:
    import uvicorn

    from interlink.api.server import server_config

    if as_interlink:  # the settings and the protocol `interlink serve` uses
        config = server_config(app, host="127.0.0.1", port=port)
    else:  # uvicorn as a user runs it
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                access_log=False, lifespan="on", server_header=False)  # fmt: skip
    uvicorn.Server(config).run()


def serve_bare(port: int) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"ok":true}'})

    _uvicorn(app, port, as_interlink=True)


def serve_naive(port: int, database_url: str) -> None:
    import stripe
    from fastapi import FastAPI, HTTPException, Request
    from sqlalchemy import Column, LargeBinary, MetaData, String, Table
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(
        database_url.replace("postgresql://", "postgresql+asyncpg://"),
        pool_size=10,
        max_overflow=10,
    )
    metadata = MetaData()
    table = Table(
        "webhooks",
        metadata,
        Column("id", String(100), primary_key=True),
        Column("type", String(100)),
        Column("body", LargeBinary),
    )
    import contextlib

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        yield

    app = FastAPI(lifespan=lifespan)

    async def receive(request: Request) -> dict[str, str]:
        body = await request.body()
        try:
            event = stripe.Webhook.construct_event(
                body, request.headers.get("stripe-signature", ""), SECRET
            )
        except (ValueError, stripe.SignatureVerificationError) as error:
            raise HTTPException(400, str(error)) from error
        async with engine.begin() as conn:
            await conn.execute(table.insert().values(id=event["id"], type=event["type"], body=body))
        return {"status": "ok"}

    # This module's postponed annotations name a local import; hand FastAPI the real classes.
    receive.__annotations__ = {"request": Request, "return": dict[str, str]}
    app.post("/webhooks/stripe")(receive)

    _uvicorn(app, port, as_interlink=False)


# --- load generator (runs in its own process) -------------------------------------------------


def _signed_pool(count: int) -> list[tuple[bytes, dict[str, str]]]:
    from interlink.webhooks.inbound import senders

    return [tuple(senders.sign_stripe(SECRET)[::-1]) for _ in range(count)]  # type: ignore[misc]


async def _closed_loop(url: str, seconds: float, concurrency: int) -> dict[str, Any]:
    import aiohttp

    # Every request a delivery of its own, for up to 30,000 a second: Interlink answers a
    # repeated delivery id as a duplicate, which costs less than a new webhook. (A pool of
    # 40,000 ran out within the run once the server passed 8,000 a second.)
    pool = _signed_pool(int(30_000 * (seconds + 1)))
    index = 0
    ok = errors = 0
    deadline = 0.0
    print("started", flush=True)  # the orchestrator starts counting the server's CPU here

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal index, ok, errors
        while time.perf_counter() < deadline:
            body, headers = pool[index % len(pool)]
            index += 1
            try:
                async with session.post(url, data=body, headers=headers) as answer:
                    await answer.read()
                    if answer.status == 200:
                        ok += 1
                    else:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + 1.0  # warm-up
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        ok = errors = 0
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        answered = index  # warm-up included: the CPU count covers it too
    if index > len(pool):
        raise RuntimeError(f"{index - len(pool)} requests repeated an earlier delivery")
    return {"per_second": ok / elapsed, "errors": errors, "answered": answered}


async def _open_loop(url: str, seconds: float, rate: float) -> dict[str, Any]:
    import aiohttp

    total = int(seconds * rate)
    pool = _signed_pool(total + 10)
    latencies: list[float] = []
    errors = 0

    async def one(session: aiohttp.ClientSession, n: int, scheduled: float) -> None:
        nonlocal errors
        body, headers = pool[n]
        try:
            async with session.post(url, data=body, headers=headers) as answer:
                await answer.read()
                if answer.status != 200:
                    errors += 1
                    return
        except aiohttp.ClientError:
            errors += 1
            return
        latencies.append(time.perf_counter() - scheduled)

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = []
        start = time.perf_counter() + 0.2
        for n in range(total):
            scheduled = start + n / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, n, scheduled)))
        await asyncio.gather(*tasks)
    latencies.sort()

    def pct(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
            if latencies
            else float("nan")
        )

    return {"p50_ms": pct(0.50), "p99_ms": pct(0.99), "errors": errors}


def load(url: str, seconds: float, rate: float, concurrency: int) -> None:
    without_collector_pauses()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    throughput = asyncio.run(_closed_loop(url, seconds, concurrency))
    print(json.dumps(throughput), flush=True)  # the orchestrator stops counting CPU here
    sys.stdin.readline()  # the orchestrator answers once the server has worked off its backlog
    latency = asyncio.run(_open_loop(url, seconds, rate))
    print(json.dumps({**throughput, **latency}))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux), or NaN elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- orchestration ------------------------------------------------------------------------------


def _until_idle(pid: int, timeout: float = 120.0) -> float:
    """Wait until the server has used under 5 % of a core for a second; returns the wait.

    The closed loop leaves work behind (Interlink processes what it acknowledged after the
    ack): the latency phase measures the fixed rate from an idle server, not on a backlog.
    """
    started = last_busy = time.monotonic()
    before = _cpu_seconds(pid)
    while time.monotonic() - started < timeout:
        time.sleep(0.25)
        now = _cpu_seconds(pid)
        if now - before > 0.25 * 0.05:
            last_busy = time.monotonic()
        elif time.monotonic() - last_busy >= 1.0:
            break
        before = now
    return last_busy - started


def _measure(url: str, server_pid: int, args: argparse.Namespace) -> dict[str, Any]:
    load = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--load",
            url,
            "--seconds",
            str(args.seconds),
            "--rate",
            str(args.rate),
            "--concurrency",
            str(args.concurrency),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert load.stdout is not None
    assert load.stdin is not None
    lines = iter(load.stdout.readline, "")
    next(line for line in lines if line.strip() == "started")
    cpu_before = _cpu_seconds(server_pid)
    closed = json.loads(next(lines))
    cpu = _cpu_seconds(server_pid) - cpu_before
    drained = _until_idle(server_pid)
    load.stdin.write("go\n")
    load.stdin.close()
    rest = [line for line in lines if line.strip()]
    if load.wait() != 0 or not rest:
        raise RuntimeError("the load generator failed")
    result: dict[str, Any] = json.loads(rest[-1])
    # Server CPU per answered request in the closed loop: far less noisy than req/s on a
    # shared machine (for Interlink it includes the in-process workers and the relay).
    result["cpu_us"] = cpu / max(1, closed["answered"]) * 1e6
    result["drained_s"] = drained
    return result


def _interlink(database_url: str, workdir: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        "INTERLINK_DATABASE_URL": database_url,
        "INTERLINK_ADMIN_TOKEN": ADMIN,
        "INTERLINK_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "INTERLINK_PORT": str(port),
        "INTERLINK_LOG_LEVEL": "warning",
        "INTERLINK_LOG_FORMAT": "json",
    }
    if database_url.startswith("postgresql"):
        subprocess.run(
            [sys.executable, "-m", "interlink", "migrate"],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
            cwd=workdir,
        )
    process = subprocess.Popen(
        [sys.executable, "-m", "interlink", "serve"],
        env={**os.environ, **env},
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base + "/healthz")
    tenant = call("POST", base + "/v1/tenants", {"name": "bench"})["id"]
    source = call(
        "POST",
        base + f"/v1/tenants/{tenant}/sources",
        {
            "provider": "stripe",
            "secret": SECRET,
            "rate_limit": {"per_second": 1_000_000},
        },
    )
    return process, f"{base}/in/{source['id']}"


def _create_database() -> str:
    return create_database(f"{PG}/postgres", "il_bench")


def main(args: argparse.Namespace) -> None:
    results: dict[str, dict[str, Any]] = {}
    workdir = tempfile.mkdtemp(prefix="il-bench-")
    databases = [_create_database(), _create_database()]
    runs: list[tuple[str, Any]] = [
        (BARE, lambda: _bare()),
        ("b1 Interlink, SQLite", lambda: _interlink(f"sqlite:///{workdir}/interlink.db", workdir)),
        ("b2 Interlink, PostgreSQL", lambda: _interlink(databases[0], workdir)),
        ("c  FastAPI + commit per request (PG)", lambda: _naive(databases[1])),
    ]
    try:
        for label, start in runs:
            process, url = start()
            try:
                results[label] = _measure(url, process.pid, args)
            finally:
                process.terminate()
                process.wait(timeout=30)
            r = results[label]
            print(
                f"{label:<38} {r['per_second']:>9.0f} webhooks/s   p50 {r['p50_ms']:6.2f} ms"
                f"   p99 {r['p99_ms']:6.2f} ms   server CPU {r['cpu_us']:5.0f} us/request"
                f"   errors {r['errors']}   backlog worked off in {r['drained_s']:.1f} s",
                flush=True,
            )
    finally:
        for database in databases:
            drop_database(database)
    a = results[BARE]["per_second"]
    c = results["c  FastAPI + commit per request (PG)"]["per_second"]
    for label in ("b1 Interlink, SQLite", "b2 Interlink, PostgreSQL"):
        b = results[label]["per_second"]
        print(
            f"{label}: b/a = {b / a:.2f} (target >= 0.5)   b/c = {b / c:.2f} (target >= 3)   "
            f"p99 at {args.rate:g} req/s = {results[label]['p99_ms']:.2f} ms (target <= 10)   "
            f"CPU/request b/a = {results[label]['cpu_us'] / results[BARE]['cpu_us']:.1f}"
        )


def _bare() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = spawn([__file__, "--serve-bare", str(port)])
    wait_until_up(f"http://127.0.0.1:{port}/")
    return process, f"http://127.0.0.1:{port}/in/bare"


def _naive(database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = spawn([__file__, "--serve-naive", str(port), database_url])
    wait_until_up(f"http://127.0.0.1:{port}/openapi.json")
    return process, f"http://127.0.0.1:{port}/webhooks/stripe"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--serve-bare", type=int)
    parser.add_argument("--serve-naive", nargs=2)
    parser.add_argument("--load")
    parsed = parser.parse_args()
    if parsed.serve_bare:
        serve_bare(parsed.serve_bare)
    elif parsed.serve_naive:
        serve_naive(int(parsed.serve_naive[0]), parsed.serve_naive[1])
    elif parsed.load:
        load(parsed.load, parsed.seconds, parsed.rate, parsed.concurrency)
    else:
        main(parsed)
