"""All SQL of the access domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.access.models import Grant, GrantElement, RequestedElement, SharingRequest
from exchange.access.policy import Access, GrantView


async def grants_for(
    session: AsyncSession, department: str, resource: str, purpose: str, now: datetime
) -> list[GrantView]:
    """The department's grants on a resource for a purpose, with the elements in force now."""
    rows = await session.execute(
        select(
            Grant.id,
            Grant.access,
            func.array_agg(GrantElement.element).label("elements"),
            func.min(GrantElement.valid_from).label("valid_from"),
            func.max(GrantElement.valid_until).label("valid_until"),
        )
        .join(GrantElement, GrantElement.grant_id == Grant.id)
        .where(
            Grant.consumer_department == department,
            Grant.resource_code == resource,
            Grant.purpose_code == purpose,
            Grant.revoked_at.is_(None),
            GrantElement.revoked_at.is_(None),
            GrantElement.valid_from <= now,
            GrantElement.valid_until > now,
        )
        .group_by(Grant.id, Grant.access)
    )
    return [
        GrantView(
            id=row.id,
            purpose=purpose,
            access=Access(row.access),
            elements=frozenset(row.elements),
            valid_from=row.valid_from,
            valid_until=row.valid_until,
        )
        for row in rows
    ]


async def grant_in_force(
    session: AsyncSession, consumer: str, resource: str, purpose: str, access: str
) -> uuid.UUID:
    """The grant in force for the tuple, created if there is none (safe under concurrent decisions)."""
    created = await session.scalar(
        insert(Grant)
        .values(
            id=uuid.uuid4(),
            consumer_department=consumer,
            resource_code=resource,
            purpose_code=purpose,
            access=access,
        )
        .on_conflict_do_nothing(
            index_elements=[Grant.consumer_department, Grant.resource_code, Grant.purpose_code, Grant.access],
            index_where=Grant.revoked_at.is_(None),
        )
        .returning(Grant.id)
    )
    if created is not None:
        return uuid.UUID(str(created))
    found = await session.scalar(
        select(Grant.id).where(
            Grant.consumer_department == consumer,
            Grant.resource_code == resource,
            Grant.purpose_code == purpose,
            Grant.access == access,
            Grant.revoked_at.is_(None),
        )
    )
    assert found is not None
    return uuid.UUID(str(found))


async def grant_elements(
    session: AsyncSession,
    grant_id: uuid.UUID,
    elements: Sequence[tuple[str, str]],
    *,
    valid_from: datetime,
    valid_until: datetime,
    request_id: uuid.UUID,
) -> None:
    """Add (element, source) pairs to a grant; an element granted again gets the new period."""
    if not elements:
        return
    statement = insert(GrantElement).values(
        [
            {
                "grant_id": grant_id,
                "element": element,
                "source_department": source,
                "valid_from": valid_from,
                "valid_until": valid_until,
                "request_id": request_id,
            }
            for element, source in elements
        ]
    )
    await session.execute(
        statement.on_conflict_do_update(
            constraint="pk_grant_elements",
            set_={
                "valid_from": statement.excluded.valid_from,
                "valid_until": statement.excluded.valid_until,
                "request_id": statement.excluded.request_id,
                "revoked_at": None,
                "revoked_reason": None,
            },
        )
    )


async def add_request(
    session: AsyncSession, request: SharingRequest, elements: Sequence[RequestedElement]
) -> None:
    session.add(request)
    await session.flush()
    session.add_all(elements)
    await session.flush()


def _visible_to(department: str) -> Any:
    """Requests the department made, or must decide some element of."""
    provider = exists().where(
        RequestedElement.request_id == SharingRequest.id, RequestedElement.source_department == department
    )
    return or_(SharingRequest.consumer_department == department, provider)


async def get_request(
    session: AsyncSession, request_id: uuid.UUID, department: str | None, *, lock: bool = False
) -> SharingRequest | None:
    """The request if the department may see it (None: any department, for admins)."""
    query = select(SharingRequest).where(SharingRequest.id == request_id)
    if department is not None:
        query = query.where(_visible_to(department))
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def request_elements(session: AsyncSession, request_ids: Sequence[uuid.UUID]) -> list[RequestedElement]:
    if not request_ids:
        return []
    return list(
        await session.scalars(
            select(RequestedElement)
            .where(RequestedElement.request_id.in_(request_ids))
            .order_by(RequestedElement.request_id, RequestedElement.element)
        )
    )


async def page_requests(
    session: AsyncSession,
    department: str,
    *,
    role: str,
    status: str | None,
    overdue_at: datetime | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[SharingRequest]:
    query = (
        select(SharingRequest)
        .order_by(SharingRequest.created_at.desc(), SharingRequest.id.desc())
        .limit(limit)
    )
    if role == "consumer":
        query = query.where(SharingRequest.consumer_department == department)
    else:
        query = query.where(
            exists().where(
                RequestedElement.request_id == SharingRequest.id,
                RequestedElement.source_department == department,
            )
        )
    if status is not None:
        query = query.where(SharingRequest.status == status)
    if overdue_at is not None:
        query = query.where(SharingRequest.status == "pending", SharingRequest.due_at < overdue_at)
    if before is not None:
        query = query.where(
            or_(
                SharingRequest.created_at < before[0],
                and_(SharingRequest.created_at == before[0], SharingRequest.id < before[1]),
            )
        )
    return list(await session.scalars(query))


async def get_grant(session: AsyncSession, grant_id: uuid.UUID, *, lock: bool = False) -> Grant | None:
    query = select(Grant).where(Grant.id == grant_id)
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def grants_page(
    session: AsyncSession, department: str | None, role: str, after: uuid.UUID | None, limit: int
) -> list[Grant]:
    query = select(Grant).order_by(Grant.id).limit(limit)
    if department is not None and role == "consumer":
        query = query.where(Grant.consumer_department == department)
    elif department is not None:
        query = query.where(
            exists().where(GrantElement.grant_id == Grant.id, GrantElement.source_department == department)
        )
    if after is not None:
        query = query.where(Grant.id > after)
    return list(await session.scalars(query))


async def elements_of_grants(session: AsyncSession, grant_ids: Sequence[uuid.UUID]) -> list[GrantElement]:
    if not grant_ids:
        return []
    return list(
        await session.scalars(
            select(GrantElement)
            .where(GrantElement.grant_id.in_(grant_ids))
            .order_by(GrantElement.grant_id, GrantElement.element)
        )
    )


async def revoke_elements(
    session: AsyncSession, grant_id: uuid.UUID, source: str | None, reason: str, now: datetime
) -> list[str]:
    """Revoke the grant's elements in force (of one source department, or all); the elements revoked."""
    query = (
        update(GrantElement)
        .where(GrantElement.grant_id == grant_id, GrantElement.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .returning(GrantElement.element)
    )
    if source is not None:
        query = query.where(GrantElement.source_department == source)
    return list(await session.scalars(query))


async def revoke_grant(session: AsyncSession, grant_id: uuid.UUID, reason: str, now: datetime) -> None:
    await session.execute(
        update(Grant).where(Grant.id == grant_id).values(revoked_at=now, revoked_reason=reason)
    )


async def request_statistics(session: AsyncSession, now: datetime) -> dict[str, Any]:
    """Counts by status, overdue, and how long decided requests took (in hours), in one statement."""
    row = (
        await session.execute(
            select(
                func.count().filter(SharingRequest.status == "pending").label("pending"),
                func.count().filter(SharingRequest.status == "granted").label("granted"),
                func.count().filter(SharingRequest.status == "partially_granted").label("partially_granted"),
                func.count().filter(SharingRequest.status == "rejected").label("rejected"),
                func.count()
                .filter(SharingRequest.status == "pending", SharingRequest.due_at < now)
                .label("overdue"),
                func.percentile_cont(0.5)
                .within_group(
                    func.extract("epoch", SharingRequest.decided_at - SharingRequest.created_at) / 3600
                )
                .label("median_hours"),
                func.count().filter(SharingRequest.decided_at > SharingRequest.due_at).label("decided_late"),
            )
        )
    ).one()
    return dict(row._mapping)
