"""Request ids, the access log line and Prometheus metrics, as one pure-ASGI middleware."""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from functools import lru_cache
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange.errors import (
    concurrency_conflict_response,
    database_outage_response,
    internal_error_response,
    is_concurrency_conflict,
    is_database_outage,
)
from exchange.logs import bind_request_id, reset_request_id

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")

REQUESTS = Counter("exchange_http_requests_total", "HTTP requests served", ["method", "route", "status"])
LATENCY = Histogram(
    "exchange_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

access_log = logging.getLogger("exchange.access")


@lru_cache(maxsize=4096)
def _series(method: str, route: str, status: int) -> tuple[Any, Any]:
    """The request counter and latency histogram of one route and status (looked up once: a label lookup
    costs more than the update)."""
    return REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route)


logger = logging.getLogger("exchange.errors")


def _route_template(scope: Scope) -> str:
    """The matched route's path template (set in the scope by the router): never a raw path."""
    return str(getattr(scope.get("route"), "path", "unmatched"))


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else secrets.token_hex(16)
        token = bind_request_id(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as error:
            # Handled here, inside the request context, so the answer carries the request id too.
            if response_started:
                logger.exception("failed while answering", extra={"route": _route_template(scope)})
                raise
            if is_database_outage(error):
                logger.warning("database unavailable", extra={"route": _route_template(scope)})
                await database_outage_response()(scope, receive, send_with_id)
            elif is_concurrency_conflict(error):
                logger.warning("transaction undone by the database", extra={"route": _route_template(scope)})
                await concurrency_conflict_response()(scope, receive, send_with_id)
            else:
                logger.exception("unhandled error", extra={"route": _route_template(scope)})
                await internal_error_response()(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            count, latency = _series(scope["method"], route, status)
            count.inc()
            latency.observe(elapsed)
            principal = getattr(scope.get("state", {}).get("principal"), "client_id", None)
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client_id": principal,
                },
            )
            reset_request_id(token)


def metrics_response(_: Request) -> Response:
    """Prometheus exposition; aggregates all worker processes when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = DEFAULT_REGISTRY
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
