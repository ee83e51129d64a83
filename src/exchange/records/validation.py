"""Checking published values against their element's type (pure functions).

Each element type has one checker that returns the value to store (canonical where the type has a canonical
form: identifiers, decimals) or raises ``ValueError`` with a reason a publisher can act on. Text is stored
exactly as sent: no normalisation, so Mongolian script and full-width forms come back unchanged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from geojson_pydantic.geometries import Geometry
from pydantic import TypeAdapter, ValidationError

from exchange.access.policy import ElementRule
from exchange.catalog.schemas import ElementSpec, ElementType, ResourceSpec, SubjectIdType
from exchange.crosscheck.compare import Matcher, matcher
from exchange.identifiers import CheckedId, InvalidIdentifier, check_ric, normalize_uscc

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})$")
_DIVISION = re.compile(r"^\d{6}(\d{3}(\d{3})?)?$")
_PHONE = re.compile(r"^(\+86[- ]?)?(1[3-9]\d{9}|0\d{2,3}-?\d{7,8}(-\d{1,6})?|\d{7,8}|1\d{4})$")
_ADDRESS_CODE = re.compile(r"^\d{6}[0-9A-Z]{6,34}$")
_GEOMETRY: TypeAdapter[Any] = TypeAdapter(Geometry)

Checker = Callable[[Any], Any]


def _text(value: Any, length: int | None) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    if length is not None and len(value) > length:
        raise ValueError(f"is longer than {length} characters")
    return value


# Values are stored as jsonb written by orjson, which holds whole numbers of 64 bits at most.
_INT64 = range(-(2**63), 2**63)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number")
    if value not in _INT64:
        raise ValueError("is out of range (a 64-bit whole number)")
    return value


def _numbers_fit(value: Any) -> bool:
    """Whether every number in a JSON value can be stored as it is: finite, whole numbers within 64 bits."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value in _INT64
    if isinstance(value, dict):
        return all(_numbers_fit(item) for item in value.values())
    if isinstance(value, list):
        return all(_numbers_fit(item) for item in value)
    return True


def _decimal(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a number or a decimal string")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("is not a decimal number") from None
    if not number.is_finite():
        raise ValueError("must be a finite number")
    return str(number)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _date(value: Any) -> str:
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a real date") from None
    return value


def _datetime(value: Any) -> str:
    if not isinstance(value, str) or not _DATETIME.match(value):
        raise ValueError("must be an ISO 8601 date and time with a UTC offset")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a real date and time") from None
    return value


def _pattern(value: Any, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.match(value.strip()):
        raise ValueError(f"is not {what}")
    return value.strip()


def _geometry(value: Any) -> Any:
    if not isinstance(value, dict):
        raise ValueError("must be a GeoJSON geometry object")
    try:
        _GEOMETRY.validate_python(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"][1:])
        raise ValueError(f"is not valid GeoJSON ({where}: {first['msg']})") from None
    if not _numbers_fit(value):
        raise ValueError("holds a number out of range (finite, and whole numbers within 64 bits)")
    return value


@dataclass(frozen=True, slots=True)
class Warned:
    """A value to store and what the hub noticed about it without refusing it (identifier checkers only)."""

    value: Any
    warnings: tuple[str, ...]


def _identifier(check: Callable[[str], CheckedId]) -> Checker:
    def run(value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        try:
            checked = check(value)
        except InvalidIdentifier as exc:
            raise ValueError(str(exc)) from None
        return Warned(checked.number, checked.warnings) if checked.warnings else checked.number

    return run


def _uscc(value: str) -> CheckedId:
    return CheckedId(normalize_uscc(value))


def _address_code(value: str) -> CheckedId:
    return CheckedId(
        _pattern(value.upper(), _ADDRESS_CODE, "a standard address code (division code + 6-34 characters)")
    )


def checker_for(element: ElementSpec) -> Checker:
    """The element's checker: the value to store (a :class:`Warned` one if there is something to note), or
    ``ValueError`` with the reason."""
    kind = element.type
    if kind in {ElementType.string, ElementType.text}:
        return lambda value: _text(value, element.length)
    if kind is ElementType.code:
        allowed = frozenset(item.code for item in element.codes or [])

        def code(value: Any) -> str:
            if not isinstance(value, str) or value not in allowed:
                raise ValueError("is not in the element's code list")
            return value

        return code
    simple: dict[ElementType, Checker] = {
        ElementType.integer: _integer,
        ElementType.decimal: _decimal,
        ElementType.boolean: _boolean,
        ElementType.date: _date,
        ElementType.datetime: _datetime,
        ElementType.division_code: lambda v: _pattern(v, _DIVISION, "a division code (6, 9 or 12 digits)"),
        ElementType.phone: lambda v: _pattern(v, _PHONE, "a telephone number"),
        ElementType.geometry: _geometry,
    }
    if kind in simple:
        return simple[kind]
    return _identifier(check_ric if kind is ElementType.id_number else _uscc)


SUBJECT_CHECKS: dict[SubjectIdType, Callable[[str], CheckedId]] = {
    SubjectIdType.id_number: check_ric,
    SubjectIdType.uscc: _uscc,
    SubjectIdType.address_code: _address_code,
}


@dataclass(slots=True)
class Checked:
    """A publish body after checking: canonical values, or the reasons it was refused."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class ResourceRules:
    """Everything needed to check bodies for one resource, prepared once and reused for every line."""

    def __init__(self, spec: ResourceSpec, version: int = 0) -> None:
        self.spec = spec
        self.version = version  # the catalogue version of the resource these rules were built from
        self.elements = {element.name: element for element in spec.elements}
        self.checkers = {element.name: checker_for(element) for element in spec.elements}
        self.matchers: dict[str, Matcher] = {
            element.name: matcher(element.type, precision=element.precision, tolerance_m=element.tolerance_m)
            for element in spec.elements
        }
        self.subject_check = SUBJECT_CHECKS[spec.subject_id_type]
        self._own: dict[str, frozenset[str]] = {}
        # What the policy decision point needs of each element (one number, one source; sharing).
        self.policy_rules = {
            element.name: ElementRule(element.source_department, element.sharing.value)
            for element in spec.elements
        }

    def elements_of(self, department: str) -> frozenset[str]:
        """The elements ``department`` is the source of."""
        own = self._own.get(department)
        if own is None:
            own = self._own[department] = frozenset(
                name for name, element in self.elements.items() if element.source_department == department
            )
        return own

    def subject_id(self, value: Any) -> CheckedId:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a non-empty string")
        try:
            return self.subject_check(value)
        except InvalidIdentifier as exc:
            raise ValueError(str(exc)) from None

    def fields(self, fields: Mapping[str, Any]) -> Checked:
        checked = Checked()
        checkers = self.checkers
        values = checked.values
        for name, value in fields.items():
            check = checkers.get(name)
            if check is None:
                checked.errors.append((f"fields.{name}", f"{self.spec.code} has no element {name}"))
            elif value is None:
                if self.elements[name].required:
                    checked.errors.append((f"fields.{name}", "is required and cannot be cleared"))
                else:
                    values[name] = None
            else:
                try:
                    stored = check(value)
                except ValueError as exc:
                    checked.errors.append((f"fields.{name}", str(exc)))
                    continue
                if type(stored) is Warned:
                    checked.warnings.extend(f"fields.{name}: {warning}" for warning in stored.warnings)
                    stored = stored.value
                values[name] = stored
        return checked
