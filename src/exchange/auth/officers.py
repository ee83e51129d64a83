"""Officers: the people who sign in to the web console, and their sessions.

Passwords are argon2id hashes (as client secrets are). A session is a random token in a signed cookie; the
database keeps only the token's SHA-256, the officer, a CSRF token and the session's deadlines. Every sign-in,
refused or not, and every sign-out is an audit event.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.audit import service as audit
from exchange.auth.credentials import hash_secret, verify_secret
from exchange.auth.models import OFFICER_ROLES, ConsoleSession, HubSecret, Officer
from exchange.auth.principal import Principal, Role
from exchange.departments import service as departments
from exchange.departments.models import Department
from exchange.errors import Conflict, InvalidInput, InvalidParam, NotFound

USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 12
MAX_FAILED_SIGN_INS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=8)
IDLE_TIMEOUT = timedelta(minutes=30)
# A session's last_seen_at is written at most this often, so browsing costs no write per page.
TOUCH_RESOLUTION = timedelta(minutes=1)
CONSOLE_CLIENT = "console"


class OfficerExists(Conflict):
    code = "officer_exists"
    title = "The user name is taken"


class OfficerNotFound(NotFound):
    code = "officer_not_found"
    title = "No such officer"

    def __init__(self, username: str) -> None:
        super().__init__(f"No officer is registered with the user name {username}.")


class SignInOutcome(StrEnum):
    signed_in = "signed_in"
    refused = "refused"
    locked = "locked"


@dataclass(frozen=True, slots=True)
class SignIn:
    outcome: SignInOutcome
    token: str | None = None
    locked_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class ActiveSession:
    officer: Officer
    csrf_token: str
    token_hash: bytes

    @property
    def principal(self) -> Principal:
        return principal_of(self.officer)


def principal_of(officer: Officer) -> Principal:
    """The officer as the services see a caller: the console is the client, the officer is named."""
    return Principal(
        client_id=CONSOLE_CLIENT,
        department_code=officer.department_code,
        roles=frozenset(Role(role) for role in officer.roles),
        token_id=CONSOLE_CLIENT,
        officer=officer.username,
    )


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _check_password(password: str) -> list[InvalidParam]:
    if len(password) < MIN_PASSWORD_LENGTH:
        return [InvalidParam(name="password", reason=f"must have at least {MIN_PASSWORD_LENGTH} characters")]
    return []


async def create_officer(
    session: AsyncSession,
    *,
    username: str,
    display_name: str,
    department: str,
    roles: list[str],
    password: str,
) -> Officer:
    errors = _check_password(password)
    if not USERNAME.match(username):
        errors.append(
            InvalidParam(name="username", reason="2-64 of a-z, 0-9, '.', '_', '-', starting with a letter")
        )
    unknown = sorted(set(roles) - set(OFFICER_ROLES))
    if unknown or not roles:
        errors.append(InvalidParam(name="roles", reason=f"choose from {', '.join(OFFICER_ROLES)}"))
    name = display_name.strip()
    if not name or len(name) > 200:
        errors.append(InvalidParam(name="display_name", reason="1-200 characters"))
    if errors:
        raise InvalidInput("The officer cannot be created as given.", errors)
    await departments.get_department(session, department)
    created = await session.execute(
        pg_insert(Officer)
        .values(
            username=username,
            display_name=name,
            department_code=department,
            roles=sorted(set(roles)),
            password_hash=hash_secret(password),
        )
        .on_conflict_do_nothing()
        .returning(Officer)
    )
    officer = created.scalar_one_or_none()
    if officer is None:
        raise OfficerExists(f"An officer named {username} exists already.")
    return officer


async def list_officers(session: AsyncSession) -> list[Officer]:
    return list((await session.scalars(select(Officer).order_by(Officer.username))).all())


async def _change(session: AsyncSession, username: str, **values: object) -> None:
    changed = await session.execute(
        update(Officer).where(Officer.username == username).values(**values).returning(Officer.username)
    )
    if changed.scalar_one_or_none() is None:
        raise OfficerNotFound(username)


async def set_password(session: AsyncSession, username: str, password: str) -> None:
    errors = _check_password(password)
    if errors:
        raise InvalidInput("The password is too weak.", errors)
    hashed = hash_secret(password)
    await _change(session, username, password_hash=hashed, failed_sign_ins=0, locked_until=None)
    await _end_sessions(session, username)


async def disable_officer(session: AsyncSession, username: str) -> None:
    await _change(session, username, disabled_at=func.now())
    await _end_sessions(session, username)


async def _end_sessions(session: AsyncSession, username: str) -> None:
    await session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.username == username, ConsoleSession.ended_at.is_(None))
        .values(ended_at=func.now())
    )


def _sign_in_event(
    username: str, officer: Officer | None, outcome: audit.Outcome, reason: str | None
) -> audit.Event:
    return audit.Event(
        action="console.sign_in",
        outcome=outcome,
        reason=reason,
        department=officer.department_code if officer else None,
        client_id=CONSOLE_CLIENT,
        officer=username[:64],
    )


async def sign_in(session: AsyncSession, username: str, password: str, now: datetime) -> SignIn:
    """Check the password and open a session; five failures in a row lock the officer out for a while.

    Returns rather than raises on refusal, so the failure count and its audit event commit."""
    officer = await session.scalar(select(Officer).where(Officer.username == username).with_for_update())
    active = officer is not None and officer.disabled_at is None
    if officer is not None and officer.locked_until is not None and officer.locked_until > now:
        await audit.append(session, _sign_in_event(username, officer, audit.Outcome.denied, "locked"))
        return SignIn(SignInOutcome.locked, locked_until=officer.locked_until)
    # The hash is checked even for an unknown or disabled officer, so timing tells nothing.
    correct = await verify_secret(officer.password_hash if officer is not None else None, password)
    if officer is None or not active or not correct:
        if officer is not None:
            failures = officer.failed_sign_ins + 1
            locked = now + LOCKOUT if failures >= MAX_FAILED_SIGN_INS else None
            await _change(session, officer.username, failed_sign_ins=failures, locked_until=locked)
        reason = "unknown officer" if officer is None else "disabled" if not active else "wrong password"
        await audit.append(session, _sign_in_event(username, officer, audit.Outcome.denied, reason))
        return SignIn(SignInOutcome.refused)
    token = secrets.token_urlsafe(32)
    await session.execute(
        insert(ConsoleSession).values(
            token_hash=_token_hash(token),
            username=officer.username,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    await _change(session, officer.username, failed_sign_ins=0, locked_until=None, last_sign_in_at=now)
    await audit.append(session, _sign_in_event(username, officer, audit.Outcome.allowed, None))
    return SignIn(SignInOutcome.signed_in, token=token)


async def active_session(session: AsyncSession, token: str, now: datetime) -> ActiveSession | None:
    """The session the token opens, if it is live and its officer and department are still enabled."""
    found = (
        await session.execute(
            select(ConsoleSession, Officer)
            .join(Officer, Officer.username == ConsoleSession.username)
            .join(Department, Department.code == Officer.department_code)
            .where(
                ConsoleSession.token_hash == _token_hash(token),
                ConsoleSession.ended_at.is_(None),
                ConsoleSession.expires_at > now,
                ConsoleSession.last_seen_at > now - IDLE_TIMEOUT,
                Officer.disabled_at.is_(None),
                Department.disabled_at.is_(None),
            )
        )
    ).one_or_none()
    if found is None:
        return None
    console_session, officer = found
    if now - console_session.last_seen_at > TOUCH_RESOLUTION:
        await session.execute(
            update(ConsoleSession)
            .where(ConsoleSession.token_hash == console_session.token_hash)
            .values(last_seen_at=now)
        )
    return ActiveSession(officer, console_session.csrf_token, console_session.token_hash)


async def sign_out(session: AsyncSession, active: ActiveSession) -> None:
    await session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.token_hash == active.token_hash)
        .values(ended_at=func.now())
    )
    await audit.append(
        session,
        audit.Event(
            action="console.sign_out",
            department=active.officer.department_code,
            client_id=CONSOLE_CLIENT,
            officer=active.officer.username,
        ),
    )


async def shared_secret(session: AsyncSession, name: str) -> bytes:
    """A random secret every process of the hub agrees on, created by whichever asks first."""
    await session.execute(
        pg_insert(HubSecret).values(name=name, value=secrets.token_bytes(32)).on_conflict_do_nothing()
    )
    value = await session.scalar(select(HubSecret.value).where(HubSecret.name == name))
    assert value is not None
    return value
