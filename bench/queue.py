"""Work-queue benchmark: jobs/s enqueued and completed, claim latency, and idle footprint.

    python bench/queue.py [--jobs 5000] [--pg postgresql://postgres@127.0.0.1:5432/test]

Starts everything on 127.0.0.1: for SQLite a temporary file, for PostgreSQL a fresh database on
the given server. No-op jobs are completed by 1 and 2 worker processes. The limit printed beside
each figure is the store's raw commit rate (one short transaction at a time) measured in the
same run, so the ratio says how much of the store's speed the queue keeps. Claim latency is
measured from the enqueueing commit to the handler starting, with jobs enqueued at a steady
100/s. The idle RSS of `interlink serve` is compared with the 150 MB target.
"""

from __future__ import annotations

import sys

# This file is named like the standard library's `queue`; keep its folder off the import path.
if sys.path and sys.path[0] and sys.path[0].rstrip("/").endswith("bench"):
    sys.path.pop(0)

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text

from interlink.queue import Job, JobContext
from interlink.runtime import Runtime
from interlink.settings import Settings
from interlink.store import migrate
from interlink.store.database import Database
from interlink.store.scratch import scratch_database

MASTER_KEY = base64.b64encode(b"b" * 32).decode()
HERE = Path(__file__).resolve()


def _settings(url: str) -> Settings:
    return Settings(
        database_url=url, master_key=MASTER_KEY, job_poll_seconds=0.2, log_level="warning"
    )


async def worker_main(url: str, latency_file: str | None) -> None:
    """Worker process: completes `bench.noop` jobs, recording claim latency if asked."""
    runtime = Runtime(_settings(url), capabilities=[])
    latencies: list[float] = []

    async def noop(job: Job, ctx: JobContext) -> None:
        sent = job.payload.get("t")
        if sent is not None:
            latencies.append(time.time() - float(sent))

    runtime.extra_handlers["bench.noop"] = noop
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    try:
        await runtime.run_workers(stop, concurrency=64)
    finally:
        await runtime.close()
        if latency_file:
            Path(latency_file).write_text(json.dumps(latencies))


def _spawn_worker(url: str, latency_file: str | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, str(HERE), "--worker", url]
    if latency_file:
        args += ["--latency-file", latency_file]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    if process.stdout:
        process.stdout.close()


async def _count_pending(db: Database) -> int:
    async with db.transaction() as conn:
        result = await conn.execute(text("SELECT count(*) FROM jobs WHERE status <> 'succeeded'"))
        return int(result.scalar_one())


async def _raw_commit_rate(db: Database, seconds: float = 2.0) -> float:
    async with db.transaction() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS bench_commits (n integer)"))
    done, deadline = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO bench_commits (n) VALUES (1)"))
        done += 1
    return done / (time.perf_counter() - started)


async def _enqueue(runtime: Runtime, jobs: int, *, batch: int = 500) -> float:
    started = time.perf_counter()
    for offset in range(0, jobs, batch):
        async with runtime.db.transaction() as conn:
            await runtime.queue.enqueue_many(
                conn, [("bench.noop", {}, None, None)] * min(batch, jobs - offset)
            )
    return jobs / (time.perf_counter() - started)


async def _drain(db: Database, url: str, workers: int) -> float:
    started = time.perf_counter()
    processes = [_spawn_worker(url) for _ in range(workers)]
    try:
        while await _count_pending(db):
            await asyncio.sleep(0.05)
    finally:
        for process in processes:
            _stop(process)
    return time.perf_counter() - started


async def _claim_latency(
    runtime: Runtime, url: str, *, in_process: bool, count: int = 300, rate: float = 100.0
) -> list[float]:
    """Enqueue ``count`` jobs at ``rate``/s; the worker records commit-to-start delays."""
    latencies: list[float] = []
    stop = asyncio.Event()
    process, task, latency_file = None, None, ""
    if in_process:  # the embedded mode: the worker shares the process and is woken directly

        async def noop(job: Job, ctx: JobContext) -> None:
            latencies.append(time.time() - float(job.payload["t"]))

        runtime.extra_handlers["bench.noop"] = noop
        task = asyncio.create_task(runtime.run_workers(stop, concurrency=64))
    else:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            latency_file = handle.name
        process = _spawn_worker(url, latency_file)
    try:
        for _ in range(count):
            async with runtime.db.transaction() as conn:
                await runtime.queue.enqueue(conn, "bench.noop", {"t": time.time()})
            await asyncio.sleep(1 / rate)
        while await _count_pending(runtime.db):
            await asyncio.sleep(0.05)
    finally:
        if task is not None:
            stop.set()
            await task
        if process is not None:
            _stop(process)
    if latency_file:
        latencies = json.loads(Path(latency_file).read_text())
        os.unlink(latency_file)
    return sorted(latencies)


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


@contextlib.contextmanager
def _database(kind: str, pg_server: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    with scratch_database(pg_server, "il_bench") as url:
        yield url


async def bench_store(kind: str, pg_server: str, jobs: int) -> None:
    with _database(kind, pg_server) as url:
        runtime = Runtime(_settings(url), capabilities=[])
        await migrate.upgrade(runtime.db)
        limit = await _raw_commit_rate(runtime.db)
        print(f"\n{kind}: raw commit rate (limit) {limit:,.0f} commits/s")
        for workers in (1, 2):
            enqueue_rate = await _enqueue(runtime, jobs)
            elapsed = await _drain(runtime.db, url, workers)
            complete_rate = jobs / elapsed
            print(
                f"  {workers} worker(s): enqueued {enqueue_rate:,.0f} jobs/s; completed "
                f"{complete_rate:,.0f} jobs/s = {complete_rate / limit:.2f}x the raw commit rate"
            )
        # SQLite is measured embedded (worker in the serving process, as `interlink serve`
        # runs it); PostgreSQL with a separate worker process woken by LISTEN/NOTIFY.
        embedded = kind == "sqlite"
        latencies = await _claim_latency(runtime, url, in_process=embedded)
        where = "in-process worker" if embedded else "separate worker process"
        print(
            f"  claim latency at 100 jobs/s, {where}: p50 {_pct(latencies, 0.5):.1f} ms, "
            f"p99 {_pct(latencies, 0.99):.1f} ms (n={len(latencies)})"
        )
        await runtime.close()


def bench_footprint() -> None:
    with tempfile.TemporaryDirectory() as folder:
        port = 18000 + os.getpid() % 1000
        env = {**os.environ, "INTERLINK_PORT": str(port), "INTERLINK_LOG_LEVEL": "warning"}
        process = subprocess.Popen(
            [sys.executable, "-m", "interlink", "serve"],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
            time.sleep(3)
            status = Path(f"/proc/{process.pid}/status").read_text()
            rss_kb = int(
                next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
    rss = rss_kb / 1024
    print(f"\nidle `interlink serve` RSS: {rss:.0f} MB = {rss / 150:.2f}x the 150 MB limit")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--latency-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker_main(args.worker, args.latency_file))
        return
    print(f"work queue: {args.jobs} no-op jobs per run, {os.cpu_count()} cores")
    asyncio.run(bench_store("sqlite", args.pg, args.jobs))
    asyncio.run(bench_store("postgresql", args.pg, args.jobs))
    bench_footprint()


if __name__ == "__main__":
    main()
