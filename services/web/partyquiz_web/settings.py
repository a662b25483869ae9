"""Configuration of the web service: one pydantic-settings class, prefix ``PARTYQUIZ_WEB_``.

Owns every tunable of the process and the rules they must follow. It is built once by the
entry point (``cli`` or ``demo``) and passed down; nothing here runs at import time and no
other module reads the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "PARTYQUIZ_WEB_"
MIN_SECRET_BYTES = 32
DEVELOPMENT_WS_URL = "ws://localhost:8001/ws"
MISSING_SECRET = (
    f"{ENV_PREFIX}JWT_SECRET: is required (at least {MIN_SECRET_BYTES} bytes, the same value as "
    "PARTYQUIZ_WS_JWT_SECRET)"
)

# Values copied from examples and templates; a deployment that keeps one of them is not secret.
KNOWN_DEFAULT_SECRETS = frozenset(
    {
        "changeme",
        "change-me",
        "changethis",
        "secret",
        "jwt-secret",
        "partyquiz",
        "development",
        "dev-secret",
        "please-change-me",
        "your-secret-here",
    }
)


class SettingsError(Exception):
    """A configuration value is missing or breaks its rule; the message is one line."""


def default_database_url(cwd: Path | None = None) -> str:
    """Return the embedded SQLite database URL: ``partyquiz.db`` in the working directory."""
    return f"sqlite+aiosqlite:///{(cwd or Path.cwd()) / 'partyquiz.db'}"


def _is_known_default(secret: str) -> bool:
    lowered = secret.strip().lower()
    if lowered in KNOWN_DEFAULT_SECRETS:
        return True
    # "xxxx..." or "abab..." passes a length check but has no entropy; the game service
    # applies the same rule, so a secret one side accepts the other accepts too.
    return len(set(secret)) < 4


class WebSettings(BaseSettings):
    """Every setting of ``partyquiz-web``; each field is ``PARTYQUIZ_WEB_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, validate_default=True
    )

    environment: Literal["development", "production"] = Field(
        default="production",
        description="development relaxes the secret rules; production refuses weak secrets.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy async URL (postgresql+asyncpg://... or sqlite+aiosqlite:///...); "
        "empty means partyquiz.db in the working directory.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for cross-replica rate limits and readiness; unset keeps limits "
        "in process (single replica).",
    )
    jwt_secret: SecretStr | None = Field(
        default=None,
        description=f"HS256 key shared with the game service; at least {MIN_SECRET_BYTES} bytes.",
    )
    public_url: str | None = Field(
        default=None,
        description="The address players open the pages at (http(s)://host[:port]): join "
        "links and QR codes point there. Unset: the address the host's browser used.",
    )
    public_ws_url: str | None = Field(
        default=None,
        description="Where players' browsers open the game WebSocket. Unset: "
        "ws(s)://<PUBLIC_URL host>/ws when PUBLIC_URL is set, else "
        f"{DEVELOPMENT_WS_URL} in development, ws(s)://<request host>/ws in production.",
    )
    host: str = Field(default="127.0.0.1", description="Address `serve` binds to.")
    port: Annotated[int, Field(ge=1, le=65535)] = Field(default=8000, description="TCP port.")
    workers: Annotated[int, Field(ge=1, le=64)] = Field(
        default=1,
        description="Processes `serve` runs on one socket (uvicorn's supervisor restarts one "
        "that dies). Each keeps its own /metrics counters; Kubernetes scales pods instead.",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Proxies whose X-Forwarded-For is trusted for the client IP (uvicorn syntax).",
    )
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = Field(
        default=1024 * 1024, description="Largest accepted request body in bytes (413 above)."
    )
    access_token_ttl_seconds: Annotated[int, Field(ge=60, le=30 * 24 * 3600)] = Field(
        default=12 * 3600, description="Lifetime of a host's login token."
    )
    allow_registration: bool = Field(
        default=True, description="false closes sign-up (403); existing hosts still log in."
    )
    login_rate_limit: Annotated[int, Field(ge=1)] = Field(
        default=10, description="Login/register attempts per client IP per window."
    )
    code_lookup_rate_limit: Annotated[int, Field(ge=1)] = Field(
        default=30, description="Join-code lookups per client IP per window."
    )
    rate_limit_window_seconds: Annotated[int, Field(ge=1, le=3600)] = Field(
        default=60, description="Length of a rate-limit window in seconds."
    )
    dependency_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = Field(
        default=2.0, description="How long /readyz waits for the database or Redis."
    )
    shutdown_timeout_seconds: Annotated[int, Field(ge=1, le=600)] = Field(
        default=20,
        description="On SIGTERM, how long requests in flight may finish before the process "
        "exits; keep it below the pod's termination grace period.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _check_secret_and_defaults(self) -> Self:
        if not self.database_url:
            object.__setattr__(self, "database_url", default_database_url())
        if not self.database_url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError(
                "DATABASE_URL: must start with postgresql+asyncpg:// or sqlite+aiosqlite://"
            )
        if self.redis_url is not None and not self.redis_url:
            object.__setattr__(self, "redis_url", None)
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("REDIS_URL: must start with redis://, rediss:// or unix://")
        if self.public_url is not None:
            url = self.public_url.rstrip("/")
            if not url.startswith(("http://", "https://")) or "/" in url.split("://", 1)[1]:
                raise ValueError("PUBLIC_URL: must be http(s)://host[:port] with no path")
            object.__setattr__(self, "public_url", url)
        if self.public_ws_url and not self.public_ws_url.startswith(("ws://", "wss://")):
            raise ValueError("PUBLIC_WS_URL: must start with ws:// or wss://")
        if self.jwt_secret is None:
            return self
        secret = self.jwt_secret.get_secret_value()
        if self.environment != "development":
            if len(secret.encode()) < MIN_SECRET_BYTES:
                raise ValueError(
                    f"JWT_SECRET: must be at least {MIN_SECRET_BYTES} bytes "
                    f"(got {len(secret.encode())}) outside ENVIRONMENT=development"
                )
            if _is_known_default(secret):
                raise ValueError(
                    "JWT_SECRET: is a known default or placeholder; generate a random one"
                )
        elif not secret:
            raise ValueError("JWT_SECRET: must not be empty")
        return self

    @property
    def secret(self) -> str:
        """The JWT key; only settings loaded with ``secret_optional`` may lack it."""
        if self.jwt_secret is None:
            raise SettingsError(MISSING_SECRET)
        return self.jwt_secret.get_secret_value()

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _one_line(error: ValidationError) -> str:
    parts: list[str] = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        field = ".".join(str(p) for p in item["loc"]).upper()
        if field:
            parts.append(f"{ENV_PREFIX}{field}: {message}")
        else:
            # Rules checked across fields already start with the variable's short name.
            parts.append(f"{ENV_PREFIX}{message}")
    return "; ".join(parts)


def load_settings(
    environ: Mapping[str, str] | None = None, *, secret_optional: bool = False, **overrides: object
) -> WebSettings:
    """Build the settings from the process environment (or ``environ``) and overrides.

    Without ``environ`` pydantic-settings reads the process environment; tests pass a mapping
    so the result depends on nothing else. ``secret_optional`` is for commands that sign
    nothing (``migrate``). Raises ``SettingsError`` with one line naming the variable and
    the rule.
    """
    try:
        if environ is None:
            settings = WebSettings(**overrides)  # type: ignore[arg-type]
        else:
            values: dict[str, object] = {
                name: environ[f"{ENV_PREFIX}{name.upper()}"]
                for name in WebSettings.model_fields
                if f"{ENV_PREFIX}{name.upper()}" in environ
            }
            settings = WebSettings.model_validate({**values, **overrides})
    except ValidationError as exc:
        raise SettingsError(_one_line(exc)) from None
    if settings.jwt_secret is None and not secret_optional:
        raise SettingsError(MISSING_SECRET)
    return settings
