"""Configuration of one game-service process (env prefix ``PARTYQUIZ_WS_``).

Owns every tunable of the game service and the rules that refuse unsafe values at start-up.
Built once in the entry point and passed down; nothing here reads the environment at import.
"""

from __future__ import annotations

import ipaddress
import socket
import uuid
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "PARTYQUIZ_WS_"
MIN_SECRET_BYTES = 32
# Values people paste from examples; refused outside development even when long enough.
KNOWN_DEFAULT_SECRETS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "partyquiz",
        "development",
        "insecure",
        "please-change-me-please-change-me",
        "changeme-changeme-changeme-changeme",
        "0" * 32,
        "x" * 32,
    }
)


# Loopback and private address ranges (RFC 1918, unique-local IPv6).
PRIVATE_NETWORKS = "127.0.0.0/8,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"


def _split_list(value: str) -> list[str]:
    return [entry.strip() for entry in value.split(",") if entry.strip()]


def _default_replica_id() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"


class WsSettings(BaseSettings):
    """Settings of the game service; every field maps to ``PARTYQUIZ_WS_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    environment: Literal["development", "production"] = "production"
    """``development`` relaxes the secret rules and allows any Origin by default."""
    jwt_secret: SecretStr = Field(default=SecretStr(""))
    """Shared HS256 secret with the web service; at least 32 bytes, never a known default."""
    redis_url: str | None = None
    """Redis URL; unset runs the embedded single-replica mode (state in this process only)."""
    redis_max_connections: int = Field(default=200, ge=4, le=100_000)
    """Redis connections this process may open. Commands travel in pipelines on two
    connections of their own, however many players and games it serves; the shared wait for
    word of new commands to the games it owns has one, and pub/sub takes one from the rest."""
    redis_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    """Longest a pipeline of commands waits for Redis's replies before its commands fail (an
    answer as ``unavailable``) and its connection is opened again."""
    web_internal_url: str = "http://127.0.0.1:8000"
    """Base URL of the web service's internal API (quiz lookup, started, results)."""
    host: str = "0.0.0.0"  # noqa: S104 - a container must listen on all interfaces
    port: int = Field(default=8001, ge=1, le=65535)
    drain_seconds: float = Field(default=30.0, ge=0, le=3600)
    """Grace period after SIGTERM before the process exits even with clients left."""
    allowed_origins: str = ""
    """Comma list of allowed Origins; empty = same host only (production), any (development)."""
    forwarded_allow_ips: str = PRIVATE_NETWORKS
    """Comma list of proxy addresses or networks whose X-Forwarded-For names the client
    (``*``: any proxy), the syntax of the web service's setting of the same name, so one list
    of networks configures both. The default trusts loopback and the private ranges, where a
    cluster's ingress or a load balancer connects from: otherwise every player behind one
    would count as that proxy's address in the per-address limits. An entry that is neither
    an address nor a network stops start-up."""
    replica_id: str = Field(default_factory=_default_replica_id, min_length=1, max_length=100)
    """Name of this replica in leases and reply channels; unique per process."""
    lease_ttl_seconds: float = Field(default=3.0, gt=0.2, le=60)
    """Owner lease lifetime; a dead owner's games move to another replica after at most this."""
    message_rate_per_second: float = Field(default=10.0, gt=0)
    """Sustained client messages per second per connection before ``rate_limited`` errors."""
    message_burst: int = Field(default=30, ge=1)
    """Messages a connection may send at once before the rate limit applies."""
    flood_close_frames: int = Field(default=50, ge=1)
    """Frames over the rate limit a connection may send (the excess drains at the sustained
    rate) before it is closed with 4008; the first one gets a ``rate_limited`` notice."""
    wrong_code_limit: int = Field(default=20, ge=1)
    """Wrong join codes one address may try per ``wrong_code_window_seconds`` (all replicas)."""
    wrong_code_window_seconds: float = Field(default=60.0, gt=0)
    """The window of ``wrong_code_limit``."""
    hello_timeout_seconds: float = Field(default=10.0, gt=0)
    """How long a new connection may go without a role (``join``, ``resume`` or ``host``
    answered) before it is closed with 4001, whatever it sends meanwhile."""
    hello_max_frames: int = Field(default=10, ge=1)
    """Frames a connection may send before it has a role; one more closes it with 4001."""
    max_connections_per_address: int = Field(default=500, ge=1)
    """Open connections one client address (an IPv6 /64) may hold across all replicas; more
    are closed with 4029. A venue behind one NAT address needs room for everyone there."""
    join_rate_per_address: int = Field(default=30, ge=1)
    """Join attempts one address may make per ``join_rate_window_seconds`` (all replicas)."""
    join_rate_per_game: int = Field(default=300, ge=1)
    """Join attempts one game may take per ``join_rate_window_seconds`` (all replicas)."""
    join_rate_window_seconds: float = Field(default=10.0, gt=0)
    """The window of the join rates."""
    max_players_per_game: int = Field(default=2000, ge=1, le=100_000)
    """Players a game created by this replica takes; more get ``game_full``."""
    kick_bans_address: bool = True
    """A kick also bans the kicked player's address (IPv6: its /64) from the game, besides its
    device id and nickname. Behind a shared address (a school's NAT) that refuses everyone
    there who had not joined yet; turn it off for such venues."""
    tick_grace_seconds: float = Field(default=0.25, ge=0, le=5)
    """Wait after a deadline before closing the question, for answers still in flight."""
    snapshot_interval_seconds: float = Field(default=0.5, ge=0, le=10)
    """With Redis, longest time between two full snapshots of a game while it changes (a timer,
    a phase change or the end saves one at once). Each batch in between only publishes and
    records how far it got; a new owner replays the inbox after the snapshot, so a longer
    interval costs a longer replay on takeover, a shorter one more CPU per batch in big
    games. 0 saves every batch. Embedded mode keeps the state object and always saves."""
    gc_freeze_seconds: float = Field(default=1.0, ge=0, le=60)
    """How often objects that survived are moved out of the garbage collector's way, so its
    automatic passes stay short with 10 000 connections open (see ``collector``). 0 leaves
    Python's default collector alone: full passes then stop the replica for ~0.5 s at
    unpredictable moments in big games."""
    gc_full_every_seconds: float = Field(default=300.0, gt=0)
    """Full garbage collection at most this often, and only when no game is live here."""
    gc_full_max_seconds: float = Field(default=3600.0, gt=0)
    """Full garbage collection at least this often, even with games live (a pause of about a
    second with 10 000 connections)."""
    results_retry_max_seconds: float = Field(default=30.0, gt=0)
    """Upper bound of the back-off between attempts to deliver results to the web service."""
    nickname_blocklist: str = ""
    """Comma list of words refused in nicknames (``nickname_refused``); empty: none. Matched
    without case, accents and look-alikes, as whole words; ``*`` at an end matches inside a
    longer word (docs/ws.md)."""
    nickname_blocklist_file: Path | None = None
    """A word list refused in nicknames like ``nickname_blocklist``: one word per line, ``#``
    starts a comment line. Read once at start-up; unset: none."""

    @field_validator("redis_url", mode="before")
    @classmethod
    def _empty_redis_url_means_embedded(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("nickname_blocklist_file", mode="before")
    @classmethod
    def _empty_path_means_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("nickname_blocklist_file")
    @classmethod
    def _word_list_is_readable(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                value.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"cannot read {value}: {type(exc).__name__}") from None
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies_are_addresses_or_networks(cls, value: str) -> str:
        for entry in _split_list(value):
            if entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(
                        f"{entry!r} is not an address, a network (10.0.0.0/8) or *"
                    ) from None
        return value

    @field_validator("web_internal_url")
    @classmethod
    def _web_url_scheme(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _secret_is_strong(self) -> WsSettings:
        secret = self.jwt_secret.get_secret_value()
        if not secret:
            raise ValueError("jwt_secret: must be set (the same value as PARTYQUIZ_WEB_JWT_SECRET)")
        if self.environment == "development":
            return self
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"jwt_secret: must be at least {MIN_SECRET_BYTES} bytes")
        if secret.lower() in KNOWN_DEFAULT_SECRETS or len(set(secret)) < 4:
            raise ValueError("jwt_secret: must not be a known default or trivial value")
        return self

    @property
    def origins(self) -> tuple[str, ...]:
        return tuple(o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip())

    @cached_property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The trusted proxies as networks (an address is a network of one); ``*`` is every
        address."""
        entries = _split_list(self.forwarded_allow_ips)
        if "*" in entries:
            return (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)

    def trusts_proxy(self, address: str) -> bool:
        """Whether ``address`` is a proxy whose ``X-Forwarded-For`` names the client: listed
        as an address, inside a listed network (``10.0.0.0/8``), or ``*``."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.trusted_networks)

    def nickname_words(self) -> list[str]:
        """Every word the nickname filter refuses, from the setting and the file."""
        words = [w for w in self.nickname_blocklist.split(",") if w.strip()]
        if self.nickname_blocklist_file is not None:
            words.extend(self.nickname_blocklist_file.read_text(encoding="utf-8").splitlines())
        return words

    @property
    def embedded(self) -> bool:
        return self.redis_url is None


def describe_settings_error(exc: Exception) -> str:
    """Turn a settings validation failure into one line naming the variable and the rule."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    first = errors()[0]
    loc = [str(part) for part in first.get("loc", ()) if part]
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if not loc and ":" in message:
        field, _, message = message.partition(":")
        loc = [field.strip()]
        message = message.strip()
    name = ENV_PREFIX + (loc[0].upper() if loc else "?")
    return f"{name}: {message}"
