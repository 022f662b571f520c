"""Fault profiles a simulator injects: declared as data, combinable, switchable at run time.

The profiles are ``none``, ``latency``, ``rate_limit``, ``flaky``, ``timeout``,
``expiring_tokens``, ``revoked_refresh`` and ``access_denied``; they combine by comma and can be
switched while a simulator runs through ``PUT /_sim/faults``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["FAULT_PROFILES", "Faults"]

FAULT_PROFILES: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "none": {},
        "latency": {"latency_ms": (50, 300)},
        "rate_limit": {"rate_limit_every": 5},
        "flaky": {"flaky_ratio": 0.2},
        "timeout": {"timeout_ratio": 0.1},
        "expiring_tokens": {"access_token_ttl": 5.0},
        "revoked_refresh": {"revoked_refresh": True},
        "access_denied": {"deny_authorize": True},
    }
)
"""Profile name -> the :class:`Faults` settings it turns on."""


@dataclass(frozen=True, slots=True)
class Faults:
    """The faults a simulator injects; build with :meth:`parse`, tweak with :meth:`with_settings`.

    Faults apply to API routes; OAuth routes see only ``expiring_tokens``, ``revoked_refresh`` and
    ``access_denied``.
    """

    profiles: tuple[str, ...] = ()
    latency_ms: tuple[int, int] | None = None
    """Every API request waits a uniform random delay in this range."""
    rate_limit_every: int | None = None
    """Every Nth API request is answered with the provider's 429."""
    retry_after_seconds: int = 2
    flaky_ratio: float = 0.0
    """About this share of API requests fail with 500/502/503, in bursts of one to three."""
    timeout_ratio: float = 0.0
    """This share of API requests hangs ``hang_seconds`` before answering."""
    hang_seconds: float = 30.0
    access_token_ttl: float | None = None
    """Lifetime of access tokens issued from now on, overriding the provider's."""
    revoked_refresh: bool = False
    """Refresh grants answer ``invalid_grant``."""
    deny_authorize: bool = False
    """The authorize endpoint redirects back with ``error=access_denied``."""

    @classmethod
    def parse(cls, spec: str | Sequence[str]) -> Faults:
        """Combine profiles given as ``"latency,rate_limit"`` or a list of names.

        Raises:
            ValueError: an unknown profile name.
        """
        names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec)]
        names = [n for n in names if n and n != "none"]
        settings: dict[str, Any] = {}
        for name in names:
            if name not in FAULT_PROFILES:
                known = ", ".join(FAULT_PROFILES)
                raise ValueError(f"unknown fault profile '{name}' (known: {known})")
            settings.update(FAULT_PROFILES[name])
        return cls(profiles=tuple(dict.fromkeys(names)), **settings)

    def with_settings(self, **changes: Any) -> Faults:
        """Return a copy with some settings changed (types and ranges checked).

        Raises:
            ValueError: an unknown setting or a value of the wrong type or range.
        """
        fields_by_name = {f.name: f for f in dataclasses.fields(self)}
        clean: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in fields_by_name or key == "profiles":
                raise ValueError(f"unknown fault setting '{key}'")
            clean[key] = _check_setting(key, value)
        return dataclasses.replace(self, **clean)

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON-ready data (what ``GET /_sim/faults`` answers)."""
        data = dataclasses.asdict(self)
        data["profiles"] = list(self.profiles)
        data["latency_ms"] = list(self.latency_ms) if self.latency_ms else None
        return data


def _check_setting(key: str, value: Any) -> Any:
    if value is None and key in {"latency_ms", "rate_limit_every", "access_token_ttl"}:
        return None
    if key in {"revoked_refresh", "deny_authorize"}:
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false")
        return value
    if key == "latency_ms":
        if (
            not isinstance(value, list | tuple)
            or len(value) != 2
            or not all(isinstance(v, int) and v >= 0 for v in value)
            or value[0] > value[1]
        ):
            raise ValueError("latency_ms must be [low, high] milliseconds")
        return (value[0], value[1])
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number")
    if key in {"rate_limit_every", "retry_after_seconds"}:
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive integer")
        return value
    if key in {"flaky_ratio", "timeout_ratio"} and not 0 <= value <= 1:
        raise ValueError(f"{key} must be between 0 and 1")
    if value < 0:
        raise ValueError(f"{key} must not be negative")
    return float(value)
