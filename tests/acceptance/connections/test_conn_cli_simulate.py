"""``interlink simulate PROVIDER [--port] [--records] [--faults]`` as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

from tests.serving import free_tcp_port


def test_simulate_serves_the_provider_with_its_faults() -> None:
    port = free_tcp_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "interlink", "simulate", "hubspot", "--port", str(port),
         "--records", "7", "--faults", "rate_limit"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert f"http://127.0.0.1:{port}" in line, line
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_sim/faults") as answer:
                    faults = json.loads(answer.read())
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert faults["profiles"] == ["rate_limit"]
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_unknown_provider_or_profile_is_one_clear_line() -> None:
    for args, expected in (
        (["nope"], "no simulator for 'nope'"),
        (["stripe", "--faults", "meteor"], "unknown fault profile 'meteor'"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "interlink", "simulate", *args],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert result.returncode != 0
        assert expected in result.stdout + result.stderr
