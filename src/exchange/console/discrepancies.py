"""The discrepancies board: what the department must settle, what it reported, and (oversight) all of them;
settling goes through the discrepancy service, as the API does."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from exchange.access.dependencies import DeclaredUse
from exchange.auth.principal import Principal, Role
from exchange.catalog import repository as catalog_repository
from exchange.catalog import service as catalog
from exchange.catalog.schemas import ElementType
from exchange.console.dependencies import Submitted, attempt, officer_with
from exchange.console.routing import ConsoleRoute
from exchange.console.templating import render
from exchange.crosscheck import discrepancies
from exchange.crosscheck.schemas import ResolveBody
from exchange.db.session import DbSession
from exchange.errors import InvalidParam

router = APIRouter(prefix="/console/discrepancies", route_class=ConsoleRoute, include_in_schema=False)
Viewer = Annotated[
    Principal, Depends(officer_with(Role.approver, Role.consumer, Role.steward, Role.admin, Role.auditor))
]
Settler = Annotated[Principal, Depends(officer_with(Role.approver, Role.consumer))]
PAGE = 100


STRUCTURED = frozenset({ElementType.integer, ElementType.decimal, ElementType.boolean, ElementType.geometry})


def corrected_value(raw: str, kind: ElementType | None) -> Any:
    """A corrected value as typed: text for textual elements (a phone number stays text), JSON for numbers,
    true/false and geometries when it parses; the publishing rules then check it like any value."""
    text = raw.strip()
    if kind not in STRUCTURED:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


@router.get("")
async def board(
    request: Request,
    session: DbSession,
    principal: Viewer,
    role: Annotated[str | None, Query(pattern="^(source|reporter|all)$")] = None,
    status: Annotated[str | None, Query(pattern="^(open|confirmed|corrected|withdrawn)$")] = "open",
    overdue: bool = False,
) -> Response:
    chosen = role or ("all" if principal.has_any(discrepancies.OVERSIGHT) else "source")
    items, more = await discrepancies.read_page(
        session, principal, role=chosen, status=status or None, overdue=overdue, limit=PAGE
    )
    names = {d.code: d.name for d in await catalog_repository.all_departments(session)}
    return render(
        request,
        "discrepancies.html",
        items=items,
        more=more,
        role=chosen,
        status=status,
        overdue=overdue,
        departments=names,
    )


async def _page(
    request: Request,
    session: DbSession,
    principal: Principal,
    discrepancy_id: uuid.UUID,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    item = await discrepancies.read_one(session, principal, discrepancy_id)
    names = {d.code: d.name for d in await catalog_repository.all_departments(session)}
    return render(
        request,
        "discrepancy.html",
        status_code=status_code,
        item=item,
        departments=names,
        errors=errors or {},
        is_source=item.source_department == principal.department_code,
    )


@router.get("/{discrepancy_id}")
async def discrepancy(
    discrepancy_id: uuid.UUID, request: Request, session: DbSession, principal: Viewer
) -> Response:
    return await _page(request, session, principal, discrepancy_id)


@router.post("/{discrepancy_id}/resolve")
async def resolve(
    discrepancy_id: uuid.UUID, request: Request, session: DbSession, active: Submitted, principal: Settler
) -> Response:
    form = await request.form()
    outcome = str(form.get("outcome") or "")
    fields: dict[str, Any] = {"outcome": outcome, "note": str(form.get("note") or "").strip()}
    if outcome == "corrected":
        doubted = await discrepancies.read_one(session, principal, discrepancy_id)
        element = (await catalog.get_resource(session, doubted.resource)).element(doubted.element)
        fields["value"] = corrected_value(str(form.get("value") or ""), element.type if element else None)
    try:
        body = ResolveBody.model_validate(fields)
    except ValidationError as exc:
        errors = {str(e["loc"][0]): e["msg"] for e in exc.errors(include_url=False)}
        return await _page(request, session, principal, discrepancy_id, errors, 422)
    use = DeclaredUse(None, None, active.officer.username)
    review_days = request.app.state.settings.discrepancy_working_days
    _, error = await attempt(
        session, lambda: discrepancies.resolve(session, principal, use, discrepancy_id, body, review_days)
    )
    if error is not None:
        problems: list[InvalidParam] = error.invalid_params or [
            InvalidParam(name="outcome", reason=error.detail)
        ]
        return await _page(
            request, session, principal, discrepancy_id, {p.name: p.reason for p in problems}, error.status
        )
    return RedirectResponse(f"/console/discrepancies/{discrepancy_id}?settled=1", status_code=303)
