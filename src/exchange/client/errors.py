"""The hub's problem+json answers (RFC 9457) as exceptions, one class per kind of refusal."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ValidationError


class InvalidParam(BaseModel):
    name: str
    reason: str


class ExchangeError(Exception):
    """A non-2xx answer of the hub: its status, machine-readable ``code`` and the problem's members."""

    default_code: ClassVar[str] = "http_error"

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        invalid_params: list[InvalidParam] | None = None,
        request_id: str | None = None,
        problem: dict[str, Any] | None = None,
        headers: httpx.Headers | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.invalid_params = list(invalid_params or [])
        self.request_id = request_id
        self.problem = dict(problem or {})
        self.headers = headers if headers is not None else httpx.Headers()

    def __str__(self) -> str:
        params = "; ".join(f"{p.name}: {p.reason}" for p in self.invalid_params)
        reference = f" (request {self.request_id})" if self.request_id else ""
        text = f"{self.status} {self.code}: {self.detail}"
        return f"{text} [{params}]{reference}" if params and params != self.detail else text + reference


class BadRequest(ExchangeError):
    """400: a malformed request, a missing or invalid purpose, a refused token request."""


class Unauthorized(ExchangeError):
    """401: no valid access token, or client credentials the hub does not accept."""


class Forbidden(ExchangeError):
    """403: e.g. ``unauthorized_field`` (no grant for the purpose covers an element) or ``role_required``."""


class NotFound(ExchangeError):
    """404: no such resource, request or discrepancy, or one the caller may not see."""


class Conflict(ExchangeError):
    """409: e.g. deciding twice, or an Idempotency-Key reused for another request."""


class PreconditionFailed(ExchangeError):
    """412 / 428: a stale or missing If-Match."""


class ValidationFailed(ExchangeError):
    """422: fields the hub refused, each named in ``invalid_params``."""


class RateLimited(ExchangeError):
    """429: too many requests; ``retry_after`` says how many seconds to wait, when the hub says so."""

    @property
    def retry_after(self) -> float | None:
        try:
            return float(self.headers["retry-after"])
        except (KeyError, ValueError):
            return None


class ServerError(ExchangeError):
    """5xx: the hub could not answer; quote ``request_id`` when reporting it."""


_BY_STATUS: dict[int, type[ExchangeError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    428: PreconditionFailed,
    422: ValidationFailed,
    429: RateLimited,
}


def _error_class(status: int) -> type[ExchangeError]:
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, ExchangeError)


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _invalid_params(raw: Any) -> list[InvalidParam]:
    if not isinstance(raw, list):
        return []
    params = []
    for item in raw:
        try:
            params.append(InvalidParam.model_validate(item))
        except ValidationError:
            continue
    return params


def error_from_response(response: httpx.Response) -> ExchangeError:
    """The exception for a non-2xx answer: from its problem document, or from the status alone."""
    problem = _problem(response)
    status = response.status_code
    title = str(problem.get("title") or response.reason_phrase or "HTTP error")
    detail = problem.get("detail") or problem.get("error_description")
    if detail is None:
        text = response.text.strip()
        detail = text[:500] if text else title
    return _error_class(status)(
        status,
        str(problem.get("code") or problem.get("error") or ExchangeError.default_code),
        title,
        str(detail),
        invalid_params=_invalid_params(problem.get("invalid_params")),
        request_id=problem.get("request_id") or response.headers.get("x-request-id"),
        problem=problem,
        headers=response.headers,
    )


def raise_for_problem(response: httpx.Response) -> None:
    if not response.is_success:
        raise error_from_response(response)
