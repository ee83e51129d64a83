"""The auditors' pages: search with the API's filters, export, the data-subject view and chain verification.
Subject ids travel in POST bodies only, never in URLs; every read of the log is itself logged."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from exchange.audit import search as reading
from exchange.audit.schemas import EventSearch, SubjectQuery
from exchange.audit.search import EXPORT_MEDIA_TYPES, ExportFormat
from exchange.auth.principal import Principal, Role
from exchange.console.dependencies import Submitted, officer_with
from exchange.console.routing import ConsoleRoute
from exchange.console.templating import CITY_TIME, render
from exchange.db.session import DbSession

router = APIRouter(prefix="/console/audit", route_class=ConsoleRoute, include_in_schema=False)
Auditor = Annotated[Principal, Depends(officer_with(Role.auditor))]
FILTERS = (
    "department",
    "client_id",
    "officer",
    "action",
    "resource",
    "subject_id",
    "element",
    "purpose",
    "case",
)
TIMES = ("since", "until")


def local_datetime(value: str) -> datetime:
    """A datetime-local field, read as the city's time."""
    return datetime.fromisoformat(value).replace(tzinfo=CITY_TIME)


def search_of(form: FormData) -> tuple[EventSearch | None, dict[str, str], dict[str, str]]:
    """The search a form describes, the values to show again, and the fields that are wrong."""
    values = {k: str(form.get(k) or "").strip() for k in (*FILTERS, *TIMES, "outcome", "cursor", "limit")}
    fields: dict[str, Any] = {k: values[k] for k in FILTERS if values[k]}
    errors: dict[str, str] = {}
    for name in TIMES:
        if values[name]:
            try:
                fields[name] = local_datetime(values[name])
            except ValueError:
                errors[name] = "not a date and time"
    if values["outcome"]:
        fields["outcome"] = values["outcome"]
    if values["cursor"]:
        fields["cursor"] = values["cursor"]
    fields["limit"] = values["limit"] or 50
    try:
        search = EventSearch.model_validate(fields)
    except ValidationError as exc:
        errors |= {str(e["loc"][0]): e["msg"] for e in exc.errors(include_url=False)}
        return None, values, errors
    return (None if errors else search), values, errors


def _page(request: Request, status_code: int = 200, **context: Any) -> Response:
    defaults: dict[str, Any] = {
        "values": {},
        "errors": {},
        "page": None,
        "subject": None,
        "verification": None,
    }
    return render(request, "audit.html", status_code=status_code, **(defaults | context))


@router.get("")
async def audit_page(request: Request, principal: Auditor) -> Response:
    return _page(request)


@router.post("")
async def search(request: Request, session: DbSession, active: Submitted, principal: Auditor) -> Response:
    query, values, errors = search_of(await request.form())
    if query is None:
        return _page(request, 422, values=values, errors=errors)
    page = await reading.search(session, principal, query)
    return _page(request, values=values, page=page)


@router.post("/export", response_model=None)
async def export(
    request: Request, session: DbSession, active: Submitted, principal: Auditor
) -> Response | StreamingResponse:
    form = await request.form()
    query, values, errors = search_of(form)
    if query is None:
        return _page(request, 422, values=values, errors=errors)
    format_ = ExportFormat.csv if form.get("format") == "csv" else ExportFormat.ndjson
    rows = await reading.export(session, request.app.state.sessionmaker, principal, query, format_)
    suffix = "csv" if format_ is ExportFormat.csv else "ndjson"
    return StreamingResponse(
        rows,
        media_type=EXPORT_MEDIA_TYPES[format_],
        headers={"Content-Disposition": f'attachment; filename="audit-events.{suffix}"'},
    )


@router.post("/subject")
async def subject(request: Request, session: DbSession, active: Submitted, principal: Auditor) -> Response:
    form = await request.form()
    value = str(form.get("subject_id") or "").strip()
    try:
        query = SubjectQuery(subject_id=value)
    except ValidationError:
        return _page(request, 422, errors={"subject": "enter the subject's identifier"})
    accesses = await reading.subject_accesses(session, principal, query)
    return _page(request, subject=accesses)


@router.post("/verify")
async def verify(request: Request, session: DbSession, active: Submitted, principal: Auditor) -> Response:
    verification = await reading.verify(session, principal, None)
    if request.headers.get("HX-Request"):
        return render(request, "_verification.html", verification=verification)
    return _page(request, verification=verification)
