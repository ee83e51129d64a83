"""Cross-checking API: explicit reports, discrepancies and their resolution, reconciliation runs, quality."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response, status

from exchange.access.dependencies import Use
from exchange.audit import context
from exchange.audit import service as audit
from exchange.auth.dependencies import require_roles
from exchange.auth.principal import Principal, Role
from exchange.catalog.exceptions import ResourceNotFound
from exchange.crosscheck import discrepancies, quality, reconcile
from exchange.crosscheck.schemas import (
    DiscrepancyOut,
    DiscrepancyPage,
    QualityOut,
    QualityStatistics,
    ReportBody,
    ReportResult,
    ResolveBody,
    RunBody,
    RunOut,
)
from exchange.db.session import DbSession
from exchange.errors import Forbidden, InvalidInput, problem_responses
from exchange.pagination import Cursor, Limit, decode_cursor, encode_cursor
from exchange.records import service as records

router = APIRouter(prefix="/v1", tags=["cross-checking"], responses=problem_responses(401, 403, 404, 422))

Reporter = Annotated[Principal, Depends(require_roles(Role.publisher, Role.consumer))]
# Approvers settle discrepancies about their department's data, as its publishing systems may.
Resolver = Annotated[Principal, Depends(require_roles(Role.publisher, Role.consumer, Role.approver))]
Party = Annotated[
    Principal,
    Depends(
        require_roles(Role.publisher, Role.consumer, Role.steward, Role.approver, Role.admin, Role.auditor)
    ),
]


class NotAllowed(Forbidden):
    code = "reconciliation_not_allowed"
    title = "You may not reconcile this department's reports"


class ViewRole(StrEnum):
    source = "source"
    reporter = "reporter"
    all = "all"


class Status(StrEnum):
    open = "open"
    confirmed = "confirmed"
    corrected = "corrected"
    withdrawn = "withdrawn"


@router.post(
    "/discrepancies",
    response_model=ReportResult,
    responses={201: {"model": ReportResult, "description": "A discrepancy was opened or joined."}},
    dependencies=[Depends(context.audited("discrepancies.report"))],
    summary="Report a value you doubt (校核纠错): the value your department holds, and why",
    description=(
        "Compared with the canonical value after normalisation. A disagreement opens the discrepancy of that "
        "value (or joins it) for the source department to settle, answered 201; an agreeing value is kept as "
        "corroboration, answered 200. Report through publishing, too: observed elements are compared alike."
    ),
)
async def report(
    body: ReportBody, request: Request, response: Response, session: DbSession, principal: Reporter, use: Use
) -> ReportResult:
    context.update(request, resource=body.resource, elements=[body.element], subject_ids=[body.subject_id])
    review_days = request.app.state.settings.discrepancy_working_days
    result = await discrepancies.report(session, principal, use, body, review_days)
    if result.discrepancy is not None:
        response.status_code = status.HTTP_201_CREATED
    return result


@router.get(
    "/discrepancies",
    response_model=DiscrepancyPage,
    dependencies=[Depends(context.audited("discrepancies.read"))],
    summary="Discrepancies your department must settle (source) or raised (reporter), newest first",
)
async def list_discrepancies(
    session: DbSession,
    principal: Party,
    role: Annotated[
        ViewRole,
        Query(
            description="source: yours to settle; reporter: raised by you; all: oversight (admin, auditor)"
        ),
    ] = ViewRole.source,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    resource: Annotated[str | None, Query(max_length=100)] = None,
    element: Annotated[str | None, Query(max_length=63)] = None,
    overdue: Annotated[bool, Query(description="Only open ones past their deadline.")] = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> DiscrepancyPage:
    before = decode_cursor(cursor, 2)
    try:
        key = (datetime.fromisoformat(before[0]), uuid.UUID(before[1])) if before else None
    except (TypeError, ValueError):
        raise InvalidInput.one("cursor", "not a cursor this list returned") from None
    items, more = await discrepancies.read_page(
        session,
        principal,
        role=role.value,
        status=status_.value if status_ else None,
        resource=resource,
        element=element,
        overdue=overdue,
        before=key,
        limit=limit,
    )
    next_cursor = encode_cursor([items[-1].opened_at.isoformat(), str(items[-1].id)]) if more else None
    return DiscrepancyPage(items=items, next_cursor=next_cursor)


@router.get(
    "/discrepancies/{discrepancy_id}",
    response_model=DiscrepancyOut,
    dependencies=[Depends(context.audited("discrepancies.read"))],
    summary="One discrepancy, as your department may see it",
)
async def get_discrepancy(discrepancy_id: uuid.UUID, session: DbSession, principal: Party) -> DiscrepancyOut:
    return await discrepancies.read_one(session, principal, discrepancy_id)


@router.post(
    "/discrepancies/{discrepancy_id}:resolve",
    response_model=DiscrepancyOut,
    dependencies=[Depends(context.audited("discrepancies.resolve"))],
    responses=problem_responses(409),
    summary="Settle a discrepancy: confirmed or corrected (the source), withdrawn (a reporter)",
    description=(
        "`confirmed`: the source keeps its value, `note` says why. `corrected`: the source sends the "
        "corrected `value`, published as the new canonical version. `withdrawn`: a reporting department "
        "takes its report back; the discrepancy is withdrawn when no report is left."
    ),
)
async def resolve(
    discrepancy_id: uuid.UUID,
    body: ResolveBody,
    request: Request,
    session: DbSession,
    principal: Resolver,
    use: Use,
) -> DiscrepancyOut:
    context.update(request, details={"discrepancy": str(discrepancy_id), "outcome": body.outcome.value})
    review_days = request.app.state.settings.discrepancy_working_days
    return await discrepancies.resolve(session, principal, use, discrepancy_id, body, review_days)


Anyone = Party
Overseer = Annotated[Principal, Depends(require_roles(Role.admin, Role.auditor, Role.steward))]
STEWARDSHIP = frozenset({Role.admin, Role.steward})


async def _may_reconcile(session: DbSession, principal: Principal, resource: str, department: str) -> bool:
    """Stewards and admins, the reporting department itself, or a source department of the resource."""
    if principal.has_any(STEWARDSHIP) or principal.department_code == department:
        return True
    try:
        rules = await records.load_rules(session, resource)
    except ResourceNotFound:
        return False
    return any(e.source_department == principal.department_code for e in rules.elements.values())


@router.post(
    "/crosscheck/runs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunOut,
    dependencies=[Depends(context.audited("crosscheck.run"))],
    summary="Reconcile everything a department reported for a resource against the canonical values",
    description=(
        "Runs in the background (poll `GET /v1/crosscheck/runs/{id}`). Discrepancies are opened for the "
        "disagreements found and agreement is kept as corroboration; the report counts, per element, the "
        "subjects compared, agreeing, disagreeing, and missing on either side."
    ),
)
async def start_run(
    body: RunBody, request: Request, background: BackgroundTasks, session: DbSession, principal: Anyone
) -> RunOut:
    context.update(
        request, resource=body.resource, department=principal.department_code, client_id=principal.client_id
    )
    if not await _may_reconcile(session, principal, body.resource, body.department):
        raise NotAllowed(
            "Only stewards, the reporting department or a source department of the resource may."
        )
    run = await reconcile.create(session, body.resource, body.department, principal.client_id)
    await audit.append(
        session,
        audit.Event(
            action="crosscheck.run",
            department=principal.department_code,
            client_id=principal.client_id,
            resource=body.resource,
            details={"run": str(run.id), "reporting_department": body.department},
        ),
    )
    state = request.app.state

    async def start() -> None:
        work = reconcile.execute(
            state.engine, state.sessionmaker, run.id, state.settings.discrepancy_working_days
        )
        state.jobs.start(f"reconcile {run.id}", work)

    # Started once the response (and so the transaction that queued the run) has gone out.
    background.add_task(start)
    return reconcile.out(run)


@router.get("/crosscheck/runs/{run_id}", response_model=RunOut, summary="A reconciliation run and its report")
async def get_run(run_id: uuid.UUID, session: DbSession, principal: Anyone) -> RunOut:
    run = await reconcile.view(session, run_id)
    if not (
        principal.has_any(discrepancies.OVERSIGHT)
        or await _may_reconcile(session, principal, run.resource, run.department)
    ):
        raise reconcile.RunNotFound()
    return run


@router.get(
    "/quality/resources/{code}",
    response_model=QualityOut,
    summary="Data quality of a resource: completeness, consistency, freshness, open discrepancies",
)
async def resource_quality(code: str, session: DbSession, principal: Anyone) -> QualityOut:
    rules = await records.load_rules(session, code)
    return await quality.measure(session, rules, datetime.now(UTC))


@router.get(
    "/statistics/quality",
    response_model=QualityStatistics,
    summary="Data quality of every resource of the catalogue",
)
async def quality_statistics(session: DbSession, principal: Overseer) -> QualityStatistics:
    return QualityStatistics(items=await quality.measure_all(session, datetime.now(UTC)))
