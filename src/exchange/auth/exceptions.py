"""Authentication and authorisation errors; OAuth2 token-endpoint errors also carry RFC 6749 ``error``."""

from __future__ import annotations

from typing import Any

from exchange.errors import ExchangeError, Forbidden, Unauthenticated


class InvalidToken(Unauthenticated):
    code = "invalid_token"
    title = "The access token is not valid"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class MissingToken(Unauthenticated):
    code = "token_required"
    title = "An access token is required"

    def __init__(self) -> None:
        super().__init__(
            "Send an access token from POST /oauth/token as 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": 'Bearer realm="exchange"'},
        )


class RoleRequired(Forbidden):
    code = "role_required"
    title = "The client lacks the role this operation needs"


class OAuthError(ExchangeError):
    """An RFC 6749 section 5.2 error, rendered as problem+json with the ``error`` member clients expect."""

    def __init__(
        self, error: str, detail: str, *, status: int = 400, headers: dict[str, str] | None = None
    ) -> None:
        extra: dict[str, Any] = {"error": error, "error_description": detail}
        super().__init__(detail, headers=headers, extra=extra)
        self.status = status  # type: ignore[misc]
        self.code = error  # type: ignore[misc]
        self.title = "The token request was refused"  # type: ignore[misc]
