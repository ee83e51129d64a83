"""FastAPI dependencies: the caller's identity from its bearer token, and role checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from exchange.auth import repository
from exchange.auth.exceptions import InvalidToken, MissingToken, RoleRequired
from exchange.auth.keys import KeyRing
from exchange.auth.principal import Principal, Role
from exchange.auth.tokens import (
    AccessClaims,
    TokenRejected,
    VerifiedTokens,
    token_key_id,
    verify_access_token,
)
from exchange.config import Settings
from exchange.db.pool import connection
from exchange.db.session import transaction
from exchange.ratelimit import ClientBuckets, refuse_client

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="accessToken",
    description="A JWT from POST /oauth/token (OAuth2 client credentials).",
    bearerFormat="JWT",
)


async def _claims(request: Request, token: str) -> AccessClaims:
    """The token's claims: verified once per process and token, then remembered until it expires."""
    verified: VerifiedTokens = request.app.state.verified_tokens
    claims = verified.get(token)
    if claims is not None:
        return claims
    settings: Settings = request.app.state.settings
    keys: KeyRing = request.app.state.keys
    try:
        async with transaction(request.app.state.sessionmaker) as session:
            keyset = await keys.verification_keys(session, token_key_id(token))
        claims = verify_access_token(token, keyset, issuer=settings.issuer, audience=settings.token_audience)
    except TokenRejected as exc:
        raise InvalidToken(str(exc).capitalize() + ".") from None
    verified.put(token, claims)
    return claims


async def token_claims(request: Request, credentials: HTTPAuthorizationCredentials | None) -> AccessClaims:
    """The claims of the request's bearer token, if the hub issued it and it is still valid (else 401)."""
    if credentials is None:
        raise MissingToken()
    return await _claims(request, credentials.credentials)


def admit(request: Request, claims: AccessClaims, client: tuple[str, list[str]] | None) -> Principal:
    """The caller, once the database has said whether its client is enabled (``client``: its department and
    roles now, or None): 401 if it or its department is disabled, 429 past its rate."""
    if client is None or client[0] != claims.department_code:
        raise InvalidToken("The client or its department has been disabled.")
    department, roles = client
    principal = Principal(
        client_id=claims.client_id,
        department_code=department,
        roles=claims.roles & frozenset(Role(role) for role in roles),
        token_id=claims.token_id,
    )
    request.state.principal = principal
    buckets: ClientBuckets = request.app.state.client_buckets
    wait = buckets.take(principal.client_id)
    if wait is not None:
        raise refuse_client(principal.client_id, wait, buckets.rate)
    return principal


async def confirmed(request: Request, claims: AccessClaims) -> Principal:
    """The caller of a verified token, its client asked of the database."""
    # A disabled client or department loses access at once, and a role taken away is gone for live tokens too:
    # asked of the database on every request, never remembered.
    async with connection(request.app.state.pool) as db:
        client = await repository.active_client_roles(db, claims.client_id)
    return admit(request, claims, client)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    return await confirmed(request, await token_claims(request, credentials))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def check_roles(principal: Principal, wanted: frozenset[Role]) -> None:
    if not principal.has_any(wanted):
        raise RoleRequired(f"This operation needs one of the roles: {', '.join(sorted(wanted))}.")


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through callers holding at least one of ``roles``."""
    wanted = frozenset(roles)

    async def check(principal: CurrentPrincipal) -> Principal:
        check_roles(principal, wanted)
        return principal

    return check
