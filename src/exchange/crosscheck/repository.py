"""All SQL of cross-checking: set-based, one statement per kind of row whatever the number of reports."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
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
        last_reported_at = excluded.last_reported_at, times = r.times + 1, withdrawn_at = NULL
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
) -> list[Opened]:
    """Open (or join, or reopen a withdrawn) discrepancy per doubted value and file the department's report.

    A confirmed discrepancy stays confirmed: the source has settled that value; the report is still kept.
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


# Reconciliation (see reconcile.py): the latest report of a department per subject and element is sorted
# into a work table of the transaction, with the outcome wherever the database can tell it by itself, so
# that only the remaining values travel to the matchers; what follows is written from that table.
_SORTING = text(
    """
    CREATE TEMPORARY TABLE reconciling (
        subject_id text NOT NULL,
        element text NOT NULL,
        first_of_subject boolean NOT NULL,
        version int,
        filled boolean NOT NULL,
        outcome text,
        value jsonb,
        canonical jsonb,
        dated boolean NOT NULL,
        observed_at timestamptz,
        canonical_since text
    ) ON COMMIT DROP
    """
)
# The outcomes the matchers gave to the reports the database could not judge (by row of the work table).
_JUDGING = text("CREATE TEMPORARY TABLE judged (row tid NOT NULL, outcome text NOT NULL) ON COMMIT DROP")
# The outcome wherever the JSON values settle it, by the rules of service.judge and compare.identical: no
# value; no canonical value (a value without a stamp counts as none, as reconciliation always read records);
# a dated report older than the stamp (compared as stamp strings, written here only for the years 1000 to
# 9999, where to_char and strftime write them alike); identical values, or values of the wrong type. NULL:
# only the element's matcher can tell. tests/crosscheck/test_decided.py holds it to the matchers.
DECIDED = """CASE
    WHEN v.value IS NULL OR v.value = 'null' THEN 'empty'
    WHEN v.canonical_since IS NULL OR v.canonical IS NULL OR v.canonical = 'null' THEN 'no_canonical'
    WHEN v.dated AND NOT (v.observed_at >= '1000-01-01T00:00:00Z' AND v.observed_at < '10000-01-01T00:00:00Z')
        THEN NULL
    WHEN v.dated AND to_char(v.observed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                     < v.canonical_since COLLATE "C" THEN 'stale'
    WHEN v.identical = 'strings' THEN
        CASE WHEN jsonb_typeof(v.value) <> 'string' OR jsonb_typeof(v.canonical) <> 'string' THEN 'disagrees'
             WHEN v.value = v.canonical THEN 'agrees' END
    WHEN v.identical = 'booleans' THEN
        CASE WHEN jsonb_typeof(v.value) = 'boolean' AND v.value = v.canonical THEN 'agrees'
             ELSE 'disagrees' END
    WHEN v.identical = 'numbers' AND jsonb_typeof(v.value) = 'number'
         AND CAST(v.value AS text) = CAST(v.canonical AS text) THEN 'agrees'
    WHEN v.identical = 'numbers' AND jsonb_typeof(v.value) = 'string' AND v.value = v.canonical
         AND (v.value #>> '{}') ~ '^-?[0-9]{1,60}(\\.[0-9]{1,60})?$' THEN 'agrees'
    WHEN v.identical = 'dates' THEN
        CASE WHEN jsonb_typeof(v.value) <> 'string' OR jsonb_typeof(v.canonical) <> 'string' THEN 'disagrees'
             WHEN v.value <> v.canonical
                  OR NOT (v.value #>> '{}') ~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$'
                  OR left(v.value #>> '{}', 4) = '0000' THEN NULL
             WHEN CAST(substr(v.value #>> '{}', 9, 2) AS int) <= CASE substr(v.value #>> '{}', 6, 2)
                      WHEN '02' THEN CASE WHEN CAST(left(v.value #>> '{}', 4) AS int) % 4 = 0
                                           AND (CAST(left(v.value #>> '{}', 4) AS int) % 100 <> 0
                                                OR CAST(left(v.value #>> '{}', 4) AS int) % 400 = 0)
                                          THEN 29 ELSE 28 END
                      WHEN '04' THEN 30 WHEN '06' THEN 30 WHEN '09' THEN 30 WHEN '11' THEN 30
                      ELSE 31 END THEN 'agrees' END
END"""
# Values are kept only where something still needs them: the matchers (undecided) and discrepancies. Each
# level is fenced (OFFSET 0) so that its columns are computed once per report, not once per use above.
_SORT = text(
    f"""
    INSERT INTO pg_temp.reconciling
    SELECT subject_id, element, first_of_subject, version, coalesce(canonical <> 'null', false), outcome,
           CASE WHEN outcome IS NULL OR outcome = 'disagrees' THEN value END,
           CASE WHEN outcome IS NULL OR outcome = 'disagrees' THEN canonical END,
           dated,
           CASE WHEN outcome IS NULL AND dated THEN observed_at END,
           CASE WHEN outcome IS NULL AND dated THEN canonical_since END
    FROM (
        SELECT v.*, {DECIDED} AS outcome
        FROM (
            SELECT o.subject_id, o.element, o.first_of_subject, o.value, o.dated, o.observed_at, k.identical,
                   r.fields -> o.element AS canonical, r.stamps ->> o.element AS canonical_since,
                   coalesce(nullif(CAST(r.element_versions ->> o.element AS int), 0), r.version) AS version
            FROM (
                SELECT latest.*,
                       latest.subject_id IS DISTINCT FROM lag(latest.subject_id)
                           OVER (ORDER BY latest.subject_id, latest.element) AS first_of_subject
                FROM (
                    SELECT DISTINCT ON (subject_id, element) subject_id, element, value, observed_at, dated
                    FROM observations
                    WHERE resource_code = :resource AND department = :department
                      AND element = ANY(CAST(:elements AS text[]))
                    ORDER BY subject_id, element, observed_at DESC, id DESC
                ) AS latest
            ) AS o
            JOIN unnest(CAST(:elements AS text[]), CAST(:identical AS text[])) AS k(element, identical)
                 ON k.element = o.element
            LEFT JOIN records AS r
                 ON r.resource_code = :resource AND r.subject_id = o.subject_id AND r.version > 0
            OFFSET 0
        ) AS v
        OFFSET 0
    ) AS judged
    """  # noqa: S608 (a constant fragment, no input)
)
# Without statistics (a bulk load the autovacuum has not analysed yet) the planner expects a handful of
# reports and probes the records one by one: three times the cost of hashing them at 200,000 reports. The
# hashes and the sort of a million reports fit in 256 MB.
_HASHED = text("SELECT set_config('enable_nestloop', 'off', true), set_config('work_mem', '256MB', true)")
_PLANNED = text("SELECT set_config('enable_nestloop', :nestloop, true)")


async def sort_reports(
    session: AsyncSession, resource: str, department: str, elements: dict[str, str]
) -> None:
    """Sort the department's latest report of each subject and element (``elements``: name → what identical
    values of it say, ``compare.Identical``) into the transaction's work table, decided where the database
    can tell."""
    nestloop = await session.scalar(text("SELECT current_setting('enable_nestloop')"))
    await session.execute(_SORTING)
    await session.execute(_JUDGING)
    await session.execute(_HASHED)
    await session.execute(
        _SORT,
        {
            "resource": resource,
            "department": department,
            "elements": list(elements),
            "identical": list(elements.values()),
        },
    )
    await session.execute(_PLANNED, {"nestloop": nestloop})


_UNDECIDED = """
SELECT ctid, element, value, canonical, dated, observed_at, canonical_since FROM pg_temp.reconciling
WHERE outcome IS NULL
"""


async def undecided(connection: asyncpg.Connection, size: int) -> AsyncIterator[list[asyncpg.Record]]:
    """The reports the database could not judge, ``size`` at a time: (row, element, value, canonical, dated,
    observed_at, canonical_since); observed_at and canonical_since only for dated reports."""
    cursor = await connection.cursor(_UNDECIDED)
    while rows := await cursor.fetch(size):
        yield rows


async def decide(connection: asyncpg.Connection, rows: Sequence[Any], outcomes: Sequence[str]) -> None:
    """Keep the outcomes of undecided reports (``rows`` as :func:`undecided` gave them)."""
    await connection.copy_records_to_table(
        "judged", schema_name="pg_temp", records=zip(rows, outcomes, strict=True)
    )


_SETTLE = text(
    """
    UPDATE pg_temp.reconciling AS t SET outcome = j.outcome FROM pg_temp.judged AS j WHERE t.ctid = j.row
    """
)


async def settle(session: AsyncSession) -> None:
    """Give the undecided reports the outcomes kept by :func:`decide`; the work table is then complete."""
    await session.execute(_SETTLE)
    # The statements that follow join the table: they are planned on its real size and outcomes.
    await session.execute(text("ANALYZE pg_temp.reconciling"))


# The reconciliation's writes have the effects of open_discrepancies and corroborate, for reports made
# before (a report filed again is not counted once more), but pass over the rows they would rewrite with
# the values they hold already: a run over reports the hub has kept before would otherwise write (and
# lock, and log) a new version of every one of them.
#
# Every disagreement opens or joins its discrepancy: a withdrawn one is reopened with a new deadline, one
# that is open, confirmed or corrected is joined as it is. The rows written are the new and the reopened
# ones, which came under review: they are announced.
_OPEN_RECONCILED = text(
    """
    WITH opened AS (
        INSERT INTO discrepancies AS d (id, resource_code, subject_id, element, canonical_version,
                                        canonical_value, source_department, status, opened_at, due_at)
        SELECT gen_random_uuid(), CAST(:resource AS text), t.subject_id, t.element, t.version, t.canonical,
               s.source, 'open', :now, :due
        FROM pg_temp.reconciling AS t
        JOIN unnest(CAST(:elements AS text[]), CAST(:sources AS text[])) AS s(element, source)
             ON s.element = t.element
        WHERE t.outcome = 'disagrees' AND NOT EXISTS (
            SELECT 1 FROM discrepancies AS x
            WHERE x.resource_code = CAST(:resource AS text) AND x.subject_id = t.subject_id
              AND x.element = t.element AND x.canonical_version = t.version AND x.status <> 'withdrawn')
        ORDER BY t.subject_id, t.element
        ON CONFLICT (resource_code, subject_id, element, canonical_version) DO UPDATE
        SET status = 'open', resolved_at = NULL, resolved_by = NULL, resolution_note = NULL,
            due_at = excluded.due_at
        WHERE d.status = 'withdrawn'
        RETURNING d.subject_id, d.element, d.canonical_version, (d.opened_at = :now) AS new
    ), announced AS (
        INSERT INTO change_events (resource_code, subject_id, kind, version, elements, recorded_at)
        SELECT CAST(:resource AS text), subject_id, 'record.under_review', canonical_version,
               ARRAY[element], :now
        FROM opened ORDER BY subject_id, element
    )
    SELECT count(*) FILTER (WHERE new) FROM opened
    """
)
# Then the department's report is filed on each (found by the discrepancy's unique key: a join with the
# rows the statement above returned would be planned without estimates). A report it filed before takes
# the client and value and is no longer withdrawn; when and how often it was reported stay as they were.
_FILE_RECONCILED = text(
    """
    INSERT INTO discrepancy_reports AS r (discrepancy_id, department, client_id, value, note,
                                          first_reported_at, last_reported_at, times)
    SELECT d.id, CAST(:department AS text), CAST(:client AS text), t.value, NULL, :now, :now, 1
    FROM pg_temp.reconciling AS t
    JOIN discrepancies AS d ON d.resource_code = :resource AND d.subject_id = t.subject_id
         AND d.element = t.element AND d.canonical_version = t.version
    WHERE t.outcome = 'disagrees' AND NOT EXISTS (
        SELECT 1 FROM discrepancy_reports AS x
        WHERE x.discrepancy_id = d.id AND x.department = CAST(:department AS text)
          AND x.client_id = CAST(:client AS text) AND x.withdrawn_at IS NULL
          AND CAST(x.value AS text) = CAST(t.value AS text))
    ORDER BY d.id
    ON CONFLICT (discrepancy_id, department) DO UPDATE
    SET client_id = excluded.client_id, value = excluded.value, withdrawn_at = NULL
    WHERE r.client_id <> excluded.client_id OR r.withdrawn_at IS NOT NULL
       OR CAST(r.value AS text) IS DISTINCT FROM CAST(excluded.value AS text)
    """
)


async def open_reconciled(
    session: AsyncSession,
    resource: str,
    sources: dict[str, str],
    *,
    department: str,
    client: str,
    now: datetime,
    due: datetime,
) -> int:
    """Open, join or reopen the discrepancy of each disagreement in the work table (``sources``: element →
    its source department) and file the department's report on it; returns how many were new."""
    params = {
        "resource": resource,
        "elements": list(sources),
        "sources": list(sources.values()),
        "department": department,
        "client": client,
        "now": now,
        "due": due,
    }
    opened = int(await session.scalar(_OPEN_RECONCILED, params) or 0)
    await session.execute(_FILE_RECONCILED, params)
    return opened


# Each agreement is kept as corroboration, confirmed now: those there already are updated, the others
# inserted. A concurrent publish may insert one of them in between; the insert then fails on the key, and
# is done again as an upsert.
_CONFIRM_RECONCILED = text(
    """
    UPDATE corroborations AS c SET confirmed_at = :now
    FROM pg_temp.reconciling AS t
    WHERE t.outcome = 'agrees' AND c.resource_code = :resource AND c.subject_id = t.subject_id
      AND c.element = t.element AND c.canonical_version = t.version AND c.department = :department
    """
)
_NEW_AGREEMENTS = """
    SELECT CAST(:resource AS text), t.subject_id, t.element, t.version, CAST(:department AS text), :now
    FROM pg_temp.reconciling AS t
    WHERE t.outcome = 'agrees' AND NOT EXISTS (
        SELECT 1 FROM corroborations AS c
        WHERE c.resource_code = CAST(:resource AS text) AND c.subject_id = t.subject_id
          AND c.element = t.element AND c.canonical_version = t.version
          AND c.department = CAST(:department AS text))
    ORDER BY 1, 2, 3, 4, 5"""
_CORROBORATE_RECONCILED = text(
    f"""
    INSERT INTO corroborations (resource_code, subject_id, element, canonical_version, department,
                                confirmed_at)
    {_NEW_AGREEMENTS}
    """
)
_CORROBORATE_RECONCILED_AGAIN = text(
    f"""
    INSERT INTO corroborations (resource_code, subject_id, element, canonical_version, department,
                                confirmed_at)
    {_NEW_AGREEMENTS}
    ON CONFLICT ON CONSTRAINT pk_corroborations DO UPDATE SET confirmed_at = excluded.confirmed_at
    """
)
_WITHDRAW_RECONCILED = text(
    """
    UPDATE discrepancy_reports AS r SET withdrawn_at = :now
    FROM discrepancies AS d, pg_temp.reconciling AS t
    WHERE t.outcome = 'agrees' AND d.resource_code = :resource AND d.status = 'open'
      AND d.subject_id = t.subject_id AND d.element = t.element AND d.canonical_version = t.version
      AND r.discrepancy_id = d.id AND r.department = :department AND r.withdrawn_at IS NULL
    RETURNING r.discrepancy_id
    """
)


async def corroborate_reconciled(
    session: AsyncSession, resource: str, *, department: str, now: datetime
) -> list[uuid.UUID]:
    """:func:`corroborate` for the agreements of the work table: returns the discrepancies that lost the
    department's report."""
    params = {"resource": resource, "department": department, "now": now}
    await session.execute(_CONFIRM_RECONCILED, params)
    try:
        async with session.begin_nested():
            await session.execute(_CORROBORATE_RECONCILED, params)
    except IntegrityError:
        await session.execute(_CORROBORATE_RECONCILED_AGAIN, params)
    return list(await session.scalars(_WITHDRAW_RECONCILED, params))


@dataclass(frozen=True, slots=True)
class Tally:
    """How many reports of an element had an outcome, and how many of them concern a canonical value."""

    element: str
    outcome: str
    reports: int
    filled: int
    subjects: int  # the subjects first seen in these reports


_TALLIES = text(
    """
    SELECT element, outcome, count(*) AS reports, count(*) FILTER (WHERE filled) AS filled,
           count(*) FILTER (WHERE first_of_subject) AS subjects
    FROM pg_temp.reconciling GROUP BY element, outcome
    """
)


async def tallies(session: AsyncSession) -> list[Tally]:
    """The work table counted by element and outcome."""
    return [Tally(*row) for row in await session.execute(_TALLIES)]


async def filled(session: AsyncSession, resource: str, elements: Sequence[str]) -> dict[str, int]:
    """Per element, the records holding a value for it: one pass over the records, a count per element
    (twice as fast as a row per record and element)."""
    if not elements:
        return {}
    counts = ", ".join(
        f"count(*) FILTER (WHERE fields -> CAST(:element_{n} AS text) <> 'null'::jsonb)"
        for n in range(len(elements))
    )
    statement = text(
        f"SELECT {counts} FROM records WHERE resource_code = :resource AND version > 0"  # noqa: S608 (placeholders only)
    )
    row = (
        await session.execute(
            statement, {"resource": resource} | {f"element_{n}": e for n, e in enumerate(elements)}
        )
    ).one()
    return dict(zip(elements, row, strict=True))
