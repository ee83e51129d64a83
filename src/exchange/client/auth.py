"""Client authentication at the hub's token endpoint, and the access token kept between calls.

Two RFC-defined ways: a client secret sent with HTTP Basic (RFC 6749 section 2.3.1), or ``private_key_jwt``
(RFC 7523): a short-lived JWT signed with the client's private key, whose public half the hub holds.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_SECONDS = 120
# Refresh this long before a token expires (at most; a fifth of a short lifetime).
REFRESH_MARGIN_SECONDS = 60.0

PrivateJWK = ECKey | RSAKey | OKPKey
KeySource = PrivateJWK | Mapping[str, Any] | str | Path


@dataclass(frozen=True, slots=True)
class ClientSecret:
    client_id: str
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class PrivateKeyJWT:
    client_id: str
    key: PrivateJWK = field(repr=False)

    @property
    def algorithm(self) -> str:
        if isinstance(self.key, RSAKey):
            return "RS256"
        if isinstance(self.key, OKPKey):
            return "Ed25519"
        return {"P-256": "ES256", "P-384": "ES384"}.get(str(self.key.curve_name), "ES256")

    def assertion(self, audience: str, now: float) -> str:
        """A client assertion for one token request: ``iss`` = ``sub`` = the client, a fresh ``jti``."""
        issued = int(now)
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        header: dict[str, Any] = {"alg": self.algorithm, "typ": "JWT"}
        if self.key.kid:
            header["kid"] = self.key.kid
        return jwt.encode(header, claims, self.key, algorithms=[self.algorithm])


Credentials = ClientSecret | PrivateKeyJWT


def _pem_key(pem: str) -> PrivateJWK:
    loaded = load_pem_private_key(pem.encode(), password=None)
    if isinstance(loaded, ec.EllipticCurvePrivateKey):
        return ECKey.import_key(pem)
    if isinstance(loaded, rsa.RSAPrivateKey):
        return RSAKey.import_key(pem)
    if isinstance(loaded, ed25519.Ed25519PrivateKey):
        return OKPKey.import_key(pem)
    raise ValueError("the private key must be EC (P-256, P-384), RSA or Ed25519")


def load_private_key(source: KeySource) -> PrivateJWK:
    """A private key from a joserfc key, a JWK (dict or JSON text), PEM text, or a file holding either."""
    if isinstance(source, ECKey | RSAKey | OKPKey):
        key = source
    elif isinstance(source, Mapping):
        key = _jwk_key(dict(source))
    else:
        text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
        stripped = text.strip()
        key = _jwk_key(json.loads(stripped)) if stripped.startswith("{") else _pem_key(stripped)
    if not key.is_private:
        raise ValueError("private_key_jwt needs the private key, not only its public half")
    return key


def _jwk_key(jwk: dict[str, Any]) -> PrivateJWK:
    kty = jwk.get("kty")
    if kty == "EC":
        return ECKey.import_key(jwk)
    if kty == "RSA":
        return RSAKey.import_key(jwk)
    if kty == "OKP":
        return OKPKey.import_key(jwk)
    raise ValueError(f"unsupported JWK key type {kty!r}: use EC, RSA or OKP")


def credentials(
    client_id: str, client_secret: str | None = None, private_key: KeySource | None = None
) -> Credentials:
    if (client_secret is None) == (private_key is None):
        raise ValueError("give either a client secret or a private key (private_key_jwt)")
    if private_key is not None:
        return PrivateKeyJWT(client_id, load_private_key(private_key))
    assert client_secret is not None
    return ClientSecret(client_id, client_secret)


@dataclass(slots=True)
class _Token:
    value: str
    refresh_at: float


class TokenCache:
    """The current access token, until shortly before it expires (by the given monotonic clock)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._token: _Token | None = None

    def current(self) -> str | None:
        """The cached token while it is fresh, else None (time to ask for a new one)."""
        if self._token is None or self._clock() >= self._token.refresh_at:
            return None
        return self._token.value

    def store(self, access_token: str, expires_in: float) -> str:
        margin = min(REFRESH_MARGIN_SECONDS, expires_in / 5)
        self._token = _Token(access_token, self._clock() + expires_in - margin)
        return access_token

    def discard(self, access_token: str) -> None:
        """Forget a token the hub refused, unless another caller has already replaced it."""
        if self._token is not None and self._token.value == access_token:
            self._token = None
