"""A fresh clone: the README's two set-up commands work as written."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.serving import free_tcp_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert block is not None, "the README opens with a sh block of the two commands"
    assert text.index("```sh") < text.index("## "), "the commands come before any section"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    assert "interlink serve" in commands[0]
    assert "pytest" in commands[1]
    assert "pytest" in (ROOT / ".ci" / "run").read_text()


def test_fresh_clone_installs_and_serves(tmp_path: Path) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    # A venv that sees the machine's packages keeps this offline-fast; the project itself and
    # its console script are installed into the venv by the README's command.
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(tmp_path / "venv")],
        check=True,
        timeout=120,
    )
    port = free_tcp_port()
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(tmp_path / "venv"),
        "INTERLINK_PORT": str(port),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.pop("INTERLINK_DATABASE_URL", None)
    run, test = _readme_commands()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        ["bash", "-c", run],
        cwd=clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "serve did not answer within 240 s"
                time.sleep(0.5)
        assert (clone / "interlink.db").exists()
        assert "Generated the admin token" in (tmp_path / "serve.log").read_text()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    # The second command, limited to one quick test file so the suite does not run itself.
    result = subprocess.run(
        ["bash", "-c", test],
        cwd=clone,
        env={**env, "PYTEST_ADDOPTS": "tests/unit/test_ids.py -p no:cacheprovider"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    # pytest's summary: the file's tests ran, however many it holds, and nothing but passes.
    summary = r"=+ [1-9][0-9]* passed(, [0-9]+ warnings?)? in [0-9.]+s =+"
    assert re.search(summary, result.stdout), result.stdout[-2000:]
