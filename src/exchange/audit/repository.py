"""All SQL of the audit domain's reading side: search, the data-subject view, checkpoints."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.audit.models import AuditCheckpoint, AuditEvent, AuditLink
from exchange.audit.schemas import EventSearch

# Every way a subject's data leaves the hub: reads, verifications, feeds, webhook deliveries, and the reports
# about a doubted value that a discrepancy shows its source and reporters.
READ_ACTIONS = (
    "records.query",
    "records.verify",
    "records.open_query",
    "subscriptions.events",
    "subscriptions.deliver",
    "discrepancies.read",
)


def _filters(search: EventSearch) -> list[Any]:
    conditions: list[Any] = []
    if search.since is not None:
        conditions.append(AuditEvent.occurred_at >= search.since)
    if search.until is not None:
        conditions.append(AuditEvent.occurred_at < search.until)
    equal = {
        AuditEvent.department: search.department,
        AuditEvent.client_id: search.client_id,
        AuditEvent.officer: search.officer,
        AuditEvent.action: search.action,
        AuditEvent.resource: search.resource,
        AuditEvent.purpose: search.purpose,
        AuditEvent.case_reference: search.case,
        AuditEvent.outcome: search.outcome.value if search.outcome else None,
    }
    conditions += [column == value for column, value in equal.items() if value is not None]
    if search.subject_id is not None:
        conditions.append(AuditEvent.subject_ids.contains([search.subject_id]))
    if search.element is not None:
        conditions.append(AuditEvent.elements.contains([search.element]))
    return conditions


async def search_events(
    session: AsyncSession, search: EventSearch, before: tuple[datetime, int] | None, limit: int
) -> list[tuple[AuditEvent, int | None]]:
    """Events matching every given filter, newest first, each with its chain position."""
    query = (
        select(AuditEvent, AuditLink.seq)
        .outerjoin(AuditLink, AuditLink.event_id == AuditEvent.id)
        .where(*_filters(search))
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(
            or_(
                AuditEvent.occurred_at < before[0],
                and_(AuditEvent.occurred_at == before[0], AuditEvent.id < before[1]),
            )
        )
    return [(row[0], row[1]) for row in await session.execute(query)]


async def subject_accesses(
    session: AsyncSession, subject_id: str, since: datetime | None, limit: int
) -> Sequence[AuditEvent]:
    query = (
        select(AuditEvent)
        .where(AuditEvent.subject_ids.contains([subject_id]), AuditEvent.action.in_(READ_ACTIONS))
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(AuditEvent.occurred_at >= since)
    return list(await session.scalars(query))


async def checkpoints(session: AsyncSession, after: int, limit: int) -> Sequence[AuditCheckpoint]:
    return list(
        await session.scalars(
            select(AuditCheckpoint)
            .where(AuditCheckpoint.seq > after)
            .order_by(AuditCheckpoint.seq)
            .limit(limit)
        )
    )
