"""Run a real ``interlink serve`` (or ``worker``) process on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

from tests.conftest import ADMIN_TOKEN, MASTER_KEY


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class InterlinkProcess:
    """``interlink serve`` in a subprocess; ``url`` once it answers /healthz."""

    def __init__(
        self,
        workdir: Path,
        *,
        database_url: str | None = None,
        args: tuple[str, ...] = ("serve",),
        env: dict[str, str] | None = None,
        port: int | None = None,
        admin_token: str | None = ADMIN_TOKEN,
    ) -> None:
        self.workdir = workdir
        self.port = port or free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"interlink-{self.port}.log"
        self.env = {
            **os.environ,
            "INTERLINK_PORT": str(self.port),
            "INTERLINK_LOG_FORMAT": "json",
            **({"INTERLINK_DATABASE_URL": database_url} if database_url else {}),
            **({"INTERLINK_ADMIN_TOKEN": admin_token} if admin_token else {}),
            **(env or {}),
        }
        if database_url and database_url.startswith("postgresql"):
            self.env.setdefault("INTERLINK_MASTER_KEY", MASTER_KEY)
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, *, wait: bool = True, timeout: float = 30.0) -> InterlinkProcess:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "interlink", *self.args],
            cwd=self.workdir,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        if wait:
            try:
                self.wait_healthy(timeout)
            except BaseException:
                self.stop()
                raise
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"interlink exited early:\n{self.output()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"interlink did not answer within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as in a crash."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._close_log()

    def stop(self, timeout: float = 20.0) -> int:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_log()
        return self.process.returncode if self.process else 0

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> InterlinkProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
