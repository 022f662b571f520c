"""Real processes for the inbound tests: ``interlink serve`` and a private PostgreSQL cluster."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import ADMIN_TOKEN, MASTER_KEY
from tests.serving import InterlinkProcess, free_tcp_port

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class ServeProcess(InterlinkProcess):
    """``interlink serve`` on 127.0.0.1 with the given database, started from async tests."""

    def __init__(self, database_url: str, workdir: str, **env: str) -> None:
        port = free_tcp_port()
        settings = {
            "INTERLINK_MASTER_KEY": MASTER_KEY,
            "INTERLINK_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "INTERLINK_LOG_LEVEL": "warning",
            "INTERLINK_JOB_POLL_SECONDS": "0.05",
        }
        super().__init__(
            Path(workdir), database_url=database_url, port=port, env={**settings, **env}
        )

    async def start(self) -> None:  # type: ignore[override]
        await asyncio.to_thread(InterlinkProcess.start, self, timeout=60)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "interlink", *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        async with aiohttp.ClientSession(headers=AUTH) as session:
            async with session.request(method, f"{self.url}{path}", json=body) as answer:
                assert answer.status < 300, await answer.text()
                return await answer.json()


class PrivatePostgres:
    """A throwaway PostgreSQL cluster owned by the ``postgres`` user, on its own port."""

    def __init__(self) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not binaries or shutil.which("runuser") is None:
            raise RuntimeError("PostgreSQL server binaries (or runuser) are not installed")
        self.bin = os.path.dirname(binaries[-1])
        self.dir = tempfile.mkdtemp(prefix="il-pg-")
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        self.port = free_tcp_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def init(self) -> None:
        self._as_postgres(f"{self.bin}/initdb", "-D", self.data, "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            f"{self.bin}/pg_ctl",
            "-D",
            self.data,
            "-o",
            options,
            "-l",
            os.path.join(self.dir, "log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(f"{self.bin}/pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
