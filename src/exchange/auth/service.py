"""The token endpoint's rules: who the client is (three RFC-defined ways) and what token it gets."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth import repository
from exchange.auth.credentials import verify_secret
from exchange.auth.exceptions import OAuthError
from exchange.auth.keys import KeyRing
from exchange.auth.models import Client
from exchange.auth.principal import Role
from exchange.auth.tokens import CLOCK_SKEW_SECONDS, TokenRejected, issue_access_token, unverified_parts
from exchange.config import Settings

JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = {"EC": ["ES256", "ES384"], "RSA": ["RS256", "PS256"], "OKP": ["EdDSA", "Ed25519"]}
MAX_ASSERTION_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class TokenRequest:
    grant_type: str | None
    scope: str | None
    authorization: str | None
    client_id: str | None
    client_secret: str | None
    client_assertion_type: str | None
    client_assertion: str | None
    endpoint_url: str


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


def _invalid_client(detail: str, basic: bool) -> OAuthError:
    headers = {"WWW-Authenticate": 'Basic realm="exchange"'} if basic else None
    return OAuthError("invalid_client", detail, status=401, headers=headers)


def _basic_credentials(authorization: str) -> tuple[str, str]:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError("invalid_request", "Only the Basic scheme authenticates at the token endpoint.")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _invalid_client("The Basic credentials are not valid base64 of 'id:secret'.", True) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise _invalid_client("The Basic credentials are not of the form 'id:secret'.", True)
    # RFC 6749 section 2.3.1: both parts are form-urlencoded before base64.
    return unquote(client_id), unquote(secret)


async def _client_by_secret(session: AsyncSession, client_id: str, secret: str, basic: bool) -> Client:
    client = await repository.active_client(session, client_id)
    ok = await verify_secret(client.secret_hash if client else None, secret)
    if client is None or not ok:
        raise _invalid_client("Unknown client, disabled client or wrong secret.", basic)
    return client


def _public_key(jwk: dict[str, Any]) -> ECKey | RSAKey | OKPKey:
    kty = jwk.get("kty")
    if kty == "EC":
        return ECKey.import_key(jwk)
    if kty == "RSA":
        return RSAKey.import_key(jwk)
    return OKPKey.import_key(jwk)


async def _client_by_assertion(session: AsyncSession, request: TokenRequest, settings: Settings) -> Client:
    assertion = request.client_assertion or ""
    try:
        _, unverified = unverified_parts(assertion)
    except TokenRejected as exc:
        raise _invalid_client(f"The client assertion is not valid: {exc}.", False) from None
    client_id = unverified.get("iss")
    if not isinstance(client_id, str) or (request.client_id and request.client_id != client_id):
        raise _invalid_client("The assertion's iss must be the client id.", False)
    client = await repository.active_client(session, client_id)
    if client is None or client.public_jwk is None:
        raise _invalid_client(
            "Unknown client, disabled client, or no key registered for private_key_jwt.", False
        )
    key = _public_key(client.public_jwk)
    try:
        claims = jwt.decode(assertion, key, algorithms=ASSERTION_ALGORITHMS[key.key_type]).claims
        JWTClaimsRegistry(
            leeway=CLOCK_SKEW_SECONDS,
            iss={"essential": True, "value": client_id},
            sub={"essential": True, "value": client_id},
            aud={
                "essential": True,
                "values": list({settings.token_endpoint, settings.issuer, request.endpoint_url}),
            },
            exp={"essential": True},
            jti={"essential": True},
        ).validate(claims)
    except JoseError as exc:
        raise _invalid_client(
            f"The client assertion was refused: {exc.description or exc.error}.", False
        ) from None
    expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
    if expires_at - datetime.now(UTC) > MAX_ASSERTION_LIFETIME:
        raise _invalid_client("The client assertion must expire within 10 minutes.", False)
    if not await repository.record_assertion(session, client_id, str(claims["jti"]), expires_at):
        raise _invalid_client("The client assertion was already used (jti replay).", False)
    return client


async def authenticate_client(session: AsyncSession, request: TokenRequest, settings: Settings) -> Client:
    methods = [
        name
        for name, present in (
            ("client_secret_basic", request.authorization is not None),
            ("client_secret_post", request.client_secret is not None),
            ("private_key_jwt", request.client_assertion is not None),
        )
        if present
    ]
    if len(methods) != 1:
        detail = (
            "No client authentication was sent." if not methods else "Use one client authentication method."
        )
        raise _invalid_client(detail, not methods)
    if methods[0] == "client_secret_basic":
        client_id, secret = _basic_credentials(request.authorization or "")
        return await _client_by_secret(session, client_id, secret, True)
    if methods[0] == "client_secret_post":
        if not request.client_id:
            raise OAuthError("invalid_request", "client_secret_post needs client_id in the form.")
        return await _client_by_secret(session, request.client_id, request.client_secret or "", False)
    if request.client_assertion_type != JWT_BEARER_ASSERTION:
        raise OAuthError("invalid_request", f"client_assertion_type must be {JWT_BEARER_ASSERTION}.")
    return await _client_by_assertion(session, request, settings)


def granted_roles(client: Client, scope: str | None) -> frozenset[Role]:
    held = frozenset(Role(role) for role in client.roles)
    if not scope or not scope.strip():
        return held
    asked = scope.split()
    unknown = sorted(set(asked) - {role.value for role in held})
    if unknown:
        raise OAuthError("invalid_scope", f"The client may not ask for: {', '.join(unknown)}.")
    return frozenset(Role(role) for role in asked)


async def issue_token(
    session: AsyncSession, keys: KeyRing, request: TokenRequest, settings: Settings
) -> IssuedToken:
    if request.grant_type != "client_credentials":
        raise OAuthError(
            "unsupported_grant_type" if request.grant_type else "invalid_request",
            "The hub issues tokens for grant_type=client_credentials only.",
        )
    client = await authenticate_client(session, request, settings)
    roles = granted_roles(client, request.scope)
    ttl = timedelta(seconds=settings.token_ttl_seconds)
    token, _ = issue_access_token(
        await keys.signing_key(session),
        issuer=settings.issuer,
        audience=settings.token_audience,
        client_id=client.client_id,
        department_code=client.department_code,
        roles=roles,
        ttl=ttl,
    )
    return IssuedToken(
        access_token=token, expires_in=settings.token_ttl_seconds, scope=" ".join(sorted(roles))
    )


def metadata(settings: Settings) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    return {
        "issuer": settings.issuer,
        "token_endpoint": settings.token_endpoint,
        "jwks_uri": f"{settings.issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "token_endpoint_auth_signing_alg_values_supported": sorted(
            {alg for algs in ASSERTION_ALGORITHMS.values() for alg in algs}
        ),
        "scopes_supported": [role.value for role in Role],
        "service_documentation": f"{settings.issuer}/docs",
    }
