"""Bulk reconciliation: everything one department reported for a resource against the canonical values.

One statement joins the department's latest report per (subject, element) with the current records and is
read through a server-side cursor in partitions, so memory stays flat whatever the size; each partition is
compared with the same rules as a single publish and its discrepancies and corroborations are written with
set-based statements. Canonical values the department never reported are counted by one more statement.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from exchange.catalog.exceptions import ResourceNotFound
from exchange.crosscheck import service as crosscheck
from exchange.crosscheck.models import ReconciliationRun
from exchange.crosscheck.schemas import ElementReconciliation, Outcome, ReconciliationReport, RunOut
from exchange.db.locks import advisory_key
from exchange.db.session import transaction
from exchange.departments.models import Department
from exchange.errors import InvalidInput, InvalidParam, NotFound
from exchange.records import service as records
from exchange.records.repository import Current
from exchange.records.validation import ResourceRules

PARTITION = 5000

_REPORTED_ELEMENTS = text(
    """
    SELECT DISTINCT element FROM observations WHERE resource_code = :resource AND department = :department
    """
)
_LATEST = text(
    """
    SELECT o.subject_id, o.element, o.value, o.observed_at, o.dated,
           r.version, r.fields -> o.element AS canonical, r.stamps ->> o.element AS stamp,
           CAST(r.element_versions ->> o.element AS int) AS element_version
    FROM (
        SELECT DISTINCT ON (subject_id, element) subject_id, element, value, observed_at, dated
        FROM observations
        WHERE resource_code = :resource AND department = :department
          AND element = ANY(CAST(:elements AS text[]))
        ORDER BY subject_id, element, observed_at DESC, id DESC
    ) AS o
    LEFT JOIN records AS r ON r.resource_code = :resource AND r.subject_id = o.subject_id AND r.version > 0
    """
)
_NEVER_REPORTED = text(
    """
    SELECT f.key AS element, count(*) AS n
    FROM records AS r CROSS JOIN LATERAL jsonb_each(r.fields) AS f
    WHERE r.resource_code = :resource AND r.version > 0 AND f.key = ANY(CAST(:elements AS text[]))
      AND f.value <> 'null'::jsonb
      AND NOT EXISTS (SELECT 1 FROM observations AS o
                      WHERE o.resource_code = :resource AND o.department = :department
                        AND o.subject_id = r.subject_id AND o.element = f.key)
    GROUP BY f.key
    """
)


class RunNotFound(NotFound):
    code = "reconciliation_run_not_found"
    title = "No such reconciliation run"

    def __init__(self) -> None:
        super().__init__("No reconciliation run with this id.")


@dataclass(slots=True)
class Tally:
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    subjects: set[str] = field(default_factory=set)
    opened: int = 0

    def add(self, compared: crosscheck.Compared) -> None:
        self.counts.setdefault(compared.reported.element, Counter())[compared.outcome.value] += 1
        self.subjects.add(compared.reported.subject_id)


def _partition(rows: list[Any]) -> tuple[list[crosscheck.Reported], dict[str, Current]]:
    """Reports and the canonical values they concern, shaped like a publish's locked records."""
    reported = []
    current: dict[str, Current] = {}
    for row in rows:
        reported.append(
            crosscheck.Reported(row.subject_id, row.element, row.value, row.observed_at, dated=row.dated)
        )
        if row.version is None:
            continue
        record = current.setdefault(row.subject_id, Current(row.version, {}, {}, {}))
        if row.stamp is not None:
            record.fields[row.element] = row.canonical
            record.stamps[row.element] = row.stamp
            record.versions[row.element] = row.element_version or row.version
    return reported, current


async def reconcile(
    session: AsyncSession,
    rules: ResourceRules,
    department: str,
    requested_by: str,
    now: datetime,
    review_days: int,
) -> ReconciliationReport:
    """Compare, keep discrepancies and corroborations, and count: the report of one run."""
    code = rules.spec.code
    reported_elements = {
        row.element
        for row in await session.execute(_REPORTED_ELEMENTS, {"resource": code, "department": department})
    }
    elements = [
        name
        for name, element in rules.elements.items()
        if name in reported_elements and element.source_department != department
    ]
    params = {"resource": code, "department": department, "elements": elements}
    tally = Tally()
    reporter = crosscheck.Reporter(department, requested_by)
    result = await session.stream(_LATEST, params)
    async for rows in result.partitions(PARTITION):
        reported, current = _partition(list(rows))
        compared = crosscheck.compare(rules, reported, current)
        for item in compared:
            tally.add(item)
        opened = await crosscheck.keep(session, rules, reporter, compared, now, review_days, again=False)
        tally.opened += sum(1 for o in opened.values() if o.new)
    never = {row.element: row.n for row in await session.execute(_NEVER_REPORTED, params)}
    report = []
    for name in elements:
        counts = tally.counts.get(name, Counter())
        report.append(
            ElementReconciliation(
                element=name,
                compared=counts[Outcome.agrees] + counts[Outcome.disagrees],
                agreeing=counts[Outcome.agrees],
                disagreeing=counts[Outcome.disagrees],
                stale=counts[Outcome.stale],
                missing_canonical=counts[Outcome.no_canonical],
                missing_reported=never.get(name, 0),
            )
        )
    return ReconciliationReport(
        resource=code,
        department=department,
        subjects_reported=len(tally.subjects),
        discrepancies_opened=tally.opened,
        elements=report,
    )


async def create(
    session: AsyncSession, resource: str, department: str, requested_by: str
) -> ReconciliationRun:
    """Check the request and queue a run (committed by the caller before it is started)."""
    errors = []
    try:
        await records.load_rules(session, resource)
    except ResourceNotFound:
        errors.append(InvalidParam(name="resource", reason=f"the catalogue has no resource {resource}"))
    if await session.get(Department, department) is None:
        errors.append(InvalidParam(name="department", reason=f"no department {department} is registered"))
    if errors:
        raise InvalidInput("; ".join(f"{e.name}: {e.reason}" for e in errors), errors)
    run = ReconciliationRun(
        id=uuid.uuid4(),
        resource_code=resource,
        department=department,
        requested_by=requested_by,
        status="queued",
    )
    session.add(run)
    await session.flush()
    return run


def _lock_key(run_id: uuid.UUID) -> int:
    return advisory_key(f"reconcile:{run_id}")


async def execute(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    run_id: uuid.UUID,
    review_days: int,
) -> ReconciliationRun:
    """Run a queued reconciliation: its effects and its report commit together, or not at all.

    The run's lock is held on a connection of its own from before the claim until the end, so a reader
    can tell a run in progress from one whose process died (see :func:`view`).
    """
    async with engine.connect() as guard:
        await guard.execute(select(func.pg_advisory_lock(_lock_key(run_id))))
        try:
            await _execute(sessionmaker, run_id, review_days)
        finally:
            await guard.execute(select(func.pg_advisory_unlock(_lock_key(run_id))))
    async with sessionmaker() as session:
        return await session.get_one(ReconciliationRun, run_id)


async def _execute(
    sessionmaker: async_sessionmaker[AsyncSession], run_id: uuid.UUID, review_days: int
) -> None:
    async with transaction(sessionmaker) as session:
        claimed = await session.execute(
            update(ReconciliationRun)
            .where(ReconciliationRun.id == run_id, ReconciliationRun.status == "queued")
            .values(status="running", started_at=func.now())
            .returning(ReconciliationRun.id)
        )
        if claimed.first() is None:
            raise RunNotFound()
    try:
        async with transaction(sessionmaker) as session:
            run = await session.get_one(ReconciliationRun, run_id)
            rules = await records.load_rules(session, run.resource_code)
            report = await reconcile(
                session, rules, run.department, run.requested_by, datetime.now(UTC), review_days
            )
            run.status, run.finished_at, run.report = (
                "done",
                datetime.now(UTC),
                report.model_dump(mode="json"),
            )
    except Exception as exc:
        async with transaction(sessionmaker) as session:
            await session.execute(
                update(ReconciliationRun)
                .where(ReconciliationRun.id == run_id)
                .values(status="failed", finished_at=func.now(), error=f"{type(exc).__name__}: {exc}"[:2000])
            )
        raise


async def view(session: AsyncSession, run_id: uuid.UUID) -> RunOut:
    run = await session.get(ReconciliationRun, run_id)
    if run is None:
        raise RunNotFound()
    if run.status == "running" and await session.scalar(
        select(func.pg_try_advisory_xact_lock(_lock_key(run_id)))
    ):
        # Nobody holds the run's lock: the process running it is gone.
        run.status, run.finished_at, run.error = (
            "failed",
            datetime.now(UTC),
            "interrupted: the hub process stopped",
        )
    return out(run)


def out(run: ReconciliationRun) -> RunOut:
    return RunOut(
        id=run.id,
        resource=run.resource_code,
        department=run.department,
        status=run.status,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        report=ReconciliationReport.model_validate(run.report) if run.report else None,
        error=run.error,
    )
