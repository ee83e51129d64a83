"""Who is signed in, what they may do, and the checks every console form passes (CSRF)."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from itsdangerous import BadSignature, Signer
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.audit import service as audit
from exchange.auth import officers
from exchange.auth.exceptions import RoleRequired
from exchange.auth.officers import ActiveSession
from exchange.auth.principal import Principal, Role
from exchange.db.session import DbSession
from exchange.errors import ExchangeError, Forbidden

SESSION_COOKIE = "exchange_console"
SIGN_IN_COOKIE = "exchange_sign_in"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
T = TypeVar("T")


class SignInRequired(ExchangeError):
    status = 401
    code = "sign_in_required"
    title = "Sign in first"


class CsrfRejected(Forbidden):
    code = "csrf_rejected"
    title = "The form is stale or did not come from the console"

    def __init__(self) -> None:
        super().__init__("Reload the page and submit the form again.")


def signer(request: Request, purpose: str) -> Signer:
    return Signer(request.app.state.console_key, salt=f"exchange-console-{purpose}")


def unsign(request: Request, purpose: str, value: str | None) -> str | None:
    if not value:
        return None
    try:
        return signer(request, purpose).unsign(value).decode()
    except BadSignature:
        return None


async def signed_in(request: Request, session: DbSession) -> AsyncIterator[ActiveSession]:
    """The signed-in officer; every audit event of the request names them."""
    token = unsign(request, "session", request.cookies.get(SESSION_COOKIE))
    active = await officers.active_session(session, token, datetime.now(UTC)) if token else None
    if active is None:
        raise SignInRequired("Your session has ended or you have not signed in.")
    request.state.console = active
    acting = audit.act_for_officer(active.officer.username)
    try:
        yield active
    finally:
        audit.stop_acting(acting)


SignedIn = Annotated[ActiveSession, Depends(signed_in, scope="function")]


def same_token(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


async def checked_form(request: Request, active: SignedIn) -> ActiveSession:
    """A form submission from the console itself: its CSRF token (field or htmx header) must match."""
    form = await request.form()
    given = form.get(CSRF_FIELD)
    token = given if isinstance(given, str) else request.headers.get(CSRF_HEADER)
    if not same_token(active.csrf_token, token):
        raise CsrfRejected()
    return active


Submitted = Annotated[ActiveSession, Depends(checked_form)]


def officer_with(*roles: Role) -> Callable[[ActiveSession], Awaitable[Principal]]:
    """The officer as a principal, if they hold one of ``roles``."""
    wanted = frozenset(roles)

    async def check(active: SignedIn) -> Principal:
        principal = active.principal
        if not principal.has_any(wanted):
            raise RoleRequired(f"This page needs one of the roles: {', '.join(sorted(wanted))}.")
        return principal

    return check


async def attempt(
    session: AsyncSession, work: Callable[[], Awaitable[T]]
) -> tuple[T | None, ExchangeError | None]:
    """Run a service call in a savepoint: refused, it leaves nothing behind, and the page shows why."""
    try:
        async with session.begin_nested():
            return await work(), None
    except ExchangeError as error:
        return None, error
