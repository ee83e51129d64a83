"""Writing the audit log. Every change goes through :func:`append` (in the request's transaction: if it
fails, nothing is done or returned); reads and refusals go through the process's
:class:`~exchange.audit.writer.AuditWriter` (committed before the answer; a refused request writes nothing
else, yet its refusal must be kept)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.audit.models import AuditEvent, AuditPending
from exchange.errors import ExchangeError, is_database_outage
from exchange.logs import current_request_id

logger = logging.getLogger("exchange.audit")

# The officer a console request acts for: every event the request appends names them, whichever service
# builds the event, so no console action can leave the log without the person who took it.
_acting_officer: ContextVar[str | None] = ContextVar("acting_officer", default=None)


def act_for_officer(username: str | None) -> Token[str | None]:
    return _acting_officer.set(username)


def stop_acting(token: Token[str | None]) -> None:
    _acting_officer.reset(token)


class Outcome(StrEnum):
    allowed = "allowed"
    denied = "denied"
    error = "error"


@dataclass(frozen=True, slots=True)
class Event:
    action: str
    outcome: Outcome = Outcome.allowed
    reason: str | None = None
    department: str | None = None
    client_id: str | None = None
    officer: str | None = None
    purpose: str | None = None
    case_reference: str | None = None
    grant_id: uuid.UUID | None = None
    resource: str | None = None
    subject_ids: Sequence[str] = ()
    elements: Sequence[str] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def refused(self, outcome: Outcome, reason: str) -> Event:
        return replace(self, outcome=outcome, reason=reason)


def row_of(event: Event) -> dict[str, Any]:
    return {
        "action": event.action,
        "outcome": event.outcome.value,
        "reason": event.reason,
        "department": event.department,
        "client_id": event.client_id,
        "officer": _acting_officer.get() or event.officer,
        "purpose": event.purpose,
        "case_reference": event.case_reference,
        "grant_id": event.grant_id,
        "resource": event.resource,
        "subject_ids": list(event.subject_ids),
        "elements": list(event.elements),
        "request_id": current_request_id(),
        "details": event.details,
    }


def _append_statement(rows: list[dict[str, Any]]) -> Any:
    # One round trip: the event, and its place in the integrator's queue, in the same statement.
    events = insert(AuditEvent).values(rows).returning(AuditEvent.id, AuditEvent.occurred_at).cte("events")
    return insert(AuditPending).from_select(
        ["event_id", "occurred_at"], select(events.c.id, events.c.occurred_at)
    )


class AuditUnavailable(ExchangeError):
    status = 503
    code = "audit_unavailable"
    title = "The audit log cannot be written"

    def __init__(self) -> None:
        super().__init__(
            "The access could not be recorded, so nothing was done and nothing is returned. Try again later.",
            headers={"Retry-After": "30"},
        )


async def append(session: AsyncSession, event: Event) -> None:
    """Record the event in the caller's transaction; it commits with the work it describes, or not at all.

    If the log refuses the event, the request fails closed: its transaction rolls back and it answers 503."""
    try:
        await session.execute(_append_statement([row_of(event)]))
    except DBAPIError as error:
        if is_database_outage(error):
            raise
        logger.exception("the audit log refused an event", extra={"action": event.action})
        raise AuditUnavailable() from error


class Appender(Protocol):
    async def append(self, event: Event) -> None: ...


async def append_refusal(writer: Appender, event: Event) -> None:
    """Record a refused or failed attempt apart from the request's transaction, which rolls back."""
    try:
        await writer.append(event)
    except Exception:
        # The request is refused either way; an operator must hear that its refusal went unrecorded.
        logger.exception(
            "could not record a refused request in the audit log", extra={"action": event.action}
        )
