"""All SQL of the access domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.access.models import Grant
from exchange.access.policy import Access, GrantView


async def grants_for(
    session: AsyncSession, department: str, resource: str, purpose: str, now: datetime
) -> list[GrantView]:
    """The department's grants on a resource for a purpose that are in force now."""
    rows = await session.execute(
        select(
            Grant.id, Grant.purpose_code, Grant.access, Grant.elements, Grant.valid_from, Grant.valid_until
        ).where(
            Grant.consumer_department == department,
            Grant.resource_code == resource,
            Grant.purpose_code == purpose,
            Grant.revoked_at.is_(None),
            Grant.valid_from <= now,
            Grant.valid_until > now,
        )
    )
    return [
        GrantView(
            id=row.id,
            purpose=row.purpose_code,
            access=Access(row.access),
            elements=frozenset(row.elements),
            valid_from=row.valid_from,
            valid_until=row.valid_until,
        )
        for row in rows
    ]
