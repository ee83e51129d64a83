"""When two values of an element state the same fact (pure functions).

The one set of comparison rules, used by verification (核验: does a caller's value match the record) and by
multi-source cross-checking (多元校核: does a value another department reports match the canonical value).
Values arrive as they are stored after validation:

- ``None`` means "no value" and matches only ``None``.
- string, text: compatibility caseless matching (NFKC, so full-width and half-width forms are alike, and case
  folding), whitespace runs collapsed and trimmed, zero-width characters (U+200B/C/D, U+FEFF) ignored.
- phone: the digits after NFKC, without separators (whitespace, hyphens, parentheses) and without a leading
  +86 or 0086 country prefix; a value with other characters compares as text.
- code: exact after trimming ("10" is not "010"). boolean: exact, and a bool never equals a number.
- id_number, uscc, division_code: canonical form, i.e. NFKC, whitespace and zero-width characters removed,
  upper case (the check character x of an id number is X).
- integer, decimal: by value; with ``precision`` both are first rounded half-up to that many decimal places.
  Anything that is not a finite number (bools included) matches nothing.
- date: by calendar day. datetime: by instant; a datetime without a UTC offset matches nothing.
- geometry (GeoJSON): same type and shape, every corresponding vertex within ``tolerance_m`` metres on the
  mean-radius sphere (the members of a GeometryCollection pairwise).
- any other element type: plain equality.

A value of the wrong shape for its type matches nothing. Comparing never raises, whatever the values.

What two identical values of a type say without running its matcher (``identical``) lets a caller that sees
values only as JSON, such as the database, settle the common case itself.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Hashable
from datetime import date, datetime, timedelta
from decimal import MAX_EMAX, MIN_EMIN, ROUND_HALF_UP, Context, Decimal
from enum import StrEnum
from typing import Any

from exchange.catalog.schemas import ElementType

Matcher = Callable[[Any, Any], bool]

DEFAULT_TOLERANCE_METRES = 5.0
_EARTH_RADIUS_METRES = 6_371_008.8

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\ufeff"))
_PHONE_SEPARATORS = _INVISIBLE | dict.fromkeys(map(ord, "-()"))
_COUNTRY_PREFIXES = ("+86", "0086")
_EPOCH = datetime(1970, 1, 1)  # naive on purpose: an instant is kept as its distance from this

# How deep positions sit in "coordinates" for each GeoJSON type.
_POSITION_DEPTH = {
    "Point": 0,
    "MultiPoint": 1,
    "LineString": 1,
    "MultiLineString": 2,
    "Polygon": 2,
    "MultiPolygon": 3,
}


def matcher(kind: ElementType, *, precision: int | None = None, tolerance_m: float | None = None) -> Matcher:
    """The comparison for elements of type ``kind``, built once for use on many pairs of values.

    ``precision`` (decimal places) applies to integer and decimal elements, ``tolerance_m`` (metres, default
    ``DEFAULT_TOLERANCE_METRES``) to geometry elements; both are ignored for other types. A negative precision
    or a negative or non-finite tolerance is refused with ``ValueError``.
    """
    if precision is not None and precision < 0:
        raise ValueError("precision must be a non-negative number of decimal places")
    tolerance = DEFAULT_TOLERANCE_METRES if tolerance_m is None else tolerance_m
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError("tolerance_m must be a finite, non-negative number of metres")
    if kind in {ElementType.string, ElementType.text}:
        return _strings_by(_text_key)
    if kind is ElementType.phone:
        return _strings_by(_phone_key)
    if kind is ElementType.code:
        return _strings_by(str.strip)
    if kind in {ElementType.id_number, ElementType.uscc, ElementType.division_code}:
        return _strings_by(_identifier_key)
    if kind is ElementType.boolean:
        return _booleans
    if kind in {ElementType.integer, ElementType.decimal}:
        return _by_key(_number_key(precision))
    if kind is ElementType.date:
        return _by_key(_date_key)
    if kind is ElementType.datetime:
        return _by_key(_instant_key)
    if kind is ElementType.geometry:
        return lambda a, b: _geometries_match(a, b, tolerance)
    return _plain


class Identical(StrEnum):
    """What the matcher of an element type answers for JSON values that are identical, or not both strings.

    - ``strings``: identical strings match; a value that is not a string matches nothing but ``None``.
    - ``booleans``: two booleans match exactly when identical; anything else matches nothing but ``None``.
    - ``numbers``: identical numbers match (precision or not), and so do identical decimal strings as a
      decimal element stores them ("-12.50").
    - ``dates``: identical strings that are calendar dates written YYYY-MM-DD match; a value that is not a
      string matches nothing but ``None``.
    - ``unknown``: only the matcher can tell: an identical but malformed instant or geometry matches nothing.
    """

    strings = "strings"
    booleans = "booleans"
    numbers = "numbers"
    dates = "dates"
    unknown = "unknown"


_STRINGS = frozenset(
    {
        ElementType.string,
        ElementType.text,
        ElementType.phone,
        ElementType.code,
        ElementType.id_number,
        ElementType.uscc,
        ElementType.division_code,
    }
)


def identical(kind: ElementType) -> Identical:
    """What identical values of type ``kind`` say (see ``Identical``); it follows ``matcher`` type by type."""
    if kind in _STRINGS:
        return Identical.strings
    if kind is ElementType.boolean:
        return Identical.booleans
    if kind in {ElementType.integer, ElementType.decimal}:
        return Identical.numbers
    if kind is ElementType.date:
        return Identical.dates
    return Identical.unknown


def values_match(
    kind: ElementType, a: Any, b: Any, *, precision: int | None = None, tolerance_m: float | None = None
) -> bool:
    """Whether ``a`` and ``b`` state the same fact for an element of type ``kind`` (see ``matcher``)."""
    return matcher(kind, precision=precision, tolerance_m=tolerance_m)(a, b)


def _plain(a: Any, b: Any) -> bool:
    return bool(a == b)


def _booleans(a: Any, b: Any) -> bool:
    if type(a) is bool and type(b) is bool:
        return a is b
    return a is None and b is None


def _strings_by(key: Callable[[str], str]) -> Matcher:
    def compare(a: Any, b: Any) -> bool:
        if type(a) is str and type(b) is str:
            return a == b or key(a) == key(b)
        return a is None and b is None

    return compare


def _by_key(key: Callable[[Any], Hashable | None]) -> Matcher:
    """Values match when both have a key (are well-formed) and the keys are equal."""

    def compare(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return a is None and b is None
        first = key(a)
        return first is not None and first == key(b)

    return compare


def _text_key(value: str) -> str:
    folded = unicodedata.normalize("NFKC", value).translate(_INVISIBLE).casefold()
    return " ".join(unicodedata.normalize("NFKC", folded).split())


def _identifier_key(value: str) -> str:
    return "".join(unicodedata.normalize("NFKC", value).translate(_INVISIBLE).split()).upper()


def _phone_key(value: str) -> str:
    digits = "".join(unicodedata.normalize("NFKC", value).translate(_PHONE_SEPARATORS).split())
    for prefix in _COUNTRY_PREFIXES:
        if digits.startswith(prefix) and len(digits) > len(prefix):
            digits = digits.removeprefix(prefix)
            break
    # The text key keeps the offending character, so it does not equal a key made of digits alone.
    return digits if digits.isascii() and digits.isdigit() else _text_key(value)


def _number_key(precision: int | None) -> Callable[[Any], Decimal | None]:
    if precision is None:
        return _number
    quantum = Decimal((0, (1,), -precision))

    def rounded(value: Any) -> Decimal | None:
        number = _number(value)
        if number is None:
            return None
        _, digits, exponent = number.as_tuple()
        if not isinstance(exponent, int) or exponent >= -precision:
            return number
        # Rounding never needs more digits than the number already has, so this context cannot overflow.
        context = Context(prec=len(digits) + 1, Emax=MAX_EMAX, Emin=MIN_EMIN)
        return number.quantize(quantum, rounding=ROUND_HALF_UP, context=context)

    return rounded


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        # Decimal(int) rather than via str: str() refuses integers of more than 4300 digits.
        number = Decimal(value) if isinstance(value, int) else Decimal(str(value))
    except (ArithmeticError, ValueError):
        return None
    return number if number.is_finite() else None


def _date_key(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def _instant_key(value: Any) -> timedelta | None:
    """The instant as time since the epoch, which unlike a conversion to UTC cannot overflow in year 1."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    offset = moment.utcoffset()
    if offset is None:
        return None
    return moment.replace(tzinfo=None) - _EPOCH - offset


def _geometries_match(a: Any, b: Any, tolerance: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    # An explicit stack rather than recursion: GeometryCollections may nest to any depth.
    pending = [(a, b)]
    while pending:
        first, second = pending.pop()
        if not (isinstance(first, dict) and isinstance(second, dict)):
            return False
        shape = first.get("type")
        if shape != second.get("type"):
            return False
        if shape == "GeometryCollection":
            members, others = first.get("geometries"), second.get("geometries")
            if not (
                isinstance(members, list | tuple)
                and isinstance(others, list | tuple)
                and len(members) == len(others)
            ):
                return False
            pending.extend(zip(members, others, strict=True))
            continue
        depth = _POSITION_DEPTH.get(shape) if isinstance(shape, str) else None
        if depth is None or not _coordinates_match(
            first.get("coordinates"), second.get("coordinates"), depth, tolerance
        ):
            return False
    return True


def _coordinates_match(a: Any, b: Any, depth: int, tolerance: float) -> bool:
    """Whether two coordinate arrays nest alike, positions ``depth`` levels down, each pair within reach."""
    if depth == 0:
        return _within(a, b, tolerance)
    return (
        isinstance(a, list | tuple)
        and isinstance(b, list | tuple)
        and len(a) == len(b)
        and all(_coordinates_match(x, y, depth - 1, tolerance) for x, y in zip(a, b, strict=True))
    )


def _within(a: Any, b: Any, tolerance: float) -> bool:
    """Whether two positions lie within ``tolerance`` metres; altitude counts only when both have one."""
    first, second = _position(a), _position(b)
    if first is None or second is None:
        return False
    surface = _distance_metres(first, second)
    if len(first) == len(second) == 3:
        return math.hypot(surface, first[2] - second[2]) <= tolerance
    return surface <= tolerance


def _position(value: Any) -> tuple[float, ...] | None:
    if not isinstance(value, list | tuple) or len(value) not in (2, 3):
        return None
    if any(isinstance(n, bool) or not isinstance(n, int | float) for n in value):
        return None
    try:
        position = tuple(float(n) for n in value)
    except OverflowError:
        return None
    return position if all(math.isfinite(n) for n in position) else None


def _distance_metres(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Great-circle (haversine) distance between two (longitude, latitude) positions."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * _EARTH_RADIUS_METRES * math.asin(math.sqrt(min(1.0, h)))
