"""The OAuth2 token endpoint and the discovery documents (JWKS, RFC 8414 metadata)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Header, Request, Response

from exchange.auth import service
from exchange.auth.dependencies import CurrentPrincipal
from exchange.auth.schemas import CallerOut, JsonWebKeySet, ServerMetadata, TokenResponse
from exchange.db.session import DbSession
from exchange.errors import problem_responses
from exchange.ratelimit import within_rate

router = APIRouter(tags=["auth"])


@router.post(
    "/oauth/token",
    response_model=TokenResponse,
    responses=problem_responses(400, 401, 429),
    summary="Obtain an access token (OAuth2 client credentials)",
    description=(
        "Client authentication by client_secret_basic, client_secret_post or private_key_jwt (RFC 7523). "
        "`scope` may narrow the token to some of the client's roles. Errors carry RFC 6749 `error` too."
    ),
)
async def token(
    request: Request,
    response: Response,
    session: DbSession,
    grant_type: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    client_assertion_type: Annotated[str | None, Form()] = None,
    client_assertion: Annotated[str | None, Form()] = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> TokenResponse:
    address = request.client.host if request.client else "unknown"
    per_minute = request.app.state.settings.token_rate_per_minute
    await within_rate(session, f"token:{address}", per_minute, "token requests")
    issued = await service.issue_token(
        session,
        request.app.state.keys,
        service.TokenRequest(
            grant_type=grant_type,
            scope=scope,
            authorization=authorization,
            client_id=client_id,
            client_secret=client_secret,
            client_assertion_type=client_assertion_type,
            client_assertion=client_assertion,
            endpoint_url=str(request.url),
        ),
        request.app.state.settings,
    )
    response.headers["Cache-Control"] = "no-store"
    return TokenResponse(access_token=issued.access_token, expires_in=issued.expires_in, scope=issued.scope)


@router.get("/.well-known/jwks.json", response_model=JsonWebKeySet, summary="The hub's token-signing keys")
async def jwks(request: Request, response: Response, session: DbSession) -> JsonWebKeySet:
    response.headers["Cache-Control"] = "public, max-age=60"
    return JsonWebKeySet.model_validate(await request.app.state.keys.jwks(session))


@router.get(
    "/.well-known/oauth-authorization-server",
    response_model=ServerMetadata,
    summary="Authorization server metadata (RFC 8414)",
)
async def authorization_server_metadata(request: Request) -> ServerMetadata:
    return ServerMetadata.model_validate(service.metadata(request.app.state.settings))


@router.get(
    "/v1/me",
    response_model=CallerOut,
    responses=problem_responses(401),
    summary="Who the token belongs to: client, department and roles",
)
async def me(principal: CurrentPrincipal) -> CallerOut:
    return CallerOut(
        client_id=principal.client_id, department=principal.department_code, roles=sorted(principal.roles)
    )
