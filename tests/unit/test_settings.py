from __future__ import annotations

import pytest

from interlink.settings import SettingsError, load_settings, parse_duration


def test_defaults_are_the_embedded_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INTERLINK_DATABASE_URL", "INTERLINK_CONFIG", "INTERLINK_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.database_url == "sqlite:///./interlink.db"
    assert settings.effective_public_url == "http://127.0.0.1:8080"
    assert settings.retry_delays == [5, 300, 1800, 7200, 18000, 36000, 36000]


def test_comma_separated_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLINK_EGRESS_ALLOW", "127.0.0.0/8, ::1/128")
    monkeypatch.setenv("INTERLINK_BROKER_URL", "redis://localhost,nats://localhost")
    settings = load_settings()
    assert settings.egress_allow == ["127.0.0.0/8", "::1/128"]
    assert [str(n) for n in settings.egress_networks] == ["127.0.0.0/8", "::1/128"]
    assert settings.broker_url == ["redis://localhost", "nats://localhost"]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("INTERLINK_PORT", "eighty", "INTERLINK_PORT:"),
        ("INTERLINK_PORT", "70000", "INTERLINK_PORT: Input should be less than or equal to 65535"),
        (
            "INTERLINK_EGRESS_ALLOW",
            "10.0.0.0/8,nope",
            "INTERLINK_EGRESS_ALLOW: 'nope' is not a CIDR",
        ),
        ("INTERLINK_DATABASE_URL", "mysql://x", "INTERLINK_DATABASE_URL: must start with"),
        (
            "INTERLINK_RETRY_SCHEDULE",
            "5s,soon",
            "INTERLINK_RETRY_SCHEDULE: 'soon' is not a duration",
        ),
        (
            "INTERLINK_RETRY_SCHEDULE",
            "5s,99999999999d",
            "INTERLINK_RETRY_SCHEDULE: '99999999999d' is longer than the longest retry delay, 30d",
        ),
        ("INTERLINK_LOG_FORMAT", "xml", "INTERLINK_LOG_FORMAT:"),
        ("INTERLINK_PUBLIC_URL", "example.com", "INTERLINK_PUBLIC_URL: must be an http"),
        (
            # Below the payloads' 30 days: a message would go before its payload.
            "INTERLINK_MESSAGE_RETENTION_SECONDS",
            "86400",
            "INTERLINK_MESSAGE_RETENTION_SECONDS: must be at least "
            "INTERLINK_PAYLOAD_RETENTION_SECONDS (2592000)",
        ),
        (
            "INTERLINK_AUDIT_RETENTION_SECONDS",
            "3600",
            "INTERLINK_AUDIT_RETENTION_SECONDS: must be 0 (keep the audit log for good) or at "
            "least 86400",
        ),
    ],
)
def test_bad_values_fail_fast_with_one_line(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_the_audit_log_is_kept_a_year_or_for_good(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().audit_retention_seconds == 365 * 86400
    monkeypatch.setenv("INTERLINK_AUDIT_RETENTION_SECONDS", "0")
    assert load_settings().audit_retention_seconds == 0


def test_config_file_is_read_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "interlink.toml"
    path.write_text('port = 9000\npublic_url = "https://hooks.example.com/"\nlog_level = "debug"\n')
    monkeypatch.setenv("INTERLINK_CONFIG", str(path))
    monkeypatch.setenv("INTERLINK_LOG_LEVEL", "warning")
    settings = load_settings()
    assert settings.port == 9000
    assert settings.public_url == "https://hooks.example.com"
    assert settings.log_level == "warning"


def test_missing_or_broken_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    from pathlib import Path

    monkeypatch.setenv("INTERLINK_CONFIG", "/nonexistent/interlink.toml")
    with pytest.raises(SettingsError, match="no such file"):
        load_settings()
    broken = Path(str(tmp_path)) / "broken.toml"
    broken.write_text("port = = 1")
    monkeypatch.setenv("INTERLINK_CONFIG", str(broken))
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("5s", 5), ("5m", 300), ("2h", 7200), ("1d", 86400), ("7", 7)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_postgres_path_is_none() -> None:
    settings = load_settings(database_url="postgresql://u@h/db")
    assert settings.sqlite_path is None
    assert not settings.is_sqlite
