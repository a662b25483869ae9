"""Start-up configuration rules and the signed tokens of the game service."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from pydantic import ValidationError
from tests.unit.ws.harness import SECRET, host_token

from partyquiz_core.errors import ForbiddenError
from partyquiz_core.ids import DeviceId, GameId, PlayerId
from partyquiz_ws.server import address_of
from partyquiz_ws.settings import WsSettings, describe_settings_error
from partyquiz_ws.tokens import (
    ResumeSigner,
    issue_service_token,
    verify_host_token,
    verify_resume_token,
)

STRONG = "k3Y-for-production-use-only-0123456789abcdef"
WS_BIN = Path(sys.executable).parent / "partyquiz-ws"


def _run_cli(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PARTYQUIZ_WS_")}
    return subprocess.run(
        [str(WS_BIN)], env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "variable", "rule"),
    [
        ({}, "PARTYQUIZ_WS_JWT_SECRET", "must be set"),
        ({"PARTYQUIZ_WS_JWT_SECRET": "short"}, "PARTYQUIZ_WS_JWT_SECRET", "at least 32 bytes"),
        (
            {"PARTYQUIZ_WS_JWT_SECRET": "changeme-changeme-changeme-changeme"},
            "PARTYQUIZ_WS_JWT_SECRET",
            "known default",
        ),
        (
            {"PARTYQUIZ_WS_JWT_SECRET": STRONG, "PARTYQUIZ_WS_PORT": "http"},
            "PARTYQUIZ_WS_PORT",
            "integer",
        ),
        (
            {"PARTYQUIZ_WS_JWT_SECRET": STRONG, "PARTYQUIZ_WS_REDIS_URL": "localhost:6379"},
            "PARTYQUIZ_WS_REDIS_URL",
            "redis://",
        ),
    ],
)
def test_bad_configuration_stops_start_up_with_one_line(
    env: dict[str, str], variable: str, rule: str
) -> None:
    result = _run_cli(**env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert variable in lines[0]
    assert rule in lines[0]


def test_development_accepts_a_short_secret_and_any_origin() -> None:
    settings = WsSettings(jwt_secret="dev", environment="development")
    assert settings.embedded
    assert settings.origins == ()


def test_origins_and_redis_url_are_parsed() -> None:
    settings = WsSettings(
        jwt_secret=STRONG,
        allowed_origins="https://a.example, https://b.example/",
        redis_url="redis://r:6379/0",
    )
    assert settings.origins == ("https://a.example", "https://b.example")
    assert not settings.embedded


def test_host_token_from_web_is_accepted_and_others_are_not() -> None:
    claims = verify_host_token(SECRET, host_token("game-1", "ABCDEF"))
    assert (claims.game_id, claims.join_code, claims.host_id) == ("game-1", "ABCDEF", "host-1")
    resume = ResumeSigner(SECRET).sign(PlayerId("p"), GameId("g"), DeviceId("d"), time.time())
    with pytest.raises(ForbiddenError) as wrong_audience:
        verify_host_token(SECRET, resume)
    assert wrong_audience.value.code == "token_invalid"
    with pytest.raises(ForbiddenError):
        verify_host_token("another-secret-0123456789-0123456789", host_token("g", "ABCDEF"))


def test_resume_token_round_trips_and_expires() -> None:
    now = time.time()
    token = ResumeSigner(SECRET).sign(PlayerId("p1"), GameId("g1"), DeviceId("d1"), now)
    claims = verify_resume_token(SECRET, token)
    assert (claims.player_id, claims.game_id, claims.device_id) == ("p1", "g1", "d1")
    old = ResumeSigner(SECRET).sign(PlayerId("p1"), GameId("g1"), DeviceId("d1"), now - 90000)
    with pytest.raises(ForbiddenError) as expired:
        verify_resume_token(SECRET, old)
    assert expired.value.code == "token_expired"


@pytest.mark.parametrize(
    ("device", "replica"),
    [("d1", ""), ("téléphone-📱", "replica-b"), ('a "quoted" \\ device\n', "r")],
)
def test_resume_tokens_are_what_pyjwt_signs_byte_for_byte(device: str, replica: str) -> None:
    # Replicas of earlier versions sign with PyJWT: every replica must read the other's.
    now = time.time()
    signer = ResumeSigner(SECRET)
    token = signer.sign(PlayerId("p1"), GameId("g1"), DeviceId(device), now, replica)
    claims: dict[str, object] = {
        "iss": "partyquiz",
        "aud": "partyquiz-ws:player",
        "sub": "p1",
        "game_id": "g1",
        "device_id": device,
        "iat": int(now),
        "exp": int(now) + 12 * 3600,
    }
    if replica:
        claims["rep"] = replica
    assert token == jwt.encode(claims, SECRET, algorithm="HS256")
    read = verify_resume_token(SECRET, token)
    assert (read.player_id, read.device_id, read.replica) == ("p1", device, replica or None)
    # The prepared key is not used up by a token: the next one is signed the same way.
    assert signer.sign(PlayerId("p1"), GameId("g1"), DeviceId(device), now, replica) == token


def test_service_token_has_the_agreed_claims() -> None:
    token = issue_service_token(SECRET, time.time())
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="partyquiz-web:internal")
    assert claims["iss"] == "partyquiz"
    assert claims["sub"] == "partyquiz-ws"
    assert claims["exp"] - claims["iat"] == 60


def test_limits_count_an_ipv6_address_as_its_slash_64_and_ipv4_as_itself() -> None:
    assert (
        address_of("2001:db8:1:2:3:4:5:6") == address_of("2001:db8:1:2::9") == ("2001:db8:1:2::/64")
    )
    assert address_of("2001:db8:1:3::9") != address_of("2001:db8:1:2::9")
    assert address_of("::ffff:203.0.113.9") == "203.0.113.9"
    assert address_of("203.0.113.9") == "203.0.113.9"
    assert address_of("unknown") == "unknown"


def test_trusted_proxies_may_be_addresses_or_networks() -> None:
    settings = WsSettings(jwt_secret=SECRET, forwarded_allow_ips="127.0.0.1, 10.0.0.0/8")
    assert settings.trusts_proxy("127.0.0.1")
    assert settings.trusts_proxy("10.42.7.1")
    assert not settings.trusts_proxy("192.0.2.1")
    assert not settings.trusts_proxy("not-an-address")


def test_by_default_a_proxy_in_a_private_network_names_the_client() -> None:
    settings = WsSettings(jwt_secret=SECRET)
    for proxy in ("127.0.0.1", "10.244.1.7", "172.20.0.3", "192.168.1.2", "fd12::1", "::1"):
        assert settings.trusts_proxy(proxy), proxy
    for client in ("203.0.113.9", "2001:db8::1", "172.32.0.1"):
        assert not settings.trusts_proxy(client), client


def test_a_trusted_proxy_that_is_not_an_address_or_network_stops_start_up() -> None:
    with pytest.raises(ValidationError) as raised:
        WsSettings(jwt_secret=SECRET, forwarded_allow_ips="10.0.0.0/8, ingress.local")
    assert describe_settings_error(raised.value) == (
        "PARTYQUIZ_WS_FORWARDED_ALLOW_IPS: 'ingress.local' is not an address, a network "
        "(10.0.0.0/8) or *"
    )


def test_any_proxy_is_trusted_with_a_star_and_ipv4_mapped_peers_match_their_network() -> None:
    anyone = WsSettings(jwt_secret=SECRET, forwarded_allow_ips="*")
    assert anyone.trusts_proxy("203.0.113.9")
    assert anyone.trusts_proxy("2001:db8::1")
    private = WsSettings(jwt_secret=SECRET, forwarded_allow_ips="10.0.0.0/8")
    assert private.trusts_proxy("::ffff:10.1.2.3")
    assert not private.trusts_proxy("::ffff:203.0.113.9")
