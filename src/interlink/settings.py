"""One validated settings object, read once from ``INTERLINK_*`` variables and an optional file.

Precedence, highest first: environment variables, the file named by ``INTERLINK_CONFIG``
(TOML, keys are the setting names in lower case without the prefix), the defaults below.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = ["Settings", "SettingsError", "load_settings"]

DEFAULT_RETRY_SCHEDULE = "5s,5m,30m,2h,5h,10h,10h"
MAX_RETRY_DELAY_SECONDS = 30 * 86400.0
"""The longest wait between two attempts a retry schedule may name (30 days): as long as the
default payload retention, and far inside what a date can be moved by (a delay of
99,999,999,999 days overflowed the delivery job)."""
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class SettingsError(Exception):
    """A setting has a bad value; the message is one line that names the variable."""


def parse_duration(text: str) -> float:
    """Parse ``250ms``, ``5s``, ``5m``, ``2h`` or ``1d`` (a bare number is seconds) into seconds."""
    item = text.strip().lower()
    for unit in ("ms", "s", "m", "h", "d"):
        if item.endswith(unit) and item[: -len(unit)].replace(".", "", 1).isdigit():
            return float(item[: -len(unit)]) * _UNITS[unit]
    if item.replace(".", "", 1).isdigit():
        return float(item)
    raise ValueError(f"{text!r} is not a duration such as 500ms, 5s, 5m, 2h or 1d")


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of Interlink. ``docs/configuration.md`` describes each one."""

    model_config = SettingsConfigDict(env_prefix="INTERLINK_", extra="ignore", frozen=True)

    database_url: str = "sqlite:///./interlink.db"
    admin_token: SecretStr | None = None
    master_key: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    public_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    egress_allow: Annotated[list[str], NoDecode] = Field(default_factory=list)
    retry_schedule: str = DEFAULT_RETRY_SCHEDULE
    broker_url: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_format: Literal["json", "console"] | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    db_pool_size: int = Field(default=10, ge=1, le=200)
    sqlite_synchronous: Literal["normal", "full"] = "normal"

    worker_concurrency: int = Field(default=128, ge=1, le=10_000)
    job_lease_seconds: float = Field(default=30.0, ge=1.0, le=3600.0)
    job_poll_seconds: float = Field(default=1.0, gt=0.0, le=60.0)
    job_max_attempts: int = Field(default=10, ge=1, le=1000)
    job_retention_seconds: float = Field(default=7 * 86400.0, ge=60.0)
    event_retention_seconds: float = Field(default=7 * 86400.0, ge=3600.0)
    inbound_retention_seconds: float = Field(default=30 * 86400.0, ge=3600.0)
    payload_retention_seconds: float = Field(default=30 * 86400.0, ge=3600.0)
    message_retention_seconds: float = Field(default=90 * 86400.0, ge=3600.0)
    audit_retention_seconds: float = Field(default=365 * 86400.0, ge=0.0)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0.0, le=600.0)

    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_scope_claim: str = "scope"
    oidc_roles_claim: str = "roles"
    oidc_admin_value: str = "interlink:admin"
    oidc_tenant_claim: str = "tenant_id"
    oidc_leeway_seconds: int = Field(default=30, ge=0, le=600)

    providers_path: Annotated[list[str], NoDecode] = Field(default_factory=list)
    provider_overrides: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redis_url: str | None = None
    demo: bool = False

    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "otlp_endpoint", "INTERLINK_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
        ),
    )
    service_name: str = "interlink"

    @field_validator(
        "master_key",
        "egress_allow",
        "broker_url",
        "providers_path",
        "provider_overrides",
        mode="before",
    )
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return _split_commas(value)

    @field_validator("egress_allow")
    @classmethod
    def _valid_cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not a CIDR such as 127.0.0.0/8") from exc
        return value

    @field_validator("provider_overrides")
    @classmethod
    def _valid_overrides(cls, value: list[str]) -> list[str]:
        for item in value:
            name, sep, origin = item.partition("=")
            if not sep or not name.strip() or not origin.startswith(("http://", "https://")):
                raise ValueError(f"{item!r} is not provider=http(s)://origin")
        return value

    @field_validator("redis_url")
    @classmethod
    def _valid_redis(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// or rediss:// URL")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("retry_schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        items = [item for item in value.split(",") if item.strip()]
        if not items:
            raise ValueError("needs at least one delay, e.g. 5s,5m,30m")
        for item in items:
            if parse_duration(item) > MAX_RETRY_DELAY_SECONDS:
                raise ValueError(f"{item.strip()!r} is longer than the longest retry delay, 30d")
        return value

    @field_validator("message_retention_seconds")
    @classmethod
    def _messages_outlive_payloads(cls, value: float, info: ValidationInfo) -> float:
        payloads = info.data.get("payload_retention_seconds")
        if payloads is not None and value < payloads:
            raise ValueError(
                f"must be at least INTERLINK_PAYLOAD_RETENTION_SECONDS ({payloads:.0f}): a message "
                "outlives its payload"
            )
        return value

    @field_validator("audit_retention_seconds")
    @classmethod
    def _audit_kept_a_day_or_for_good(cls, value: float) -> float:
        if 0 < value < 86400:
            raise ValueError("must be 0 (keep the audit log for good) or at least 86400 (a day)")
        return value

    @field_validator("public_url")
    @classmethod
    def _valid_public_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        """The database file, or None for PostgreSQL and in-memory SQLite."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[-1]
        if path in ("", ":memory:"):
            return None
        return Path(path)

    @property
    def effective_public_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def provider_origin_overrides(self) -> dict[str, str]:
        pairs = [item.partition("=") for item in self.provider_overrides]
        return {name.strip(): origin.strip() for name, _, origin in pairs}

    @property
    def retry_delays(self) -> list[float]:
        return [parse_duration(item) for item in self.retry_schedule.split(",") if item.strip()]

    @property
    def egress_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(cidr, strict=False) for cidr in self.egress_allow]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the config file, which arrives as init keyword arguments.
        return (env_settings, init_settings)


def _read_config_file(path: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SettingsError(f"INTERLINK_CONFIG: no such file {path}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"INTERLINK_CONFIG: {path} is not valid TOML: {exc}") from exc
    return {str(key).lower(): value for key, value in data.items()}


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, raising ``SettingsError`` with one line that names the bad variable."""
    values: dict[str, Any] = {}
    config_path = os.environ.get("INTERLINK_CONFIG")
    if config_path:
        values.update(_read_config_file(config_path))
    values.update(overrides)
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "settings"
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"INTERLINK_{field.upper()}: {message}") from exc
