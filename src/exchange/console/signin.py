"""Signing in and out, and the language switch."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from exchange.auth import officers
from exchange.auth.officers import SESSION_LIFETIME, SignInOutcome
from exchange.console.dependencies import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    Submitted,
    same_token,
    signer,
    unsign,
)
from exchange.console.i18n import LANGUAGES
from exchange.console.routing import ConsoleRoute
from exchange.console.templating import LANGUAGE_COOKIE, render
from exchange.db.session import DbSession

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
HOME = "/console"


def _safe_next(target: str | None) -> str:
    """Only a path inside the console: never another site (open redirect)."""
    if target and target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


def _secure(request: Request) -> bool:
    return str(request.app.state.settings.public_url).startswith("https://")


def _sign_in_page(request: Request, status_code: int = 200, **context: object) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = render(
        request,
        "sign_in.html",
        status_code=status_code,
        csrf_token=nonce,
        next=_safe_next(request.query_params.get("next")),
        **({"error": None, "username": ""} | context),
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        signer(request, "sign-in").sign(nonce).decode(),
        max_age=3600,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    return _sign_in_page(request)


@router.post("/sign-in")
async def sign_in(
    request: Request,
    session: DbSession,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=2000)] = HOME,
) -> Response:
    expected = unsign(request, "sign-in", request.cookies.get(SIGN_IN_COOKIE))
    if expected is None or not same_token(expected, csrf_token):
        return _sign_in_page(request, 403, error="sign_in.stale", username=username)
    result = await officers.sign_in(session, username.strip(), password, datetime.now(UTC))
    if result.outcome is SignInOutcome.locked:
        return _sign_in_page(request, 429, error="sign_in.locked", username=username)
    if result.outcome is SignInOutcome.refused or result.token is None:
        return _sign_in_page(request, 401, error="sign_in.refused", username=username)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        signer(request, "session").sign(result.token).decode(),
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path="/console",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    response.delete_cookie(SIGN_IN_COOKIE, path="/console")
    return response


@router.post("/sign-out")
async def sign_out(session: DbSession, active: Submitted) -> Response:
    await officers.sign_out(session, active)
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


@router.get("/language/{code}")
async def choose_language(code: str, request: Request) -> Response:
    response = RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    if code in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, code, max_age=365 * 86400, path="/console", samesite="lax")
    return response
