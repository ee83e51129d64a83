"""The auditors' API: search and export the log, the data-subject view, verification, checkpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from exchange.audit import context, repository
from exchange.audit import search as reading
from exchange.audit.schemas import (
    CheckpointOut,
    EventPage,
    EventSearch,
    SubjectAccesses,
    SubjectQuery,
    VerifyOut,
)
from exchange.audit.search import EXPORT_MEDIA_TYPES, ExportFormat
from exchange.audit.usage import Usage, usage
from exchange.auth.dependencies import require_roles
from exchange.auth.principal import Principal, Role
from exchange.db.session import DbSession
from exchange.errors import problem_responses

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=problem_responses(401, 403, 422))
MAX_SEQ = 2**63 - 1  # sequence numbers are BIGINT columns: a larger number is refused, not a database error
Auditor = Annotated[Principal, Depends(require_roles(Role.auditor))]


@router.post(
    "/events:search",
    response_model=EventPage,
    dependencies=[Depends(context.audited("audit.search"))],
    summary="Search the log (every filter optional), newest first",
)
async def search(body: EventSearch, session: DbSession, principal: Auditor) -> EventPage:
    return await reading.search(session, principal, body)


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
    rows = await reading.export(session, request.app.state.sessionmaker, principal, body, format_)
    return StreamingResponse(rows, media_type=EXPORT_MEDIA_TYPES[format_])


@router.post(
    "/subjects:accesses",
    response_model=SubjectAccesses,
    dependencies=[Depends(context.audited("audit.subject_accesses"))],
    summary="Who read this person's or entity's data, when, and for what purpose",
)
async def subject_accesses(body: SubjectQuery, session: DbSession, principal: Auditor) -> SubjectAccesses:
    return await reading.subject_accesses(session, principal, body)


@router.get("/verify", response_model=VerifyOut, summary="Recompute the hash chain and check the checkpoints")
async def verify(
    session: DbSession,
    principal: Auditor,
    from_seq: Annotated[
        int | None, Query(alias="from", ge=1, le=MAX_SEQ, description="Start at this sequence number.")
    ] = None,
) -> VerifyOut:
    return await reading.verify(session, principal, from_seq)


@router.get(
    "/usage",
    response_model=Usage,
    dependencies=[Depends(require_roles(Role.admin, Role.auditor, Role.steward))],
    summary="Departments connected (接入率) and requests served by resource and purpose",
)
async def usage_statistics(
    session: DbSession,
    days: Annotated[int, Query(ge=1, le=366, description="The period: this many days back from now.")] = 30,
) -> Usage:
    return await usage(session, datetime.now(UTC) - timedelta(days=days))


@router.get(
    "/checkpoints", response_model=list[CheckpointOut], summary="Signed checkpoints, for outside witnesses"
)
async def checkpoints(
    session: DbSession,
    _: Auditor,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[CheckpointOut]:
    return [
        CheckpointOut(seq=c.seq, hash=c.hash.hex(), created_at=c.created_at, signature=c.signature)
        for c in await repository.checkpoints(session, after, limit)
    ]
