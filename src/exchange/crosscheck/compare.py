"""When two values of an element mean the same (pure functions).

Used by verification (核验) and cross-checking: strings compare after NFKC (full-width and half-width
forms alike), case folding and whitespace collapsing; codes and booleans exactly; numbers and dates by
value; identifiers in canonical form; points within a distance tolerance.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from exchange.catalog.schemas import ElementType

POINT_TOLERANCE_METRES = 5.0
_EARTH_RADIUS_METRES = 6_371_008.8


def normalize_text(value: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        return None


def _distance_metres(a: list[float], b: list[float]) -> float:
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * _EARTH_RADIUS_METRES * math.asin(math.sqrt(h))


def _instant(value: str) -> datetime | date | None:
    try:
        return datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
    except ValueError:
        return None


def values_match(kind: ElementType, a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` state the same fact for an element of type ``kind``."""
    if a is None or b is None:
        return a is None and b is None
    if kind in {ElementType.string, ElementType.text, ElementType.phone}:
        return isinstance(a, str) and isinstance(b, str) and normalize_text(a) == normalize_text(b)
    if kind in {ElementType.id_number, ElementType.uscc, ElementType.division_code}:
        return (
            isinstance(a, str)
            and isinstance(b, str)
            and normalize_text(a).upper() == normalize_text(b).upper()
        )
    if (
        kind in {ElementType.decimal, ElementType.integer}
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        x, y = _decimal(a), _decimal(b)
        return x is not None and y is not None and x == y
    if kind in {ElementType.date, ElementType.datetime} and isinstance(a, str) and isinstance(b, str):
        first = _instant(a)
        return first is not None and first == _instant(b)
    if kind is ElementType.geometry and isinstance(a, dict) and isinstance(b, dict):
        if a.get("type") == b.get("type") == "Point":
            return _distance_metres(a["coordinates"], b["coordinates"]) <= POINT_TOLERANCE_METRES
        return a == b
    return bool(a == b)
