"""Provider simulators: local aiohttp servers that speak real providers' wire formats.

They are the upstream of the integration tests, the ``--demo`` mode and the benchmarks
(``interlink simulate PROVIDER``), so that sync, proxy, OAuth and resilience code is exercised
against the providers' actual paging schemes, auth flows, error shapes and rate-limit headers,
with injectable faults. This package imports only aiohttp and orjson; nothing in ``interlink``
may import it outside tests, the CLI and benchmarks.
"""

from __future__ import annotations

from interlink.simulators.base import (
    FAULT_PROFILES,
    SIM_CLIENT_ID,
    SIM_CLIENT_SECRET,
    SIMULATOR_NAMES,
    Faults,
    OAuthError,
    OAuthRules,
    OAuthServerSim,
    ProviderSimulator,
    RecordedRequest,
    RecordGenerator,
    RunningSimulator,
    TokenCheck,
    TokenGrant,
    TokenStatus,
    create_simulator,
    pkce_s256,
    run_simulator,
    serve_simulator,
)

__all__ = [
    "FAULT_PROFILES",
    "SIMULATOR_NAMES",
    "SIM_CLIENT_ID",
    "SIM_CLIENT_SECRET",
    "Faults",
    "OAuthError",
    "OAuthRules",
    "OAuthServerSim",
    "ProviderSimulator",
    "RecordGenerator",
    "RecordedRequest",
    "RunningSimulator",
    "TokenCheck",
    "TokenGrant",
    "TokenStatus",
    "create_simulator",
    "pkce_s256",
    "run_simulator",
    "serve_simulator",
]
