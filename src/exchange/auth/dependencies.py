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
from exchange.auth.tokens import TokenRejected, token_key_id, verify_access_token
from exchange.config import Settings
from exchange.db.session import DbSession
from exchange.ratelimit import ClientBuckets, refuse_client

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="accessToken",
    description="A JWT from POST /oauth/token (OAuth2 client credentials).",
    bearerFormat="JWT",
)


async def current_principal(
    request: Request,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None:
        raise MissingToken()
    settings: Settings = request.app.state.settings
    keys: KeyRing = request.app.state.keys
    token = credentials.credentials
    try:
        keyset = await keys.verification_keys(session, token_key_id(token))
        claims = verify_access_token(token, keyset, issuer=settings.issuer, audience=settings.token_audience)
    except TokenRejected as exc:
        raise InvalidToken(str(exc).capitalize() + ".") from None
    # A disabled client or department loses access at once, and a role taken away is gone for live tokens too.
    client = await repository.active_client(session, claims.client_id)
    if client is None:
        raise InvalidToken("The client or its department has been disabled.")
    principal = Principal(
        client_id=claims.client_id,
        department_code=client.department_code,
        roles=claims.roles & frozenset(Role(role) for role in client.roles),
        token_id=claims.token_id,
    )
    request.state.principal = principal
    buckets: ClientBuckets = request.app.state.client_buckets
    wait = buckets.take(principal.client_id)
    if wait is not None:
        raise refuse_client(principal.client_id, wait, buckets.rate)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through callers holding at least one of ``roles``."""
    wanted = frozenset(roles)

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.has_any(wanted):
            raise RoleRequired(f"This operation needs one of the roles: {', '.join(sorted(wanted))}.")
        return principal

    return check
