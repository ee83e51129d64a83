"""Access tokens: JWTs the hub signs for authenticated clients, and their verification."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from joserfc.jwt import JWTClaimsRegistry

from exchange.auth.keys import SIGNING_ALGORITHM
from exchange.auth.principal import Role

CLOCK_SKEW_SECONDS = 30


class TokenRejected(ValueError):
    """The token is not one the hub issued, or no longer valid; the message says which."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    client_id: str
    department_code: str
    roles: frozenset[Role]
    token_id: str
    expires_at: datetime


class VerifiedTokens:
    """Access tokens this process has verified, so a client's next request with the same token costs a
    dictionary lookup instead of an ECDSA verification. A token is served from here only until it expires;
    whether its client is still enabled is asked of the database on every request regardless."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._claims: dict[str, AccessClaims] = {}

    def get(self, token: str, now: datetime | None = None) -> AccessClaims | None:
        claims = self._claims.get(token)
        if claims is None:
            return None
        if claims.expires_at + timedelta(seconds=CLOCK_SKEW_SECONDS) <= (now or datetime.now(UTC)):
            del self._claims[token]
            return None
        return claims

    def put(self, token: str, claims: AccessClaims) -> None:
        if len(self._claims) >= self.size:
            # Bounded: forget the oldest half (dicts keep insertion order); they are verified again if seen.
            for stale in list(self._claims)[: self.size // 2]:
                del self._claims[stale]
        self._claims[token] = claims


def issue_access_token(
    key: ECKey,
    *,
    issuer: str,
    audience: str,
    client_id: str,
    department_code: str,
    roles: frozenset[Role],
    ttl: timedelta,
    now: datetime | None = None,
) -> tuple[str, AccessClaims]:
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    expires = issued + ttl
    claims = AccessClaims(
        client_id=client_id,
        department_code=department_code,
        roles=roles,
        token_id=uuid.uuid4().hex,
        expires_at=expires,
    )
    payload: dict[str, Any] = {
        "iss": issuer,
        "sub": client_id,
        "aud": audience,
        "iat": int(issued.timestamp()),
        "nbf": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": claims.token_id,
        "client_id": client_id,
        "department": department_code,
        "roles": sorted(roles),
        "scope": " ".join(sorted(roles)),
    }
    header = {"alg": SIGNING_ALGORITHM, "kid": key.kid, "typ": "at+jwt"}
    return jwt.encode(header, payload, key, algorithms=[SIGNING_ALGORITHM]), claims


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWT, NOT verified: only to choose the key that will verify it."""
    try:
        compact = jws.extract_compact(token.encode("ascii"))
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeError):
        raise TokenRejected("the token is not a well-formed JWT") from None
    if not isinstance(claims, dict):
        raise TokenRejected("the token payload is not a JSON object")
    return dict(compact.headers()), claims


def token_key_id(token: str) -> str | None:
    """The ``kid`` the token claims to be signed with (unverified; only to pick the key)."""
    kid = unverified_parts(token)[0].get("kid")
    return kid if isinstance(kid, str) else None


def verify_access_token(token: str, keys: KeySet, *, issuer: str, audience: str) -> AccessClaims:
    try:
        decoded = jwt.decode(token, keys, algorithms=[SIGNING_ALGORITHM])
    except (JoseError, ValueError) as exc:
        raise TokenRejected(f"the token signature or format is not valid ({type(exc).__name__})") from None
    registry = JWTClaimsRegistry(
        leeway=CLOCK_SKEW_SECONDS,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        sub={"essential": True},
        jti={"essential": True},
    )
    try:
        registry.validate(decoded.claims)
    except JoseError as exc:
        raise TokenRejected(f"the token is not valid here: {exc.description or exc.error}") from None
    claims = decoded.claims
    try:
        roles = frozenset(Role(role) for role in claims["roles"])
        return AccessClaims(
            client_id=str(claims["sub"]),
            department_code=str(claims["department"]),
            roles=roles,
            token_id=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )
    except (KeyError, TypeError, ValueError):
        raise TokenRejected("the token lacks the hub's claims") from None
