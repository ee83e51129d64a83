"""Sharing requests: the providers' inbox (decide per element, with reasons and deadlines), the consumers'
outbox and new requests, and grants with revocation. Everything goes through the sharing service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from exchange.access import sharing
from exchange.access.policy import Access
from exchange.access.schemas import DecisionsBody, ElementDecision, SharingRequestCreate
from exchange.auth.principal import Principal, Role
from exchange.catalog import repository as catalog_repository
from exchange.catalog import service as catalog
from exchange.console.dependencies import Submitted, attempt, officer_with
from exchange.console.routing import ConsoleRoute
from exchange.console.templating import CITY_TIME, render
from exchange.db.session import DbSession
from exchange.errors import InvalidInput, InvalidParam

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
Decider = Annotated[Principal, Depends(officer_with(Role.approver, Role.steward, Role.admin))]
Requester = Annotated[Principal, Depends(officer_with(Role.consumer))]
Party = Annotated[
    Principal, Depends(officer_with(Role.approver, Role.steward, Role.consumer, Role.admin, Role.auditor))
]
PAGE = 100


def end_of_day(value: str) -> datetime:
    """A date picked in the form means the end of that day in the city's time zone."""
    return datetime.combine(datetime.strptime(value, "%Y-%m-%d").date(), time(23, 59, 59), CITY_TIME)


async def _names(session: DbSession) -> dict[str, str]:
    return {d.code: d.name for d in await catalog_repository.all_departments(session)}


@router.get("/sharing")
async def requests(
    request: Request,
    session: DbSession,
    principal: Party,
    box: Annotated[str, Query(pattern="^(inbox|outbox)$")] = "inbox",
    status: Annotated[str | None, Query(pattern="^(pending|granted|partially_granted|rejected)$")] = None,
    overdue: bool = False,
) -> Response:
    role = "provider" if box == "inbox" else "consumer"
    items = await sharing.page(
        session, principal, role=role, status=status or None, overdue=overdue, before=None, limit=PAGE
    )
    return render(
        request,
        "sharing_list.html",
        box=box,
        status=status,
        overdue=overdue,
        items=items,
        departments=await _names(session),
    )


@router.get("/sharing/new")
async def new_request_form(
    request: Request,
    session: DbSession,
    principal: Requester,
    resource: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    return await _new_request_page(request, session, {"resource": resource or ""})


async def _new_request_page(
    request: Request,
    session: DbSession,
    values: dict[str, object],
    errors: list[InvalidParam] | None = None,
    status_code: int = 200,
) -> Response:
    resources = await catalog.list_resources(session, None, 10_000)
    chosen = next((r for r in resources if r.code == values.get("resource")), None)
    return render(
        request,
        "sharing_new.html",
        status_code=status_code,
        resources=resources,
        chosen=chosen,
        purposes=await catalog.purposes(session),
        values=values,
        errors={e.name: e.reason for e in errors or []},
        accesses=[a.value for a in Access],
    )


@router.post("/sharing/new")
async def create_request(
    request: Request, session: DbSession, active: Submitted, principal: Requester
) -> Response:
    form = await request.form()
    values: dict[str, object] = {k: v for k, v in form.items() if k != "elements"}
    elements = [str(e) for e in form.getlist("elements")]
    values["elements"] = elements
    errors: list[InvalidParam] = []
    try:
        valid_until = end_of_day(str(form.get("valid_until") or ""))
    except ValueError:
        errors.append(InvalidParam(name="valid_until", reason="choose a date"))
        valid_until = datetime.now(UTC)
    try:
        body = SharingRequestCreate(
            resource=str(form.get("resource") or ""),
            elements=elements,
            access=Access(str(form.get("access") or "read"))
            if form.get("access") in set(Access)
            else Access.read,
            purpose=str(form.get("purpose") or ""),
            legal_basis=str(form.get("legal_basis") or ""),
            justification=str(form.get("justification") or ""),
            valid_until=valid_until,
            case_reference=str(form.get("case_reference") or "") or None,
        )
    except ValidationError as exc:
        errors += [
            InvalidParam(name=str(e["loc"][0]), reason=e["msg"]) for e in exc.errors(include_url=False)
        ]
        return await _new_request_page(request, session, values, errors, 422)
    if errors:
        return await _new_request_page(request, session, values, errors, 422)
    settings = request.app.state.settings
    created, error = await attempt(session, lambda: sharing.create(session, principal, body, settings))
    if isinstance(error, InvalidInput):
        return await _new_request_page(request, session, values, error.invalid_params, 422)
    if error is not None:
        raise error
    assert created is not None
    return RedirectResponse(f"/console/sharing/{created.id}", status_code=303)


@router.get("/sharing/{request_id}")
async def request_page(
    request_id: uuid.UUID, request: Request, session: DbSession, principal: Party
) -> Response:
    item = await sharing.get(session, principal, request_id)
    return render(
        request,
        "sharing_request.html",
        item=item,
        departments=await _names(session),
        errors={},
        error=None,
    )


@router.post("/sharing/{request_id}/decisions")
async def decide(
    request_id: uuid.UUID, request: Request, session: DbSession, active: Submitted, principal: Decider
) -> Response:
    """One decision per element the officer's department is the source of: approve, or reject with reason."""
    form = await request.form()
    decisions = []
    for element in form.getlist("element"):
        choice = form.get(f"decision.{element}")
        if choice not in {"approve", "reject"}:
            continue
        reason = str(form.get(f"reason.{element}") or "").strip() or None
        decisions.append(ElementDecision(element=str(element), approve=choice == "approve", reason=reason))
    errors: list[InvalidParam] = []
    valid_until = None
    if form.get("valid_until"):
        try:
            valid_until = end_of_day(str(form.get("valid_until")))
        except ValueError:
            errors.append(InvalidParam(name="valid_until", reason="choose a date"))
    if not decisions:
        errors.append(InvalidParam(name="decisions", reason="decide at least one element"))
    error = None
    if not errors:
        body = DecisionsBody(decisions=decisions, valid_until=valid_until)
        _, error = await attempt(session, lambda: sharing.decide(session, principal, request_id, body))
        if error is None:
            return RedirectResponse(f"/console/sharing/{request_id}?decided=1", status_code=303)
        if isinstance(error, InvalidInput):
            errors = list(error.invalid_params or [])
    item = await sharing.get(session, principal, request_id)
    named = {}
    for problem in errors:
        index = problem.name.split(".")[1] if problem.name.startswith("decisions.") else None
        key = decisions[int(index)].element if index is not None and index.isdigit() else problem.name
        named[key] = problem.reason
    return render(
        request,
        "sharing_request.html",
        status_code=error.status if error is not None and not isinstance(error, InvalidInput) else 422,
        item=item,
        departments=await _names(session),
        errors=named,
        error=error,
    )


@router.get("/grants")
async def grants(
    request: Request,
    session: DbSession,
    principal: Party,
    role: Annotated[str, Query(pattern="^(provider|consumer|all)$")] = "provider",
) -> Response:
    if role == "all" and Role.admin not in principal.roles:
        raise InvalidInput.one("role", "only admins list every grant")
    items = await sharing.grants(session, principal, role, None, PAGE)
    return render(request, "grants.html", items=items, role=role, departments=await _names(session))


@router.post("/grants/{grant_id}/revoke")
async def revoke(
    grant_id: uuid.UUID,
    session: DbSession,
    active: Submitted,
    principal: Decider,
    reason: Annotated[str, Form(min_length=1, max_length=2000)],
) -> Response:
    await sharing.revoke(session, principal, grant_id, reason.strip())
    return RedirectResponse("/console/grants?role=provider&revoked=1", status_code=303)
