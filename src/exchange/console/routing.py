"""Console routes answer in HTML: a refusal is a page that says why, never a problem+json document, and an
expired session leads back to the sign-in page."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from exchange.audit import service as audit
from exchange.console.dependencies import SignInRequired
from exchange.console.templating import render
from exchange.errors import ExchangeError

SIGN_IN_PATH = "/console/sign-in"


def _to_sign_in(request: Request) -> Response:
    target = f"{SIGN_IN_PATH}?next={quote(request.url.path)}"
    if request.headers.get("HX-Request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def _log_refusal(request: Request, error: ExchangeError) -> None:
    active = getattr(request.state, "console", None)
    await audit.append_refusal(
        request.app.state.audit_writer,
        audit.Event(
            action="console.refused",
            outcome=audit.Outcome.denied,
            reason=f"{error.code}: {error.detail}",
            department=active.officer.department_code if active else None,
            client_id="console",
            officer=active.officer.username if active else None,
            details={"path": request.url.path, "method": request.method},
        ),
    )


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return _to_sign_in(request)
            except ExchangeError as error:
                if error.status in {401, 403}:
                    await _log_refusal(request, error)
                return render(request, "error.html", status_code=error.status, error=error, problems=[])
            except RequestValidationError as error:
                problems = [
                    (".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), e["msg"])
                    for e in error.errors()
                ]
                return render(request, "error.html", status_code=422, error=None, problems=problems)

        return handle
