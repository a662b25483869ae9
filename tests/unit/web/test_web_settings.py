"""Settings: every bad or missing value is refused with one line naming the variable."""

from __future__ import annotations

import pytest

from partyquiz_web.settings import SettingsError, load_settings

GOOD_SECRET = "k3Jx9-p2Qw8zR4tY7uV1bN5mA6sD0fG3hL2jK9pQ"


def test_missing_secret_is_refused_naming_the_variable() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({})
    assert str(info.value).startswith("PARTYQUIZ_WEB_JWT_SECRET: is required")
    assert "\n" not in str(info.value)


def test_short_secret_is_refused_in_production() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"PARTYQUIZ_WEB_JWT_SECRET": "too-short"})
    assert str(info.value) == (
        "PARTYQUIZ_WEB_JWT_SECRET: must be at least 32 bytes (got 9) outside "
        "ENVIRONMENT=development"
    )


@pytest.mark.parametrize("secret", ["changeme", "x" * 40, "ab" * 20, "abc" * 20])
def test_placeholder_secrets_are_refused_in_production(secret: str) -> None:
    env = {"PARTYQUIZ_WEB_JWT_SECRET": secret}
    with pytest.raises(SettingsError, match="PARTYQUIZ_WEB_JWT_SECRET"):
        load_settings(env)


def test_development_accepts_a_short_secret() -> None:
    settings = load_settings(
        {"PARTYQUIZ_WEB_JWT_SECRET": "dev", "PARTYQUIZ_WEB_ENVIRONMENT": "development"}
    )
    assert settings.secret == "dev"


def test_migrate_needs_no_secret() -> None:
    settings = load_settings({}, secret_optional=True)
    assert settings.jwt_secret is None
    with pytest.raises(SettingsError, match="JWT_SECRET"):
        _ = settings.secret


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("PORT", "eighty", "valid integer"),
        ("PORT", "70000", "less than or equal to 65535"),
        ("ENVIRONMENT", "staging", "'development' or 'production'"),
        ("DATABASE_URL", "mysql://db/x", "postgresql+asyncpg://"),
        ("REDIS_URL", "http://cache", "redis://"),
        ("PUBLIC_WS_URL", "http://example.org/ws", "ws://"),
        ("PUBLIC_URL", "192.168.1.20:8000", "http(s)://host[:port]"),
        ("PUBLIC_URL", "https://quiz.example.org/play", "no path"),
        ("MAX_BODY_BYTES", "10", "greater than or equal to 1024"),
    ],
)
def test_bad_value_names_the_variable_and_the_rule(name: str, value: str, rule: str) -> None:
    env = {"PARTYQUIZ_WEB_JWT_SECRET": GOOD_SECRET, f"PARTYQUIZ_WEB_{name}": value}
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    message = str(info.value)
    assert message.startswith(f"PARTYQUIZ_WEB_{name}: ")
    assert rule in message
    assert "\n" not in message


def test_defaults_use_sqlite_in_the_working_directory(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    settings = load_settings({"PARTYQUIZ_WEB_JWT_SECRET": GOOD_SECRET})
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path}/partyquiz.db"
    assert settings.environment == "production"
    assert settings.redis_url is None
    assert settings.port == 8000


def test_empty_redis_url_means_no_redis() -> None:
    settings = load_settings(
        {"PARTYQUIZ_WEB_JWT_SECRET": GOOD_SECRET, "PARTYQUIZ_WEB_REDIS_URL": ""}
    )
    assert settings.redis_url is None


def test_process_environment_is_read_through_pydantic_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARTYQUIZ_WEB_JWT_SECRET", GOOD_SECRET)
    monkeypatch.setenv("PARTYQUIZ_WEB_PORT", "9123")
    monkeypatch.setenv("PARTYQUIZ_WEB_ALLOW_REGISTRATION", "false")
    settings = load_settings(host="192.0.2.10")
    assert (settings.port, settings.allow_registration, settings.host) == (
        9123,
        False,
        "192.0.2.10",
    )


def test_bad_process_environment_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARTYQUIZ_WEB_JWT_SECRET", GOOD_SECRET)
    monkeypatch.setenv("PARTYQUIZ_WEB_LOGIN_RATE_LIMIT", "0")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(info.value) == (
        "PARTYQUIZ_WEB_LOGIN_RATE_LIMIT: Input should be greater than or equal to 1"
    )


def test_a_public_url_loses_its_trailing_slash() -> None:
    env = {"PARTYQUIZ_WEB_JWT_SECRET": GOOD_SECRET, "PARTYQUIZ_WEB_PUBLIC_URL": "http://h:8000/"}
    assert load_settings(env).public_url == "http://h:8000"
