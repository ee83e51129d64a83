"""The auditors' API: search and export the log, the data-subject view, verification, checkpoints."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from enum import StrEnum
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from exchange.audit import context, repository
from exchange.audit import service as audit
from exchange.audit.models import AuditEvent
from exchange.audit.schemas import (
    CheckpointOut,
    EventOut,
    EventPage,
    EventSearch,
    SubjectAccess,
    SubjectAccesses,
    SubjectQuery,
    VerifyOut,
)
from exchange.audit.verify import verify_log
from exchange.auth.dependencies import require_roles
from exchange.auth.principal import Principal, Role
from exchange.db.session import DbSession, transaction
from exchange.errors import InvalidInput, problem_responses
from exchange.pagination import decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=problem_responses(401, 403, 422))
Auditor = Annotated[Principal, Depends(require_roles(Role.auditor))]
EXPORT_PAGE = 1000


class ExportFormat(StrEnum):
    ndjson = "ndjson"
    csv = "csv"


def _event_out(event: AuditEvent, seq: int | None) -> EventOut:
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


async def _log_auditor(
    session: DbSession, principal: Principal, action: str, search: EventSearch | SubjectQuery
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


@router.post(
    "/events:search",
    response_model=EventPage,
    dependencies=[Depends(context.audited("audit.search"))],
    summary="Search the log (every filter optional), newest first",
)
async def search(body: EventSearch, session: DbSession, principal: Auditor) -> EventPage:
    rows = await repository.search_events(session, body, _before(body.cursor), body.limit + 1)
    items = [_event_out(event, seq) for event, seq in rows[: body.limit]]
    next_cursor = (
        encode_cursor([items[-1].occurred_at.isoformat(), items[-1].id]) if len(rows) > body.limit else None
    )
    await _log_auditor(session, principal, "audit.search", body)
    return EventPage(items=items, next_cursor=next_cursor)


@router.post(
    "/events:export",
    dependencies=[Depends(context.audited("audit.export"))],
    summary="The same search as a stream of NDJSON or CSV (all matching events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}},
)
async def export(
    body: EventSearch,
    request: Request,
    session: DbSession,
    principal: Auditor,
    format_: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.ndjson,
) -> StreamingResponse:
    await _log_auditor(session, principal, "audit.export", body)
    sessionmaker = request.app.state.sessionmaker

    async def rows() -> AsyncIterator[bytes]:
        before = _before(body.cursor)
        header = True
        while True:
            async with transaction(sessionmaker) as page_session:
                page = await repository.search_events(page_session, body, before, EXPORT_PAGE)
            for event, seq in page:
                item = _event_out(event, seq).model_dump(mode="json")
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
            before = (page[-1][0].occurred_at, page[-1][0].id)

    media = "application/x-ndjson" if format_ is ExportFormat.ndjson else "text/csv; charset=utf-8"
    return StreamingResponse(rows(), media_type=media)


@router.post(
    "/subjects:accesses",
    response_model=SubjectAccesses,
    dependencies=[Depends(context.audited("audit.subject_accesses"))],
    summary="Who read this person's or entity's data, when, and for what purpose",
)
async def subject_accesses(body: SubjectQuery, session: DbSession, principal: Auditor) -> SubjectAccesses:
    events = await repository.subject_accesses(session, body.subject_id, body.since, body.limit)
    await _log_auditor(session, principal, "audit.subject_accesses", body)
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


@router.get("/verify", response_model=VerifyOut, summary="Recompute the hash chain and check the checkpoints")
async def verify(
    session: DbSession,
    _: Auditor,
    from_seq: Annotated[
        int | None, Query(alias="from", ge=1, description="Start at this sequence number.")
    ] = None,
) -> VerifyOut:
    result = await verify_log(session, from_seq)
    return VerifyOut(
        ok=result.ok,
        checked=result.checked,
        first_bad=result.first_bad,
        checkpoints=result.checkpoints,
        unchained_events=result.unchained_events,
        problems=result.problems,
    )


@router.get(
    "/checkpoints", response_model=list[CheckpointOut], summary="Signed checkpoints, for outside witnesses"
)
async def checkpoints(
    session: DbSession,
    _: Auditor,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[CheckpointOut]:
    return [
        CheckpointOut(seq=c.seq, hash=c.hash.hex(), created_at=c.created_at, signature=c.signature)
        for c in await repository.checkpoints(session, after, limit)
    ]
