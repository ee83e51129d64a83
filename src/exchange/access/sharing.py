"""Sharing requests and decisions (谁使用、谁负责): who may use what, for which purpose, until when.

Elements shared unconditionally are granted on request; elements shared ``none`` are refused at once; each
conditional element waits for its own source department, which approves or refuses it (with a reason)
within the deadline. Approved elements join the consumer's one grant for (resource, purpose, access).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from exchange.access import repository
from exchange.access.models import Grant, GrantElement, RequestedElement, SharingRequest
from exchange.access.policy import Access
from exchange.access.schemas import (
    DecisionsBody,
    GrantElementOut,
    GrantOut,
    RequestedElementOut,
    SharingRequestCreate,
    SharingRequestOut,
    SharingStatistics,
)
from exchange.access.workdays import add_working_days
from exchange.audit import service as audit
from exchange.auth.principal import Principal, Role
from exchange.catalog import repository as catalog_repository
from exchange.config import Settings
from exchange.errors import Conflict, Forbidden, InvalidInput, InvalidParam, NotFound

NOT_SHARED = "the catalogue marks this element 不予共享 (not shared)"


class RequestNotFound(NotFound):
    code = "sharing_request_not_found"
    title = "No such sharing request"

    def __init__(self) -> None:
        # The same answer whether it does not exist or belongs to other departments: no existence leak.
        super().__init__("No sharing request with this id is visible to your department.")


class GrantNotFound(NotFound):
    code = "grant_not_found"
    title = "No such grant"

    def __init__(self) -> None:
        super().__init__("No grant with this id is visible to your department.")


class NotYourElement(Forbidden):
    code = "not_source_department"
    title = "Only an element's source department decides on it"


class AlreadyDecided(Conflict):
    code = "already_decided"
    title = "The element was decided already"


def status_of(states: Sequence[str]) -> str:
    if "pending" in states:
        return "pending"
    if all(state == "granted" for state in states):
        return "granted"
    if all(state == "rejected" for state in states):
        return "rejected"
    return "partially_granted"


def shown_to(department: str | None, consumer: str, source: str) -> bool:
    """Whether a department sees an element line of a request or grant: the consumer sees every line, a
    source department only its own (never another pair's), an admin (``None``) all."""
    return department is None or department in {consumer, source}


def _view(
    request: SharingRequest, elements: Sequence[RequestedElement], now: datetime, department: str | None
) -> SharingRequestOut:
    """The request as ``department`` may see it: a provider sees only the elements it decides."""
    shown = [e for e in elements if shown_to(department, request.consumer_department, e.source_department)]
    return SharingRequestOut(
        id=request.id,
        status=request.status,
        resource=request.resource_code,
        consumer_department=request.consumer_department,
        access=Access(request.access),
        purpose=request.purpose_code,
        legal_basis=request.legal_basis,
        justification=request.justification,
        case_reference=request.case_reference,
        valid_until=request.valid_until,
        created_at=request.created_at,
        due_at=request.due_at,
        overdue=request.status == "pending" and request.due_at < now,
        decided_at=request.decided_at,
        grant_id=request.grant_id,
        elements=[RequestedElementOut.model_validate(e) for e in shown],
    )


def _event(
    action: str, principal: Principal, request: SharingRequest, elements: Sequence[str], **details: object
) -> audit.Event:
    return audit.Event(
        action=action,
        department=principal.department_code,
        client_id=principal.client_id,
        purpose=request.purpose_code,
        case_reference=request.case_reference,
        grant_id=request.grant_id,
        resource=request.resource_code,
        elements=list(elements),
        details={"request": str(request.id), **details},
    )


async def _grant(
    session: AsyncSession,
    request: SharingRequest,
    granted: Sequence[RequestedElement],
    until: datetime,
    now: datetime,
) -> None:
    if not granted:
        return
    grant_id = await repository.grant_in_force(
        session, request.consumer_department, request.resource_code, request.purpose_code, request.access
    )
    await repository.grant_elements(
        session,
        grant_id,
        [(e.element, e.source_department) for e in granted],
        valid_from=now,
        valid_until=until,
        request_id=request.id,
    )
    request.grant_id = grant_id


async def create(
    session: AsyncSession, principal: Principal, body: SharingRequestCreate, settings: Settings
) -> SharingRequestOut:
    now = datetime.now(UTC)
    loaded = await catalog_repository.load_resources(session, [body.resource])
    errors: list[InvalidParam] = []
    if not loaded:
        errors.append(InvalidParam(name="resource", reason=f"the catalogue has no resource {body.resource}"))
    if await catalog_repository.get_purpose(session, body.purpose) is None:
        errors.append(InvalidParam(name="purpose", reason=f"{body.purpose} is not a registered purpose"))
    if body.valid_until <= now:
        errors.append(InvalidParam(name="valid_until", reason="must be in the future"))
    elif body.valid_until > now + timedelta(days=settings.grant_max_days):
        errors.append(
            InvalidParam(name="valid_until", reason=f"may be at most {settings.grant_max_days} days ahead")
        )
    if len(set(body.elements)) != len(body.elements):
        errors.append(InvalidParam(name="elements", reason="lists an element twice"))
    spec = loaded[0][1] if loaded else None
    if spec is not None:
        errors += [
            InvalidParam(name="elements", reason=f"{body.resource} has no element {name}")
            for name in body.elements
            if spec.element(name) is None
        ]
    if errors or spec is None:
        raise InvalidInput("; ".join(f"{e.name}: {e.reason}" for e in errors), errors)

    request = SharingRequest(
        id=uuid.uuid4(),
        consumer_department=principal.department_code,
        resource_code=body.resource,
        access=body.access.value,
        purpose_code=body.purpose,
        legal_basis=body.legal_basis,
        justification=body.justification,
        case_reference=body.case_reference,
        valid_until=body.valid_until,
        created_by=principal.client_id,
        created_at=now,
        due_at=add_working_days(now, settings.decision_working_days),
        status="pending",
    )
    elements = []
    for name in body.elements:
        element = spec.element(name)
        assert element is not None
        row = RequestedElement(
            request_id=request.id, element=name, source_department=element.source_department
        )
        if element.sharing.value == "none" and element.source_department != principal.department_code:
            row.state, row.reason, row.decided_at = "rejected", NOT_SHARED, now
        elif (
            element.sharing.value == "unconditional" or element.source_department == principal.department_code
        ):
            row.state, row.valid_until, row.decided_at = "granted", body.valid_until, now
        else:
            row.state = "pending"
        elements.append(row)
    request.status = status_of([e.state for e in elements])
    if request.status != "pending":
        request.decided_at = now
    await repository.add_request(session, request, elements)
    await _grant(session, request, [e for e in elements if e.state == "granted"], body.valid_until, now)
    await audit.append(
        session,
        _event(
            "sharing.request",
            principal,
            request,
            body.elements,
            access=request.access,
            granted=[e.element for e in elements if e.state == "granted"],
            rejected=[e.element for e in elements if e.state == "rejected"],
            pending=[e.element for e in elements if e.state == "pending"],
        ),
    )
    return _view(request, elements, now, None)


async def decide(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, body: DecisionsBody
) -> SharingRequestOut:
    now = datetime.now(UTC)
    request = await repository.get_request(session, request_id, principal.department_code, lock=True)
    if request is None:
        raise RequestNotFound()
    elements = {e.element: e for e in await repository.request_elements(session, [request.id])}
    errors: list[InvalidParam] = []
    for i, decision in enumerate(body.decisions):
        element = elements.get(decision.element)
        if element is None:
            errors.append(
                InvalidParam(name=f"decisions.{i}.element", reason="is not an element of the request")
            )
        elif not decision.approve and not (decision.reason and decision.reason.strip()):
            errors.append(InvalidParam(name=f"decisions.{i}.reason", reason="a refusal must give its reason"))
    if len({d.element for d in body.decisions}) != len(body.decisions):
        errors.append(InvalidParam(name="decisions", reason="decides an element twice"))
    until = body.valid_until or request.valid_until
    if body.valid_until is not None and not now < body.valid_until <= request.valid_until:
        errors.append(
            InvalidParam(name="valid_until", reason="may shorten the period asked for, not extend it")
        )
    if errors:
        raise InvalidInput("; ".join(f"{e.name}: {e.reason}" for e in errors), errors)
    foreign = [
        d.element
        for d in body.decisions
        if elements[d.element].source_department != principal.department_code
    ]
    if foreign:
        raise NotYourElement(
            f"Your department is not the source of: {', '.join(foreign)}.", extra={"elements": foreign}
        )
    decided = [d.element for d in body.decisions if elements[d.element].state != "pending"]
    if decided:
        raise AlreadyDecided(f"Already decided: {', '.join(decided)}.", extra={"elements": decided})

    approved = []
    for decision in body.decisions:
        element = elements[decision.element]
        element.decided_at, element.decided_by = now, principal.client_id
        if decision.approve:
            element.state, element.valid_until = "granted", until
            approved.append(element)
        else:
            element.state, element.reason = "rejected", (decision.reason or "").strip()
    request.status = status_of([e.state for e in elements.values()])
    if request.status != "pending":
        request.decided_at = now
    await _grant(session, request, approved, until, now)
    await session.flush()
    await audit.append(
        session,
        _event(
            "sharing.decision",
            principal,
            request,
            [d.element for d in body.decisions],
            approved=[e.element for e in approved],
            rejected=[d.element for d in body.decisions if not d.approve],
            valid_until=until.isoformat(),
        ),
    )
    return _view(request, list(elements.values()), now, principal.department_code)


def _sees_all(principal: Principal) -> bool:
    return Role.admin in principal.roles


async def get(session: AsyncSession, principal: Principal, request_id: uuid.UUID) -> SharingRequestOut:
    department = None if _sees_all(principal) else principal.department_code
    request = await repository.get_request(session, request_id, department)
    if request is None:
        raise RequestNotFound()
    elements = await repository.request_elements(session, [request.id])
    return _view(request, elements, datetime.now(UTC), department)


async def page(
    session: AsyncSession,
    principal: Principal,
    *,
    role: str,
    status: str | None,
    overdue: bool,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[SharingRequestOut]:
    now = datetime.now(UTC)
    requests = await repository.page_requests(
        session,
        principal.department_code,
        role=role,
        status=status,
        overdue_at=now if overdue else None,
        before=before,
        limit=limit,
    )
    by_request: dict[uuid.UUID, list[RequestedElement]] = {r.id: [] for r in requests}
    for element in await repository.request_elements(session, list(by_request)):
        by_request[element.request_id].append(element)
    return [_view(r, by_request[r.id], now, principal.department_code) for r in requests]


def _grant_view(
    grant: Grant, elements: Sequence[GrantElement], now: datetime, department: str | None
) -> GrantOut:
    shown = [e for e in elements if shown_to(department, grant.consumer_department, e.source_department)]
    return GrantOut(
        id=grant.id,
        consumer_department=grant.consumer_department,
        resource=grant.resource_code,
        purpose=grant.purpose_code,
        access=Access(grant.access),
        created_at=grant.created_at,
        revoked_at=grant.revoked_at,
        revoked_reason=grant.revoked_reason,
        elements=[
            GrantElementOut(
                element=e.element,
                source_department=e.source_department,
                valid_from=e.valid_from,
                valid_until=e.valid_until,
                revoked_at=e.revoked_at,
                revoked_reason=e.revoked_reason,
                in_force=grant.revoked_at is None
                and e.revoked_at is None
                and e.valid_from <= now < e.valid_until,
            )
            for e in shown
        ],
    )


async def grants(
    session: AsyncSession, principal: Principal, role: str, after: uuid.UUID | None, limit: int
) -> list[GrantOut]:
    department = None if _sees_all(principal) and role == "all" else principal.department_code
    rows = await repository.grants_page(session, department, role, after, limit)
    by_grant: dict[uuid.UUID, list[GrantElement]] = {g.id: [] for g in rows}
    for element in await repository.elements_of_grants(session, list(by_grant)):
        by_grant[element.grant_id].append(element)
    now = datetime.now(UTC)
    return [_grant_view(g, by_grant[g.id], now, department) for g in rows]


async def revoke(session: AsyncSession, principal: Principal, grant_id: uuid.UUID, reason: str) -> GrantOut:
    """An admin revokes the whole grant; a source department revokes the elements it granted."""
    now = datetime.now(UTC)
    grant = await repository.get_grant(session, grant_id, lock=True)
    elements = await repository.elements_of_grants(session, [grant_id]) if grant else []
    is_admin = Role.admin in principal.roles
    sources = {e.source_department for e in elements}
    if grant is None or not (is_admin or principal.department_code in sources):
        raise GrantNotFound()
    if is_admin:
        revoked = await repository.revoke_elements(session, grant_id, None, reason, now)
        await repository.revoke_grant(session, grant_id, reason, now)
    else:
        revoked = await repository.revoke_elements(session, grant_id, principal.department_code, reason, now)
    await audit.append(
        session,
        audit.Event(
            action="grant.revoke",
            department=principal.department_code,
            client_id=principal.client_id,
            purpose=grant.purpose_code,
            grant_id=grant.id,
            resource=grant.resource_code,
            elements=revoked,
            details={"reason": reason, "consumer": grant.consumer_department, "whole_grant": is_admin},
        ),
    )
    await session.refresh(grant)
    refreshed = await repository.elements_of_grants(session, [grant_id])
    return _grant_view(grant, refreshed, now, None if is_admin else principal.department_code)


async def statistics(session: AsyncSession) -> SharingStatistics:
    """Requests by status, overdue ones, and decision turnaround, across all departments."""
    figures = await repository.request_statistics(session, datetime.now(UTC))
    median = figures.pop("median_hours")
    return SharingStatistics(
        **figures, median_hours_to_decision=round(median, 2) if median is not None else None
    )
