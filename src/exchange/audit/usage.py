"""How the hub is used, read off the log: departments connected (接入率) and requests served by resource
and purpose. Each figure is one aggregate statement; the per-department probes use the (department, time)
index."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Reads of records a department system made under a grant: what "requests served" counts.
SERVED_ACTIONS = ("records.query", "records.verify", "subscriptions.events", "subscriptions.deliver")
CONSOLE_CLIENT = "console"


class DepartmentUse(BaseModel):
    code: str
    name: str
    connected: bool = Field(description="Has at least one enabled client system.")
    active: bool = Field(description="One of its systems made an allowed call in the period.")


class Served(BaseModel):
    resource: str
    purpose: str | None
    requests: int
    subjects: int = Field(description="Subject ids named in those requests (with repeats).")


class Usage(BaseModel):
    since: datetime
    departments: list[DepartmentUse]
    connected: int
    active: int
    connection_rate: float | None = Field(description="接入率: departments connected out of all enabled.")
    served: list[Served]


_DEPARTMENTS = text(
    """
    SELECT d.code, d.name,
           EXISTS (SELECT 1 FROM clients c
                    WHERE c.department_code = d.code AND c.disabled_at IS NULL) AS connected,
           EXISTS (SELECT 1 FROM audit_events e
                    WHERE e.department = d.code AND e.occurred_at >= :since
                      AND e.outcome = 'allowed' AND e.client_id IS DISTINCT FROM :console) AS active
      FROM departments d
     WHERE d.disabled_at IS NULL
     ORDER BY d.code
    """
)

_SERVED = text(
    """
    SELECT resource, purpose, count(*) AS requests, coalesce(sum(cardinality(subject_ids)), 0) AS subjects
      FROM audit_events
     WHERE occurred_at >= :since AND outcome = 'allowed' AND action = ANY(:actions) AND resource IS NOT NULL
     GROUP BY resource, purpose
     ORDER BY requests DESC, resource, purpose
     LIMIT :limit
    """
)


async def usage(session: AsyncSession, since: datetime, limit: int = 20) -> Usage:
    departments = [
        DepartmentUse(code=r.code, name=r.name, connected=r.connected, active=r.active)
        for r in await session.execute(_DEPARTMENTS, {"since": since, "console": CONSOLE_CLIENT})
    ]
    served = [
        Served(resource=r.resource, purpose=r.purpose, requests=r.requests, subjects=r.subjects)
        for r in await session.execute(
            _SERVED, {"since": since, "actions": list(SERVED_ACTIONS), "limit": limit}
        )
    ]
    connected = sum(d.connected for d in departments)
    return Usage(
        since=since,
        departments=departments,
        connected=connected,
        active=sum(d.active for d in departments),
        connection_rate=round(connected / len(departments), 4) if departments else None,
        served=served,
    )
