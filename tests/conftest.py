"""Shared fixtures: real SQLite and PostgreSQL stores, runtimes and an API client.

Tests that need a local service (PostgreSQL, Redis, RabbitMQ, NATS, Mosquitto) call
``require_service``: in CI (``CI=true``) a missing service fails the test loudly; elsewhere the
test is skipped with the reason printed.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from interlink.api.app import create_app
from interlink.runtime import Runtime
from interlink.settings import Settings
from interlink.store.scratch import scratch_database

PG_HOST = os.environ.get("INTERLINK_TEST_PG_HOST", "127.0.0.1")
PG_ADMIN_URL = f"postgresql://postgres@{PG_HOST}:5432/test"
ADMIN_TOKEN = "ila_test-admin-token-for-the-suite-0123456789"
MASTER_KEY = base64.b64encode(b"k" * 32).decode()

SERVICES = {
    "postgres": ("PostgreSQL", PG_HOST, 5432),
    "redis": ("Redis", "127.0.0.1", 6379),
    "rabbitmq": ("RabbitMQ", "127.0.0.1", 5672),
    "nats": ("NATS", "127.0.0.1", 4222),
    "mqtt": ("Mosquitto", "127.0.0.1", 1883),
}


def require_service(key: str) -> None:
    name, host, port = SERVICES[key]
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as error:
        message = f"{name} is not reachable at {host}:{port} ({error})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must have it running", pytrace=False)
    print(f"SKIP: {message}")
    pytest.skip(message)


@contextlib.contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    require_service("postgres")
    with scratch_database(PG_ADMIN_URL, "il_test") as url:
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_pg_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path}/interlink.db"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """Each test using this runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/interlink.db"
        return
    with fresh_pg_database() as url:
        yield url


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "admin_token": ADMIN_TOKEN,
        "master_key": MASTER_KEY,
        "job_poll_seconds": 0.05,
        "log_format": "json",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings_factory() -> Callable[..., Settings]:
    return make_settings


@contextlib.asynccontextmanager
async def started_runtime(url: str) -> AsyncIterator[Runtime]:
    """A started runtime without capabilities on the store at ``url``, closed afterwards."""
    rt = Runtime(make_settings(url), capabilities=[])
    await rt.start(migrate_schema=True)
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
async def runtime(db_url: str) -> AsyncIterator[Runtime]:
    async with started_runtime(db_url) as rt:
        yield rt


@pytest.fixture
async def pg_runtime(pg_url: str) -> AsyncIterator[Runtime]:
    """A runtime on a fresh PostgreSQL database only."""
    async with started_runtime(pg_url) as rt:
        yield rt


@pytest.fixture
async def sqlite_runtime(sqlite_url: str) -> AsyncIterator[Runtime]:
    """A runtime on a SQLite file only."""
    async with started_runtime(sqlite_url) as rt:
        yield rt


@contextlib.asynccontextmanager
async def api_client(
    runtime: Runtime, *, run_workers: bool = False, token: str | None = ADMIN_TOKEN
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client wired to a live app (lifespan included) for ``runtime``."""
    app = create_app(runtime, run_workers=run_workers, migrate=True)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://interlink.test", headers=headers
        ) as client:
            yield client


@pytest.fixture
def free_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port
