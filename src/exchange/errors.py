"""One error shape for the whole hub: RFC 9457 problem details.

Services raise subclasses of :class:`ExchangeError`; the handlers installed by :func:`install_handlers`
turn them, request validation errors and Starlette's own HTTP errors into ``application/problem+json``, and
the OpenAPI document says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from exchange.lean import add_body_schemas
from exchange.logs import current_request_id

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://exchange.example.gov.cn/problems/"


class InvalidParam(BaseModel):
    name: str
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every error response of the hub carries them."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    invalid_params: list[InvalidParam] | None = None


class ExchangeError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        invalid_params: Sequence[InvalidParam] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.invalid_params = list(invalid_params) if invalid_params else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


class BadRequest(ExchangeError):
    pass


class InvalidInput(ExchangeError):
    status = 422
    code = "invalid_input"
    title = "The request has invalid fields"

    def __init__(self, detail: str, invalid_params: Sequence[InvalidParam], **kwargs: Any) -> None:
        super().__init__(detail, invalid_params=invalid_params, **kwargs)

    @classmethod
    def one(cls, name: str, reason: str) -> InvalidInput:
        return cls(f"{name}: {reason}", [InvalidParam(name=name, reason=reason)])


class Unauthenticated(ExchangeError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(ExchangeError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class NotFound(ExchangeError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(ExchangeError):
    status = 409
    code = "conflict"
    title = "Conflict with the current state"


class PreconditionFailed(ExchangeError):
    status = 412
    code = "precondition_failed"
    title = "Precondition failed"


async def _note_refusal(request: Request, status: int, code: str, detail: str) -> None:
    """Let the audit log keep refused data requests (the hook is installed by the app)."""
    hook = getattr(request.app.state, "on_refusal", None)
    if hook is not None:
        await hook(request, status, code, detail)


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    invalid_params: Sequence[InvalidParam] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    problem = Problem(
        type=PROBLEM_TYPE_BASE + code,
        title=title,
        status=status,
        detail=detail,
        code=code,
        request_id=current_request_id(),
        invalid_params=list(invalid_params) if invalid_params else None,
    )
    body = problem.model_dump(exclude_none=True)
    body.update(extra or {})
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries declaring that these statuses answer with a problem document."""
    return {
        status: {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}, "description": "Problem details"}
        for status in statuses
    }


_STATUS_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


def _location(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "header", "path", "cookie"}:
        parts = parts[1:] if parts[0] == "body" else parts
    return ".".join(parts) or "body"


def validation_params(errors: Sequence[Any]) -> list[InvalidParam]:
    return [
        InvalidParam(name=_location(err.get("loc", ())), reason=str(err.get("msg", "invalid")))
        for err in errors
    ]


async def _on_exchange_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ExchangeError)
    await _note_refusal(request, exc.status, exc.code, exc.detail)
    return problem_response(
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        invalid_params=exc.invalid_params,
        headers=exc.headers,
        extra=exc.extra,
    )


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    params = validation_params(exc.errors())
    await _note_refusal(request, 422, "invalid_input", "; ".join(f"{p.name}: {p.reason}" for p in params))
    if any(err.get("type") == "json_invalid" for err in exc.errors()):
        return problem_response(
            status=400,
            code="malformed_json",
            title="The body is not valid JSON",
            detail="The request body could not be parsed as JSON.",
            invalid_params=params,
        )
    return problem_response(
        status=422,
        code="invalid_input",
        title="The request has invalid fields",
        detail="; ".join(f"{p.name}: {p.reason}" for p in params),
        invalid_params=params,
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, title = _STATUS_CODES.get(exc.status_code, ("http_error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    if exc.status_code == 404:
        detail = "No such endpoint."
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed here."
    return problem_response(
        status=exc.status_code, code=code, title=title, detail=detail, headers=getattr(exc, "headers", None)
    )


RETRY_AFTER_OUTAGE_SECONDS = 5


def is_database_outage(error: BaseException) -> bool:
    """Whether a failure means the database cannot be reached right now (refused, reset, shut down, pool
    exhausted), rather than a fault of the request or the hub."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, OSError | SQLAlchemyTimeoutError | asyncpg.PostgresConnectionError):
            return True
        if isinstance(seen, asyncpg.exceptions.CannotConnectNowError | asyncpg.exceptions.AdminShutdownError):
            return True
        if isinstance(seen, asyncpg.exceptions.QueryCanceledError):
            return True  # the server's statement timeout: it is too busy to answer in time
        if isinstance(seen, asyncpg.exceptions.InterfaceError) and "connection is closed" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_concurrency_conflict(error: BaseException) -> bool:
    """Whether the database gave up on the request's transaction for the sake of another one (a deadlock it
    broke, a serialization failure): nothing of it was committed, and trying again will do."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, asyncpg.exceptions.DeadlockDetectedError | asyncpg.exceptions.SerializationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def concurrency_conflict_response() -> JSONResponse:
    return problem_response(
        status=503,
        code="concurrent_conflict",
        title="Crossed with another request",
        detail=(
            "The database undid this request's transaction to let a concurrent one through; what it was "
            "doing is not applied. Send it again (a batch with the same Idempotency-Key resumes where it "
            "stopped)."
        ),
        headers={"Retry-After": "1"},
    )


def database_outage_response() -> JSONResponse:
    return problem_response(
        status=503,
        code="database_unavailable",
        title="Temporarily unavailable",
        detail="The hub cannot reach its database; nothing was done. Try again shortly.",
        headers={"Retry-After": str(RETRY_AFTER_OUTAGE_SECONDS)},
    )


def internal_error_response() -> JSONResponse:
    """The answer to a failure the hub did not foresee: no message, no type name, just the request id."""
    return problem_response(
        status=500,
        code="internal_error",
        title="Internal error",
        detail="The hub could not complete the request. Quote the request id when you report it.",
    )


# Requests refused before any route sees them (bodies.py, and JSON parsing): a URL holding a NUL character;
# JSON and form bodies that are not JSON or not UTF-8, too large, or hold a NUL character. NDJSON batches are
# checked line by line instead.
URL_REFUSALS = ("422",)
BODY_REFUSALS = ("400", "413", "422")
_OPERATIONS = frozenset({"get", "put", "post", "delete", "patch", "options", "head", "trace"})


def _refusable(media_type: str) -> bool:
    return media_type in {"application/json", "application/x-www-form-urlencoded"} or media_type.endswith(
        "+json"
    )


def document_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """Make an OpenAPI document say what the handlers send: problem documents under application/problem+json
    (FastAPI files a response model under application/json), every 422 a problem rather than FastAPI's own
    validation error, and on each operation the refusals of URLs and bodies no route sees."""
    schemas = openapi.get("components", {}).get("schemas", {})
    if "Problem" not in schemas:
        return openapi
    problem_content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path in openapi.get("paths", {}).values():
        for method, operation in path.items():
            if method not in _OPERATIONS:
                continue
            responses = operation.setdefault("responses", {})
            body = any(_refusable(media) for media in operation.get("requestBody", {}).get("content", {}))
            for status in BODY_REFUSALS if body else URL_REFUSALS:
                responses.setdefault(
                    status, {"description": "Problem details", "content": {PROBLEM_MEDIA_TYPE: {}}}
                )
            for status, response in responses.items():
                if status == "422" or PROBLEM_MEDIA_TYPE in response.get("content", {}):
                    response["content"] = dict(problem_content)
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return openapi


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ExchangeError, _on_exchange_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(add_body_schemas(generate()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
