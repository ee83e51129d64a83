"""All SQL of cross-checking: set-based, one statement per kind of row whatever the number of reports."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# A corroboration counts unless the same department has since reported a different value for the same
# canonical version (its report stands on an open or confirmed discrepancy).
NOT_SINCE_CONTRADICTED = """NOT EXISTS (
    SELECT 1 FROM discrepancies AS x
    JOIN discrepancy_reports AS xr ON xr.discrepancy_id = x.id AND xr.withdrawn_at IS NULL
    WHERE x.resource_code = c.resource_code AND x.subject_id = c.subject_id AND x.element = c.element
      AND x.canonical_version = c.canonical_version AND x.status IN ('open', 'confirmed')
      AND xr.department = c.department)"""


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


@dataclass(frozen=True, slots=True)
class Doubt:
    """A reported value that disagrees with the canonical value of one element version."""

    subject_id: str
    element: str
    version: int
    canonical: Any
    source: str
    value: Any
    note: str | None


@dataclass(frozen=True, slots=True)
class Opened:
    id: uuid.UUID
    subject_id: str
    element: str
    version: int
    status: str
    new: bool  # opened by this statement
    fresh: bool  # open because of this statement: new, or a withdrawn one reopened


_OPEN = text(
    """
    INSERT INTO discrepancies AS d (id, resource_code, subject_id, element, canonical_version,
                                    canonical_value, source_department, status, opened_at, due_at)
    SELECT gen_random_uuid(), :resource, u.subject_id, u.element, u.version, u.canonical::jsonb, u.source,
           'open', :now, :due
    FROM unnest(CAST(:ids AS text[]), CAST(:elements AS text[]), CAST(:versions AS int[]),
                CAST(:canonical AS text[]), CAST(:sources AS text[]))
         AS u(subject_id, element, version, canonical, source)
    ORDER BY u.subject_id, u.element
    ON CONFLICT (resource_code, subject_id, element, canonical_version) DO UPDATE
    SET status = CASE WHEN d.status = 'withdrawn' THEN 'open' ELSE d.status END,
        resolved_at = CASE WHEN d.status = 'withdrawn' THEN NULL ELSE d.resolved_at END,
        resolved_by = CASE WHEN d.status = 'withdrawn' THEN NULL ELSE d.resolved_by END,
        resolution_note = CASE WHEN d.status = 'withdrawn' THEN NULL ELSE d.resolution_note END,
        due_at = CASE WHEN d.status = 'withdrawn' THEN excluded.due_at ELSE d.due_at END
    RETURNING d.id, d.subject_id, d.element, d.canonical_version, d.status, (d.opened_at = :now) AS new,
              (d.status = 'open' AND d.due_at = :due) AS fresh
    """
)
_REPORT = text(
    """
    INSERT INTO discrepancy_reports AS r (discrepancy_id, department, client_id, value, note,
                                          first_reported_at, last_reported_at, times)
    SELECT u.id, :department, :client, u.value::jsonb, u.note, :now, :now, 1
    FROM unnest(CAST(:ids AS uuid[]), CAST(:values AS text[]), CAST(:notes AS text[])) AS u(id, value, note)
    ORDER BY u.id
    ON CONFLICT (discrepancy_id, department) DO UPDATE
    SET client_id = excluded.client_id, value = excluded.value, note = coalesce(excluded.note, r.note),
        last_reported_at = CASE WHEN :again THEN excluded.last_reported_at ELSE r.last_reported_at END,
        times = r.times + CASE WHEN :again THEN 1 ELSE 0 END, withdrawn_at = NULL
    """
)


async def open_discrepancies(
    session: AsyncSession,
    resource: str,
    doubts: Sequence[Doubt],
    *,
    department: str,
    client: str,
    now: datetime,
    due: datetime,
    again: bool = True,
) -> list[Opened]:
    """Open (or join, or reopen a withdrawn) discrepancy per doubted value and file the department's report.

    A confirmed discrepancy stays confirmed: the source has settled that value; the report is still kept.
    ``again=False`` (a reconciliation going over what was reported before) does not count a new report.
    """
    if not doubts:
        return []
    rows = await session.execute(
        _OPEN,
        {
            "resource": resource,
            "now": now,
            "due": due,
            "ids": [d.subject_id for d in doubts],
            "elements": [d.element for d in doubts],
            "versions": [d.version for d in doubts],
            "canonical": [_json(d.canonical) for d in doubts],
            "sources": [d.source for d in doubts],
        },
    )
    opened = [
        Opened(row.id, row.subject_id, row.element, row.canonical_version, row.status, row.new, row.fresh)
        for row in rows
    ]
    by_pair = {(o.subject_id, o.element): o.id for o in opened}
    await session.execute(
        _REPORT,
        {
            "department": department,
            "client": client,
            "now": now,
            "again": again,
            "ids": [by_pair[(d.subject_id, d.element)] for d in doubts],
            "values": [_json(d.value) for d in doubts],
            "notes": [d.note for d in doubts],
        },
    )
    return opened


@dataclass(frozen=True, slots=True)
class Agreement:
    subject_id: str
    element: str
    version: int


_CORROBORATE = text(
    """
    INSERT INTO corroborations (resource_code, subject_id, element, canonical_version, department,
                                confirmed_at)
    SELECT :resource, u.subject_id, u.element, u.version, u.department, :now
    FROM unnest(CAST(:ids AS text[]), CAST(:elements AS text[]), CAST(:versions AS int[]),
                CAST(:departments AS text[])) AS u(subject_id, element, version, department)
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ON CONSTRAINT pk_corroborations DO UPDATE SET confirmed_at = excluded.confirmed_at
    """
)
_WITHDRAW = text(
    """
    UPDATE discrepancy_reports SET withdrawn_at = :now
    WHERE discrepancy_id = ANY(CAST(:ids AS uuid[])) AND department = :department AND withdrawn_at IS NULL
    RETURNING discrepancy_id
    """
)


async def corroborate(
    session: AsyncSession, resource: str, agreements: Sequence[Agreement], *, department: str, now: datetime
) -> list[uuid.UUID]:
    """Record that ``department`` confirms these values. A report it filed against the same value is
    withdrawn (it now agrees); returns the discrepancies that lost a report."""
    if not agreements:
        return []
    await corroborate_many(session, resource, [(a, department) for a in agreements], now)
    agreeing = set(agreements)
    candidates = [
        d.id
        for d in await open_for_subjects(session, resource, sorted({a.subject_id for a in agreements}))
        if Agreement(d.subject_id, d.element, d.canonical_version) in agreeing
    ]
    if not candidates:
        return []
    rows = await session.execute(_WITHDRAW, {"ids": candidates, "department": department, "now": now})
    return [row.discrepancy_id for row in rows]


async def corroborate_many(
    session: AsyncSession, resource: str, items: Sequence[tuple[Agreement, str]], now: datetime
) -> None:
    if not items:
        return
    await session.execute(
        _CORROBORATE,
        {
            "resource": resource,
            "now": now,
            "ids": [a.subject_id for a, _ in items],
            "elements": [a.element for a, _ in items],
            "versions": [a.version for a, _ in items],
            "departments": [department for _, department in items],
        },
    )


_CLOSE_UNREPORTED = text(
    """
    UPDATE discrepancies AS d SET status = 'withdrawn', resolved_at = :now, resolved_by = :by,
           resolution_note = :note
    WHERE d.id = ANY(CAST(:ids AS uuid[])) AND d.status = 'open'
      AND NOT EXISTS (SELECT 1 FROM discrepancy_reports AS r
                      WHERE r.discrepancy_id = d.id AND r.withdrawn_at IS NULL)
    RETURNING d.id, d.subject_id, d.element, d.canonical_version
    """
)


@dataclass(frozen=True, slots=True)
class Settled:
    id: uuid.UUID
    subject_id: str
    element: str
    version: int


async def close_unreported(
    session: AsyncSession, ids: Sequence[uuid.UUID], *, by: str, note: str, now: datetime
) -> list[Settled]:
    """Withdraw the open discrepancies among ``ids`` that no department still reports."""
    if not ids:
        return []
    rows = await session.execute(_CLOSE_UNREPORTED, {"ids": list(ids), "by": by, "note": note, "now": now})
    return [Settled(row.id, row.subject_id, row.element, row.canonical_version) for row in rows]


# Two single-table statements with ``= ANY`` filters rather than one join: each reads a number of rows linear
# in what it returns, whatever plan the statistics of fast-growing tables suggest.
_OPEN_FOR_SUBJECTS = text(
    """
    SELECT d.id, d.subject_id, d.element, d.canonical_version
    FROM unnest(CAST(:ids AS text[])) AS u(subject_id)
    CROSS JOIN LATERAL (
        SELECT id, subject_id, element, canonical_version FROM discrepancies
        WHERE resource_code = :resource AND status = 'open' AND subject_id = u.subject_id
        OFFSET 0
    ) AS d
    """
)
_STANDING_REPORTS = text(
    """
    SELECT discrepancy_id, department, value FROM discrepancy_reports
    WHERE discrepancy_id = ANY(CAST(:ids AS uuid[])) AND withdrawn_at IS NULL
    """
)


@dataclass(frozen=True, slots=True)
class OpenDiscrepancy:
    id: uuid.UUID
    subject_id: str
    element: str
    canonical_version: int


async def open_for_subjects(
    session: AsyncSession, resource: str, subject_ids: Sequence[str]
) -> list[OpenDiscrepancy]:
    rows = await session.execute(_OPEN_FOR_SUBJECTS, {"resource": resource, "ids": list(subject_ids)})
    return [OpenDiscrepancy(r.id, r.subject_id, r.element, r.canonical_version) for r in rows]


@dataclass(frozen=True, slots=True)
class ActiveReport:
    discrepancy_id: uuid.UUID
    subject_id: str
    element: str
    department: str
    value: Any


async def active_reports(
    session: AsyncSession, resource: str, subject_ids: Sequence[str]
) -> list[ActiveReport]:
    """The reports still standing on open discrepancies of these subjects."""
    found = {d.id: d for d in await open_for_subjects(session, resource, subject_ids)}
    if not found:
        return []
    rows = await session.execute(_STANDING_REPORTS, {"ids": list(found)})
    return [
        ActiveReport(
            r.discrepancy_id,
            found[r.discrepancy_id].subject_id,
            found[r.discrepancy_id].element,
            r.department,
            r.value,
        )
        for r in rows
    ]


_CORRECT = text(
    """
    UPDATE discrepancies AS d SET status = 'corrected', resolved_at = :now, resolved_by = :by,
           resolution_note = u.note, corrected_version = u.version
    FROM unnest(CAST(:ids AS uuid[]), CAST(:versions AS int[]), CAST(:notes AS text[]))
         AS u(id, version, note)
    WHERE d.id = u.id AND d.id = ANY(CAST(:ids AS uuid[])) AND d.status = 'open'
    RETURNING d.id, d.subject_id, d.element, u.version
    """
)
_CARRY = text(
    """
    UPDATE discrepancies AS d SET canonical_version = u.version, canonical_value = u.value::jsonb
    FROM unnest(CAST(:ids AS uuid[]), CAST(:versions AS int[]), CAST(:values AS text[]))
         AS u(id, version, value)
    WHERE d.id = u.id AND d.id = ANY(CAST(:ids AS uuid[])) AND d.status = 'open'
    """
)


async def correct(
    session: AsyncSession, items: Sequence[tuple[uuid.UUID, int, str]], *, by: str, now: datetime
) -> list[Settled]:
    """Close discrepancies as corrected: (id, the version that corrected the value, note)."""
    if not items:
        return []
    rows = await session.execute(
        _CORRECT,
        {
            "now": now,
            "by": by,
            "ids": [i for i, _, _ in items],
            "versions": [v for _, v, _ in items],
            "notes": [n for _, _, n in items],
        },
    )
    return [Settled(row.id, row.subject_id, row.element, row.version) for row in rows]


async def carry(session: AsyncSession, items: Sequence[tuple[uuid.UUID, int, Any]]) -> None:
    """Keep open discrepancies on the element's new value: (id, new version, new value)."""
    if items:
        await session.execute(
            _CARRY,
            {
                "ids": [i for i, _, _ in items],
                "versions": [v for _, v, _ in items],
                "values": [_json(value) for _, _, value in items],
            },
        )


_UNDER_REVIEW = text(
    """
    SELECT subject_id, element FROM discrepancies
    WHERE resource_code = :resource AND status = 'open' AND subject_id = ANY(CAST(:ids AS text[]))
    """
)


async def under_review(
    session: AsyncSession, resource: str, subject_ids: Sequence[str]
) -> dict[str, set[str]]:
    """Per subject, the elements whose value is doubted by an open discrepancy."""
    flagged: dict[str, set[str]] = {}
    for row in await session.execute(_UNDER_REVIEW, {"resource": resource, "ids": list(subject_ids)}):
        flagged.setdefault(row.subject_id, set()).add(row.element)
    return flagged


_CORROBORATION_COUNT = text(
    f"""
    SELECT count(*) FROM corroborations AS c
    WHERE c.resource_code = :resource AND c.subject_id = :subject AND c.element = :element
      AND c.canonical_version = :version AND {NOT_SINCE_CONTRADICTED}
    """  # noqa: S608 (a constant fragment, no input)
)


async def corroboration_count(
    session: AsyncSession, resource: str, subject_id: str, element: str, version: int
) -> int:
    return int(
        await session.scalar(
            _CORROBORATION_COUNT,
            {"resource": resource, "subject": subject_id, "element": element, "version": version},
        )
        or 0
    )
