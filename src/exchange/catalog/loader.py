"""The catalogue as code: ``catalog/`` YAML files read, checked and written back.

Layout: ``departments.yaml`` (``departments: [...]``), ``purposes.yaml`` (``purposes: [...]``) and one file
per resource in ``resources/<code>.yaml``. Reading collects every problem, each naming its file, resource and
element, so one run shows everything to fix; nothing is applied unless the whole directory is valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from exchange.catalog.schemas import DepartmentSpec, PurposeSpec, ResourceSpec

DEPARTMENTS_FILE = "departments.yaml"
PURPOSES_FILE = "purposes.yaml"
RESOURCES_DIR = "resources"


@dataclass(frozen=True, slots=True)
class CatalogProblem:
    file: str
    message: str
    resource: str | None = None
    element: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.resource:
            where.append(f"resource {self.resource}")
        if self.element:
            where.append(f"element {self.element}")
        if self.field:
            where.append(f"field {self.field}")
        return f"{', '.join(where)}: {self.message}"


class CatalogInvalid(Exception):
    def __init__(self, problems: Sequence[CatalogProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class CatalogFiles:
    departments: list[DepartmentSpec]
    purposes: list[PurposeSpec]
    resources: list[ResourceSpec]


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (PyYAML would keep the last silently)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"the key {key!r} is given twice",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path, label: str, problems: list[CatalogProblem]) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 (a safe loader)
    except FileNotFoundError:
        problems.append(CatalogProblem(label, "file not found"))
    except UnicodeDecodeError:
        problems.append(CatalogProblem(label, "not UTF-8 text"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problems.append(
            CatalogProblem(label, f"{line}not valid YAML ({getattr(exc, 'problem', None) or exc})")
        )
    return None


def _validation_problems(
    exc: ValidationError, label: str, doc: Mapping[str, Any], resource: str | None
) -> list[CatalogProblem]:
    found = []
    elements = doc.get("elements") if isinstance(doc, Mapping) else None
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        element = None
        if len(loc) >= 2 and loc[0] == "elements" and isinstance(loc[1], int):
            named = elements[loc[1]] if isinstance(elements, list) and loc[1] < len(elements) else None
            element = (
                str(named.get("name"))
                if isinstance(named, Mapping) and named.get("name")
                else f"#{loc[1] + 1}"
            )
            loc = loc[2:]
        field = ".".join(str(part) for part in loc) or None
        found.append(CatalogProblem(label, err["msg"], resource=resource, element=element, field=field))
    return found


def _read_list(
    path: Path, label: str, key: str, model: type[BaseModel], problems: list[CatalogProblem]
) -> list[Any]:
    data = _read_yaml(path, label, problems)
    if data is None:
        return []
    if not isinstance(data, Mapping) or not isinstance(data.get(key), list):
        problems.append(CatalogProblem(label, f"expected a mapping with a list under '{key}'"))
        return []
    items = []
    for i, item in enumerate(data[key]):
        name = item.get("code") if isinstance(item, Mapping) else None
        try:
            items.append(model.model_validate(item))
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                field = ".".join(str(p) for p in err["loc"]) or None
                problems.append(
                    CatalogProblem(label, f"entry {name or f'#{i + 1}'}: {err['msg']}", field=field)
                )
    return items


def _duplicates(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    repeated = []
    for value in values:
        if value in seen:
            repeated.append(value)
        seen.add(value)
    return repeated


def read_catalog(directory: Path, known_departments: Iterable[str] = ()) -> CatalogFiles:
    """Read and check a catalogue directory; raise :class:`CatalogInvalid` listing every problem.

    ``known_departments`` are codes registered with the hub already; resources may name them too.
    """
    problems: list[CatalogProblem] = []
    departments: list[DepartmentSpec] = _read_list(
        directory / DEPARTMENTS_FILE, DEPARTMENTS_FILE, "departments", DepartmentSpec, problems
    )
    # Unreadable departments would make every reference look dangling; report the cause, not the echoes.
    check_references = not problems
    purposes: list[PurposeSpec] = _read_list(
        directory / PURPOSES_FILE, PURPOSES_FILE, "purposes", PurposeSpec, problems
    )
    for code in _duplicates(d.code for d in departments):
        problems.append(CatalogProblem(DEPARTMENTS_FILE, f"the department {code} is listed twice"))
    for code in _duplicates(p.code for p in purposes):
        problems.append(CatalogProblem(PURPOSES_FILE, f"the purpose {code} is listed twice"))

    resources: list[tuple[str, ResourceSpec]] = []
    files = sorted((directory / RESOURCES_DIR).glob("*.yaml")) + sorted(
        (directory / RESOURCES_DIR).glob("*.yml")
    )
    for path in files:
        label = f"{RESOURCES_DIR}/{path.name}"
        doc = _read_yaml(path, label, problems)
        if doc is None:
            continue
        if not isinstance(doc, Mapping):
            problems.append(CatalogProblem(label, "expected one resource as a mapping"))
            continue
        resource_code = str(doc.get("code")) if doc.get("code") else None
        try:
            spec = ResourceSpec.model_validate(doc)
        except ValidationError as exc:
            problems += _validation_problems(exc, label, doc, resource_code)
            continue
        if path.stem != spec.code:
            problems.append(
                CatalogProblem(label, f"the file of resource {spec.code} must be named {spec.code}.yaml")
            )
        resources.append((label, spec))

    for code in _duplicates(spec.code for _, spec in resources):
        problems.append(CatalogProblem(RESOURCES_DIR, f"the resource {code} is defined twice"))
    for national in _duplicates(spec.national_code for _, spec in resources):
        problems.append(
            CatalogProblem(RESOURCES_DIR, f"the national code {national} is used by two resources")
        )
    department_codes = {d.code for d in departments} | set(known_departments)
    for label, spec in resources if check_references else []:
        if spec.owner_department not in department_codes:
            problems.append(
                CatalogProblem(
                    label, f"{spec.owner_department} is not a department", spec.code, field="owner_department"
                )
            )
        for element in spec.elements:
            if element.source_department not in department_codes:
                problems.append(
                    CatalogProblem(
                        label,
                        f"{element.source_department} is not a department",
                        spec.code,
                        element.name,
                        "source_department",
                    )
                )
    if problems:
        raise CatalogInvalid(problems)
    return CatalogFiles(departments, purposes, [spec for _, spec in resources])


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120)


def write_catalog(directory: Path, catalog: CatalogFiles) -> list[Path]:
    """Write the catalogue as files ``read_catalog`` reads back to the same thing; returns the files."""
    (directory / RESOURCES_DIR).mkdir(parents=True, exist_ok=True)
    written = []
    departments = [d.model_dump(mode="json") for d in catalog.departments]
    purposes = [p.model_dump(mode="json", exclude_none=True) for p in catalog.purposes]
    for name, data in (
        (DEPARTMENTS_FILE, {"departments": departments}),
        (PURPOSES_FILE, {"purposes": purposes}),
    ):
        (directory / name).write_text(_dump(data), encoding="utf-8")
        written.append(directory / name)
    keep = set()
    for spec in catalog.resources:
        path = directory / RESOURCES_DIR / f"{spec.code}.yaml"
        path.write_text(_dump(spec.model_dump(mode="json", exclude_none=True)), encoding="utf-8")
        written.append(path)
        keep.add(path)
    for stale in (directory / RESOURCES_DIR).glob("*.y*ml"):
        if stale not in keep:
            stale.unlink()
    return written
