"""The transactional outbox: change events written by the transaction that makes the change.

An event exists exactly when its change committed, so subscribers can neither miss a change nor hear of one
that was rolled back. One statement per chunk of records, whatever its size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class RecordChange:
    subject_id: str
    version: int
    elements: list[str]
    valid_from: datetime
    fields: dict[str, Any]
    previous: dict[str, Any]


_CHANGES = text(
    """
    INSERT INTO change_events (resource_code, subject_id, kind, version, elements, valid_from, recorded_at,
                               fields, previous)
    SELECT :resource, u.subject_id, 'record.changed', u.version,
           ARRAY(SELECT jsonb_array_elements_text(u.elements::jsonb)), u.valid_from, :now,
           u.fields::jsonb, u.previous::jsonb
    FROM unnest(CAST(:ids AS text[]), CAST(:versions AS int[]), CAST(:elements AS text[]),
                CAST(:valid_from AS timestamptz[]), CAST(:fields AS text[]), CAST(:previous AS text[]))
         AS u(subject_id, version, elements, valid_from, fields, previous)
    """
)


async def record_changes(
    session: AsyncSession, resource: str, changes: Sequence[RecordChange], now: datetime
) -> None:
    if not changes:
        return
    await session.execute(
        _CHANGES,
        {
            "resource": resource,
            "now": now,
            "ids": [c.subject_id for c in changes],
            "versions": [c.version for c in changes],
            "elements": [orjson.dumps(c.elements).decode() for c in changes],
            "valid_from": [c.valid_from for c in changes],
            "fields": [orjson.dumps(c.fields).decode() for c in changes],
            "previous": [orjson.dumps(c.previous).decode() for c in changes],
        },
    )


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
