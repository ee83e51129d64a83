"""The outcomes a reconciliation lets PostgreSQL decide are the outcomes the comparison rules give.

Reconciliation settles most reports in SQL (repository.DECIDED) and runs the element's matcher only on the
rest. These tests evaluate that very expression on generated values, against the rules of compare.py and
service.judge applied to the same values as the driver reads them back.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from exchange.catalog.schemas import ElementType
from exchange.crosscheck.compare import identical, matcher
from exchange.crosscheck.repository import DECIDED
from exchange.crosscheck.service import judge
from exchange.records.repository import stamp
from tests.conftest import _libpq_url
from tests.crosscheck.test_compare import VALID

_DECIDE = f"""
SELECT {DECIDED}, CAST(v.value AS text), CAST(v.canonical AS text)
FROM (SELECT CAST($1 AS jsonb) AS value, CAST($2 AS jsonb) AS canonical, CAST($3 AS text) AS canonical_since,
             CAST($4 AS boolean) AS dated, CAST($5 AS timestamptz) AS observed_at,
             CAST($6 AS text) AS identical) AS v
"""  # noqa: S608 (a constant fragment, no input)

Decided = Callable[..., tuple[str | None, str | None, str | None]]
POINT = {"type": "Point", "coordinates": [111.6, 40.8]}


@pytest.fixture(scope="module")
def decided(server_url: str) -> Iterator[Decided]:
    """The database's outcome for one report, with its values as the database reads them back: on a loop
    and connection of its own, so that the property tests can stay synchronous."""
    loop = asyncio.new_event_loop()
    connection = loop.run_until_complete(asyncpg.connect(_libpq_url(server_url, "postgres")))

    def decide(
        kind: ElementType,
        value: str | None,
        canonical: str | None,
        since: str | None = "2025-01-01T00:00:00.000000Z",
        dated: bool = False,
        observed_at: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    ) -> tuple[str | None, str | None, str | None]:
        row = loop.run_until_complete(
            connection.fetchrow(_DECIDE, value, canonical, since, dated, observed_at, identical(kind).value)
        )
        assert row is not None
        return row[0], row[1], row[2]

    yield decide
    loop.run_until_complete(connection.close())
    loop.close()


def _storable(value: Any) -> bool:
    """What jsonb can hold: no NUL characters, no infinite or undefined numbers."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    if isinstance(value, dict):
        return all(_storable(k) and _storable(item) for k, item in value.items())
    return True


_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_json = st.recursive(
    _scalars | st.from_regex(r"-?\d+(\.\d+)?([eE]-?\d+)?", fullmatch=True),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=6,
)
_dates = st.from_regex(r"\d{4}-\d{2}-\d{2}", fullmatch=True) | st.dates().map(lambda d: d.isoformat())
_moments = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))


def _read_back(text: str | None) -> Any:
    """A value as the reconciliation's matchers receive it (the driver's JSON decoding)."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        assume(False)  # a number no float holds: the matchers never saw such a value either


@settings(max_examples=600, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(ElementType),
    data=st.data(),
    same=st.booleans(),
    dated=st.booleans(),
    observed_at=_moments,
    since=st.none() | _moments.map(stamp) | st.text(max_size=30).filter(lambda s: "\x00" not in s),
    precision=st.none() | st.integers(0, 6),
)
def test_what_the_database_decides_is_what_the_rules_decide(
    decided: Decided,
    kind: ElementType,
    data: st.DataObject,
    same: bool,
    dated: bool,
    observed_at: datetime,
    since: str | None,
    precision: int | None,
) -> None:
    values = st.one_of(_json, VALID[kind], _dates).filter(_storable)
    canonical = data.draw(values)
    value = canonical if same else data.draw(values)
    outcome, value_text, canonical_text = decided(
        kind, json.dumps(value), json.dumps(canonical), since, dated, observed_at
    )
    reported, held = _read_back(value_text), _read_back(canonical_text)
    rules = judge(
        matcher(kind, precision=precision),
        reported,
        None if since is None else held,
        dated,
        observed_at,
        since or "",
    )
    assert outcome is None or outcome == rules.value


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (ElementType.string, "张三"),
        (ElementType.text, "ᠬᠥᠬᠡᠬᠣᠲᠠ"),
        (ElementType.phone, "13800138000"),
        (ElementType.code, "1"),
        (ElementType.id_number, "11010519491231002X"),
        (ElementType.division_code, "150402"),
        (ElementType.boolean, True),
        (ElementType.integer, 7),
        (ElementType.decimal, "100.5"),
        (ElementType.date, "2000-02-29"),
    ],
)
def test_the_database_decides_identical_values_itself(
    decided: Decided, kind: ElementType, value: Any
) -> None:
    assert decided(kind, json.dumps(value), json.dumps(value))[0] == "agrees"


@pytest.mark.parametrize(
    ("kind", "value", "canonical"),
    [
        (ElementType.string, 5, "5"),
        (ElementType.code, "1", {"code": "1"}),
        (ElementType.boolean, True, False),
        (ElementType.boolean, 1, True),
        (ElementType.date, 20000229, "2000-02-29"),
    ],
)
def test_the_database_decides_values_of_the_wrong_type_itself(
    decided: Decided, kind: ElementType, value: Any, canonical: Any
) -> None:
    assert decided(kind, json.dumps(value), json.dumps(canonical))[0] == "disagrees"


def test_the_database_sorts_out_empty_reports_missing_canonical_values_and_stale_reports(
    decided: Decided,
) -> None:
    name = json.dumps("张三")
    assert decided(ElementType.string, None, name)[0] == "empty"
    assert decided(ElementType.string, "null", name)[0] == "empty"
    assert decided(ElementType.string, name, None)[0] == "no_canonical"
    assert decided(ElementType.string, name, "null")[0] == "no_canonical"
    assert decided(ElementType.string, name, name, since=None)[0] == "no_canonical"
    before = datetime(2024, 6, 1, tzinfo=UTC)
    assert decided(ElementType.string, name, name, dated=True, observed_at=before)[0] == "stale"
    assert decided(ElementType.string, name, name, dated=False, observed_at=before)[0] == "agrees"


@pytest.mark.parametrize(
    ("kind", "value", "canonical"),
    [
        (ElementType.string, "\u3000张三", "张三"),
        (ElementType.phone, "+86 13800138000", "13800138000"),
        (ElementType.decimal, "100.00004", "100"),
        (ElementType.date, " 2000-02-29", " 2000-02-29"),
        (ElementType.date, "2001-02-29", "2001-02-29"),
        (ElementType.datetime, "2020-01-05T08:00:00+08:00", "2020-01-05T08:00:00+08:00"),
        (ElementType.geometry, POINT, POINT),
    ],
)
def test_the_matchers_decide_what_takes_normalising_or_parsing(
    decided: Decided, kind: ElementType, value: Any, canonical: Any
) -> None:
    assert decided(kind, json.dumps(value), json.dumps(canonical))[0] is None


def test_reports_dated_outside_the_years_1000_to_9999_are_left_to_the_rules(decided: Decided) -> None:
    """Python writes the year 950 as "950", PostgreSQL as "0950": the stamps would not compare alike."""
    name = json.dumps("张三")
    early = datetime(950, 6, 1, tzinfo=UTC)
    outcome, _, _ = decided(ElementType.string, name, name, since=stamp(early), dated=True, observed_at=early)
    assert outcome is None
