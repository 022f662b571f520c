"""What the benchmarks share: free ports, child processes, waiting for a server, admin calls.

The benchmarks import it as ``bench.harness`` (the repository root on the import path), so
that ``bench/queue.py`` never shadows the standard library's ``queue``.
"""

from __future__ import annotations

import gc
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

ADMIN = "ila_bench-admin-token-0123456789abcdef"


def without_collector_pauses() -> None:
    """Stop the cyclic garbage collector in a short-lived load or receiving process.

    A load generator holds thousands of requests in flight; its own full collections paused
    it for up to 80 ms, and a request scheduled during the pause was counted as the server's
    latency. Reference counting still frees everything acyclic; the rest waits for exit.
    """
    gc.collect()
    gc.freeze()
    gc.disable()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def spawn(
    args: list[str], env: dict[str, str] | None = None, cwd: str | None = None
) -> subprocess.Popen[bytes]:
    """A Python child process with the given arguments, its output discarded."""
    return subprocess.Popen(
        [sys.executable, *args],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_until_up(url: str, timeout: float = 60) -> None:
    """Poll ``url`` until the server answers (any HTTP status counts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError as error:
            if getattr(error, "code", None):
                return
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def call(method: str, url: str, body: Any = None, *, timeout: float = 30) -> Any:
    """An admin-token JSON call; returns the decoded answer (``{}`` when empty)."""
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read() or b"{}")
