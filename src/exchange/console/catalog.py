"""The catalogue browser and editor: resources, elements with their one source department, history with
diffs; edits go through the catalogue service with the version the steward read (optimistic locking)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from exchange.auth.officers import ActiveSession
from exchange.auth.principal import Principal, Role
from exchange.catalog import repository, service
from exchange.catalog.exceptions import BreakingChange, StaleVersion
from exchange.catalog.schemas import NAME_PATTERN, ElementSpec, ElementType, ResourceOut, Sharing, UpdateCycle
from exchange.console.dependencies import SignedIn, Submitted, attempt, officer_with
from exchange.console.routing import ConsoleRoute
from exchange.console.templating import render
from exchange.db.session import DbSession
from exchange.errors import ExchangeError, InvalidInput, InvalidParam

router = APIRouter(prefix="/console/catalog", route_class=ConsoleRoute, include_in_schema=False)
steward = Depends(officer_with(Role.steward))
NUMBERS = {"length": int, "precision": int, "tolerance_m": float}
TEXTS = ("title", "description", "unit")


def element_document(
    form: FormData | Mapping[str, Any], name: str
) -> tuple[dict[str, Any], list[InvalidParam]]:
    """The element a form describes, as a catalogue document, and the fields it could not even read."""
    problems: list[InvalidParam] = []
    doc: dict[str, Any] = {"name": name}
    for field in TEXTS:
        value = str(form.get(field) or "").strip()
        if value:
            doc[field] = value
    for field in ("type", "source_department", "sharing"):
        doc[field] = str(form.get(field) or "").strip()
    for field, kind in NUMBERS.items():
        raw = str(form.get(field) or "").strip()
        if raw:
            try:
                doc[field] = kind(raw)
            except ValueError:
                problems.append(InvalidParam(name=field, reason="not a number"))
    doc["required"] = form.get("required") == "on"
    doc["open"] = form.get("open") == "on"
    lines = [line.strip() for line in str(form.get("codes") or "").splitlines() if line.strip()]
    if lines:
        codes = []
        for line in lines:
            code, _, title = line.replace("\t", " ").partition(" ")
            codes.append({"code": code, "title": title.strip() or code})
        doc["codes"] = codes
    return doc, problems


def check_element(doc: dict[str, Any], problems: list[InvalidParam]) -> ElementSpec | list[InvalidParam]:
    """The element, or every problem with it, each named by its form field."""
    try:
        element = ElementSpec.model_validate(doc)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            field = str(error["loc"][0]) if error["loc"] else "element"
            problems.append(InvalidParam(name=field, reason=error["msg"].removeprefix("Value error, ")))
        return problems
    return problems or element


def _codes_text(element: ElementSpec | None) -> str:
    if element is None or not element.codes:
        return ""
    return "\n".join(f"{item.code} {item.title}" for item in element.codes)


async def _departments(session: AsyncSession) -> dict[str, str]:
    return {d.code: d.name for d in await repository.all_departments(session)}


@router.get("")
async def resources(request: Request, session: DbSession, active: SignedIn) -> Response:
    items = await service.list_resources(session, None, 10_000)
    return render(request, "catalog_list.html", items=items, departments=await _departments(session))


RESOURCE_FIELDS = ("title", "description", "update_cycle", "method", "condition", "open_condition")


def _resource_values(item: ResourceOut) -> dict[str, Any]:
    return {
        "version": item.version,
        "title": item.title,
        "description": item.description,
        "update_cycle": item.update_cycle.value,
        "method": item.sharing.method,
        "condition": item.sharing.condition or "",
        "open_condition": item.open_condition or "",
    }


async def _resource_page(
    request: Request,
    session: DbSession,
    item: ResourceOut,
    values: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    errors: list[InvalidParam] | None = None,
    conflict: list[Any] | None = None,
) -> Response:
    return render(
        request,
        "catalog_resource.html",
        status_code=status_code,
        resource=item,
        departments=await _departments(session),
        values=values or _resource_values(item),
        errors={e.name.removeprefix("sharing."): e.reason for e in errors or []},
        conflict=conflict,
        cycles=[c.value for c in UpdateCycle],
    )


@router.get("/{code}")
async def resource(code: str, request: Request, session: DbSession, active: SignedIn) -> Response:
    return await _resource_page(request, session, await service.get_resource(session, code))


async def _changes_since(session: AsyncSession, code: str, version: int) -> list[Any]:
    return [c for c in await service.history(session, code, None, 50) if c.version > version]


def _read_version(form: FormData) -> int:
    try:
        return int(str(form.get("version")))
    except ValueError:
        raise InvalidInput.one("version", "the form lost the version it was read at") from None


def _edit(active: ActiveSession, version: int, allow_breaking: bool) -> service.Edit:
    actor = service.Actor(f"console:{active.officer.username}", active.officer.department_code)
    return service.Edit(actor, version, allow_breaking=allow_breaking)


@router.post("/{code}")
async def save_resource(
    code: str, request: Request, session: DbSession, active: Submitted, _: Principal = steward
) -> Response:
    """The resource's own fields (its elements have their own form), as one merge patch."""
    form = await request.form()
    values = {name: str(form.get(name) or "").strip() for name in RESOURCE_FIELDS}
    read_version = _read_version(form)
    patch: dict[str, Any] = {
        "title": values["title"],
        "description": values["description"],
        "update_cycle": values["update_cycle"],
        "sharing": {"method": values["method"], "condition": values["condition"] or None},
        "open_condition": values["open_condition"] or None,
    }
    edit = _edit(active, read_version, allow_breaking=False)
    _saved, error = await attempt(session, lambda: service.patch_resource(session, code, patch, edit))
    if error is None:
        return RedirectResponse(f"/console/catalog/{code}?saved={code}", status_code=303)
    latest = await service.get_resource(session, code)
    shown = values | {"version": read_version}
    if isinstance(error, StaleVersion):
        since = await _changes_since(session, code, read_version)
        shown["version"] = latest.version
        return await _resource_page(request, session, latest, shown, status_code=409, conflict=since)
    if isinstance(error, InvalidInput):
        return await _resource_page(
            request, session, latest, shown, status_code=422, errors=error.invalid_params
        )
    raise error


@router.get("/{code}/history")
async def history(code: str, request: Request, session: DbSession, active: SignedIn) -> Response:
    changes = await service.history(session, code, None, 200)
    return render(
        request,
        "catalog_history.html",
        code=code,
        changes=changes,
        resource=await service.get_resource(session, code),
    )


async def _element_page(
    request: Request,
    session: DbSession,
    resource: ResourceOut,
    values: Mapping[str, Any],
    *,
    new: bool,
    status_code: int = 200,
    errors: list[InvalidParam] | None = None,
    error: ExchangeError | None = None,
    conflict: list[Any] | None = None,
    breaking: BreakingChange | None = None,
) -> Response:
    return render(
        request,
        "catalog_element.html",
        status_code=status_code,
        resource=resource,
        values=values,
        new=new,
        errors={e.name: e.reason for e in errors or []},
        error=error,
        conflict=conflict,
        breaking=breaking,
        departments=await _departments(session),
        types=[t.value for t in ElementType],
        sharings=[s.value for s in Sharing],
    )


def _values_of(element: ElementSpec | None, version: int) -> dict[str, Any]:
    values: dict[str, Any] = element.model_dump(mode="json") if element is not None else {"required": False}
    values["codes"] = _codes_text(element)
    values["version"] = version
    return values


@router.get("/{code}/new-element")
async def new_element(
    code: str, name: Annotated[str, Query(pattern=NAME_PATTERN)], _: Principal = steward
) -> Response:
    return RedirectResponse(f"/console/catalog/{code}/elements/{name}", status_code=303)


@router.get("/{code}/elements/{name}")
async def element_form(
    code: str, name: str, request: Request, session: DbSession, _: Principal = steward
) -> Response:
    current = await service.get_resource(session, code)
    element = current.element(name)
    new = element is None
    return await _element_page(
        request, session, current, _values_of(element, current.version) | {"name": name}, new=new
    )


@router.post("/{code}/elements/{name}/check")
async def check_element_form(
    code: str, name: str, request: Request, active: Submitted, _: Principal = steward
) -> Response:
    """Inline validation while the steward types: the same rules as saving, nothing written."""
    doc, problems = element_document(await request.form(), name)
    checked = check_element(doc, problems)
    errors = {e.name: e.reason for e in checked} if isinstance(checked, list) else {}
    return render(request, "_element_errors.html", errors=errors)


@router.post("/{code}/elements/{name}")
async def save_element(
    code: str, name: str, request: Request, session: DbSession, active: Submitted, _: Principal = steward
) -> Response:
    form = await request.form()
    current = await service.get_resource(session, code)
    new = current.element(name) is None
    values: dict[str, Any] = {**form, "name": name}
    values["required"] = form.get("required") == "on"
    values["open"] = form.get("open") == "on"
    doc, problems = element_document(form, name)
    checked = check_element(doc, problems)
    if isinstance(checked, list):
        return await _element_page(
            request, session, current, values, new=new, status_code=422, errors=checked
        )
    read_version = _read_version(form)
    edit = _edit(active, read_version, allow_breaking=form.get("allow_breaking") == "on")
    _saved, error = await attempt(session, lambda: service.save_element(session, code, checked, edit))
    if isinstance(error, StaleVersion):
        latest = await service.get_resource(session, code)
        since = await _changes_since(session, code, read_version)
        values["version"] = latest.version
        return await _element_page(request, session, latest, values, new=new, status_code=409, conflict=since)
    if isinstance(error, BreakingChange):
        return await _element_page(
            request, session, current, values, new=new, status_code=409, breaking=error
        )
    if isinstance(error, InvalidInput):
        return await _element_page(
            request,
            session,
            current,
            values,
            new=new,
            status_code=422,
            errors=error.invalid_params,
            error=error,
        )
    if error is not None:
        raise error
    return RedirectResponse(f"/console/catalog/{code}?saved={name}", status_code=303)


@router.post("/{code}/elements/{name}/remove")
async def remove_element(
    code: str, name: str, request: Request, session: DbSession, active: Submitted, _: Principal = steward
) -> Response:
    form = await request.form()
    if form.get("allow_breaking") != "on":
        raise InvalidInput.one("allow_breaking", "removing an element must be confirmed")
    edit = _edit(active, _read_version(form), allow_breaking=True)
    await service.remove_element(session, code, name, edit)
    return RedirectResponse(f"/console/catalog/{code}", status_code=303)
