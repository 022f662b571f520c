"""schemathesis over the whole OpenAPI surface of a real server: no input answers 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import ADMIN_TOKEN, fresh_pg_database
from tests.serving import InterlinkProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api_schema(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    workdir: Path = tmp_path_factory.mktemp(f"schemathesis-{request.param}")
    if request.param == "sqlite":
        with InterlinkProcess(workdir) as server:
            yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        return
    with fresh_pg_database() as url:
        migrate = InterlinkProcess(workdir, database_url=url, args=("migrate",))
        migrate.start(wait=False)
        assert migrate.process is not None and migrate.process.wait(60) == 0, migrate.output()
        migrate.stop()
        with InterlinkProcess(workdir, database_url=url) as server:
            yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_gets_a_server_error(case: schemathesis.Case) -> None:
    response = case.call(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} answered {response.status_code}: {response.text[:500]}"
    )
