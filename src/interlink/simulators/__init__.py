"""Provider simulators: local aiohttp servers that speak real providers' wire formats.

They are the upstream of the integration tests, the ``--demo`` mode and the benchmarks
(``interlink simulate PROVIDER``), so that sync, proxy, OAuth and resilience code is exercised
against the providers' actual paging schemes, auth flows, error shapes and rate-limit headers,
with injectable faults. This package imports only aiohttp and orjson; nothing in ``interlink``
may import it outside tests, the CLI and benchmarks.

What every simulator shares, one module each:

- ``faults``: the declarative fault profiles (:class:`Faults`).
- ``records``: seeded, deterministic fake records (:class:`RecordGenerator`).
- ``oauth``: the auto-approving OAuth 2.0 server each provider wraps (:class:`OAuthServerSim`).
- ``app``: the aiohttp application around a provider's routes (:class:`ProviderSimulator`).
- ``running``: :func:`serve_simulator` (in-process, for tests) and :func:`run_simulator` (CLI).
- ``http``: small request and response helpers.

Each provider is one module (``stripe``, ``salesforce``, ``hubspot``, ``github``) exporting
``SIMULATOR``.
"""

from __future__ import annotations

from interlink.simulators.app import ProviderSimulator, RecordedRequest
from interlink.simulators.faults import FAULT_PROFILES, Faults
from interlink.simulators.oauth import (
    SIM_CLIENT_ID,
    SIM_CLIENT_SECRET,
    OAuthError,
    OAuthRules,
    OAuthServerSim,
    TokenCheck,
    TokenGrant,
    TokenStatus,
    pkce_s256,
)
from interlink.simulators.records import RecordGenerator
from interlink.simulators.running import (
    SIMULATOR_NAMES,
    RunningSimulator,
    create_simulator,
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
