from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from exchange.auth.principal import Role


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int = Field(description="Seconds until the token expires.")
    scope: str = Field(description="The roles the token carries, space-separated.")


class JsonWebKeySet(BaseModel):
    keys: list[dict[str, Any]]


class ServerMetadata(BaseModel):
    """RFC 8414 authorization server metadata."""

    issuer: str
    token_endpoint: str
    jwks_uri: str
    grant_types_supported: list[str]
    response_types_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    token_endpoint_auth_signing_alg_values_supported: list[str]
    scopes_supported: list[str]
    service_documentation: str


class CallerOut(BaseModel):
    client_id: str
    department: str
    roles: list[Role]
