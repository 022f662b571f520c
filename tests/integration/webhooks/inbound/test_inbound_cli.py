"""``interlink sources``: fire signed samples at a running server, read the log, replay it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.webhooks.inbound.inbound_servers import ServeProcess


@pytest.mark.slow
async def test_fire_events_and_replay_from_the_command_line(tmp_path: Path) -> None:
    server = ServeProcess(f"sqlite:///{tmp_path}/interlink.db", str(tmp_path))
    await server.start()
    try:
        tenant = (await server.api("POST", "/v1/tenants", {"name": "CLI"}))["id"]
        source = await server.api(
            "POST", f"/v1/tenants/{tenant}/sources", {"provider": "stripe", "secret": "whsec_cli"}
        )
        src = source["id"]

        fired = await asyncio.to_thread(
            server.cli, "sources", "fire", src, "--provider", "stripe", "--count", "3"
        )
        assert fired.returncode == 0, fired.stderr
        assert "3x 200" in fired.stdout

        events = await asyncio.to_thread(server.cli, "sources", "events", src)
        assert events.returncode == 0, events.stderr
        lines = events.stdout.strip().splitlines()
        assert len(lines) == 3
        assert all("accepted" in line and "invoice.paid" in line for line in lines)

        replayed = await asyncio.to_thread(server.cli, "sources", "replay", src, "--since", "1h")
        assert replayed.returncode == 0, replayed.stderr
        assert f"replaying 3 events of {src}" in replayed.stdout

        for args in (
            ("sources", "events", "src_01J000000000000000000000000"),
            ("sources", "fire", src, "--provider", "github"),
            ("sources", "replay", src, "--since", "last tuesday"),
            ("sources", "replay", src, "--since", "99999999999d"),  # was an OverflowError
        ):
            failed = await asyncio.to_thread(server.cli, *args)
            assert failed.returncode != 0
            assert "Traceback" not in failed.stderr
            assert len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    finally:
        server.stop()
