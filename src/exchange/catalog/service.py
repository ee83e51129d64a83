"""The catalogue's rules: one source per element, versioned edits with optimistic locking, history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.audit import service as audit
from exchange.catalog import repository
from exchange.catalog.diff import Change, diff_resource, diff_values, is_breaking
from exchange.catalog.exceptions import (
    BreakingChange,
    ElementNotFound,
    PurposeNotFound,
    ResourceExists,
    ResourceNotFound,
    StaleVersion,
    VersionNotFound,
)
from exchange.catalog.models import CatalogChange, Purpose
from exchange.catalog.schemas import DepartmentSpec, ElementSpec, PurposeSpec, ResourceOut, ResourceSpec
from exchange.errors import InvalidInput, InvalidParam


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a catalogue edit: a steward's client, or an operator on the command line."""

    name: str
    department: str | None = None


@dataclass(frozen=True, slots=True)
class Edit:
    """One catalogue edit: who makes it, the version they read (If-Match), and whether they confirmed a
    breaking change. ``expected_version`` None skips the check; only the catalogue-as-code loader does that,
    because its files are the authority."""

    actor: Actor
    expected_version: int | None
    allow_breaking: bool = False


@dataclass(frozen=True, slots=True)
class Saved:
    resource: ResourceOut
    changes: list[Change]


def document(spec: ResourceSpec) -> dict[str, Any]:
    """The JSON form a resource is diffed, snapshotted and exported in."""
    return spec.model_dump(mode="json", exclude_none=True)


def _element_names(loc: Sequence[int | str], doc: Mapping[str, Any]) -> str:
    parts = [str(p) for p in loc]
    elements = doc.get("elements")
    index = loc[1] if len(loc) > 1 and loc[0] == "elements" else None
    if isinstance(index, int) and isinstance(elements, list) and index < len(elements):
        named = elements[index]
        if isinstance(named, Mapping) and isinstance(named.get("name"), str):
            parts[1] = named["name"]
    return ".".join(parts) or "body"


def parse_resource(doc: Mapping[str, Any]) -> ResourceSpec:
    """Validate a resource document; errors name elements by name (``elements.sex.codes``), not index."""
    try:
        return ResourceSpec.model_validate(doc)
    except ValidationError as exc:
        params = [
            InvalidParam(name=_element_names(err["loc"], doc), reason=err["msg"])
            for err in exc.errors(include_url=False)
        ]
        raise InvalidInput("; ".join(f"{p.name}: {p.reason}" for p in params), params) from None


async def _check_references(session: AsyncSession, spec: ResourceSpec) -> None:
    """Every department the resource names must be registered with the hub."""
    named = {spec.owner_department} | {element.source_department for element in spec.elements}
    missing = named - await repository.known_departments(session, named)
    if not missing:
        return
    params = []
    if spec.owner_department in missing:
        params.append(
            InvalidParam(name="owner_department", reason=f"{spec.owner_department} is not a department")
        )
    params += [
        InvalidParam(
            name=f"elements.{element.name}.source_department",
            reason=f"{element.source_department} is not a department",
        )
        for element in spec.elements
        if element.source_department in missing
    ]
    raise InvalidInput("The resource names departments the hub does not know.", params)


def _edit_event(edit: Edit, code: str, version: int, changes: Sequence[Change]) -> audit.Event:
    elements = sorted(
        {
            c.path.split(".")[1]
            for c in changes
            if c.path.startswith("elements.") and c.path != "elements.order"
        }
    )
    return audit.Event(
        action="catalog.edit",
        department=edit.actor.department,
        client_id=edit.actor.name[:64],
        resource=code,
        elements=elements,
        details={
            "version": version,
            "changes": len(changes),
            "breaking": any(is_breaking(c) for c in changes),
        },
    )


async def _current_spec(session: AsyncSession, code: str) -> ResourceSpec:
    loaded = await repository.load_resources(session, [code])
    if not loaded:
        raise ResourceNotFound(code)
    return loaded[0][1]


async def get_resource(session: AsyncSession, code: str) -> ResourceOut:
    loaded = await repository.load_resources(session, [code])
    if not loaded:
        raise ResourceNotFound(code)
    resource, spec = loaded[0]
    return repository.resource_out(spec, resource)


async def list_resources(session: AsyncSession, after: str | None, limit: int) -> list[ResourceOut]:
    return [
        repository.resource_out(spec, resource)
        for resource, spec in await repository.load_resources(session, after=after, limit=limit)
    ]


async def save_resource(
    session: AsyncSession, spec: ResourceSpec, edit: Edit, *, create: bool = False
) -> Saved:
    """Create or replace a resource as one new version, or change nothing if nothing differs."""
    row = await repository.lock_resource(session, spec.code)
    if create and row is not None:
        raise ResourceExists(f"The catalogue already has a resource {spec.code}; edit it with PUT or PATCH.")
    if not create and row is None:
        raise ResourceNotFound(spec.code)
    if row is not None and edit.expected_version is not None and row.version != edit.expected_version:
        raise StaleVersion(spec.code, row.version)
    await _check_references(session, spec)
    holder = await repository.national_code_owner(session, spec.national_code)
    if holder is not None and holder != spec.code:
        raise InvalidInput.one("national_code", f"{spec.national_code} is already the code of {holder}")

    old = (await repository.load_resources(session, [spec.code]))[0][1] if row is not None else None
    changes = diff_resource(document(old) if old else None, document(spec))
    if row is not None and not changes:
        return Saved(repository.resource_out(spec, row), [])
    breaking = [change for change in changes if is_breaking(change)]
    if breaking and not edit.allow_breaking:
        raise BreakingChange(spec.code, breaking)
    version = (row.version if row is not None else await repository.last_version(session, spec.code)) + 1
    resource = await repository.write_resource(session, spec, version)
    await repository.add_change(
        session,
        code=spec.code,
        version=version,
        actor=edit.actor.name,
        actor_department=edit.actor.department,
        breaking=bool(breaking),
        changes=[change.as_dict() for change in changes],
        snapshot=document(spec),
    )
    await audit.append(session, _edit_event(edit, spec.code, version, changes))
    return Saved(repository.resource_out(spec, resource), changes)


async def remove_resource(session: AsyncSession, code: str, edit: Edit) -> list[Change]:
    row = await repository.lock_resource(session, code)
    if row is None:
        raise ResourceNotFound(code)
    if edit.expected_version is not None and row.version != edit.expected_version:
        raise StaleVersion(code, row.version)
    changes = diff_resource(document(await _current_spec(session, code)), None)
    if not edit.allow_breaking:
        raise BreakingChange(code, [change for change in changes if is_breaking(change)])
    await repository.delete_resource(session, code)
    await repository.add_change(
        session,
        code=code,
        version=row.version + 1,
        actor=edit.actor.name,
        actor_department=edit.actor.department,
        breaking=True,
        changes=[change.as_dict() for change in changes],
        snapshot=None,
    )
    await audit.append(session, _edit_event(edit, code, row.version + 1, changes))
    return changes


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def patch_document(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Merge-patch a resource document. ``elements`` may be an object keyed by element name, each value
    a merge patch of that element (null removes it; an unknown name adds one), or a whole new list."""
    element_patch = patch.get("elements")
    patched = merge_patch(current, {k: v for k, v in patch.items() if k != "elements"})
    if isinstance(element_patch, Mapping):
        elements = {element["name"]: element for element in current["elements"]}
        for name, change in element_patch.items():
            if change is None:
                elements.pop(name, None)
            else:
                elements[name] = merge_patch(elements.get(name, {}), change) | {"name": name}
        patched["elements"] = list(elements.values())
    elif element_patch is not None:
        patched["elements"] = element_patch
    return dict(patched)


async def patch_resource(session: AsyncSession, code: str, patch: Mapping[str, Any], edit: Edit) -> Saved:
    current = await _current_spec(session, code)
    if "code" in patch and patch["code"] != code:
        raise InvalidInput.one("code", "a resource's code cannot be changed; create a new resource instead")
    return await save_resource(session, parse_resource(patch_document(document(current), patch)), edit)


async def save_element(session: AsyncSession, code: str, element: ElementSpec, edit: Edit) -> Saved:
    current = await _current_spec(session, code)
    elements = [element if e.name == element.name else e for e in current.elements]
    if current.element(element.name) is None:
        elements.append(element)
    doc = document(current) | {"elements": [e.model_dump(mode="json", exclude_none=True) for e in elements]}
    return await save_resource(session, parse_resource(doc), edit)


async def patch_element(
    session: AsyncSession, code: str, name: str, patch: Mapping[str, Any], edit: Edit
) -> Saved:
    current = await _current_spec(session, code)
    if current.element(name) is None:
        raise ElementNotFound(code, name)
    if patch.get("name", name) != name:
        raise InvalidInput.one("name", "an element cannot be renamed; add a new element and remove this one")
    return await patch_resource(session, code, {"elements": {name: patch}}, edit)


async def remove_element(session: AsyncSession, code: str, name: str, edit: Edit) -> Saved:
    current = await _current_spec(session, code)
    if current.element(name) is None:
        raise ElementNotFound(code, name)
    return await patch_resource(session, code, {"elements": {name: None}}, edit)


async def history(session: AsyncSession, code: str, before: int | None, limit: int) -> list[CatalogChange]:
    changes = await repository.page_history(session, code, before, limit)
    if not changes and before is None:
        raise ResourceNotFound(code)
    return changes


async def version(session: AsyncSession, code: str, number: int) -> CatalogChange:
    change = await repository.get_change(session, code, number)
    if change is None:
        raise VersionNotFound(code, number)
    return change


async def purposes(session: AsyncSession) -> list[Purpose]:
    return await repository.all_purposes(session)


async def purpose(session: AsyncSession, code: str) -> Purpose:
    found = await repository.get_purpose(session, code)
    if found is None:
        raise PurposeNotFound(code)
    return found


@dataclass(slots=True)
class CatalogPlan:
    """What applying a catalogue directory does: per kind, what is added, changed and removed."""

    departments_added: list[DepartmentSpec] = field(default_factory=list)
    departments_renamed: list[tuple[DepartmentSpec, str]] = field(default_factory=list)
    departments_not_in_files: list[str] = field(default_factory=list)
    purposes_added: list[PurposeSpec] = field(default_factory=list)
    purposes_changed: list[tuple[PurposeSpec, list[Change]]] = field(default_factory=list)
    purposes_removed: list[str] = field(default_factory=list)
    resources_added: list[ResourceSpec] = field(default_factory=list)
    resources_changed: list[tuple[ResourceSpec, list[Change]]] = field(default_factory=list)
    resources_removed: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.departments_added
            or self.departments_renamed
            or self.purposes_added
            or self.purposes_changed
            or self.purposes_removed
            or self.resources_added
            or self.resources_changed
            or self.resources_removed
        )

    def breaking(self) -> list[tuple[str, Change]]:
        found = [
            (spec.code, c) for spec, changes in self.resources_changed for c in changes if is_breaking(c)
        ]
        return found + [(code, Change("removed", "resource")) for code in self.resources_removed]


async def plan_catalog(
    session: AsyncSession,
    departments: Sequence[DepartmentSpec],
    purposes_: Sequence[PurposeSpec],
    resources: Sequence[ResourceSpec],
) -> CatalogPlan:
    plan = CatalogPlan()
    stored_departments = {d.code: d.name for d in await repository.all_departments(session)}
    for department in departments:
        if department.code not in stored_departments:
            plan.departments_added.append(department)
        elif stored_departments[department.code] != department.name:
            plan.departments_renamed.append((department, stored_departments[department.code]))
    plan.departments_not_in_files = sorted(set(stored_departments) - {d.code for d in departments})

    stored_purposes = {
        p.code: PurposeSpec.model_validate(p, from_attributes=True)
        for p in await repository.all_purposes(session)
    }
    for item in purposes_:
        if item.code not in stored_purposes:
            plan.purposes_added.append(item)
        elif changes := diff_values(
            stored_purposes[item.code].model_dump(exclude_none=True), item.model_dump(exclude_none=True)
        ):
            plan.purposes_changed.append((item, changes))
    plan.purposes_removed = sorted(set(stored_purposes) - {p.code for p in purposes_})

    stored = {spec.code: spec for _, spec in await repository.load_resources(session)}
    for spec in resources:
        if spec.code not in stored:
            plan.resources_added.append(spec)
        elif changes := diff_resource(document(stored[spec.code]), document(spec)):
            plan.resources_changed.append((spec, changes))
    plan.resources_removed = sorted(set(stored) - {spec.code for spec in resources})
    return plan


async def apply_plan(session: AsyncSession, plan: CatalogPlan, *, actor: Actor, allow_breaking: bool) -> None:
    """Carry out a plan in the caller's transaction: all of it or, on any error, none of it."""
    breaking = plan.breaking()
    if breaking and not allow_breaking:
        raise BreakingChange(", ".join(sorted({code for code, _ in breaking})), [c for _, c in breaking])
    await repository.upsert_departments(
        session, [*plan.departments_added, *(department for department, _ in plan.departments_renamed)]
    )
    await repository.upsert_purposes(session, [*plan.purposes_added, *(p for p, _ in plan.purposes_changed)])
    edit = Edit(actor, expected_version=None, allow_breaking=allow_breaking)
    for spec in plan.resources_added:
        await save_resource(session, spec, edit, create=True)
    for spec, _ in plan.resources_changed:
        await save_resource(session, spec, edit)
    for code in plan.resources_removed:
        await remove_resource(session, code, edit)
    await repository.delete_purposes(session, plan.purposes_removed)
