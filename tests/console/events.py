"""Reading the audit log straight from the database, to see what the console's actions left there."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from exchange.audit.models import AuditEvent
from exchange.db.session import transaction


async def logged(app: Any, action: str) -> list[AuditEvent]:
    async with transaction(app.state.sessionmaker) as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
        return list(rows)
