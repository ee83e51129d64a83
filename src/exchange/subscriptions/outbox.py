"""The transactional outbox: change events written by the transaction that makes the change.

An event exists exactly when its change committed, so subscribers can neither miss a change nor hear of one
that was rolled back. Record changes are written by the records' own save statement (records/repository.py,
one statement per chunk); review changes here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class ReviewChange:
    """An element of a record came under review (a discrepancy opened) or its review was settled."""

    subject_id: str
    element: str
    version: int
    settled: bool


_REVIEWS = text(
    """
    INSERT INTO change_events (resource_code, subject_id, kind, version, elements, recorded_at)
    SELECT :resource, u.subject_id,
           CASE WHEN u.settled THEN 'record.review_settled' ELSE 'record.under_review' END,
           u.version, ARRAY[u.element], :now
    FROM unnest(CAST(:ids AS text[]), CAST(:elements AS text[]), CAST(:versions AS int[]),
                CAST(:settled AS boolean[])) AS u(subject_id, element, version, settled)
    """
)


async def review_changes(
    session: AsyncSession, resource: str, changes: Sequence[ReviewChange], now: datetime
) -> None:
    if not changes:
        return
    await session.execute(
        _REVIEWS,
        {
            "resource": resource,
            "now": now,
            "ids": [c.subject_id for c in changes],
            "elements": [c.element for c in changes],
            "versions": [c.version for c in changes],
            "settled": [c.settled for c in changes],
        },
    )
