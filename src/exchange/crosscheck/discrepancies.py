"""Discrepancies as departments see and settle them: explicit reports, lists, and the three resolutions.

Who sees what: the source department sees its doubted value and every report with its value; a reporting
department sees its own report only; admins and auditors (``role=all``) see every discrepancy but no
values. Anyone else gets the same 404 as for an id that does not exist. Who settled a discrepancy (a client
id) is shown to that client's department and to oversight; a withdrawal's note is a reporter's note.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, exists, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.access.dependencies import DeclaredUse
from exchange.audit import service as audit
from exchange.auth.principal import Principal, Role
from exchange.crosscheck import repository
from exchange.crosscheck import service as crosscheck
from exchange.crosscheck.models import Discrepancy, DiscrepancyReport
from exchange.crosscheck.repository import Settled
from exchange.crosscheck.schemas import (
    DiscrepancyOut,
    ReportBody,
    ReporterOut,
    ReportResult,
    Resolution,
    ResolveBody,
)
from exchange.errors import Conflict, Forbidden, InvalidInput, InvalidParam, NotFound
from exchange.records import repository as records_repository
from exchange.records import service as records
from exchange.records.repository import NewObservation
from exchange.records.service import CLOCK_SKEW

OVERSIGHT = frozenset({Role.admin, Role.auditor})


class DiscrepancyNotFound(NotFound):
    code = "discrepancy_not_found"
    title = "No such discrepancy"

    def __init__(self) -> None:
        super().__init__("No discrepancy with this id is visible to your department.")


class AlreadySettled(Conflict):
    code = "discrepancy_settled"
    title = "The discrepancy is settled already"


class NotACorrection(Conflict):
    code = "not_a_correction"
    title = "The value is the canonical value already"


class NotSource(Forbidden):
    code = "not_source_department"
    title = "Only the element's source department confirms or corrects its value"


class NotReporter(Forbidden):
    code = "not_reporter"
    title = "Only a department that reported the discrepancy withdraws its report"


def _settlement(
    row: Discrepancy, reports: Sequence[DiscrepancyReport], viewer: str | None
) -> tuple[str | None, str | None]:
    """Who settled the discrepancy and why, as ``viewer`` may see them.

    A confirmation or correction is the source's: its client id is shown to the source (and oversight), its
    note to every party. A withdrawal closes with the last reporter's: its client id is shown to that
    reporter (and oversight), its note, like the reports' notes, to that reporter and the source.
    """
    if row.resolved_by == crosscheck.HUB:
        return row.resolved_by, row.resolution_note
    settler: str | None = row.source_department
    note = row.resolution_note
    if row.status == "withdrawn":
        settler = next((r.department for r in reports if r.withdrawn_at == row.resolved_at), None)
        note = note if viewer in {settler, row.source_department} else None
    return (row.resolved_by if viewer in {None, settler} else None), note


def _view(
    row: Discrepancy, reports: Sequence[DiscrepancyReport], viewer: str | None, now: datetime
) -> DiscrepancyOut:
    """The discrepancy as ``viewer`` may see it (``None``: an oversight role, no values)."""
    is_source = viewer == row.source_department
    resolved_by, resolution_note = _settlement(row, reports, viewer)
    shown = [r for r in reports if viewer is None or is_source or r.department == viewer]
    return DiscrepancyOut(
        id=row.id,
        resource=row.resource_code,
        subject_id=row.subject_id,
        element=row.element,
        status=row.status,
        source_department=row.source_department,
        canonical_version=row.canonical_version,
        canonical_value=row.canonical_value if is_source else None,
        values_shown=viewer is not None,
        reporters=[
            ReporterOut(
                department=r.department,
                value=r.value if viewer is not None else None,
                note=r.note if viewer is not None else None,
                first_reported_at=r.first_reported_at,
                last_reported_at=r.last_reported_at,
                times=r.times,
                withdrawn=r.withdrawn_at is not None,
            )
            for r in sorted(shown, key=lambda r: r.first_reported_at)
        ],
        reporter_count=sum(1 for r in reports if r.withdrawn_at is None),
        opened_at=row.opened_at,
        due_at=row.due_at,
        overdue=row.status == "open" and row.due_at < now,
        resolved_at=row.resolved_at,
        resolved_by=resolved_by,
        resolution_note=resolution_note,
        corrected_version=row.corrected_version,
    )


async def _reports(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[DiscrepancyReport]]:
    by_id: dict[uuid.UUID, list[DiscrepancyReport]] = {i: [] for i in ids}
    if ids:
        rows = await session.scalars(
            select(DiscrepancyReport).where(DiscrepancyReport.discrepancy_id.in_(ids))
        )
        for report in rows:
            by_id[report.discrepancy_id].append(report)
    return by_id


def _visible(department: str | None) -> ColumnElement[bool]:
    """The SQL condition for discrepancies a department sees (``None``: all)."""
    if department is None:
        return true()
    reported = exists().where(
        DiscrepancyReport.discrepancy_id == Discrepancy.id, DiscrepancyReport.department == department
    )
    return or_(Discrepancy.source_department == department, reported)


async def _load(
    session: AsyncSession, discrepancy_id: uuid.UUID, viewer: str | None, *, lock: bool = False
) -> Discrepancy:
    statement = select(Discrepancy).where(Discrepancy.id == discrepancy_id, _visible(viewer))
    if lock:
        statement = statement.with_for_update(of=Discrepancy)
    row = await session.scalar(statement)
    if row is None:
        raise DiscrepancyNotFound()
    return row


async def get(session: AsyncSession, discrepancy_id: uuid.UUID, viewer: str | None) -> DiscrepancyOut:
    row = await _load(session, discrepancy_id, viewer)
    reports = await _reports(session, [row.id])
    return _view(row, reports[row.id], viewer, datetime.now(UTC))


async def page(
    session: AsyncSession,
    department: str,
    *,
    role: str,
    status: str | None,
    resource: str | None,
    element: str | None,
    overdue: bool,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[DiscrepancyOut]:
    """A page of discrepancies, newest first: those ``department`` must settle (source), raised
    (reporter), or every one (all: oversight roles, no values)."""
    now = datetime.now(UTC)
    statement = select(Discrepancy)
    viewer: str | None = department
    if role == "source":
        statement = statement.where(Discrepancy.source_department == department)
    elif role == "reporter":
        statement = statement.where(
            exists().where(
                DiscrepancyReport.discrepancy_id == Discrepancy.id, DiscrepancyReport.department == department
            )
        )
    else:
        viewer = None
    if status is not None:
        statement = statement.where(Discrepancy.status == status)
    if resource is not None:
        statement = statement.where(Discrepancy.resource_code == resource)
    if element is not None:
        statement = statement.where(Discrepancy.element == element)
    if overdue:
        statement = statement.where(Discrepancy.status == "open", Discrepancy.due_at < now)
    if before is not None:
        statement = statement.where(
            or_(
                Discrepancy.opened_at < before[0],
                and_(Discrepancy.opened_at == before[0], Discrepancy.id < before[1]),
            )
        )
    rows = list(
        await session.scalars(
            statement.order_by(Discrepancy.opened_at.desc(), Discrepancy.id.desc()).limit(limit)
        )
    )
    reports = await _reports(session, [r.id for r in rows])
    return [_view(r, reports[r.id], viewer, now) for r in rows]


async def _log_read(
    session: AsyncSession, principal: Principal, items: Sequence[DiscrepancyOut], **details: object
) -> None:
    await audit.append(
        session,
        audit.Event(
            action="discrepancies.read",
            department=principal.department_code,
            client_id=principal.client_id,
            subject_ids=sorted({d.subject_id for d in items}),
            elements=sorted({d.element for d in items}),
            details={"discrepancies": [str(d.id) for d in items], **details},
        ),
    )


async def read_page(
    session: AsyncSession,
    principal: Principal,
    *,
    role: str,
    status: str | None = None,
    resource: str | None = None,
    element: str | None = None,
    overdue: bool = False,
    before: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 50,
) -> tuple[list[DiscrepancyOut], bool]:
    """A page as the caller may see it, and whether more follow; the read is audited."""
    if role == "all" and not principal.has_any(OVERSIGHT):
        raise InvalidInput.one("role", "only admins and auditors list every discrepancy")
    items = await page(
        session,
        principal.department_code,
        role=role,
        status=status,
        resource=resource,
        element=element,
        overdue=overdue,
        before=before,
        limit=limit + 1,
    )
    await _log_read(session, principal, items[:limit], role=role)
    return items[:limit], len(items) > limit


async def read_one(session: AsyncSession, principal: Principal, discrepancy_id: uuid.UUID) -> DiscrepancyOut:
    """One discrepancy as the caller's department sees it (oversight roles: without values); audited."""
    try:
        item = await get(session, discrepancy_id, principal.department_code)
    except NotFound:
        if not principal.has_any(OVERSIGHT):
            raise
        item = await get(session, discrepancy_id, None)
    await _log_read(session, principal, [item])
    return item


def _event(action: str, principal: Principal, row: Discrepancy, **details: object) -> audit.Event:
    return audit.Event(
        action=action,
        department=principal.department_code,
        client_id=principal.client_id,
        resource=row.resource_code,
        subject_ids=[row.subject_id],
        elements=[row.element],
        details={"discrepancy": str(row.id), **details},
    )


async def report(
    session: AsyncSession, principal: Principal, use: DeclaredUse, body: ReportBody, review_days: int
) -> ReportResult:
    """An explicit report: the caller's value for one element of one subject, with where it comes from."""
    now = datetime.now(UTC)
    rules = await records.load_rules(session, body.resource)
    element = rules.elements.get(body.element)
    if element is None:
        raise InvalidInput.one("element", f"{body.resource} has no element {body.element}")
    if element.source_department == principal.department_code:
        raise InvalidInput.one(
            "element", "your department is the source of this element: publish the value instead"
        )
    (subject_id,) = records.canonical_subject_ids(rules, [body.subject_id], "subject_id")
    checked = rules.fields({body.element: body.value})
    errors = [InvalidParam(name="value", reason=reason) for _, reason in checked.errors]
    if body.value is None:
        errors = [InvalidParam(name="value", reason="must be the value your department holds, not null")]
    observed_at = body.observed_at.astimezone(UTC) if body.observed_at else now
    if observed_at > now + CLOCK_SKEW:
        errors.append(InvalidParam(name="observed_at", reason="must not be in the future"))
    if errors:
        raise InvalidInput("; ".join(f"{e.name}: {e.reason}" for e in errors), errors)
    value = checked.values[body.element]
    current = await records_repository.lock_current(session, rules.spec.code, [subject_id])
    dated = body.observed_at is not None
    reported = crosscheck.Reported(subject_id, body.element, value, observed_at, body.note, dated)
    (compared,) = crosscheck.compare(rules, [reported], current)
    reporter = crosscheck.Reporter(principal.department_code, principal.client_id)
    opened = await crosscheck.keep(session, rules, reporter, [compared], now, review_days)
    await records_repository.save_observations(
        session,
        rules.spec.code,
        [
            NewObservation(
                subject_id,
                body.element,
                value,
                observed_at,
                compared.outcome.value,
                body.note,
                dated=dated,
            )
        ],
        client=principal.client_id,
        department=principal.department_code,
        now=now,
    )
    corroborations = 0
    if compared.version is not None:
        corroborations = await repository.corroboration_count(
            session, rules.spec.code, subject_id, body.element, compared.version
        )
    discrepancy = None
    found = opened.get((subject_id, body.element))
    if found is not None:
        discrepancy = await get(session, found.id, principal.department_code)
    await audit.append(
        session,
        audit.Event(
            action="discrepancies.report",
            department=principal.department_code,
            client_id=principal.client_id,
            officer=use.officer,
            purpose=use.purpose,
            case_reference=use.case_reference,
            resource=rules.spec.code,
            subject_ids=[subject_id],
            elements=[body.element],
            details={"outcome": compared.outcome.value}
            | ({"discrepancy": str(found.id)} if found is not None else {}),
        ),
    )
    return ReportResult(outcome=compared.outcome, corroborations=corroborations, discrepancy=discrepancy)


async def resolve(
    session: AsyncSession,
    principal: Principal,
    use: DeclaredUse,
    discrepancy_id: uuid.UUID,
    body: ResolveBody,
    review_days: int,
) -> DiscrepancyOut:
    now = datetime.now(UTC)
    department = principal.department_code
    row = await _load(session, discrepancy_id, department, lock=True)
    if row.status != "open":
        raise AlreadySettled(f"The discrepancy was {row.status} at {row.resolved_at:%Y-%m-%d %H:%M} UTC.")
    if body.outcome is Resolution.withdrawn:
        await _withdraw(session, principal, row, body.note, now)
    else:
        if department != row.source_department:
            raise NotSource(f"{row.element} of {row.resource_code} is kept by {row.source_department}.")
        if body.outcome is Resolution.confirmed:
            await _confirm(session, principal, row, body.note, now)
        else:
            await _correct(session, principal, use, row, body, now, review_days)
    await audit.append(
        session, _event("discrepancies.resolve", principal, row, outcome=body.outcome.value, note=body.note)
    )
    await session.refresh(row)
    return await get(session, row.id, department)


async def _confirm(
    session: AsyncSession, principal: Principal, row: Discrepancy, note: str, now: datetime
) -> None:
    await session.execute(
        update(Discrepancy)
        .where(Discrepancy.id == row.id)
        .values(status="confirmed", resolved_at=now, resolved_by=principal.client_id, resolution_note=note)
    )
    settled = Settled(row.id, row.subject_id, row.element, row.canonical_version)
    await crosscheck.announce(session, row.resource_code, [], [settled], now)


async def _withdraw(
    session: AsyncSession, principal: Principal, row: Discrepancy, note: str, now: datetime
) -> None:
    withdrawn = await session.execute(
        update(DiscrepancyReport)
        .where(
            DiscrepancyReport.discrepancy_id == row.id,
            DiscrepancyReport.department == principal.department_code,
            DiscrepancyReport.withdrawn_at.is_(None),
        )
        .values(withdrawn_at=now, note=note)
        .returning(DiscrepancyReport.department)
    )
    if withdrawn.first() is None:
        raise NotReporter("Your department has no report on this discrepancy to withdraw.")
    settled = await repository.close_unreported(session, [row.id], by=principal.client_id, note=note, now=now)
    await crosscheck.announce(session, row.resource_code, [], settled, now)


async def _correct(
    session: AsyncSession,
    principal: Principal,
    use: DeclaredUse,
    row: Discrepancy,
    body: ResolveBody,
    now: datetime,
    review_days: int,
) -> None:
    """The source corrects its value here: published as a new canonical version, which settles it."""
    if "value" not in body.model_fields_set:
        raise InvalidInput.one(
            "value", "send the corrected value (or publish it through the records API: it closes by itself)"
        )
    doubted = (row.canonical_version, row.canonical_value)
    rules = await records.load_rules(session, row.resource_code)
    result = await records.publish_one(
        session,
        rules,
        principal,
        use,
        {"subject_id": row.subject_id, "fields": {row.element: body.value}},
        review_days,
    )
    if row.element not in result.changed:
        raise NotACorrection("The value sent is the canonical value already: confirm it instead.")
    # Publishing has closed it already if the value matches a report, or moved it onto the new value if not:
    # it is about the value it doubted, and the source's own note wins.
    still_open = await session.scalar(select(Discrepancy.status).where(Discrepancy.id == row.id)) == "open"
    await session.execute(
        update(Discrepancy)
        .where(Discrepancy.id == row.id)
        .values(
            canonical_version=doubted[0],
            canonical_value=doubted[1],
            status="corrected",
            resolved_at=now,
            resolved_by=principal.client_id,
            resolution_note=body.note,
            corrected_version=result.version,
        )
    )
    if still_open:
        settled = Settled(row.id, row.subject_id, row.element, result.version)
        await crosscheck.announce(session, row.resource_code, [], [settled], now)
