"""All SQL of the catalogue."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.catalog.models import CatalogChange, Element, Purpose, Resource
from exchange.catalog.schemas import (
    DepartmentSpec,
    ElementSpec,
    PurposeSpec,
    ResourceOut,
    ResourceSpec,
    SharingOut,
    classification,
    resource_sharing,
)
from exchange.departments.models import Department


def spec_from_rows(resource: Resource, elements: Sequence[Element]) -> ResourceSpec:
    return ResourceSpec.model_validate(
        {
            "code": resource.code,
            "national_code": resource.national_code,
            "title": resource.title,
            "description": resource.description,
            "subject_type": resource.subject_type,
            "subject_id_type": resource.subject_id_type,
            "owner_department": resource.owner_department,
            "format": {"type": resource.format_type, "detail": resource.format_detail},
            "sharing": {"condition": resource.sharing_condition, "method": resource.sharing_method},
            "open_condition": resource.open_condition,
            "update_cycle": resource.update_cycle,
            "published_on": resource.published_on,
            "related": resource.related,
            "elements": [
                {
                    "name": e.name,
                    "title": e.title,
                    "description": e.description,
                    "type": e.type,
                    "length": e.length,
                    "codes": e.codes,
                    "unit": e.unit,
                    "precision": e.precision,
                    "tolerance_m": e.tolerance_m,
                    "required": e.required,
                    "source_department": e.source_department,
                    "sharing": e.sharing,
                    "open": e.open,
                }
                for e in sorted(elements, key=lambda e: e.position)
            ],
        }
    )


def resource_out(spec: ResourceSpec, resource: Resource) -> ResourceOut:
    return ResourceOut.model_validate(
        spec.model_dump()
        | {
            "sharing": SharingOut(**spec.sharing.model_dump(), type=resource_sharing(spec.elements)),
            "open": any(element.open for element in spec.elements),
            "classification": classification(spec.national_code),
            "version": resource.version,
            "updated_at": resource.updated_at,
        }
    )


async def load_resources(
    session: AsyncSession,
    codes: Sequence[str] | None = None,
    *,
    after: str | None = None,
    limit: int | None = None,
) -> list[tuple[Resource, ResourceSpec]]:
    """Resources with their elements, in two queries whatever their number."""
    query = select(Resource).order_by(Resource.code)
    if codes is not None:
        query = query.where(Resource.code.in_(codes))
    if after is not None:
        query = query.where(Resource.code > after)
    if limit is not None:
        query = query.limit(limit)
    resources = list(await session.scalars(query))
    if not resources:
        return []
    elements: dict[str, list[Element]] = {r.code: [] for r in resources}
    for element in await session.scalars(select(Element).where(Element.resource_code.in_(list(elements)))):
        elements[element.resource_code].append(element)
    return [(r, spec_from_rows(r, elements[r.code])) for r in resources]


async def resource_codes(session: AsyncSession) -> list[str]:
    return list(await session.scalars(select(Resource.code).order_by(Resource.code)))


async def resource_version(session: AsyncSession, code: str) -> int | None:
    return await session.scalar(select(Resource.version).where(Resource.code == code))


async def lock_resource(session: AsyncSession, code: str) -> Resource | None:
    """The resource row, locked until the transaction ends, so concurrent edits queue up behind it."""
    return await session.scalar(select(Resource).where(Resource.code == code).with_for_update())


async def national_code_owner(session: AsyncSession, national_code: str) -> str | None:
    return await session.scalar(select(Resource.code).where(Resource.national_code == national_code))


def _resource_values(spec: ResourceSpec) -> dict[str, Any]:
    return {
        "national_code": spec.national_code,
        "title": spec.title,
        "description": spec.description,
        "subject_type": spec.subject_type.value,
        "subject_id_type": spec.subject_id_type.value,
        "owner_department": spec.owner_department,
        "format_type": spec.format.type.value,
        "format_detail": spec.format.detail,
        "sharing_condition": spec.sharing.condition,
        "sharing_method": spec.sharing.method,
        "open_condition": spec.open_condition,
        "update_cycle": spec.update_cycle.value,
        "published_on": spec.published_on,
        "related": spec.related,
    }


def _element_values(code: str, position: int, element: ElementSpec) -> dict[str, Any]:
    return {
        "resource_code": code,
        "name": element.name,
        "position": position,
        "title": element.title,
        "description": element.description,
        "type": element.type.value,
        "length": element.length,
        "codes": [item.model_dump() for item in element.codes] if element.codes is not None else None,
        "unit": element.unit,
        "precision": element.precision,
        "tolerance_m": element.tolerance_m,
        "required": element.required,
        "source_department": element.source_department,
        "sharing": element.sharing.value,
        "open": element.open,
    }


async def write_resource(session: AsyncSession, spec: ResourceSpec, version: int) -> Resource:
    """Insert or overwrite the resource and its elements (one statement each, plus one delete)."""
    values = _resource_values(spec)
    resource = await session.scalar(
        insert(Resource)
        .values(code=spec.code, version=version, **values)
        .on_conflict_do_update(
            index_elements=[Resource.code], set_=values | {"version": version, "updated_at": func.now()}
        )
        .returning(Resource)
        .execution_options(populate_existing=True)
    )
    assert resource is not None
    rows = [_element_values(spec.code, i, element) for i, element in enumerate(spec.elements)]
    statement = insert(Element).values(rows)
    await session.execute(
        statement.on_conflict_do_update(
            constraint="pk_elements",
            set_={
                column: statement.excluded[column]
                for column in rows[0]
                if column not in {"resource_code", "name"}
            },
        )
    )
    await session.execute(
        delete(Element).where(
            Element.resource_code == spec.code,
            Element.name.not_in([element.name for element in spec.elements]),
        )
    )
    return resource


async def delete_resource(session: AsyncSession, code: str) -> None:
    await session.execute(delete(Resource).where(Resource.code == code))


async def add_change(
    session: AsyncSession,
    *,
    code: str,
    version: int,
    actor: str,
    actor_department: str | None,
    breaking: bool,
    changes: list[dict[str, Any]],
    snapshot: dict[str, Any] | None,
) -> CatalogChange:
    change = CatalogChange(
        resource_code=code,
        version=version,
        actor=actor,
        actor_department=actor_department,
        breaking=breaking,
        changes=changes,
        snapshot=snapshot,
    )
    session.add(change)
    await session.flush()
    return change


async def page_history(
    session: AsyncSession, code: str, before: int | None, limit: int
) -> list[CatalogChange]:
    query = (
        select(CatalogChange)
        .where(CatalogChange.resource_code == code)
        .order_by(CatalogChange.version.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(CatalogChange.version < before)
    return list(await session.scalars(query))


async def get_change(session: AsyncSession, code: str, version: int) -> CatalogChange | None:
    return await session.scalar(
        select(CatalogChange).where(CatalogChange.resource_code == code, CatalogChange.version == version)
    )


async def last_version(session: AsyncSession, code: str) -> int:
    """The highest version ever recorded, so a re-created resource continues its history."""
    return int(
        await session.scalar(
            select(func.coalesce(func.max(CatalogChange.version), 0)).where(
                CatalogChange.resource_code == code
            )
        )
        or 0
    )


async def all_purposes(session: AsyncSession) -> list[Purpose]:
    return list(await session.scalars(select(Purpose).order_by(Purpose.code)))


async def get_purpose(session: AsyncSession, code: str) -> Purpose | None:
    return await session.get(Purpose, code)


async def upsert_purposes(session: AsyncSession, purposes: Iterable[PurposeSpec]) -> None:
    rows = [purpose.model_dump() for purpose in purposes]
    if not rows:
        return
    statement = insert(Purpose).values(rows)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[Purpose.code],
            set_={
                "title": statement.excluded.title,
                "legal_basis": statement.excluded.legal_basis,
                "description": statement.excluded.description,
                "updated_at": func.now(),
            },
        )
    )


async def delete_purposes(session: AsyncSession, codes: Sequence[str]) -> None:
    if codes:
        await session.execute(delete(Purpose).where(Purpose.code.in_(codes)))


async def all_departments(session: AsyncSession) -> list[Department]:
    return list(await session.scalars(select(Department).order_by(Department.code)))


async def known_departments(session: AsyncSession, codes: Iterable[str]) -> set[str]:
    wanted = set(codes)
    if not wanted:
        return set()
    return set(await session.scalars(select(Department.code).where(Department.code.in_(wanted))))


async def upsert_departments(session: AsyncSession, departments: Iterable[DepartmentSpec]) -> None:
    rows = [department.model_dump() for department in departments]
    if not rows:
        return
    statement = insert(Department).values(rows)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[Department.code], set_={"name": statement.excluded.name}
        )
    )
