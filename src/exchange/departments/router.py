"""Admin API for departments and their OAuth2 clients."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from exchange.audit import service as audit
from exchange.auth.dependencies import require_roles
from exchange.auth.models import Client
from exchange.auth.principal import Principal, Role
from exchange.db.session import DbSession
from exchange.departments import repository, service
from exchange.departments.schemas import (
    ClientCreate,
    ClientCreated,
    ClientList,
    ClientOut,
    DepartmentCreate,
    DepartmentOut,
    DepartmentPage,
)
from exchange.errors import problem_responses
from exchange.pagination import Cursor, Limit, decode_cursor, encode_cursor

router = APIRouter(
    prefix="/v1/departments",
    tags=["departments"],
    responses=problem_responses(401, 403, 422),
)
admin_only = [Depends(require_roles(Role.admin))]
Admin = Annotated[Principal, Depends(require_roles(Role.admin))]


def _admin_event(admin: Principal, action: str, details: dict[str, Any]) -> audit.Event:
    return audit.Event(
        action=action, department=admin.department_code, client_id=admin.client_id, details=details
    )


def _client_out(client: Client) -> ClientOut:
    return ClientOut(
        client_id=client.client_id,
        department_code=client.department_code,
        name=client.name,
        roles=[Role(role) for role in client.roles],
        auth_method=service.auth_method(client),
        created_at=client.created_at,
        disabled_at=client.disabled_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DepartmentOut,
    responses=problem_responses(409),
    summary="Register a department",
)
async def create_department(body: DepartmentCreate, session: DbSession, admin: Admin) -> DepartmentOut:
    department = await service.create_department(session, body.code, body.name)
    await audit.append(
        session, _admin_event(admin, "admin.department.create", {"department": department.code})
    )
    return DepartmentOut.model_validate(department)


@router.get(
    "",
    response_model=DepartmentPage,
    dependencies=[Depends(require_roles(Role.admin, Role.steward, Role.auditor))],
    summary="List departments",
)
async def list_departments(session: DbSession, limit: Limit = 100, cursor: Cursor = None) -> DepartmentPage:
    after = decode_cursor(cursor, 1)
    rows = await repository.page_departments(session, after[0] if after else None, limit + 1)
    items = [DepartmentOut.model_validate(row) for row in rows[:limit]]
    next_cursor = encode_cursor([items[-1].code]) if len(rows) > limit else None
    return DepartmentPage(items=items, next_cursor=next_cursor)


@router.get(
    "/{code}",
    response_model=DepartmentOut,
    dependencies=[Depends(require_roles(Role.admin, Role.steward, Role.auditor))],
    responses=problem_responses(404),
    summary="One department",
)
async def get_department(code: str, session: DbSession) -> DepartmentOut:
    return DepartmentOut.model_validate(await service.get_department(session, code))


@router.post(
    "/{code}/clients",
    status_code=status.HTTP_201_CREATED,
    response_model=ClientCreated,
    responses=problem_responses(404),
    summary="Create client credentials for one of the department's systems",
    description="Without `public_jwk` the answer carries `client_secret`, shown this once.",
)
async def create_client(
    code: str, body: ClientCreate, session: DbSession, response: Response, admin: Admin
) -> ClientCreated:
    created = await service.create_client(
        session, code, name=body.name, roles=body.roles, public_jwk=body.public_jwk
    )
    details = {"department": code, "client": created.client.client_id, "roles": created.client.roles}
    await audit.append(session, _admin_event(admin, "admin.client.create", details))
    response.headers["Cache-Control"] = "no-store"
    return ClientCreated(**_client_out(created.client).model_dump(), client_secret=created.secret)


@router.get(
    "/{code}/clients",
    response_model=ClientList,
    dependencies=admin_only,
    responses=problem_responses(404),
    summary="The department's clients (never their secrets)",
)
async def list_clients(code: str, session: DbSession) -> ClientList:
    return ClientList(items=[_client_out(client) for client in await service.list_clients(session, code)])


@router.post(
    "/{code}/clients/{client_id}:disable",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404),
    summary="Disable a client: its tokens stop working at once",
)
async def disable_client(code: str, client_id: str, session: DbSession, admin: Admin) -> None:
    await service.disable_client(session, code, client_id)
    await audit.append(
        session, _admin_event(admin, "admin.client.disable", {"department": code, "client": client_id})
    )
