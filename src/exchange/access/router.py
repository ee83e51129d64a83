"""Sharing requests, decisions by the source departments, grants and their revocation."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from exchange.access import sharing
from exchange.access.schemas import (
    DecisionsBody,
    GrantOut,
    GrantPage,
    RevokeBody,
    SharingRequestCreate,
    SharingRequestOut,
    SharingRequestPage,
    SharingStatistics,
)
from exchange.audit import context
from exchange.auth.dependencies import require_roles
from exchange.auth.principal import Principal, Role
from exchange.db.session import DbSession
from exchange.errors import InvalidInput, problem_responses
from exchange.pagination import Cursor, Limit, decode_cursor, encode_cursor

router = APIRouter(prefix="/v1", tags=["sharing"], responses=problem_responses(401, 403, 404, 422))

Consumer = Annotated[Principal, Depends(require_roles(Role.consumer))]
Provider = Annotated[Principal, Depends(require_roles(Role.publisher, Role.steward, Role.approver))]
Party = Annotated[
    Principal,
    Depends(require_roles(Role.consumer, Role.publisher, Role.steward, Role.approver, Role.admin)),
]
Revoker = Annotated[
    Principal, Depends(require_roles(Role.publisher, Role.steward, Role.approver, Role.admin))
]


class ViewRole(StrEnum):
    consumer = "consumer"
    provider = "provider"


class RequestStatus(StrEnum):
    pending = "pending"
    granted = "granted"
    partially_granted = "partially_granted"
    rejected = "rejected"


@router.post(
    "/sharing-requests",
    status_code=status.HTTP_201_CREATED,
    response_model=SharingRequestOut,
    dependencies=[Depends(context.audited("sharing.request"))],
    summary="Ask for elements of a resource, for a purpose and a period",
    description=(
        "Unconditionally shared elements are granted at once; elements shared `none` are refused with a "
        "reason; each conditional element waits for its source department's decision (deadline: `due_at`)."
    ),
)
async def create_request(
    body: SharingRequestCreate, request: Request, session: DbSession, principal: Consumer
) -> SharingRequestOut:
    context.update(request, resource=body.resource, elements=body.elements, purpose=body.purpose[:64])
    return await sharing.create(session, principal, body, request.app.state.settings)


@router.get(
    "/sharing-requests",
    response_model=SharingRequestPage,
    summary="Requests your department made or must decide",
)
async def list_requests(
    session: DbSession,
    principal: Party,
    role: Annotated[
        ViewRole, Query(description="consumer: requests you made; provider: requests you decide")
    ],
    status_: Annotated[RequestStatus | None, Query(alias="status")] = None,
    overdue: Annotated[bool, Query(description="Only requests still pending after their deadline.")] = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> SharingRequestPage:
    before = decode_cursor(cursor, 2)
    try:
        key = (datetime.fromisoformat(before[0]), uuid.UUID(before[1])) if before else None
    except (TypeError, ValueError):
        raise InvalidInput.one("cursor", "not a cursor this list returned") from None
    items = await sharing.page(
        session,
        principal,
        role=role.value,
        status=status_.value if status_ else None,
        overdue=overdue,
        before=key,
        limit=limit + 1,
    )
    next_cursor = (
        encode_cursor([items[limit - 1].created_at.isoformat(), str(items[limit - 1].id)])
        if len(items) > limit
        else None
    )
    return SharingRequestPage(items=items[:limit], next_cursor=next_cursor)


@router.get(
    "/statistics/sharing",
    response_model=SharingStatistics,
    dependencies=[Depends(require_roles(Role.admin, Role.auditor, Role.steward))],
    summary="Sharing requests by status, overdue ones, and decision turnaround (all departments)",
)
async def sharing_statistics(session: DbSession) -> SharingStatistics:
    return await sharing.statistics(session)


@router.get("/sharing-requests/{request_id}", response_model=SharingRequestOut, summary="One sharing request")
async def get_request(request_id: uuid.UUID, session: DbSession, principal: Party) -> SharingRequestOut:
    return await sharing.get(session, principal, request_id)


@router.post(
    "/sharing-requests/{request_id}/decisions",
    response_model=SharingRequestOut,
    dependencies=[Depends(context.audited("sharing.decision"))],
    responses=problem_responses(409),
    summary="Decide on the elements your department is the source of",
    description="Approve or refuse each element (a refusal needs a reason); `valid_until` may shorten it.",
)
async def decide(
    request_id: uuid.UUID, body: DecisionsBody, request: Request, session: DbSession, principal: Provider
) -> SharingRequestOut:
    context.update(
        request, elements=[d.element for d in body.decisions], details={"request": str(request_id)}
    )
    return await sharing.decide(session, principal, request_id, body)


@router.get("/grants", response_model=GrantPage, summary="Grants your department holds or has given")
async def list_grants(
    session: DbSession,
    principal: Party,
    role: Annotated[
        str, Query(pattern="^(consumer|provider|all)$", description="all: every grant (admins only)")
    ] = "consumer",
    limit: Limit = 100,
    cursor: Cursor = None,
) -> GrantPage:
    if role == "all" and Role.admin not in principal.roles:
        raise InvalidInput.one("role", "only admins list every grant")
    after = decode_cursor(cursor, 1)
    try:
        after_id = uuid.UUID(after[0]) if after else None
    except (TypeError, ValueError):
        raise InvalidInput.one("cursor", "not a cursor this list returned") from None
    items = await sharing.grants(session, principal, role, after_id, limit + 1)
    next_cursor = encode_cursor([str(items[limit - 1].id)]) if len(items) > limit else None
    return GrantPage(items=items[:limit], next_cursor=next_cursor)


@router.post(
    "/grants/{grant_id}:revoke",
    response_model=GrantOut,
    dependencies=[Depends(context.audited("grant.revoke"))],
    summary="Revoke a grant: a source department its elements, an admin the whole grant; effective at once",
)
async def revoke(
    grant_id: uuid.UUID, body: RevokeBody, request: Request, session: DbSession, principal: Revoker
) -> GrantOut:
    context.update(request, grant_id=grant_id)
    return await sharing.revoke(session, principal, grant_id, body.reason)
