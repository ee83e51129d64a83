from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.catalog.schemas import ElementType
from exchange.crosscheck.compare import DEFAULT_TOLERANCE_METRES, matcher, values_match
from tests.identifiers import valid_ric, valid_uscc

METRES_PER_DEGREE_OF_LATITUDE = 111_195
HOHHOT = "ᠬᠥᠬᠡᠬᠣᠲᠠ"  # Hohhot (呼和浩特) in traditional Mongolian script


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def north(position: list[float], metres: float) -> list[float]:
    return [position[0], position[1] + metres / METRES_PER_DEGREE_OF_LATITUDE]


def polygon(*ring: list[float]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def shape(kind: str, coordinates: Any) -> dict[str, Any]:
    return {"type": kind, "coordinates": coordinates}


def collection(*members: Any) -> dict[str, Any]:
    return {"type": "GeometryCollection", "geometries": list(members)}


GEOMETRY_TYPES = ["Point", "MultiPoint", "LineString", "Polygon", "MultiPolygon", "GeometryCollection"]
SQUARE = ([111.6, 40.8], [111.7, 40.8], [111.7, 40.9], [111.6, 40.9])

_lon = st.floats(-180, 180)
_lat = st.floats(-90, 90)
_position = st.one_of(st.tuples(_lon, _lat).map(list), st.tuples(_lon, _lat, st.floats(-500, 9000)).map(list))
_line = st.lists(_position, min_size=2, max_size=6)
_ring = st.lists(_position, min_size=3, max_size=6).map(lambda ring: [*ring, ring[0]])
_simple_geometry = st.one_of(
    st.builds(lambda c: {"type": "Point", "coordinates": c}, _position),
    st.builds(lambda c: {"type": "MultiPoint", "coordinates": c}, st.lists(_position, max_size=4)),
    st.builds(lambda c: {"type": "LineString", "coordinates": c}, _line),
    st.builds(lambda c: {"type": "MultiLineString", "coordinates": c}, st.lists(_line, max_size=3)),
    st.builds(lambda c: {"type": "Polygon", "coordinates": c}, st.lists(_ring, min_size=1, max_size=3)),
    st.builds(
        lambda c: {"type": "MultiPolygon", "coordinates": c},
        st.lists(st.lists(_ring, min_size=1, max_size=2), max_size=3),
    ),
)
_geometry = st.one_of(
    _simple_geometry,
    st.lists(_simple_geometry, max_size=3).map(lambda members: collection(*members)),
)
_offset = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))

# Values as the hub stores them after validation, for every element type.
VALID: dict[ElementType, st.SearchStrategy[Any]] = {
    ElementType.string: st.text(st.characters(exclude_characters="\x00")),
    ElementType.text: st.text(st.characters(exclude_characters="\x00")),
    ElementType.integer: st.integers(),
    ElementType.decimal: st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False).map(str),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    ElementType.boolean: st.booleans(),
    ElementType.date: st.dates().map(lambda d: d.isoformat()),
    ElementType.datetime: st.datetimes(timezones=_offset).map(lambda d: d.isoformat()),
    ElementType.code: st.text("0123456789ABCDEFGHIJ", min_size=1, max_size=6),
    ElementType.id_number: st.integers(0, 999).map(lambda serial: valid_ric(serial=serial)),
    ElementType.uscc: st.integers(0, 999_999_999).map(lambda serial: valid_uscc(serial=serial)),
    ElementType.division_code: st.from_regex(r"\d{6}(\d{3}(\d{3})?)?", fullmatch=True),
    ElementType.phone: st.from_regex(r"(\+86 ?)?1[3-9]\d{9}|0\d{2,3}-?\d{7,8}", fullmatch=True),
    ElementType.geometry: _geometry,
}

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.from_regex(r"-?\d+(\.\d+)?"),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=3), children, max_size=3),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(GEOMETRY_TYPES),
                "coordinates": children,
                "geometries": children,
            }
        ),
    ),
    max_leaves=12,
)
_anything = st.one_of(_json, *VALID.values())


def test_every_element_type_has_valid_values_to_test_with() -> None:
    assert set(VALID) == set(ElementType)


@pytest.mark.parametrize("kind", list(ElementType))
@given(data=st.data())
def test_every_valid_value_matches_itself(kind: ElementType, data: st.DataObject) -> None:
    value = data.draw(VALID[kind])
    assert values_match(kind, value, value)


@given(kind=st.sampled_from(ElementType), a=_anything, b=_anything)
def test_matching_is_symmetric(kind: ElementType, a: Any, b: Any) -> None:
    assert values_match(kind, a, b) == values_match(kind, b, a)


@given(
    kind=st.sampled_from(ElementType),
    a=_anything,
    b=_anything,
    precision=st.none() | st.integers(0, 40),
    tolerance_m=st.none() | st.floats(0, 1e7),
)
def test_comparing_never_raises_and_always_answers_yes_or_no(
    kind: ElementType, a: Any, b: Any, precision: int | None, tolerance_m: float | None
) -> None:
    assert values_match(kind, a, b, precision=precision, tolerance_m=tolerance_m) in (True, False)
    assert values_match(kind, a, a, precision=precision, tolerance_m=tolerance_m) in (True, False)


@pytest.mark.parametrize("kind", list(ElementType))
def test_no_value_matches_only_no_value(kind: ElementType) -> None:
    assert values_match(kind, None, None)
    for something in ("", 0, False, [], {}):
        assert not values_match(kind, None, something)
        assert not values_match(kind, something, None)


@given(text=st.text(st.characters(exclude_characters="\x00")))
def test_surrounding_spaces_and_zero_width_characters_do_not_change_text(text: str) -> None:
    assert values_match(ElementType.text, text, f"\u3000 \ufeff{text}\u200b\t\n")


@pytest.mark.parametrize(
    ("canonical", "reported"),
    [
        ("abc123", "ＡＢＣ１２３"),
        ("内蒙古自治区呼和浩特市", "  内蒙古自治区呼和浩特市\u3000"),
        ("新城区 中山西路 1号", "新城区\u3000\u3000中山西路\t1号"),
        ("张三", "张\u200b三"),
        ("张三", "\ufeff张\u200c\u200d三"),
        ("某某科技（内蒙古）有限公司", "某某科技(内蒙古)有限公司"),
        ("Straße", "STRASSE"),
        (HOHHOT, HOHHOT),
        (HOHHOT, f" {HOHHOT}\u200b "),
    ],
)
def test_text_from_another_department_matches_despite_width_case_and_spacing(
    canonical: str, reported: str
) -> None:
    assert values_match(ElementType.string, canonical, reported)
    assert values_match(ElementType.text, canonical, reported)


@pytest.mark.parametrize(
    ("canonical", "reported"),
    [
        ("北京市朝阳区", "北京市海淀区"),
        (HOHHOT, "呼和浩特"),
        (HOHHOT, "Хөххот"),
        (HOHHOT, "ᠬᠥᠬᠡ ᠬᠣᠲᠠ"),
        ("张三", "张 三"),
        ("abc", "abd"),
    ],
)
def test_different_text_does_not_match(canonical: str, reported: str) -> None:
    assert not values_match(ElementType.string, canonical, reported)


@pytest.mark.parametrize(
    "reported",
    [
        "+86 138-0013-8000",
        "+8613800138000",
        "0086 138 0013 8000",
        "(+86) 13800138000",
        "１３８００１３８０００",
        "＋８６ １３８－００１３－８０００",
        "138\u200b0013\u30008000",
    ],
)
def test_a_mobile_number_matches_in_any_usual_notation(reported: str) -> None:
    assert values_match(ElementType.phone, "13800138000", reported)


def test_landline_numbers_match_with_or_without_separators() -> None:
    assert values_match(ElementType.phone, "0471-6961234", "(0471) 696 1234")
    assert values_match(ElementType.phone, "010-12345678", "+86 010 1234 5678")
    assert not values_match(ElementType.phone, "0471-6961234", "0471-6961235")
    assert not values_match(ElementType.phone, "13800138000", "13800138001")


def test_a_phone_with_other_characters_compares_as_text() -> None:
    assert values_match(ElementType.phone, "不详", " 不详 ")
    assert not values_match(ElementType.phone, "13800138000", "13800138000 转 12")


def test_codes_match_exactly_after_trimming() -> None:
    assert values_match(ElementType.code, "10", " 10 ")
    assert not values_match(ElementType.code, "10", "010")
    assert not values_match(ElementType.code, "A1", "a1")
    assert not values_match(ElementType.code, "10", "１０")
    assert not values_match(ElementType.code, "10", 10)


def test_a_boolean_never_equals_a_number_or_a_string() -> None:
    assert values_match(ElementType.boolean, True, True)
    assert not values_match(ElementType.boolean, True, False)
    assert not values_match(ElementType.boolean, True, 1)
    assert not values_match(ElementType.boolean, False, 0)
    assert not values_match(ElementType.boolean, True, "true")


@pytest.mark.parametrize(
    ("kind", "canonical", "reported"),
    [
        (ElementType.id_number, "11010519491231002X", "11010519491231002x"),
        (ElementType.id_number, "11010519491231002X", " 110105 19491231 002x "),
        (ElementType.id_number, "11010519491231002X", "１１０１０５１９４９１２３１００２ｘ"),
        (ElementType.uscc, "91110000600037341L", "91110000600037341l"),
        (ElementType.uscc, "91110000600037341L", "9111 0000 6000 3734 1L\u200b"),
        (ElementType.division_code, "150402", " 150402 "),
    ],
)
def test_identifiers_match_in_canonical_form(kind: ElementType, canonical: str, reported: str) -> None:
    assert values_match(kind, canonical, reported)


def test_different_identifiers_do_not_match() -> None:
    assert not values_match(ElementType.id_number, "11010519491231002X", "110105194912310021")
    assert not values_match(ElementType.division_code, "150402", "150403")


def test_integers_and_decimals_match_by_value() -> None:
    assert values_match(ElementType.integer, 42, 42)
    assert values_match(ElementType.integer, 42, "42")
    assert not values_match(ElementType.integer, 42, 43)
    assert values_match(ElementType.decimal, "100.0", 100)
    assert values_match(ElementType.decimal, "1.5", 1.5)
    assert values_match(ElementType.decimal, "0.1", 0.1)
    assert not values_match(ElementType.decimal, "100.00004", "100")


@pytest.mark.parametrize("kind", [ElementType.integer, ElementType.decimal])
def test_what_is_not_a_finite_number_matches_nothing(kind: ElementType) -> None:
    assert not values_match(kind, True, True)
    assert not values_match(kind, True, 1)
    for not_a_number in ("abc", "NaN", "sNaN", "Infinity", float("inf"), [1], {"value": 1}):
        assert not values_match(kind, not_a_number, not_a_number)


def test_registered_capital_matches_when_equal_at_the_declared_precision() -> None:
    assert values_match(ElementType.decimal, "100.00004", "100", precision=4)
    assert not values_match(ElementType.decimal, "100.00004", "100", precision=5)
    assert values_match(ElementType.decimal, "100.00004", 100.0, precision=4)


def test_rounding_to_the_precision_takes_halves_up() -> None:
    assert values_match(ElementType.decimal, "0.00005", "0.0001", precision=4)
    assert values_match(ElementType.decimal, "2.5", "3", precision=0)
    assert values_match(ElementType.decimal, "-2.5", "-3", precision=0)
    assert not values_match(ElementType.decimal, "0.000049", "0.0001", precision=4)


def test_rounding_copes_with_numbers_of_any_size() -> None:
    huge = "9" * 60 + ".5"
    assert values_match(ElementType.decimal, huge, "1" + "0" * 60, precision=0)
    assert values_match(ElementType.decimal, "1e-999999999", 0, precision=4)
    assert values_match(ElementType.decimal, 10**5000, 10**5000, precision=2)


def test_dates_match_by_calendar_day() -> None:
    assert values_match(ElementType.date, "2020-01-05", "2020-01-05")
    assert not values_match(ElementType.date, "2020-01-05", "2020-01-06")
    assert not values_match(ElementType.date, "2020-02-30", "2020-02-30")
    assert not values_match(ElementType.date, "yesterday", "yesterday")


def test_datetimes_match_by_instant_across_offsets() -> None:
    assert values_match(ElementType.datetime, "2020-01-05T08:00:00+08:00", "2020-01-05T00:00:00Z")
    assert values_match(ElementType.datetime, "2020-01-04T20:00:00-04:00", "2020-01-05T08:00:00+08:00")
    assert not values_match(ElementType.datetime, "2020-01-05T08:00:00+08:00", "2020-01-05T08:00:00Z")


def test_a_datetime_without_an_offset_is_no_instant_and_matches_nothing() -> None:
    assert not values_match(ElementType.datetime, "2020-01-05T08:00:00", "2020-01-05T08:00:00")
    assert not values_match(ElementType.datetime, "2020-01-05T00:00:00Z", "2020-01-05T00:00:00")


def test_datetimes_at_the_ends_of_the_calendar_compare_without_overflow() -> None:
    assert values_match(ElementType.datetime, "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00+01:00")
    assert values_match(ElementType.datetime, "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59-01:00")


def test_a_point_matches_within_five_metres() -> None:
    here = [111.670801, 40.818311]
    assert DEFAULT_TOLERANCE_METRES == 5.0
    assert values_match(ElementType.geometry, point(*here), point(*north(here, 4.9)))
    assert not values_match(ElementType.geometry, point(*here), point(*north(here, 5.1)))


def test_the_tolerance_can_be_chosen() -> None:
    here = [111.670801, 40.818311]
    assert values_match(ElementType.geometry, point(*here), point(*north(here, 5.1)), tolerance_m=10)
    assert not values_match(ElementType.geometry, point(*here), point(*north(here, 0.1)), tolerance_m=0)


def test_distance_is_measured_on_the_globe_across_the_antimeridian() -> None:
    assert values_match(ElementType.geometry, point(179.99999, 0), point(-179.99999, 0))


def test_altitude_counts_only_when_both_points_have_one() -> None:
    assert values_match(ElementType.geometry, point(111.6, 40.8), shape("Point", [111.6, 40.8, 30]))
    assert not values_match(
        ElementType.geometry, shape("Point", [111.6, 40.8, 1000]), shape("Point", [111.6, 40.8, 1030])
    )


def test_a_polygon_matches_when_every_vertex_is_within_tolerance() -> None:
    nudged = [north(vertex, 3) for vertex in SQUARE]
    assert values_match(ElementType.geometry, polygon(*SQUARE), polygon(*nudged))
    one_vertex_off = [north(SQUARE[0], 6), *SQUARE[1:]]
    assert not values_match(ElementType.geometry, polygon(*SQUARE), polygon(*one_vertex_off))


def test_geometries_of_another_shape_do_not_match() -> None:
    square = polygon(*SQUARE)
    assert not values_match(ElementType.geometry, square, polygon(*SQUARE[:3]))
    assert not values_match(ElementType.geometry, square, shape("MultiPolygon", [square["coordinates"]]))
    line = list(SQUARE)
    assert not values_match(ElementType.geometry, shape("LineString", line), shape("MultiPoint", line))
    assert not values_match(ElementType.geometry, point(*SQUARE[0]), shape("MultiPoint", [SQUARE[0]]))


def test_geometry_collections_match_member_by_member() -> None:
    here = [111.670801, 40.818311]
    canonical = collection(point(*here), polygon(*SQUARE))
    close, far = (collection(point(*north(here, metres)), polygon(*SQUARE)) for metres in (2, 20))
    assert values_match(ElementType.geometry, canonical, close)
    assert not values_match(ElementType.geometry, canonical, far)
    assert not values_match(ElementType.geometry, canonical, collection(point(*here)))
    assert values_match(ElementType.geometry, collection(canonical), collection(canonical))


@pytest.mark.parametrize(
    "malformed",
    [
        {"type": "Point"},
        {"type": "Point", "coordinates": ["111.6", "40.8"]},
        {"type": "Point", "coordinates": [111.6]},
        {"type": "Point", "coordinates": [True, False]},
        {"type": "Point", "coordinates": [10**400, 0]},
        {"type": "Polygon", "coordinates": [[111.6, 40.8]]},
        {"type": "Circle", "coordinates": [111.6, 40.8]},
        {"type": "GeometryCollection"},
        "POINT(111.6 40.8)",
    ],
)
def test_malformed_geometry_matches_nothing(malformed: Any) -> None:
    assert not values_match(ElementType.geometry, malformed, malformed)


def test_a_matcher_compares_many_pairs_with_the_same_rules() -> None:
    same_capital = matcher(ElementType.decimal, precision=2)
    assert [same_capital(a, b) for a, b in [("1.004", "1"), ("1.005", "1.01"), ("1.006", "1")]] == [
        True,
        True,
        False,
    ]
    assert matcher(ElementType.string)("ＡＢＣ", "abc")


@pytest.mark.parametrize(
    "options",
    [{"precision": -1}, {"tolerance_m": -1.0}, {"tolerance_m": float("nan")}, {"tolerance_m": float("inf")}],
)
def test_nonsensical_options_are_refused_when_the_matcher_is_built(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        matcher(ElementType.decimal, **options)
