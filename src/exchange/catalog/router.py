"""The catalogue API: read by every department system, edited by stewards."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from exchange.auth.dependencies import CurrentPrincipal, require_roles
from exchange.auth.principal import Principal, Role
from exchange.catalog import repository, service
from exchange.catalog.dcat import dcat_catalog
from exchange.catalog.dependencies import IfMatch, etag, expected_version
from exchange.catalog.schemas import (
    CatalogDepartmentList,
    ChangeOut,
    ElementSpec,
    HistoryPage,
    PurposeList,
    PurposeOut,
    ResourceOut,
    ResourcePage,
    ResourceSpec,
    ResourceVersion,
)
from exchange.db.session import DbSession
from exchange.errors import InvalidInput, problem_responses
from exchange.pagination import Cursor, Limit, decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/catalog", tags=["catalog"], responses=problem_responses(401, 403, 422))
Steward = Annotated[Principal, Depends(require_roles(Role.steward))]
AllowBreaking = Annotated[
    bool,
    Query(description="Confirm an edit that moves an element's source department or removes elements."),
]
EDIT_RESPONSES = problem_responses(404, 409, 412, 428)
MAX_VERSION = 2**31 - 1  # versions are INTEGER columns: a larger number is no version, not a database error


def _actor(principal: Principal) -> service.Actor:
    return service.Actor(name=principal.client_id, department=principal.department_code)


async def _edit(
    principal: Steward, if_match: IfMatch = None, allow_breaking: AllowBreaking = False
) -> service.Edit:
    """A steward's edit of an existing resource: If-Match is required, breaking changes must be confirmed."""
    return service.Edit(_actor(principal), expected_version(if_match), allow_breaking)


EditOf = Annotated[service.Edit, Depends(_edit)]


def _with_etag(resource: ResourceOut, response: Response) -> ResourceOut:
    response.headers["ETag"] = etag(resource.version)
    return resource


@router.get(
    "/resources", response_model=ResourcePage, summary="The catalogue's resources, with their elements"
)
async def list_resources(
    session: DbSession, _: CurrentPrincipal, limit: Limit = 100, cursor: Cursor = None
) -> ResourcePage:
    after = decode_cursor(cursor, 1)
    items = await service.list_resources(session, after[0] if after else None, limit + 1)
    next_cursor = encode_cursor([items[limit - 1].code]) if len(items) > limit else None
    return ResourcePage(items=items[:limit], next_cursor=next_cursor)


@router.post(
    "/resources",
    status_code=status.HTTP_201_CREATED,
    response_model=ResourceOut,
    responses=problem_responses(409),
    summary="Add a resource to the catalogue",
)
async def create_resource(
    body: ResourceSpec, session: DbSession, principal: Steward, response: Response
) -> ResourceOut:
    saved = await service.save_resource(session, body, service.Edit(_actor(principal), None), create=True)
    response.headers["Location"] = f"/v1/catalog/resources/{body.code}"
    return _with_etag(saved.resource, response)


@router.get(
    "/resources/{code}",
    response_model=ResourceOut,
    responses=problem_responses(404),
    summary="One resource with its elements; the ETag is its version",
)
async def get_resource(code: str, session: DbSession, _: CurrentPrincipal, response: Response) -> ResourceOut:
    return _with_etag(await service.get_resource(session, code), response)


@router.put(
    "/resources/{code}",
    response_model=ResourceOut,
    responses=EDIT_RESPONSES,
    summary="Replace a resource (If-Match required)",
)
async def replace_resource(
    code: str,
    body: ResourceSpec,
    session: DbSession,
    edit: EditOf,
    response: Response,
) -> ResourceOut:
    if body.code != code:
        raise InvalidInput.one("code", f"the body describes {body.code}, not {code}")
    saved = await service.save_resource(
        session,
        body,
        edit,
    )
    return _with_etag(saved.resource, response)


@router.patch(
    "/resources/{code}",
    response_model=ResourceOut,
    responses=EDIT_RESPONSES,
    summary="Change some fields or elements of a resource (JSON Merge Patch; If-Match required)",
    description=(
        "An RFC 7396 merge patch of the resource document. `elements` may be an object keyed by element "
        "name whose values are merge patches of those elements (`null` removes one; a new name adds one)."
    ),
)
async def patch_resource(
    code: str,
    patch: Annotated[dict[str, Any], Body(media_type="application/merge-patch+json")],
    session: DbSession,
    edit: EditOf,
    response: Response,
) -> ResourceOut:
    saved = await service.patch_resource(
        session,
        code,
        patch,
        edit,
    )
    return _with_etag(saved.resource, response)


@router.delete(
    "/resources/{code}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=EDIT_RESPONSES,
    summary="Remove a resource (If-Match and allow_breaking=true required); its history stays",
)
async def delete_resource(
    code: str,
    session: DbSession,
    edit: EditOf,
) -> None:
    await service.remove_resource(
        session,
        code,
        edit,
    )


@router.put(
    "/resources/{code}/elements/{name}",
    response_model=ResourceOut,
    responses=EDIT_RESPONSES,
    summary="Add or replace one element (If-Match of the resource required)",
)
async def put_element(
    code: str,
    name: str,
    body: ElementSpec,
    session: DbSession,
    edit: EditOf,
    response: Response,
) -> ResourceOut:
    if body.name != name:
        raise InvalidInput.one("name", f"the body describes {body.name}, not {name}")
    saved = await service.save_element(
        session,
        code,
        body,
        edit,
    )
    return _with_etag(saved.resource, response)


@router.patch(
    "/resources/{code}/elements/{name}",
    response_model=ResourceOut,
    responses=EDIT_RESPONSES,
    summary="Change some fields of one element (JSON Merge Patch; If-Match of the resource required)",
)
async def patch_element(
    code: str,
    name: str,
    patch: Annotated[dict[str, Any], Body(media_type="application/merge-patch+json")],
    session: DbSession,
    edit: EditOf,
    response: Response,
) -> ResourceOut:
    saved = await service.patch_element(
        session,
        code,
        name,
        patch,
        edit,
    )
    return _with_etag(saved.resource, response)


@router.delete(
    "/resources/{code}/elements/{name}",
    response_model=ResourceOut,
    responses=EDIT_RESPONSES,
    summary="Remove one element (If-Match and allow_breaking=true required)",
)
async def delete_element(
    code: str,
    name: str,
    session: DbSession,
    edit: EditOf,
    response: Response,
) -> ResourceOut:
    saved = await service.remove_element(
        session,
        code,
        name,
        edit,
    )
    return _with_etag(saved.resource, response)


@router.get(
    "/resources/{code}/history",
    response_model=HistoryPage,
    responses=problem_responses(404),
    summary="Who changed the resource, what and when; newest first",
)
async def resource_history(
    code: str, session: DbSession, _: CurrentPrincipal, limit: Limit = 50, cursor: Cursor = None
) -> HistoryPage:
    before = decode_cursor(cursor, 1)
    changes = await service.history(session, code, int(before[0]) if before else None, limit + 1)
    items = [ChangeOut.model_validate(change) for change in changes[:limit]]
    next_cursor = encode_cursor([items[-1].version]) if len(changes) > limit else None
    return HistoryPage(items=items, next_cursor=next_cursor)


@router.get(
    "/resources/{code}/versions/{version}",
    response_model=ResourceVersion,
    responses=problem_responses(404),
    summary="A resource as it stood at one version (null document: the version that removed it)",
)
async def resource_version(
    code: str,
    version: Annotated[int, Path(ge=1, le=MAX_VERSION, description="A version from the resource's history.")],
    session: DbSession,
    _: CurrentPrincipal,
) -> ResourceVersion:
    change = await service.version(session, code, version)
    return ResourceVersion(
        code=code,
        version=change.version,
        changed_at=change.changed_at,
        actor=change.actor,
        document=ResourceSpec.model_validate(change.snapshot) if change.snapshot is not None else None,
    )


@router.get("/purposes", response_model=PurposeList, summary="The registered purposes (declared uses)")
async def list_purposes(session: DbSession, _: CurrentPrincipal) -> PurposeList:
    return PurposeList(items=[PurposeOut.model_validate(p) for p in await service.purposes(session)])


@router.get(
    "/purposes/{code}", response_model=PurposeOut, responses=problem_responses(404), summary="One purpose"
)
async def get_purpose(code: str, session: DbSession, _: CurrentPrincipal) -> PurposeOut:
    return PurposeOut.model_validate(await service.purpose(session, code))


@router.get("/departments", response_model=CatalogDepartmentList, summary="The departments and their codes")
async def list_departments(session: DbSession, _: CurrentPrincipal) -> CatalogDepartmentList:
    return CatalogDepartmentList.model_validate(
        {"items": [{"code": d.code, "name": d.name} for d in await repository.all_departments(session)]}
    )


@router.get(
    "/dcat",
    summary="The catalogue as DCAT-AP 3.0.1 JSON-LD (inline @context)",
    response_class=JSONResponse,
    responses={200: {"content": {"application/ld+json": {}}, "description": "A dcat:Catalog"}},
)
async def dcat(request: Request, session: DbSession, _: CurrentPrincipal) -> JSONResponse:
    departments = {d.code: d.name for d in await repository.all_departments(session)}
    resources = await service.list_resources(session, None, 10_000)
    document = dcat_catalog(resources, departments, base_url=request.app.state.settings.issuer)
    return JSONResponse(document, media_type="application/ld+json")
