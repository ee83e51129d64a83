"""Reading the log, for the auditors' API and the console alike: search, export, the data-subject view and
verification. Every read of the log is itself an audit event, in the reader's transaction."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from enum import StrEnum

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from exchange.audit import repository
from exchange.audit import service as audit
from exchange.audit.models import AuditEvent
from exchange.audit.schemas import (
    EventOut,
    EventPage,
    EventSearch,
    SubjectAccess,
    SubjectAccesses,
    SubjectQuery,
    VerifyOut,
)
from exchange.audit.verify import verify_log
from exchange.auth.principal import Principal
from exchange.db.session import transaction
from exchange.errors import InvalidInput
from exchange.pagination import decode_cursor, encode_cursor

EXPORT_PAGE = 1000


class ExportFormat(StrEnum):
    ndjson = "ndjson"
    csv = "csv"


EXPORT_MEDIA_TYPES = {
    ExportFormat.ndjson: "application/x-ndjson",
    ExportFormat.csv: "text/csv; charset=utf-8",
}


def event_out(event: AuditEvent, seq: int | None) -> EventOut:
    return EventOut(
        id=event.id,
        seq=seq,
        occurred_at=event.occurred_at,
        action=event.action,
        outcome=event.outcome,
        reason=event.reason,
        department=event.department,
        client_id=event.client_id,
        officer=event.officer,
        purpose=event.purpose,
        case=event.case_reference,
        grant_id=event.grant_id,
        resource=event.resource,
        subject_ids=event.subject_ids,
        elements=event.elements,
        request_id=event.request_id,
        details=event.details,
    )


def _before(cursor: str | None) -> tuple[datetime, int] | None:
    key = decode_cursor(cursor, 2)
    if key is None:
        return None
    try:
        return datetime.fromisoformat(key[0]), int(key[1])
    except (TypeError, ValueError):
        raise InvalidInput.one("cursor", "not a cursor this search returned") from None


async def log_reading(
    session: AsyncSession, principal: Principal, action: str, search: EventSearch | SubjectQuery
) -> None:
    subject = getattr(search, "subject_id", None)
    await audit.append(
        session,
        audit.Event(
            action=action,
            department=principal.department_code,
            client_id=principal.client_id,
            subject_ids=[subject] if subject else [],
            details={"filters": search.model_dump(mode="json", exclude_none=True, exclude={"cursor"})},
        ),
    )


async def search(session: AsyncSession, principal: Principal, body: EventSearch) -> EventPage:
    """One page of matching events, newest first."""
    rows = await repository.search_events(session, body, _before(body.cursor), body.limit + 1)
    items = [event_out(event, seq) for event, seq in rows[: body.limit]]
    next_cursor = (
        encode_cursor([items[-1].occurred_at.isoformat(), items[-1].id]) if len(rows) > body.limit else None
    )
    await log_reading(session, principal, "audit.search", body)
    return EventPage(items=items, next_cursor=next_cursor)


async def export(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    principal: Principal,
    body: EventSearch,
    format_: ExportFormat,
) -> AsyncIterator[bytes]:
    """Log the export in the caller's transaction, then stream every match page by page, each page read in a
    short transaction of its own so a long export holds nothing open."""
    await log_reading(session, principal, "audit.export", body)
    before = _before(body.cursor)

    async def rows() -> AsyncIterator[bytes]:
        cursor = before
        header = True
        while True:
            async with transaction(sessionmaker) as page_session:
                page = await repository.search_events(page_session, body, cursor, EXPORT_PAGE)
            for event, seq in page:
                item = event_out(event, seq).model_dump(mode="json")
                if format_ is ExportFormat.ndjson:
                    yield orjson.dumps(item) + b"\n"
                    continue
                buffer = io.StringIO()
                writer = csv.DictWriter(buffer, fieldnames=list(item))
                if header:
                    writer.writeheader()
                    header = False
                writer.writerow(
                    {
                        k: orjson.dumps(v).decode() if isinstance(v, list | dict) else v
                        for k, v in item.items()
                    }
                )
                yield buffer.getvalue().encode()
            if len(page) < EXPORT_PAGE:
                return
            cursor = (page[-1][0].occurred_at, page[-1][0].id)

    return rows()


async def subject_accesses(
    session: AsyncSession, principal: Principal, body: SubjectQuery
) -> SubjectAccesses:
    """Who read this person's or entity's data, when, and for what purpose."""
    events = await repository.subject_accesses(session, body.subject_id, body.since, body.limit)
    await log_reading(session, principal, "audit.subject_accesses", body)
    return SubjectAccesses(
        subject_id=body.subject_id,
        items=[
            SubjectAccess(
                at=e.occurred_at,
                action=e.action,
                department=e.department,
                client_id=e.client_id,
                officer=e.officer,
                purpose=e.purpose,
                case=e.case_reference,
                resource=e.resource,
                elements=e.elements,
                outcome=e.outcome,
            )
            for e in events
        ],
    )


async def verify(session: AsyncSession, principal: Principal, from_seq: int | None) -> VerifyOut:
    """Recompute the hash chain and check the signed checkpoints; the check itself is logged."""
    result = await verify_log(session, from_seq)
    await audit.append(
        session,
        audit.Event(
            action="audit.verify",
            department=principal.department_code,
            client_id=principal.client_id,
            details={"from": from_seq, "ok": result.ok, "checked": result.checked},
        ),
    )
    return VerifyOut(
        ok=result.ok,
        checked=result.checked,
        first_bad=result.first_bad,
        checkpoints=result.checkpoints,
        unchained_events=result.unchained_events,
        problems=result.problems,
    )
