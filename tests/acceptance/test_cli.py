"""The command line as a user drives it, in real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.serving import InterlinkProcess


def _run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interlink", *args],
        cwd=cwd,
        env={**os.environ, "INTERLINK_LOG_LEVEL": "warning", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version(tmp_path: Path) -> None:
    result = _run(tmp_path, "version")
    assert result.returncode == 0
    assert result.stdout.startswith("interlink 0.")


def test_bootstrap_without_the_api(tmp_path: Path) -> None:
    created = _run(tmp_path, "tenants", "create", "Acme")
    assert created.returncode == 0, created.stderr
    tenant_id = created.stdout.strip()
    assert tenant_id.startswith("ten_")
    listed = _run(tmp_path, "tenants", "list")
    assert f"{tenant_id}\tAcme" in listed.stdout
    key = _run(tmp_path, "api-keys", "create", "--tenant", tenant_id)
    assert key.returncode == 0 and key.stdout.startswith("ilk_")
    admin_key = _run(tmp_path, "api-keys", "create", "--admin")
    assert admin_key.stdout.startswith("ilk_")
    assert (tmp_path / "interlink.db").exists()
    assert (tmp_path / "interlink.db.key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("tenants", "create", "x"), {"INTERLINK_PORT": "abc"}, "interlink: INTERLINK_PORT:"),
        (("api-keys", "create"), {}, "interlink: give exactly one of --tenant ID or --admin"),
        (
            ("api-keys", "create", "--tenant", "ten_nope"),
            {},
            "interlink: tenant ten_nope does not exist",
        ),
        (
            ("jobs", "retry", "job_nope"),
            {},
            "interlink: job job_nope does not exist or is not dead",
        ),
        (("tenants", "create", " "), {}, "interlink: a tenant name is 1 to 200 characters"),
        (
            ("serve", "--port", "1"),  # stops before it listens
            {"INTERLINK_PROVIDERS_PATH": "/nonexistent/providers.yaml"},
            "interlink: INTERLINK_PROVIDERS_PATH: /nonexistent/providers.yaml: no such file",
        ),
        (
            ("tenants", "list"),
            {
                "INTERLINK_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
                "INTERLINK_MASTER_KEY": "a2V5" * 11,
            },
            "interlink: INTERLINK_MASTER_KEY: key #1 is not base64 of 32 bytes",
        ),
    ],
)
def test_bad_input_gets_one_readable_line(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    result = _run(tmp_path, *args, env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == message or result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_postgres_is_one_line(tmp_path: Path) -> None:
    import base64

    key = base64.b64encode(b"x" * 32).decode()
    result = _run(
        tmp_path,
        "tenants",
        "list",
        env={
            "INTERLINK_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
            "INTERLINK_MASTER_KEY": key,
        },
    )
    assert result.returncode == 1
    assert result.stderr.startswith("interlink: the store is unavailable")
    assert "Traceback" not in result.stderr


def test_keys_rotate_and_status(tmp_path: Path) -> None:
    first = _run(tmp_path, "keys", "generate").stdout.strip()
    second = _run(tmp_path, "keys", "generate").stdout.strip()
    assert first != second
    env = {"INTERLINK_MASTER_KEY": f"{second},{first}"}
    status = _run(tmp_path, "keys", "status", env=env)
    lines = status.stdout.strip().splitlines()
    assert lines[0].endswith("\tcurrent") and lines[1].endswith("\tdecrypt only")
    rotated = _run(tmp_path, "keys", "rotate", env=env)
    assert rotated.returncode == 0, rotated.stderr
    assert "secrets now under key" in rotated.stdout


def test_serve_prints_the_admin_token_once_and_answers(tmp_path: Path) -> None:
    server = InterlinkProcess(tmp_path, admin_token=None).start()
    try:
        first_output = server.output()
        assert "Generated the admin token" in first_output
        token = next(word for word in first_output.split() if word.startswith("ila_"))
        request = urllib.request.Request(
            f"{server.url}/v1/tenants", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        for path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"):
            with urllib.request.urlopen(f"{server.url}{path}", timeout=5) as response:
                assert response.status == 200, path
    finally:
        # uvicorn re-raises SIGTERM after a graceful shutdown, so the exit status is -15.
        assert server.stop() in (0, -15)
    assert "Application shutdown complete" in server.output()
    again = InterlinkProcess(tmp_path, admin_token=None).start()
    try:
        assert "Generated the admin token" not in again.output()
    finally:
        again.stop()
    reset = _run(tmp_path, "admin-token", "reset")
    assert reset.stdout.startswith("ila_") and reset.stdout.strip() != token


def test_serve_on_a_taken_port_is_one_line(tmp_path: Path) -> None:
    with InterlinkProcess(tmp_path) as server:
        result = _run(tmp_path, "serve", "--port", str(server.port))
    assert result.returncode == 1
    assert "could not listen" in result.stderr or "address already in use" in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_postgres_needs_migrate_first(tmp_path: Path, pg_url: str) -> None:
    import base64

    env = {
        "INTERLINK_DATABASE_URL": pg_url,
        "INTERLINK_MASTER_KEY": base64.b64encode(b"m" * 32).decode(),
    }
    before = _run(tmp_path, "tenants", "list", env=env)
    assert before.returncode == 1
    assert (
        before.stderr.strip()
        == "interlink: the database schema is not up to date: run `interlink migrate`"
    )
    migrated = _run(tmp_path, "migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.startswith("database is at ")
    assert _run(tmp_path, "tenants", "create", "PG", env=env).returncode == 0
