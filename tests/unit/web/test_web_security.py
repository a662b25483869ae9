"""Tokens follow the web ⇄ game-service contract; passwords are argon2 hashes."""

from __future__ import annotations

import jwt
import pytest

from partyquiz_web.http_errors import AuthenticationError
from partyquiz_web.security import Passwords, Tokens

SECRET = "k3Jx9-p2Qw8zR4tY7uV1bN5mA6sD0fG3hL2jK9pQ"
NOW = 1_800_000_000.0


def test_host_token_carries_the_contract_claims() -> None:
    token = Tokens(SECRET, session_ttl_seconds=3600).issue_host_token("h1", "g1", "ABCDEF", NOW)
    claims = jwt.decode(
        token,
        SECRET,
        algorithms=["HS256"],
        audience="partyquiz-ws:host",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == "partyquiz"
    assert (claims["sub"], claims["game_id"], claims["join_code"]) == ("h1", "g1", "ABCDEF")
    assert claims["exp"] - claims["iat"] == 12 * 3600


def test_service_token_is_accepted_until_it_expires() -> None:
    tokens = Tokens(SECRET, session_ttl_seconds=3600)
    token = tokens.issue_service_token(NOW)
    tokens.verify_service_token(token, NOW + 59)
    with pytest.raises(AuthenticationError, match="expired"):
        tokens.verify_service_token(token, NOW + 60)


def test_a_host_token_is_not_a_service_token() -> None:
    tokens = Tokens(SECRET, session_ttl_seconds=3600)
    with pytest.raises(AuthenticationError, match=r"(?i)audience"):
        tokens.verify_service_token(tokens.issue_host_token("h", "g", "ABCDEF", NOW), NOW)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    other = Tokens("another-secret-that-is-long-enough-000", session_ttl_seconds=60)
    with pytest.raises(AuthenticationError, match=r"(?i)signature"):
        Tokens(SECRET, session_ttl_seconds=60).verify_session(other.issue_session("h", NOW)[0], NOW)


def test_session_token_names_the_host() -> None:
    tokens = Tokens(SECRET, session_ttl_seconds=60)
    token, ttl = tokens.issue_session("host-1", NOW)
    assert ttl == 60
    assert tokens.verify_session(token, NOW + 1).host_id == "host-1"


def test_passwords_verify_only_the_right_one() -> None:
    passwords = Passwords()
    hashed = passwords.hash("correct horse")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify(hashed, "correct horse")
    assert not passwords.verify(hashed, "wrong horse")
    assert not passwords.verify(None, "correct horse")
    assert not passwords.verify("not-a-hash", "x")


async def test_hashing_off_the_event_loop_gives_the_same_answers() -> None:
    passwords = Passwords()
    hashed = await passwords.hash_off_loop("correct horse")
    assert await passwords.verify_off_loop(hashed, "correct horse")
    assert not await passwords.verify_off_loop(hashed, "wrong horse")
