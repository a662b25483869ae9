"""Signed tokens the game service checks and issues (JWT HS256, issuer ``partyquiz``).

Owns the claims of the host token (issued by web), the player resume token (issued and verified
here) and the short-lived service token for the web service's internal API. It does no I/O;
callers pass ``now`` (epoch seconds) where a token is issued.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

import jwt

from partyquiz_core.errors import ForbiddenError
from partyquiz_core.ids import DeviceId, GameId, JoinCode, PlayerId
from partyquiz_core.protocol import MAX_TOKEN_CHARS

ISSUER = "partyquiz"
HOST_AUDIENCE = "partyquiz-ws:host"
PLAYER_AUDIENCE = "partyquiz-ws:player"
SERVICE_AUDIENCE = "partyquiz-web:internal"
SERVICE_SUBJECT = "partyquiz-ws"
SERVICE_TOKEN_SECONDS = 60
# Each welcome gives a fresh token: a player that keeps playing keeps a valid one, and an
# abandoned one stops working after this (the game's data lives 24 h after its last change).
RESUME_TOKEN_SECONDS = 12 * 3600
ALGORITHM = "HS256"
LEEWAY_SECONDS = 5


@dataclass(frozen=True, slots=True)
class HostClaims:
    host_id: str
    game_id: GameId
    join_code: JoinCode


@dataclass(frozen=True, slots=True)
class PlayerClaims:
    player_id: PlayerId
    game_id: GameId
    device_id: DeviceId
    replica: str | None = None  # the replica that held the player's connection at the welcome


def _decode(secret: str, token: str, audience: str) -> dict[str, object]:
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise ForbiddenError("token invalid", code="token_invalid")
    try:
        claims: dict[str, object] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise ForbiddenError("token expired", code="token_expired") from exc
    except jwt.InvalidTokenError as exc:
        raise ForbiddenError("token invalid", code="token_invalid") from exc
    return claims


def _claim(claims: dict[str, object], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise ForbiddenError(f"token lacks {name}", code="token_invalid")
    return value


def verify_host_token(secret: str, token: str) -> HostClaims:
    """Check a host token issued by web; raise ForbiddenError when it is not valid."""
    claims = _decode(secret, token, HOST_AUDIENCE)
    return HostClaims(
        host_id=_claim(claims, "sub"),
        game_id=GameId(_claim(claims, "game_id")),
        join_code=JoinCode(_claim(claims, "join_code")),
    )


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


# The header of every token signed here, as PyJWT writes it (sorted keys, no spaces).
_HS256_HEADER = _b64(b'{"alg":"HS256","typ":"JWT"}')


class ResumeSigner:
    """Signs resume tokens with its secret's HMAC key prepared once.

    PyJWT checks the key on every token it signs (that it is no PEM, SSH, DER or JWK key, a
    JSON parse among them): a quarter of what applying a join cost its game's owner. The
    secret is ours and checked at start-up. The tokens are PyJWT's, byte for byte: the same
    header, the claims encoded as it encodes them, the same signature.
    """

    def __init__(self, secret: str) -> None:
        self._mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)

    def sign(
        self,
        player_id: PlayerId,
        game_id: GameId,
        device_id: DeviceId,
        now: float,
        replica: str = "",
    ) -> str:
        """Sign the token a player presents to resume its identity in this game; ``replica``
        is the one that holds its connection (a resume elsewhere checks whether that one
        failed)."""
        claims: dict[str, object] = {
            "iss": ISSUER,
            "aud": PLAYER_AUDIENCE,
            "sub": player_id,
            "game_id": game_id,
            "device_id": device_id,
            "iat": int(now),
            "exp": int(now) + RESUME_TOKEN_SECONDS,
        }
        if replica:
            claims["rep"] = replica
        signed = _HS256_HEADER + b"." + _b64(json.dumps(claims, separators=(",", ":")).encode())
        mac = self._mac.copy()
        mac.update(signed)
        return (signed + b"." + _b64(mac.digest())).decode()


def verify_resume_token(secret: str, token: str) -> PlayerClaims:
    """Check a resume token; raise ForbiddenError when it is not valid."""
    claims = _decode(secret, token, PLAYER_AUDIENCE)
    return PlayerClaims(
        player_id=PlayerId(_claim(claims, "sub")),
        game_id=GameId(_claim(claims, "game_id")),
        device_id=DeviceId(_claim(claims, "device_id")),
        replica=str(claims["rep"]) if isinstance(claims.get("rep"), str) else None,
    )


def issue_service_token(secret: str, now: float) -> str:
    """Sign a 60-second token for the web service's internal API."""
    payload = {
        "iss": ISSUER,
        "aud": SERVICE_AUDIENCE,
        "sub": SERVICE_SUBJECT,
        "iat": int(now),
        "exp": int(now) + SERVICE_TOKEN_SECONDS,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)
