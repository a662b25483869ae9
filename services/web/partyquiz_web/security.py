"""Password hashing and the JWTs the web service issues and accepts.

Owns token claims and audiences of the web ⇄ game-service contract: host session tokens
(web only), host tokens for the game service, and service tokens for the internal API.
It raises ``AuthenticationError`` for anything it cannot verify and knows nothing of HTTP.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from partyquiz_web.http_errors import AuthenticationError

ISSUER: Final = "partyquiz"
ALGORITHM: Final = "HS256"
SESSION_AUDIENCE: Final = "partyquiz-web:session"
HOST_TOKEN_AUDIENCE: Final = "partyquiz-ws:host"  # noqa: S105 - an audience, not a secret
INTERNAL_AUDIENCE: Final = "partyquiz-web:internal"
GAME_SERVICE_SUBJECT: Final = "partyquiz-ws"
HOST_TOKEN_TTL_SECONDS: Final = 12 * 3600
SERVICE_TOKEN_TTL_SECONDS: Final = 60


class Passwords:
    """argon2id hashing with the library's recommended parameters."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Verifying against this keeps unknown-email logins as slow as wrong-password ones.
        self._dummy_hash = self._hasher.hash("partyquiz-timing-equaliser")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    async def hash_off_loop(self, password: str) -> str:
        """``hash`` in a worker thread: argon2 is meant to be slow and must not stall the loop."""
        return await asyncio.to_thread(self.hash, password)

    async def verify_off_loop(self, password_hash: str | None, password: str) -> bool:
        """``verify`` in a worker thread."""
        return await asyncio.to_thread(self.verify, password_hash, password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and (
                password_hash is not None
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


@dataclass(frozen=True)
class SessionClaims:
    host_id: str


class Tokens:
    """Sign and verify the JWTs of the contract with one shared HS256 secret."""

    def __init__(self, secret: str, *, session_ttl_seconds: int) -> None:
        self._secret = secret
        self._session_ttl = session_ttl_seconds

    def _encode(self, claims: dict[str, Any], now: float, ttl: int) -> str:
        payload = {"iss": ISSUER, "iat": int(now), "exp": int(now) + ttl, **claims}
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def _decode(self, token: str, audience: str, now: float) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=ISSUER,
                options={
                    "require": ["exp", "iss", "aud", "sub"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"invalid token: {exc}") from None
        # Expiry is checked against the injected clock, not the library's.
        if not isinstance(claims.get("exp"), int | float) or claims["exp"] <= now:
            raise AuthenticationError("token has expired")
        return claims

    def issue_session(self, host_id: str, now: float) -> tuple[str, int]:
        """Return a host's login token and its lifetime in seconds."""
        token = self._encode({"aud": SESSION_AUDIENCE, "sub": host_id}, now, self._session_ttl)
        return token, self._session_ttl

    def verify_session(self, token: str, now: float) -> SessionClaims:
        claims = self._decode(token, SESSION_AUDIENCE, now)
        return SessionClaims(host_id=str(claims["sub"]))

    def issue_host_token(self, host_id: str, game_id: str, join_code: str, now: float) -> str:
        """Return the token the host presents to the game service for this game."""
        claims = {
            "aud": HOST_TOKEN_AUDIENCE,
            "sub": host_id,
            "game_id": game_id,
            "join_code": join_code,
        }
        return self._encode(claims, now, HOST_TOKEN_TTL_SECONDS)

    def issue_service_token(self, now: float) -> str:
        """Return a token for calling the internal API (what the game service sends)."""
        claims = {"aud": INTERNAL_AUDIENCE, "sub": GAME_SERVICE_SUBJECT}
        return self._encode(claims, now, SERVICE_TOKEN_TTL_SECONDS)

    def verify_service_token(self, token: str, now: float) -> None:
        claims = self._decode(token, INTERNAL_AUDIENCE, now)
        if claims["sub"] != GAME_SERVICE_SUBJECT:
            raise AuthenticationError("token subject may not call the internal API")
