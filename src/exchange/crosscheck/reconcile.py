"""Bulk reconciliation: everything one department reported for a resource against the canonical values.

One statement sorts the department's latest report per (subject, element), joined with the current
records, into a work table of the run's transaction, and settles there every outcome the JSON values
settle by themselves: no value, no canonical value, stale, identical values or values of the wrong type.
That is most reports, and building and comparing Python objects for them had cost ten times what the
database spends on them. Only the others are read, a partition at a time, and judged by the element's
matcher with the rules of a single publish (service.judge); their outcomes go back to the table. The
discrepancies, reports, corroborations and review events are then written from the table, one set-based
statement each, and the report is counted from it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from exchange.catalog.exceptions import ResourceNotFound
from exchange.crosscheck import repository
from exchange.crosscheck import service as crosscheck
from exchange.crosscheck.compare import identical
from exchange.crosscheck.models import ReconciliationRun
from exchange.crosscheck.schemas import ElementReconciliation, Outcome, ReconciliationReport, RunOut
from exchange.db.locks import advisory_key
from exchange.db.session import driver, transaction
from exchange.departments.models import Department
from exchange.errors import InvalidInput, InvalidParam, NotFound
from exchange.records import service as records
from exchange.records.validation import ResourceRules

PARTITION = 20_000  # reports judged by the matchers at a time


class RunNotFound(NotFound):
    code = "reconciliation_run_not_found"
    title = "No such reconciliation run"

    def __init__(self) -> None:
        super().__init__("No reconciliation run with this id.")


async def _judge_undecided(session: AsyncSession, rules: ResourceRules) -> None:
    connection = await driver(session)
    matchers = rules.matchers
    async for rows in repository.undecided(connection, PARTITION):
        outcomes = [
            crosscheck.judge(matchers[element], value, canonical, dated, observed_at, since).value
            for _, element, value, canonical, dated, observed_at, since in rows
        ]
        await repository.decide(connection, [row[0] for row in rows], outcomes)
    await repository.settle(session)


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
    others = {
        name: identical(element.type).value
        for name, element in rules.elements.items()
        if element.source_department != department
    }
    await repository.sort_reports(session, code, department, others)
    await _judge_undecided(session, rules)
    tallies = await repository.tallies(session)
    counts: dict[str, dict[str, int]] = {}
    reported_filled: dict[str, int] = {}
    for tally in tallies:
        counts.setdefault(tally.element, {})[tally.outcome] = tally.reports
        reported_filled[tally.element] = reported_filled.get(tally.element, 0) + tally.filled
    elements = [name for name in others if name in counts]
    reporter = crosscheck.Reporter(department, requested_by)
    opened = await crosscheck.keep_reconciled(session, rules, reporter, elements, now, review_days)
    filled = await repository.filled(session, code, elements)
    report = []
    for name in elements:
        outcomes = counts[name]
        agreeing, disagreeing = outcomes.get(Outcome.agrees, 0), outcomes.get(Outcome.disagrees, 0)
        report.append(
            ElementReconciliation(
                element=name,
                compared=agreeing + disagreeing,
                agreeing=agreeing,
                disagreeing=disagreeing,
                stale=outcomes.get(Outcome.stale, 0),
                missing_canonical=outcomes.get(Outcome.no_canonical, 0),
                missing_reported=filled.get(name, 0) - reported_filled[name],
            )
        )
    return ReconciliationReport(
        resource=code,
        department=department,
        subjects_reported=sum(tally.subjects for tally in tallies),
        discrepancies_opened=opened,
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
