"""Host accounts: register, log in, who am I."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status
from sqlalchemy.exc import IntegrityError

from partyquiz_core.errors import ConflictError, ForbiddenError
from partyquiz_web.dependencies import ClientIp, CurrentHost, RuntimeDep, SessionDep
from partyquiz_web.http_errors import AuthenticationError, error_responses
from partyquiz_web.models import Host
from partyquiz_web.repositories import HostRepository
from partyquiz_web.schemas import AccessToken, HostCreate, HostPublic, LoginRequest

router = APIRouter(
    prefix="/api/auth", tags=["auth"], responses=error_responses(401, 403, 409, 413, 422, 429)
)


def _public(host: Host) -> HostPublic:
    return HostPublic(
        id=host.id, email=host.email, display_name=host.display_name, created_at=host.created_at
    )


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register(
    body: HostCreate, runtime: RuntimeDep, session: SessionDep, ip: ClientIp
) -> HostPublic:
    """Create a host account (403 when registration is closed, 409 when the email is taken)."""
    await runtime.limiter.check(runtime.login_limit, ip)
    if not runtime.settings.allow_registration:
        raise ForbiddenError("registration is closed on this server", code="registration_closed")
    hosts = HostRepository(session)
    if await hosts.by_email(body.email) is not None:
        raise ConflictError("an account with this email already exists", code="email_taken")
    host = Host(
        id=uuid.uuid4().hex,
        email=body.email,
        display_name=body.display_name or body.email.split("@", 1)[0],
        password_hash=await runtime.passwords.hash_off_loop(body.password),
        created_at=runtime.now(),
    )
    hosts.add(host)
    try:
        await session.commit()
    except IntegrityError:
        # Two registrations raced for one email; the unique index decided.
        await session.rollback()
        raise ConflictError(
            "an account with this email already exists", code="email_taken"
        ) from None
    return _public(host)


@router.post("/login")
async def login(
    body: LoginRequest, runtime: RuntimeDep, session: SessionDep, ip: ClientIp
) -> AccessToken:
    """Exchange email and password for an access token (Bearer)."""
    await runtime.limiter.check(runtime.login_limit, ip)
    host = await HostRepository(session).by_email(body.email)
    if not await runtime.passwords.verify_off_loop(
        host.password_hash if host else None, body.password
    ):
        raise AuthenticationError("wrong email or password")
    assert host is not None
    token, ttl = runtime.tokens.issue_session(host.id, runtime.clock())
    return AccessToken(access_token=token, expires_in=ttl)


@router.get("/me")
async def me(host: CurrentHost) -> HostPublic:
    """The host the token belongs to."""
    return _public(host)
